#!/usr/bin/env bash
# sluice serve: each `concurrency` policy with a long run overlapping the next tick. One
# daemon serves four workflows of `* * * * *`; SLUICE_NOW is 3 s before a minute, so each
# workflow's on-time tick runs at once (8 s long: a marker file makes the first run slow)
# and the next tick comes 3 s later, while it runs: allow runs both, forbid records the
# tick skipped, replace cancels the first (interrupted, resumable) and starts the second,
# queue starts the second once the first has ended. Every run has trigger cron and its tick.
# Usage: serve_policies.sh SLUICE BUILD_DIR SOURCE_DIR
source "$3/tests/integration/lib/serve.sh"
serve_setup "$@"

mkdir wf
for policy in allow forbid replace queue; do
    cat > "wf/$policy.yaml" <<EOF
name: $policy
schedule:
  cron: "* * * * *"
  concurrency: $policy
steps:
  hold:
    uses: exec
    with: { argv: [sh, -c, 'if [ -e long.$policy ]; then rm long.$policy; sleep 8; fi; echo held'] }
  ping:
    uses: http.get
    with: { url: "$url/get?wf=$policy&held=\${{ len(steps.hold.stdout) }}" }
EOF
    touch "long.$policy"
done

base=$(date -u -d 2030-01-07T10:00:57Z +%s)
SLUICE_NOW=$(iso "$base") "$sluice" serve wf --grace 30s 2> serve.log &
daemons+=($!)
ended() { [[ $(q "select count(*) from runs where finished is not null") == 7 ]]; }
check "seven runs end within 20 s" wait_for 20 ended
kill -TERM "${daemons[0]}"
wait "${daemons[0]}"
check "the daemon exits 0 on SIGTERM" [ $? = 0 ]

check "allow: two runs, both succeeded" [ "$(runs_of allow)" = $'10:00 succeeded\n10:01 succeeded' ]
overlap=$(q "select count(*) from runs a join runs b on a.workflow = 'allow' and b.workflow =
             'allow' and a.tick < b.tick and b.started < a.finished")
check "allow: the two overlap" [ "$overlap" = 1 ]
check "forbid: one run" [ "$(runs_of forbid)" = "10:00 succeeded" ]
check "forbid: the tick recorded skipped with its reason" \
    [ "$(q "select status || ': ' || reason from ticks where workflow = 'forbid' and
             tick = $(((base + 3) * 1000))")" = \
      "skipped: a run of the workflow is still going (concurrency: forbid)" ]
check "replace: the first interrupted, the second succeeded" \
    [ "$(runs_of replace)" = $'10:00 interrupted\n10:01 succeeded' ]
ordered=$(q "select count(*) from runs a join runs b on a.workflow = 'replace' and b.workflow =
             'replace' and a.tick < b.tick and b.started >= a.finished")
check "replace: the second starts once the first is canceled" [ "$ordered" = 1 ]
check "queue: both succeeded" [ "$(runs_of queue)" = $'10:00 succeeded\n10:01 succeeded' ]
waited=$(q "select count(*) from runs a join runs b on a.workflow = 'queue' and b.workflow =
            'queue' and a.tick < b.tick and b.started >= a.finished and
            b.finished - a.started >= 8000")
check "queue: the second waited for the first" [ "$waited" = 1 ]
check "every run has trigger cron" [ "$(q "select count(*) from runs where trigger = 'cron'
                                         and tick > 0")" = 7 ]
check "nothing ran twice" [ "$(q "select count(*) from (select workflow, tick from runs
                              group by workflow, tick having count(*) > 1)")" = 0 ]
# The replaced run stays resumable: --resume finishes it.
replaced=$(q "select id from runs where workflow = 'replace' and status = 'interrupted'")
"$sluice" run --quiet wf/replace.yaml --resume "$replaced" > resume.out 2>&1
check "replace: the canceled run resumes" [ $? = 0 ]
check "the log says skipped and queued" grep -q "tick 2030-01-07T10:01:00+00:00 skipped: a run" serve.log
check "the log says queued" grep -q "queue: tick 2030-01-07T10:01:00+00:00 queued" serve.log
check "the log says canceled" grep -q "replace: canceling run .* (concurrency: replace)" serve.log
check "the log says finished, with durations" grep -Eq "run .* for tick .* succeeded in [0-9.]+ s" serve.log
((failed)) && cat serve.log resume.out
[[ -n ${SERVE_SHOW_LOG:-} ]] && cat serve.log
serve_report
