#!/usr/bin/env bash
# sluice serve: reloads and signals. A file that no longer validates keeps its previous
# version (its errors logged FILE:LINE:COL) and that version runs at the next tick; a new
# file is scheduled; an edited schedule does not fire its just-passed tick; SIGHUP reloads;
# a removed file stops being scheduled. SIGTERM with a run in flight lets it finish within
# --grace and exits 0; past the grace the run is canceled and left resumable; a second
# signal cancels at once, also when a run holds the loop in one long C call (the loop's
# watchdog). --log json writes one JSON object per line.
# Usage: serve_signals.sh SLUICE BUILD_DIR SOURCE_DIR
source "$3/tests/integration/lib/serve.sh"
serve_setup "$@"

workflow() { # NAME CRON VERSION [DELAY_MS]
    cat <<EOF
name: $1
schedule: { cron: "$2" }
steps:
  get:
    uses: http.get
    with: { url: "$url/get?wf=$1&v=$3&delay_ms=${4:-0}" }
EOF
}

# ---- reloads --------------------------------------------------------------------------
mkdir wf
workflow a "*/2 * * * *" 1 > wf/a.yaml
workflow c "*/2 * * * *" 1 > wf/c.yaml
v1_hash=$(sha256sum wf/a.yaml | cut -d' ' -f1)
base=$(date -u -d 2030-01-07T10:01:52Z +%s) # the next tick, 10:02, in 8 s
SLUICE_NOW=$(iso "$base") "$sluice" serve wf 2> reload.log &
daemons+=($!)
pid=${daemons[-1]}
logged() { grep -Eq "$1" reload.log; }
check "both files load" wait_for 5 logged "wf/c.yaml: loaded workflow c"
sleep 0.5
workflow c "1 10 * * *" 2 > wf/c.yaml.new && mv wf/c.yaml.new wf/c.yaml # 10:01: on time
check "an edited file reloads" wait_for 5 logged "wf/c.yaml: reloaded workflow c"
check "an edited schedule counts from the edit" logged "c: schedule changed: only ticks from now on count"
printf 'name: a\nsteps:\n  get: { uses: http.get, with: [1, 2 }\n' > wf/a.yaml
check "a broken file keeps its version" \
    wait_for 5 logged "wf/a.yaml: does not validate: the previous version keeps being served"
check "its errors name FILE:LINE:COL" logged "^wf/a.yaml:[0-9]+:[0-9]+: error: "
workflow b "*/2 * * * *" 1 > wf/b.yaml
check "a new file is scheduled" wait_for 5 logged "wf/b.yaml: added workflow b"
two_done() { [[ $(q "select count(*) from runs where finished is not null") -ge 2 ]]; }
check "the 10:02 tick runs a and b" wait_for 15 two_done
sleep 1
check "a ran its previous version" [ "$(q "select hash from runs where workflow = 'a'")" = "$v1_hash" ]
check "a and b succeeded at 10:02; c did not run" \
    [ "$(q "select workflow || ' ' || strftime('%H:%M', tick / 1000, 'unixepoch') || ' ' || status
            from runs order by workflow")" = $'a 10:02 succeeded\nb 10:02 succeeded' ]
workflow a "*/2 * * * *" 2 > wf/a.yaml
kill -HUP "$pid"
check "SIGHUP reloads" wait_for 5 logged "SIGHUP: reloading the files"
check "the fixed file is back" wait_for 5 logged "wf/a.yaml: reloaded workflow a"
rm wf/b.yaml
check "a removed file stops being scheduled" \
    wait_for 5 logged "wf/b.yaml: removed: workflow b is no longer scheduled"
kill -TERM "$pid"
wait "$pid"
check "the daemon exits 0" [ $? = 0 ]

