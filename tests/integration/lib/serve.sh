# tests/integration/lib/serve.sh: helpers of the serve_*.sh tests (sourced: not a test
# itself, so not in integration/). Each test runs real `sluice serve` processes against
# the fixture server, with SLUICE_NOW a few seconds before a minute so that ticks come quickly: a
# schedule of `* * * * *` has its on-time tick (the minute just begun) at once, and the
# next one a few seconds later.
#
#   serve_setup SLUICE BUILD SRC   work folder, fixture, state; sets $sluice $url $work
#   now_at BASE_EPOCH START_EPOCH  the SLUICE_NOW of a process started now (BASE's clock
#                                  as advanced since START)
#   q SQL                          one sqlite3 query on the state database
#   wait_for SECONDS CMD...        polls CMD every 0.2 s until it succeeds (1 on timeout)
#   check NAME CONDITION-CMD...    counts a pass or a failure (with NAME)
set -u

serve_setup() {
    sluice=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
    local build src
    build=$(cd "$2" && pwd) src=$(cd "$3" && pwd)
    work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-serve.XXXXXX")
    source "$src/tests/fixture/start.sh" "$build" || exit 1
    trap 'serve_cleanup' EXIT
    url=$FIXTURE_URL
    cd "$work" || exit 1
    export SLUICE_STATE=$work/state
    passed=0 failed=0
    daemons=()
}

serve_cleanup() {
    local pid
    for pid in "${daemons[@]}"; do
        kill -KILL "$pid" 2>/dev/null
    done
    fixture_stop
    rm -rf "$work"
}

iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

now_at() { iso $(($1 + $(date +%s) - $2)); }

q() { sqlite3 "$SLUICE_STATE/state.db" "$1"; }

wait_for() {
    local limit=$(($1 * 5)) i=0
    shift
    while ! "$@" 2>/dev/null; do
        i=$((i + 1))
        ((i >= limit)) && return 1
        sleep 0.2
    done
    return 0
}

check() {
    local name=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $name"
    fi
}

# The runs of workflow $1 as "tick-HH:MM status" lines, by tick then start.
runs_of() {
    q "select strftime('%H:%M', tick / 1000, 'unixepoch') || ' ' || status from runs
       where workflow = '$1' order by tick, seq"
}

serve_report() {
    echo "passed $passed, failed $failed"
    ((failed == 0))
}
