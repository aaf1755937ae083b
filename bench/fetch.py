"""HTTP on the loop: sluice against Python peers, all fetching from the fixture server
(tests/fixture) with a fixed latency per response, modelling a real network.

Usage: /usr/bin/python3 bench/fetch.py BUILD_DIR [--latency-ms 50] [--quick]

Shapes (each peer at the same concurrency):
  flags      the code list, then 306 PNGs saved to files, 32 in flight (flags.yaml's per_host)
  httpbin    100 GETs of /ip, 100 in flight
  httpbin    10,000 GETs of /ip, 100 in flight
  inflight   10,000 GETs of /ip, all 10,000 in flight at once (sluice and aiohttp only)
Peers: Python asyncio + aiohttp, a ThreadPoolExecutor over http.client (one keep-alive
connection per thread), and a plain sequential loop (skipped where it would take minutes).
The network floor is ceil(N / concurrency) x latency (plus one round trip for flags' list).
Prints Markdown tables.
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import machine, measure, start_fixture  # noqa: E402

AIOHTTP = r"""
import asyncio, json, os, ssl, sys
import aiohttp
base, mode, n, conc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
# an optional CA file (bench/tls.py: a private CA) for https:// bases
ca = sys.argv[5] if len(sys.argv) > 5 else None
tls = ssl.create_default_context(cafile=ca) if ca and base.startswith("https:") else None
async def fetch(session, sem, url, path=None):
    async with sem:
        async with session.get(url, ssl=tls) as r:
            r.raise_for_status()
            data = await r.read()
    if path:
        with open(path, "wb") as f:
            f.write(data)
    return len(data)
async def main():
    sem = asyncio.Semaphore(conc)
    conn = aiohttp.TCPConnector(limit=conc, limit_per_host=conc)
    async with aiohttp.ClientSession(connector=conn) as session:
        if mode == "flags":
            async with session.get(base + "/en/codes.json", ssl=tls) as r:
                codes = json.loads(await r.text())
            os.makedirs("out/py-flags", exist_ok=True)
            sizes = await asyncio.gather(*(fetch(session, sem, f"{base}/256x192/{c}.png",
                                                 f"out/py-flags/{c}.png") for c in sorted(codes)))
        else:
            sizes = await asyncio.gather(*(fetch(session, sem, f"{base}/ip?i={i}")
                                           for i in range(n)))
    assert all(s > 0 for s in sizes)
asyncio.run(main())
"""

THREADS = r"""
import http.client, json, os, sys, threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit
base, mode, n, conc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
host = urlsplit(base).netloc
local = threading.local()
def get(path):
    conn = getattr(local, "conn", None)
    if conn is None:
        conn = local.conn = http.client.HTTPConnection(host, timeout=60)
    conn.request("GET", path)
    r = conn.getresponse()
    data = r.read()
    assert r.status == 200, r.status
    return data
def fetch(args):
    path, out = args
    data = get(path)
    if out:
        with open(out, "wb") as f:
            f.write(data)
    return len(data)
if mode == "flags":
    codes = json.loads(get("/en/codes.json"))
    os.makedirs("out/py-flags", exist_ok=True)
    jobs = [(f"/256x192/{c}.png", f"out/py-flags/{c}.png") for c in sorted(codes)]
else:
    jobs = [(f"/ip?i={i}", None) for i in range(n)]
if conc == 1:
    sizes = [fetch(j) for j in jobs]
else:
    with ThreadPoolExecutor(conc) as pool:
        sizes = list(pool.map(fetch, jobs))
assert all(s > 0 for s in sizes)
"""

HTTPBIN = """
name: bench_httpbin
vars: { base: "", n: 100 }
limits:
  http: { concurrency: %d, per_host: %d }
steps:
  get:
    uses: http.get
    foreach: "${{ range(1, vars.n) }}"
    with: { url: "${{ vars.base }}/ip?i=${{ item }}" }
"""


def row(name, wall, cpu, rss, ref_wall, floor):
    ratio = wall / ref_wall if ref_wall else float("nan")
    return (f"| {name} | {wall:.2f} s | {cpu:.2f} s | {rss:.0f} MiB | {ratio:.2f}x | "
            f"{wall / floor:.2f}x |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--quick", action="store_true", help="skip the sequential peers")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    sluice = os.path.join(build, "sluice")
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    py = "/usr/bin/python3"
    lat = args.latency_ms / 1000
    proc, base = start_fixture(build, args.latency_ms)
    work = tempfile.mkdtemp(prefix="sluice-bench-http.")
    try:
        print(f"Machine: {machine()}; fixture latency {args.latency_ms} ms; "
              f"date {time.strftime('%Y-%m-%d')}\n")
        shapes = [
            ("flags: 306 PNGs to files, 32 in flight", "flags", 306, 32,
             (1 + math.ceil(306 / 32)) * lat),
            ("httpbin: 100 GETs, 100 in flight", "httpbin", 100, 100, lat),
            ("httpbin: 10,000 GETs, 100 in flight", "httpbin", 10000, 100,
             math.ceil(10000 / 100) * lat),
            ("10,000 GETs all in flight at once", "httpbin", 10000, 10000, lat),
        ]
        for title, mode, n, conc, floor in shapes:
            print(f"### {title} (network floor {floor:.2f} s)\n")
            print("| peer | wall | CPU | peak RSS | wall / sluice | wall / floor |")
            print("|---|---|---|---|---|---|")
            if mode == "flags":
                argv = [sluice, "run", "--quiet", os.path.join(src, "workflows", "flags.yaml"),
                        "--var", f"base={base}", "--var", "out=out/flags"]
            else:
                wf = os.path.join(work, f"httpbin_{conc}.yaml")
                with open(wf, "w") as f:
                    f.write(HTTPBIN % (conc, conc))
                argv = [sluice, "run", "--quiet", wf, "--var", f"base={base}", "--var", f"n={n}"]
            ref = measure(argv, cwd=work)
            print(row("sluice", *ref, ref[0], floor))
            peers = [("Python asyncio + aiohttp", [py, "-c", AIOHTTP, base, mode, str(n),
                                                    str(conc)])]
            if conc <= 100:
                peers.append((f"Python ThreadPoolExecutor ({conc} threads)",
                              [py, "-c", THREADS, base, mode, str(n), str(conc)]))
            if not args.quick and n * lat <= 60:
                peers.append(("Python sequential", [py, "-c", THREADS, base, mode, str(n), "1"]))
            for name, cmd in peers:
                r = measure(cmd, cwd=work)
                print(row(name, *r, ref[0], floor))
            print()
    finally:
        proc.terminate()
        proc.wait()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
