#!/usr/bin/env bash
# The shipped HTTP workflows (SPEC §8) run offline against the fixture server, and their
# outputs are checked against what the fixture serves.
# Usage: workflows_http.sh SLUICE BUILD_DIR SOURCE_DIR
set -u
sluice=$1 build=$2 src=$3
source "$src/tests/fixture/start.sh" "$build" || exit 1
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-wfhttp.XXXXXX")
trap 'fixture_stop; rm -rf "$work"' EXIT
cd "$work" || exit 1
passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $1"; fi; }
run() { "$sluice" run --quiet "$src/workflows/$1.yaml" --var "base=$FIXTURE_URL" "${@:2}" > "$1.out" 2> "$1.err"; }
py=/usr/bin/python3

# flags: the code list, 306 PNGs saved, each one what the server serves.
run flags; check '[[ $? == 0 ]]'
check '[[ $(ls out/flags/*.png | wc -l) == 306 ]]'
check 'curl -s "$FIXTURE_URL/256x192/de.png" | cmp - out/flags/de.png'
check '[[ -z $(find out -name "*.part-*") ]]'
check 'grep -q "http: 307 requests, 0 failed" flags.out'

# `make run`'s script does the same from the source tree, with latency.
check 'bash "$src/tests/fixture/run-flags.sh" "$build" --quiet > make_run.out 2>&1'
check 'grep -q "306 PNGs in out/flags/" make_run.out'

# genres: five files, each one JSON string decoded to text.
run genres; check '[[ $? == 0 ]]'
check '[[ $(ls out/genres | wc -l) == 5 ]]'
check '[[ $(cat out/genres/genre-*.txt | wc -l) == 5 && -z $(grep -L "[a-z]" out/genres/genre-*.txt) ]]'

# httpbin: 100 GETs (and 2,000 with --var n).
run httpbin; check '[[ $? == 0 ]]'
check 'grep -q "http: 100 requests, 0 failed" httpbin.out'
run httpbin --var n=2000; check '[[ $? == 0 ]]'
check 'grep -q "http: 2000 requests, 0 failed" httpbin.out'

# wiki_titles: one TSV line per page, in page order, the title matching the URL; a second
# run appends.
run wiki_titles --var n=40; check '[[ $? == 0 ]]'
run wiki_titles --var n=10; check '[[ $? == 0 ]]'
check '$py - out/wiki_titles.tsv <<PY
import sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 50, len(lines)
for k, line in enumerate(lines):
    i, url, title = line.split("\t")
    assert int(i) == (k + 1 if k < 40 else k - 39), (k, line)
    assert title == url.rsplit("/", 1)[1].replace("_", " "), line
PY'

# movies: title, year and cast from the fixture formula (README: year = 1950 + id % 75).
run movies --var ids=tt0100000,tt0100042,tt0123757; check '[[ $? == 0 ]]'
check '$py - out/movies.json <<PY
import json, sys
movies = json.load(open(sys.argv[1]))
assert [m["id"] for m in movies] == ["tt0100000", "tt0100042", "tt0123757"], movies
for m in movies:
    n = int(m["id"][2:])
    assert m["title"] == "Movie %07d" % n, m
    assert m["year"] == 1950 + n % 75, m
    assert 3 <= len(m["cast"]) <= 12 and all(" " in c for c in m["cast"]), m
PY'

# crawl: breadth-first over the fixture's link graph, with depth and page budgets; the
# same walk done independently here (urllib, a regex) must give the same pages in order.
run crawl --var start=/graph/0 --var prefix=/graph/ --var max_depth=3 --var max_pages=40
check '[[ $? == 0 ]]'
check '$py - out/crawl.json "$FIXTURE_URL" <<PY
import json, re, sys, urllib.request
pages = json.load(open(sys.argv[1]))
base = sys.argv[2]
seen, frontier, expect = {"/graph/0"}, ["/graph/0"], []
for depth in range(4):
    level = frontier[: 40 - len(expect)]
    if not level:
        break
    frontier = []
    for path in level:
        html = urllib.request.urlopen(base + path).read().decode()
        expect.append((path, depth, re.search("<title>(.*?)</title>", html).group(1)))
        for href in re.findall(r"<a href=\"([^\"]*)\"", html):
            m = re.match(r"/[^#?]*", href)
            if m and m.group(0) not in seen and m.group(0).startswith("/graph/"):
                seen.add(m.group(0))
                frontier.append(m.group(0))
got = [(p["url"][len(base):], p["depth"], p["title"]) for p in pages]
assert all(p["url"].startswith(base + "/graph/") and p["status"] == 200 for p in pages)
assert got == expect, (got[:5], expect[:5])
assert len(got) == 40, len(got)
PY'

[[ $failed == 0 ]] || for f in *.err; do echo "--- $f"; tail -5 "$f"; done
echo "$passed passed, $failed failed"
(( failed == 0 ))
