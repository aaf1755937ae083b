#!/usr/bin/env bash
# Kill -9 at random moments, then --resume last: a run with HTTP (JSON and save_to), CPU
# (json.parse, primes.sieve in the worker pool) and Lua steps must end with the same
# outputs as an uninterrupted run, leave no temporary file, and never repeat a task the
# store had recorded as completed: the fixture counts the requests the resume makes, which
# must be exactly the HTTP tasks the killed run had not recorded.
# Usage: kill_resume.sh SLUICE BUILD_DIR SOURCE_DIR   (KILL_ITERATIONS, KILL_SEED override)
set -u
sluice=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
build=$(cd "$2" && pwd) src=$(cd "$3" && pwd)
iterations=${KILL_ITERATIONS:-50}
seed=${KILL_SEED:-$(date +%s)}
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-kill.XXXXXX")
source "$src/tests/fixture/start.sh" "$build" --latency-ms 15 || exit 1
trap 'fixture_stop; rm -rf "$work"' EXIT
cd "$work" || exit 1
url=$FIXTURE_URL
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL (seed $seed, iteration $i): $*"; }

cat > kr.yaml <<'EOF'
name: kr
vars: { base: "http://127.0.0.1:1" }
limits: { cpu: { workers: 2 } }
steps:
  codes:
    uses: http.get
    with: { url: "${{ vars.base }}/en/codes.json" }
  names:
    uses: json.parse
    with: { text: "${{ steps.codes.body }}" }
  flags:
    uses: http.get
    foreach: "${{ range(1, 30) }}"
    concurrency: 6
    with:
      url: "${{ vars.base }}/w20/${{ keys(steps.names)[item] }}.png"
      save_to: "out/flags/${{ keys(steps.names)[item] }}.png"
  sizes:
    uses: lua
    foreach: "${{ steps.flags }}"
    with: { code: "sluice.sleep(0.01); return item.bytes * 2" }
  sieve:
    uses: primes.sieve
    foreach: "${{ range(1000, 1060) }}"
    with: { limit: "${{ item }}" }
  report:
    uses: file.write
    with:
      path: out/report.json
      content: { sizes: "${{ steps.sizes }}", primes: "${{ steps.sieve }}", n: "${{ len(steps.names) }}" }
EOF
http_tasks=31 # codes + 30 flags

export SLUICE_STATE=$work/ref-state
"$sluice" run --quiet kr.yaml --var "base=$url" > ref.out 2> ref.err || { cat ref.err; exit 1; }
mv out ref

requests() { curl -s "$url/stats" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])'; }
# HTTP tasks the killed run (seq 1 of a fresh state) recorded as done
recorded() {
    sqlite3 "$SLUICE_STATE/state.db" "select count(*) from tasks t join steps s on s.run = t.run and s.idx = t.step where t.run = 1 and t.status = 'ok' and s.id in ('codes', 'flags')" 2>/dev/null || echo 0
}

echo "kill_resume: seed $seed, $iterations iterations"
RANDOM=$seed
for ((i = 1; i <= iterations; i++)); do
    rm -rf out "$work/state"
    export SLUICE_STATE=$work/state
    delay_ms=$((RANDOM % 900))
    "$sluice" run --quiet kr.yaml --var "base=$url" > /dev/null 2>&1 &
    pid=$!
    sleep "$(printf '0.%03d' "$delay_ms")"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    done_http=$(recorded)
    curl -s "$url/stats/reset" > /dev/null
    if [[ -e $SLUICE_STATE/state.db ]] && sqlite3 "$SLUICE_STATE/state.db" 'select 1 from runs' 2>/dev/null | grep -q 1; then
        "$sluice" run --quiet kr.yaml --resume last > resume.out 2> resume.err
    else # killed before the run was recorded: nothing to resume, it starts over
        "$sluice" run --quiet kr.yaml --var "base=$url" > resume.out 2> resume.err
    fi
    status=$?
    made=$(requests)
    if [[ $status != 0 ]]; then
        bad "resume after ${delay_ms} ms: exit $status"; head -c 2000 resume.err; continue
    fi
    [[ $made == $((http_tasks - done_http)) ]] && ok ||
        bad "after ${delay_ms} ms: the resume made $made requests, expected $((http_tasks - done_http)) ($done_http recorded done)"
    cmp -s out/report.json ref/report.json && ok || bad "after ${delay_ms} ms: report.json differs"
    diff -rq out/flags ref/flags > /dev/null && ok || bad "after ${delay_ms} ms: the flags differ"
    leftovers=$(find . -name '*.part-*' -o -name '.*.tmp' | grep -v "^./ref" | head -n 3)
    [[ -z $leftovers ]] && ok || bad "after ${delay_ms} ms: temporary files left: $leftovers"
done

echo "$passed passed, $failed failed (seed $seed)"
((failed == 0))
