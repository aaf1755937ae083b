"""The crawl of issue 13: sluice.crawl (lua/sluice/crawl.lua) against a Python asyncio +
aiohttp BFS of the same graph, both at the same concurrency, against the fixture server's
relative-link graph (tests/fixture, /rel/SIZE/DEGREE/) with a fixed latency per response.

Usage: /usr/bin/python3 bench/crawl.py BUILD_DIR [--latency-ms 50] [--size 2000]
                                       [--degree 24] [--depth 3] [--concurrency 100] [--runs 3]

Both resolve every href against its page's URL, drop fragments, keep same-prefix http
links and dedupe; both must find the same pages at the same depths (checked against the
graph's own adjacency, graph.json). The Python peer is the usual asyncio shape: one level
at a time, `asyncio.gather` under a semaphore, links by regex, urljoin.

A third row fetches the same pages with sluice.map over their URLs known in advance (no
parsing, no levels): what the HTTP client itself takes, the floor of any crawler on it.

The floor is one round trip per wave of each level (ceil(level / concurrency) x latency,
summed over the levels), plus one round trip for the first connections; a crawler that
starts the next level's known pages while a level's last pages arrive can go under it.
Prints a Markdown table.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import machine, measure_rounds, start_fixture  # noqa: E402

AIOHTTP = r"""
import asyncio, json, re, sys
from urllib.parse import urljoin, urldefrag
import aiohttp
start, prefix, max_depth, conc, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
HREF = re.compile(r'<a\s[^>]*href="([^"]*)"')
async def fetch(session, sem, url):
    async with sem:
        async with session.get(url) as r:
            r.raise_for_status()
            return await r.text()
async def main():
    sem = asyncio.Semaphore(conc)
    conn = aiohttp.TCPConnector(limit=conc, limit_per_host=conc)
    depth, level = {start: 0}, [start]
    async with aiohttp.ClientSession(connector=conn) as session:
        for d in range(max_depth + 1):
            if not level:
                break
            bodies = await asyncio.gather(*(fetch(session, sem, u) for u in level))
            if d == max_depth:
                break
            nxt = []
            for url, body in zip(level, bodies):
                for href in HREF.findall(body):
                    link = urldefrag(urljoin(url, href))[0]
                    if link.startswith(prefix) and link not in depth:
                        depth[link] = d + 1
                        nxt.append(link)
            level = nxt
    json.dump(depth, open(out, "w"))
asyncio.run(main())
"""

SLUICE = """
limits:
  http: {{ concurrency: {conc}, per_host: {conc} }}
steps:
  crawl:
    uses: lua
    with:
      code: |
        local crawl = require "sluice.crawl"
        local pages = crawl {{ start = "{start}", prefix = "{prefix}", max_depth = {depth},
                               max_pages = 1000000, concurrency = {conc} }}
        local depth = {{}}
        for _, p in ipairs(pages) do
          assert(p.status == 200, p.error)
          depth[p.url] = p.depth
        end
        sluice.fs.write("{out}", depth)
        return #pages
"""


RAW = """
limits:
  http: {{ concurrency: {conc}, per_host: {conc} }}
steps:
  fetch:
    uses: lua
    with:
      code: |
        local urls = sluice.json.decode(sluice.fs.read("{urls}"))
        sluice.map(urls, function(u) return sluice.http.get(u).status end, {{ concurrency = {conc} }})
        return #urls
"""


def expected(base, graph, max_depth):
    g = json.load(urllib.request.urlopen(base + graph + "/graph.json"))
    depth = {0: 0}
    order = [0]
    for n in order:
        if depth[n] < max_depth:
            for m in g["links"][n]:
                if m not in depth:
                    depth[m] = depth[n] + 1
                    order.append(m)
    url = lambda n: "%s%s/d%d/p%d.html" % (base, graph, n // g["folder"], n)
    return {url(n): d for n, d in depth.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--degree", type=int, default=24)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    sluice = os.path.join(args.build, "sluice")
    fixture, base = start_fixture(args.build, args.latency_ms)
    work = tempfile.mkdtemp(prefix="sluice-bench-crawl.")
    try:
        graph = "/rel/%d/%d" % (args.size, args.degree)
        start, prefix = base + graph + "/d0/p0.html", base + graph + "/"
        want = expected(base, graph, args.depth)
        levels = [sum(1 for d in want.values() if d == k) for k in range(args.depth + 1)]
        wf = os.path.join(work, "crawl.yaml")
        with open(wf, "w") as f:
            f.write(SLUICE.format(conc=args.concurrency, start=start, prefix=prefix,
                                  depth=args.depth, out=os.path.join(work, "sluice.json")))
        raw = os.path.join(work, "raw.yaml")
        with open(os.path.join(work, "urls.json"), "w") as f:
            json.dump(sorted(want), f)
        with open(raw, "w") as f:
            f.write(RAW.format(conc=args.concurrency, urls=os.path.join(work, "urls.json")))
        py = os.path.join(work, "aiohttp_bfs.py")
        with open(py, "w") as f:
            f.write(AIOHTTP)
        env = dict(os.environ, SLUICE_STATE="none")
        contenders = [
            ("sluice.crawl", [sluice, "run", "--quiet", wf], None),
            ("asyncio + aiohttp BFS", ["/usr/bin/python3", py, start, prefix, str(args.depth),
                                       str(args.concurrency), os.path.join(work, "py.json")],
             None),
            ("sluice.map of the same URLs, known upfront", [sluice, "run", "--quiet", raw],
             None),
        ]
        results = measure_rounds(contenders, args.runs, env=env, cwd=work)
        for name in ("sluice.json", "py.json"):
            got = json.load(open(os.path.join(work, name)))
            assert got == want, (name, len(got), len(want))
        waves = sum(math.ceil(n / args.concurrency) for n in levels)
        floor = (waves + 1) * args.latency_ms / 1000.0
        py_wall = results["asyncio + aiohttp BFS"][0]
        print(f"Machine: {machine()}; graph {graph}: {len(want)} pages to depth {args.depth}, "
              f"levels {levels}; latency {args.latency_ms} ms; concurrency {args.concurrency}; "
              f"median of {args.runs} runs.\n")
        print(f"Floor: {waves} waves + 1 round trip for the connections = {floor:.3f} s\n")
        print("| crawler | wall | CPU | peak RSS | vs aiohttp | vs floor |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, (wall, cpu, rss) in results.items():
            print(f"| {name} | {wall:.3f} s | {cpu:.2f} s | {rss:.0f} MiB | "
                  f"{wall / py_wall:.2f}x | {wall / floor:.2f}x |")
    finally:
        fixture.terminate()
        fixture.wait()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