# ---- SIGTERM with a run in flight -------------------------------------------------------
stop_case() { # NAME GRACE DELAY_MS SIGNALS LOG... : starts a daemon, signals it mid-run
    export SLUICE_STATE=$work/state-$1
    workflow "$1" "* * * * *" 1 "$3" > "$1.yaml"
    SLUICE_NOW=$(iso "$(date -u -d 2030-01-07T10:00:57Z +%s)") \
        "$sluice" serve "$1.yaml" --grace "$2" "${@:5}" 2> "$1.log" &
    daemons+=($!)
    local pid=${daemons[-1]} i
    running() { [[ $(q "select count(*) from runs where status = 'running'") == 1 ]]; }
    check "$1: the run starts" wait_for 10 running
    local t0=$(date +%s%N)
    for ((i = 0; i < $4; i++)); do
        kill -TERM "$pid"
        sleep 0.3
    done
    wait "$pid"
    stop_status=$?
    stop_ms=$((($(date +%s%N) - t0) / 1000000))
    check "$1: exits 0" [ "$stop_status" = 0 ]
}
stop_case finish 10s 2500 1 --log json
check "finish: the run finished within the grace" [ "$(runs_of finish)" = "10:00 succeeded" ]
check "finish: it waited for the run" [ "$stop_ms" -ge 1500 ] && [ "$stop_ms" -lt 9000 ]
check "finish: no tick taken after SIGTERM" [ "$(q 'select count(*) from ticks')" = 1 ]
/usr/bin/python3 - finish.log <<'EOF' || { failed=$((failed + 1)); echo "FAIL: --log json"; }
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert all({"time", "level", "msg"} <= set(l) for l in lines), lines
messages = [l["msg"] for l in lines]
assert any("tick 2030-01-07T10:00:00+00:00 due" in m for m in messages), messages
assert any("succeeded in" in m for m in messages), messages
assert any(m.startswith("SIGTERM: stopping") for m in messages), messages
EOF
stop_case past 1s 4000 1
check "past: canceled after the grace" [ "$(runs_of past)" = "10:00 interrupted" ]
check "past: within about the grace" [ "$stop_ms" -lt 4000 ]
check "past: the log says so" grep -q "grace period over: canceling 1 run" past.log
"$sluice" run --quiet past.yaml --resume last > resume.out 2>&1
check "past: the canceled run resumes" [ $? = 0 ]
stop_case again 30s 8000 2
check "again: a second signal cancels at once" [ "$(runs_of again)" = "10:00 interrupted" ]
check "again: well before the grace" [ "$stop_ms" -lt 4000 ]
check "again: the log says so" grep -q "SIGTERM again: canceling 1 run now" again.log
# ---- a run stuck in one C call: the loop's watchdog keeps the daemon stoppable ---------
export SLUICE_STATE=$work/state-stuck
cat > stuck.yaml <<EOF
name: stuck
schedule: { cron: "* * * * *" }
steps:
  find:
    uses: lua
    with:
      max_instructions: 1000000000000000
      code: "local h = string.rep('a', 10000000); local n = string.rep('a', 1000000) .. 'b'; return h:find(n, 1, true)"
EOF
SLUICE_NOW=$(iso "$(date -u -d 2030-01-07T10:00:57Z +%s)") \
    "$sluice" serve stuck.yaml --grace 1s 2> stuck.log &
daemons+=($!)
pid=${daemons[-1]}
check "stuck: the run starts" wait_for 10 running
sleep 0.5
t0=$(date +%s%N)
kill -TERM "$pid"
for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
kill -0 "$pid" 2> /dev/null && kill -KILL "$pid"
wait "$pid"
stuck_status=$?
stop_ms=$((($(date +%s%N) - t0) / 1000000))
check "stuck: SIGTERM stops the daemon, exit 0" [ "$stuck_status" = 0 ]
check "stuck: within about the grace" [ "$stop_ms" -lt 6000 ]
# The call cannot yield, so the watchdog fails it before the loop reads the signal: the
# run ends failed (its task's error says why) and the daemon then stops, within the grace.
check "stuck: the run ends failed" [ "$(runs_of stuck)" = "10:00 failed" ]
check "stuck: its task says it was interrupted" \
    [ "$(q "select count(*) from tasks where error like '%interrupted (the run is being stopped)%'")" = 1 ]
check "stuck: the log says so" grep -q "the loop is stuck in a Lua call: interrupting it" stuck.log
# ---- a tick claimed ahead, then SIGTERM before it comes: its claim is given back ------
export SLUICE_STATE=$work/state-ahead
workflow ahead "* * * * *" 1 > ahead.yaml
SLUICE_NOW=$(iso "$(date -u -d 2030-01-07T10:00:50Z +%s)") "$sluice" serve ahead.yaml 2> ahead.log &
daemons+=($!)
pid=${daemons[-1]}
made_ready() { grep -q "ahead: tick 2030-01-07T10:01:00+00:00 due (its run made ready ahead)" ahead.log; }
check "ahead: the next tick's run is made ready ahead of it" wait_for 10 made_ready
kill -TERM "$pid"
wait "$pid"
check "ahead: exits 0" [ $? = 0 ]
check "ahead: the log says the tick was not taken" \
    grep -q "ahead: tick 2030-01-07T10:01:00+00:00 not started (the daemon stops): not taken" ahead.log
check "ahead: only the on-time tick is recorded" \
    [ "$(q "select group_concat(strftime('%H:%M', tick / 1000, 'unixepoch')) from ticks")" = "10:00" ]
check "ahead: and only its run" [ "$(runs_of ahead)" = "10:00 succeeded" ]
SLUICE_NOW=$(iso "$(date -u -d 2030-01-07T10:01:05Z +%s)") "$sluice" serve ahead.yaml 2> ahead2.log &
daemons+=($!)
pid=${daemons[-1]}
two_runs() { [[ $(q "select count(*) from runs where finished is not null") == 2 ]]; }
check "ahead: after a restart the given-back tick runs on time" wait_for 10 two_runs
kill -TERM "$pid"
wait "$pid"
check "ahead: 10:00 and 10:01, once each" [ "$(runs_of ahead)" = $'10:00 succeeded\n10:01 succeeded' ]
((failed)) && cat reload.log finish.log past.log again.log resume.out stuck.log ahead.log ahead2.log
[[ -n ${SERVE_SHOW_LOG:-} ]] && cat reload.log finish.log past.log again.log
serve_report
