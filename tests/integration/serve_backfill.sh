#!/usr/bin/env bash
# sluice backfill: one run per tick of the range, oldest first, one at a time, recorded
# with trigger backfill. Interrupted (SIGTERM, or SIGKILL mid-run) and started again, it
# resumes the interrupted tick and runs the rest: still exactly one succeeded run per
# tick. A third pass over the same range runs nothing.
# Usage: serve_backfill.sh SLUICE BUILD_DIR SOURCE_DIR
source "$3/tests/integration/lib/serve.sh"
serve_setup "$@"

workflow() { # DELAY_MS
    cat <<EOF
name: hourly
schedule: { cron: "0 * * * *", timezone: Europe/Berlin }
steps:
  get:
    uses: http.get
    with: { url: "$url/get?delay_ms=$1" }
EOF
}
export SLUICE_NOW=2030-01-07T10:00:00+01:00
range=(--from 2030-01-06T00:00:00+01:00 --to 2030-01-06T23:59:00+01:00)
hours() { q "select group_concat(strftime('%H', tick / 1000, 'unixepoch', '+1 hour'), ' ')
             from (select tick from runs where status = 'succeeded' order by seq)"; }
all_hours="00 01 02 03 04 05 06 07 08 09 10 11 12 13 14 15 16 17 18 19 20 21 22 23"

# ---- a whole range ------------------------------------------------------------------
workflow 0 > hourly.yaml
"$sluice" backfill hourly.yaml "${range[@]}" 2> whole.log
check "whole: exits 0" [ $? = 0 ]
check "whole: 24 runs, all succeeded" \
    [ "$(q "select count(*) || ' ' || sum(status = 'succeeded') from runs")" = "24 24" ]
check "whole: oldest first, one per tick" [ "$(hours)" = "$all_hours" ]
check "whole: all with trigger backfill" \
    [ "$(q "select group_concat(distinct trigger) from runs")" = backfill ]
check "whole: one at a time" [ "$(q "select count(*) from runs a join runs b
    on a.seq < b.seq and b.started < a.finished")" = 0 ]
check "whole: the log counts the ticks" grep -q "hourly: backfill of 24 ticks" whole.log
"$sluice" backfill hourly.yaml "${range[@]}" 2> again.log
check "again: exits 0" [ $? = 0 ]
check "again: nothing runs twice" [ "$(q "select count(*) from runs")" = 24 ]
check "again: the log says the ticks are kept" \
    [ "$(grep -c "already run (succeeded, run .*): kept" again.log)" = 24 ]

# ---- interrupted, then started again ------------------------------------------------
interrupt() { # NAME SIGNAL
    export SLUICE_STATE=$work/state-$1
    workflow 400 > hourly.yaml
    "$sluice" backfill hourly.yaml "${range[@]}" 2> "$1-1.log" &
    local pid=$!
    daemons+=($pid)
    five() { [[ $(q "select count(*) from runs where status = 'succeeded'") -ge 5 ]] &&
             [[ $(q "select count(*) from runs where status = 'running'") == 1 ]]; }
    check "$1: five runs done and one going" wait_for 30 five
    kill "-$2" "$pid"
    wait "$pid"
    check "$1: it stopped early" [ "$(q "select count(*) from runs")" -lt 24 ]
    "$sluice" backfill hourly.yaml "${range[@]}" 2> "$1-2.log"
    check "$1: started again, exits 0" [ $? = 0 ]
    check "$1: one succeeded run per tick, oldest first" [ "$(hours)" = "$all_hours" ]
    check "$1: 24 ticks recorded" [ "$(q "select count(*) from ticks")" = 24 ]
    check "$1: the interrupted run is kept as such" \
        [ "$(q "select count(*) from runs where status = 'interrupted'")" = 1 ]
    check "$1: and its tick resumed" grep -q "(backfill), run .* resumes" "$1-2.log"
    check "$1: no tick ran twice to the end" [ "$(q "select count(*) from (select tick from runs
        where status = 'succeeded' group by tick having count(*) > 1)")" = 0 ]
}
interrupt term TERM
interrupt kill KILL
((failed)) && cat whole.log again.log term-1.log term-2.log kill-1.log kill-2.log
serve_report
