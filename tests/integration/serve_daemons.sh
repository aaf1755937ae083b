#!/usr/bin/env bash
# sluice serve: two daemons on one state folder run each tick once (one holds the
# workflow's lease, the other waits to take it over); a daemon killed with SIGKILL in the
# middle of a run, then restarted: the killed run is recorded interrupted (and resumes),
# the restarted daemon takes the dead one's lease at once, runs the next tick, and runs
# no tick twice.
# Usage: serve_daemons.sh SLUICE BUILD_DIR SOURCE_DIR
source "$3/tests/integration/lib/serve.sh"
serve_setup "$@"
requests() { curl -s "$url/stats" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])'; }

# ---- two daemons, one state folder ------------------------------------------------------
cat > twice.yaml <<EOF
name: twice
schedule: { cron: "* * * * *", concurrency: allow }
steps:
  get:
    uses: http.get
    with: { url: "$url/get?delay_ms=300" }
EOF
base=$(date -u -d 2030-01-07T10:00:57Z +%s)
SLUICE_NOW=$(iso "$base") "$sluice" serve twice.yaml 2> a.log &
daemons+=($!)
SLUICE_NOW=$(iso "$base") "$sluice" serve twice.yaml 2> b.log &
daemons+=($!)
two_done() { [[ $(q "select count(*) from runs where finished is not null") -ge 2 ]]; }
check "two ticks run within 15 s" wait_for 15 two_done
sleep 1
kill -TERM "${daemons[0]}" "${daemons[1]}"
wait "${daemons[0]}"; a=$?
wait "${daemons[1]}"; b=$?
check "both daemons exit 0" [ "$a$b" = 00 ]
check "each tick ran once" [ "$(runs_of twice)" = $'10:00 succeeded\n10:01 succeeded' ]
check "two requests in all" [ "$(requests)" = 2 ]
check "one daemon scheduled, the other waited" \
    [ "$(cat a.log b.log | grep -c 'twice: scheduled here (lease taken)')" = 1 ]
check "the other said why" grep -q "scheduled by another sluice serve (its lease)" a.log b.log
check "no lease is left" [ "$(q 'select count(*) from leases')" = 0 ]

# ---- kill -9 mid-run, restart -----------------------------------------------------------
export SLUICE_STATE=$work/state2
cat > crash.yaml <<EOF
name: crash
schedule: { cron: "* * * * *" }
steps:
  hold:
    uses: exec
    with: { argv: [sh, -c, 'if [ -e long ]; then rm long; sleep 30; fi; echo held'] }
  get:
    uses: http.get
    with: { url: "$url/get?held=\${{ len(steps.hold.stdout) }}" }
EOF
touch long
start=$(date +%s)
SLUICE_NOW=$(iso "$base") "$sluice" serve crash.yaml 2> c.log &
daemons+=($!)
# Running, and inside its long step (which removes the marker as it starts).
running() { [[ ! -e long && $(q "select count(*) from runs where status = 'running'") == 1 ]]; }
check "the first run starts" wait_for 10 running
kill -KILL "${daemons[2]}"
wait "${daemons[2]}" 2>/dev/null
SLUICE_NOW=$(now_at "$base" "$start") "$sluice" serve crash.yaml 2> d.log &
daemons+=($!)
next_done() { [[ $(q "select count(*) from runs where status = 'succeeded'") == 1 ]]; }
check "the restarted daemon runs the next tick" wait_for 15 next_done
sleep 1
kill -TERM "${daemons[3]}"
wait "${daemons[3]}"
check "the restarted daemon exits 0" [ $? = 0 ]
check "the dead daemon's lease is taken at once" grep -q "lease taken from .*, a daemon that is gone" d.log
"$sluice" runs > runs.txt
check "the killed run reads interrupted, the next succeeded" \
    [ "$(runs_of crash)" = $'10:00 interrupted\n10:01 succeeded' ]
check "no tick ran twice" [ "$(q "select count(*) from ticks where workflow = 'crash'")" = 2 ]
killed=$(q "select id from runs where status = 'interrupted'")
"$sluice" run --quiet crash.yaml --resume "$killed" > resume.out 2>&1
check "the killed run resumes" [ $? = 0 ]
# ---- more runs due at once than may be open (1,024): the rest wait their turn -------------
export SLUICE_STATE=$work/state3
mkdir many
for i in $(seq -w 1 1100); do
    printf 'name: m%s\nschedule: { cron: "* * * * *" }\nsteps:\n  get: { uses: http.get, with: { url: "%s/get?m=%s" } }\n' \
        "$i" "$url" "$i" > "many/m$i.yaml"
done
SLUICE_NOW=$(iso $((base - 27))) "$sluice" serve many 2> e.log & # 10:00:30: the next tick is 30 s away
daemons+=($!)
first=$(((base - 57) * 1000)) # 10:00, the on-time tick
all_done() { [[ $(q "select count(*) from runs where status = 'succeeded' and tick = $first") == 1100 ]]; }
check "1,100 runs due at once all run" wait_for 90 all_done
kill -TERM "${daemons[-1]}"
wait "${daemons[-1]}"
check "that daemon exits 0" [ $? = 0 ]
check "1,100 ticks, each once" [ "$(q "select count(*), count(distinct workflow) from ticks
                                   where tick = $first")" = "1100|1100" ]
# ---- serve --once while another is running the tick: not run again, and the tick keeps the
# run that ran it ---------------------------------------------------------------------------
export SLUICE_STATE=$work/state4
printf 'name: taken\nschedule: { cron: "* * * * *" }\nsteps:\n  get: { uses: http.get, with: { url: "%s/get?delay_ms=2000" } }\n' \
    "$url" > taken.yaml
SLUICE_NOW=$(iso $((base - 50))) "$sluice" serve --once taken.yaml 2> f.log &
daemons+=($!)
going() { [[ $(q "select count(*) from runs where status = 'running'") == 1 ]]; }
check "the first --once runs the tick" wait_for 10 going
SLUICE_NOW=$(iso $((base - 50))) "$sluice" serve --once taken.yaml 2> g.log
check "the second --once exits 0" [ $? = 0 ]
check "the second leaves the tick alone" \
    grep -Eq "scheduled by another sluice serve|no tick due|already taken, not run again" g.log
wait "${daemons[-1]}"
check "the tick names the run that ran it" \
    [ "$(q "select run from ticks")" = "$(q "select id from runs")" ]
check "one run" [ "$(q "select count(*) from runs")" = 1 ]
((failed)) && cat a.log b.log c.log d.log e.log f.log g.log runs.txt resume.out
[[ -n ${SERVE_SHOW_LOG:-} ]] && cat a.log b.log c.log d.log
serve_report
