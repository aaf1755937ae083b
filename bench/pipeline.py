"""Fetch -> parse -> write: wiki_titles (SPEC §8) against the fixture server with a fixed
latency per response, sluice against Python asyncio + aiohttp fetching and a process pool
parsing with lxml (libxml2, as html.select uses).

Usage: /usr/bin/python3 bench/pipeline.py BUILD_DIR [--pages 1000] [--latency-ms 50]
         [--concurrency 100] [--runs 3]

Each page is /wiki/Special:Random (a redirect) then the article (25-56 KB of HTML), so a
page costs two round trips. Both sides keep `concurrency` pages in flight, parse <h1>
in worker processes as pages arrive, and write one TSV line per page in page order.
The network floor is ceil(pages / concurrency) x 2 x latency. Each side runs --runs times
(default 3, in rounds; the output file is removed before each) and the median-wall run is
reported.
Prints a Markdown table.
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import machine, measure_rounds, start_fixture  # noqa: E402

PYTHON = r"""
import asyncio, os, sys
from concurrent.futures import ProcessPoolExecutor
import aiohttp
import lxml.html
base, n, conc, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def title(html):
    h1 = lxml.html.fromstring(html).xpath("//h1[@id='firstHeading']")
    return " ".join(h1[0].text_content().split()) if h1 else ""
async def page(session, sem, pool, i):
    async with sem:
        async with session.get(base + "/wiki/Special:Random") as r:
            r.raise_for_status()
            html = await r.read()
            url = str(r.url)
    t = await asyncio.get_running_loop().run_in_executor(pool, title, html)
    return f"{i}\t{url}\t{t}\n"
async def main():
    sem = asyncio.Semaphore(conc)
    conn = aiohttp.TCPConnector(limit=conc, limit_per_host=conc)
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        async with aiohttp.ClientSession(connector=conn) as session:
            lines = await asyncio.gather(*(page(session, sem, pool, i + 1) for i in range(n)))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "a") as f:
        f.write("".join(lines))
asyncio.run(main())
"""


def workflow(src, conc):
    """wiki_titles.yaml with the benchmark's concurrency instead of its polite limits."""
    text = open(os.path.join(src, "workflows", "wiki_titles.yaml")).read()
    return text.replace("http: { concurrency: 32, per_host: 8 }",
                        f"http: {{ concurrency: {conc}, per_host: {conc} }}")


def remove(path):
    if os.path.exists(path):
        os.remove(path)


def check(path, pages):
    lines = open(path).read().splitlines()
    assert len(lines) == pages, (path, len(lines))
    for k, line in enumerate(lines):
        i, url, title = line.split("\t")
        assert int(i) == k + 1 and title == url.rsplit("/", 1)[1].replace("_", " "), line


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3, help="runs per side (median reported)")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc, base = start_fixture(build, args.latency_ms)
    work = tempfile.mkdtemp(prefix="sluice-bench-pipeline.")
    try:
        wf = os.path.join(work, "wiki_titles.yaml")
        with open(wf, "w") as f:
            f.write(workflow(src, args.concurrency))
        floor = math.ceil(args.pages / args.concurrency) * 2 * args.latency_ms / 1000
        print(f"Machine: {machine()}; {args.pages} pages, {args.concurrency} in flight, "
              f"fixture latency {args.latency_ms} ms; date {time.strftime('%Y-%m-%d')}\n")
        print(f"### wiki_titles: {args.pages} pages (network floor {floor:.2f} s)\n")
        print("| peer | wall | CPU | peak RSS | wall / sluice | wall / floor |")
        print("|---|---|---|---|---|---|")
        sl_out = os.path.join(work, "out", "sluice.tsv")
        py_out = os.path.join(work, "out", "python.tsv")
        timed = measure_rounds([
            ("sluice", [os.path.join(build, "sluice"), "run", "--quiet", wf, "--var",
                        f"base={base}", "--var", f"n={args.pages}", "--var", f"out={sl_out}"],
             lambda: remove(sl_out)),
            ("python", ["/usr/bin/python3", "-c", PYTHON, base, str(args.pages),
                        str(args.concurrency), py_out], lambda: remove(py_out)),
        ], args.runs, cwd=work)
        ref, py = timed["sluice"], timed["python"]
        check(sl_out, args.pages)
        check(py_out, args.pages)
        for name, (wall, cpu, rss) in [("sluice", ref), ("Python asyncio + aiohttp + "
                                                        "ProcessPoolExecutor (lxml)", py)]:
            print(f"| {name} | {wall:.2f} s | {cpu:.2f} s | {rss:.0f} MiB | "
                  f"{wall / ref[0]:.2f}x | {wall / floor:.2f}x |")
        print("\nCPU (GNU time) includes reaped child processes, so both sides' workers; "
              "peak RSS is the largest single process.")
    finally:
        proc.terminate()
        proc.wait()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
