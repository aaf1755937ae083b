#!/usr/bin/env bash
# A simulated week of `sluice serve --once` calls (system cron's way), with SLUICE_NOW set
# to chosen times, over hourly and daily schedules scraping the fixture server:
# Europe/Berlin across the spring gap of 2030-03-31 (02:00 CET -> 03:00 CEST) and
# America/New_York across the repeated hour of 2030-11-03 (01:00-02:00 twice). Each
# `missed` mode and the `catchup` window decide which ticks run after downtime; a second
# call at the same moment runs nothing (no tick twice after a restart); the daily tick of
# the gap day fires once at the first instant after the gap, the one of the repeated hour
# once, at its first occurrence. The exact ticks expected are written out below.
# Usage: serve_week.sh SLUICE BUILD_DIR SOURCE_DIR
source "$3/tests/integration/lib/serve.sh"
serve_setup "$@"

wf() { # FOLDER NAME CRON ZONE MISSED CATCHUP
    mkdir -p "$1"
    cat > "$1/$2.yaml" <<EOF
name: $2
schedule: { cron: "$3", timezone: $4, missed: $5, catchup: $6 }
steps:
  get:
    uses: http.get
    with: { url: "$url/get?wf=$2" }
EOF
}
wf berlin bd "30 2 * * *" Europe/Berlin last 1h
wf berlin bh_all "0 * * * *" Europe/Berlin all 3h
wf berlin bh_last "0 * * * *" Europe/Berlin last 1h
wf berlin bh_none "0 * * * *" Europe/Berlin none 1h
wf ny nd "30 1 * * *" America/New_York last 1h
wf ny nh_all "0 * * * *" America/New_York all 3h

once() { # FOLDER NOW
    SLUICE_NOW=$2 "$sluice" serve --once "$1" >> once.log 2>&1
    check "serve --once $1 at $2 exits 0" [ $? = 0 ]
}
once berlin 2030-03-28T00:00:20Z # 01:00 CET: the hourly ones' first, on-time tick
once berlin 2030-03-28T01:30:10Z # 02:30 CET: the daily one's on-time tick; 01:00Z
once berlin 2030-03-28T05:00:30Z # after 3.5 h down: all within 3h, last, none on time
once berlin 2030-03-28T05:00:40Z # again: nothing
once berlin 2030-03-31T01:00:05Z # 03:00 CEST, the end of the gap: 02:30 fires now
once berlin 2030-03-31T01:00:10Z # again: nothing
once berlin 2030-04-01T00:30:30Z # 02:30 CEST
once ny 2030-11-02T05:30:15Z     # 01:30 EDT
once ny 2030-11-03T04:00:10Z     # 00:00 EDT: the hourly one's first, on-time tick
once ny 2030-11-03T05:30:20Z     # 01:30 EDT, the first of the two
once ny 2030-11-03T06:30:20Z     # 01:30 EST, the second: neither fires again
once ny 2030-11-04T06:30:10Z     # 01:30 EST the next day, after a day down

ticks() {
    q "select strftime('%Y-%m-%dT%H:%MZ', tick / 1000, 'unixepoch') from runs
       where workflow = '$1' and trigger = 'cron' and status = 'succeeded' order by tick" |
        tr '\n' ' '
}
expect() {
    local got
    got=$(ticks "$1")
    check "$1: $got" [ "$got" = "$2 " ]
}
expect bd "2030-03-28T01:30Z 2030-03-31T01:00Z 2030-04-01T00:30Z"
expect bh_all "2030-03-28T00:00Z 2030-03-28T01:00Z 2030-03-28T03:00Z 2030-03-28T04:00Z \
2030-03-28T05:00Z 2030-03-30T23:00Z 2030-03-31T00:00Z 2030-03-31T01:00Z 2030-03-31T22:00Z \
2030-03-31T23:00Z 2030-04-01T00:00Z"
expect bh_last "2030-03-28T00:00Z 2030-03-28T01:00Z 2030-03-28T05:00Z 2030-03-31T01:00Z \
2030-04-01T00:00Z"
expect bh_none "2030-03-28T00:00Z 2030-03-28T05:00Z 2030-03-31T01:00Z"
expect nd "2030-11-02T05:30Z 2030-11-03T05:30Z 2030-11-04T06:30Z"
expect nh_all "2030-11-03T04:00Z 2030-11-03T05:00Z 2030-11-04T04:00Z 2030-11-04T05:00Z \
2030-11-04T06:00Z"
check "every run succeeded, none twice" \
    [ "$(q "select count(*), count(distinct workflow || tick) from runs")" = "30|30" ]
check "the fixture saw one request per run" \
    [ "$(curl -s "$url/stats" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')" = 30 ]
check "the second call at a moment ran nothing" \
    grep -q "bh_all: no tick due" once.log
((failed)) && cat once.log
serve_report
