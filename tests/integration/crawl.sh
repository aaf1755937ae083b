#!/usr/bin/env bash
# workflows/crawl.yaml (on lua/sluice/crawl.lua) over the fixture's relative-link graph
# (/rel/SIZE/DEGREE/..., tests/fixture/README.md): pages link with `p7.html`, `./p7.html#x`,
# `../d3/p7.html`, `/rel/...` and `../../K/...`, next to `#top`, mailto:, javascript: and
# off-site links. The fixture serves the graph's adjacency (graph.json); a BFS of it here,
# one page at a time in link order, must give exactly the crawl's pages, depths and order,
# with a depth budget, with no budget, and with a page budget.
# Usage: crawl.sh SLUICE BUILD_DIR SOURCE_DIR
set -u
sluice=$1 build=$2 src=$3
source "$src/tests/fixture/start.sh" "$build" || exit 1
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-crawl.XXXXXX")
trap 'fixture_stop; rm -rf "$work"' EXIT
cd "$work" || exit 1
export SLUICE_STATE=none
passed=0 failed=0

# crawl NAME SIZE DEGREE MAX_DEPTH MAX_PAGES CONCURRENCY: runs the workflow, then the BFS.
crawl() {
  local name=$1 size=$2 degree=$3 depth=$4 pages=$5 conc=$6
  local graph="/rel/$size/$degree"
  if ! "$sluice" run --quiet "$src/workflows/crawl.yaml" --var "base=$FIXTURE_URL" \
      --var "start=$graph/d0/p0.html" --var "prefix=$graph/" --var "max_depth=$depth" \
      --var "max_pages=$pages" --var "concurrency=$conc" --var "out=$name.json" \
      > "$name.out" 2>&1; then
    failed=$((failed + 1)); echo "FAIL: $name: the crawl failed"; tail -5 "$name.out"; return
  fi
  if /usr/bin/python3 - "$FIXTURE_URL" "$graph" "$depth" "$pages" "$name.json" <<'PY'
import json, sys, urllib.request
base, graph, max_depth, max_pages, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
g = json.load(urllib.request.urlopen(base + graph + "/graph.json"))
def url(n):
    return "%s%s/d%d/p%d.html" % (base, graph, n // g["folder"], n)
order, depth = [0], {0: 0}
for n in order:                      # the queue grows while it is walked
    if depth[n] == max_depth:
        continue
    for m in g["links"][n]:
        if m not in depth and len(order) < max_pages:
            depth[m] = depth[n] + 1
            order.append(m)
expect = [(url(n), depth[n], "Rel %d" % n) for n in order]
pages = json.load(open(out))
got = [(p["url"], p["depth"], p["title"]) for p in pages]
assert all(p["status"] == 200 and "error" not in p for p in pages), pages[:3]
assert got == expect, ("first difference", next(((a, b) for a, b in zip(got, expect) if a != b), None), len(got), len(expect))
print(len(got), "pages, depths", sorted(set(d for _, d, _ in got)))
PY
  then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $name"; fi
}

crawl depth3 300 4 3 10000 16        # a depth budget
crawl whole 300 4 1000 10000 64      # every page reachable from p0
crawl budget 300 4 1000 37 8         # a page budget: the first 37 pages of the BFS
crawl wide 2000 13 2 10000 100       # many pages per level, high concurrency
echo "$passed passed, $failed failed"
(( failed == 0 ))
