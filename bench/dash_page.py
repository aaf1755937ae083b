"""The dashboard's pages under load (issue 15): a run of 10,000 steps in headless Chromium,
and the runs page with 100,000 runs recorded.

Generates a workflow of 10,000 `lua` steps in 100 layers of 100 (each step needs two of
the layer before), runs it, adds 100,000 more runs to the state database (copies of its
run row under 10 workflow names, half failed: SQL, in one transaction), and serves the
state with `sluice serve --http 127.0.0.1:0`. Then:
- the run page (/runs/ID) loaded in Debian's headless Chromium (tests/dash/pages_cdp.py)
  N times: navigation to the load event (DevTools Page.loadEventFired, wall clock), and to
  the first frame painted after it (two requestAnimationFrame turns, performance.now());
  and its size;
- for scale, a small page (the runs page of 5 runs) loaded the same way;
- the runs page (/?limit=50) and a filtered one (/?workflow=w3&status=failed): time to
  first byte and total over M plain HTTP requests (p50, max).

Usage: /usr/bin/python3 bench/dash_page.py BUILD_DIR [--loads N] [--requests M]
"""
import argparse
import http.client
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, "..", "tests", "dash"))
from harness import machine  # noqa: E402
import pages_cdp  # noqa: E402


def big_workflow(path, layers=100, width=100):
    lines = ["name: big", "steps:"]
    for layer in range(layers):
        for k in range(width):
            lines += ["  s%d_%d:" % (layer, k), "    uses: lua"]
            if layer:
                lines.append("    needs: [s%d_%d, s%d_%d]" % (layer - 1, k, layer - 1,
                                                            (k + 1) % width))
            lines.append('    with: { code: "return 1" }')
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def add_runs(db, count):
    con = sqlite3.connect(db)
    with con:
        con.execute("""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
            INSERT INTO runs(id, workflow, path, hash, trigger, tick, started, finished,
                             status, vars, error, pid, resumed_from, tasks_ok, tasks_failed,
                             tasks_cached, active)
            SELECT printf('20250101T000000-%06d', i), 'w' || (i % 10), r.path, r.hash,
                   'manual', 0, r.started - (? - i) * 1000, r.finished - (? - i) * 1000,
                   CASE i % 2 WHEN 0 THEN 'succeeded' ELSE 'failed' END, r.vars,
                   CASE i % 2 WHEN 0 THEN NULL ELSE 'task failed' END, NULL, NULL, 90, i % 2,
                   0, 0
            FROM n, (SELECT * FROM runs ORDER BY seq LIMIT 1) r""", (count, count, count))
    total = con.execute("SELECT count(*) FROM runs").fetchone()[0]
    con.close()
    return total


def timed_get(port, path):
    """(ms to first byte, ms total, bytes) of one GET on a new connection."""
    start = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    first = r.read(1)
    ttfb = (time.perf_counter() - start) * 1000
    body = first + r.read()
    total = (time.perf_counter() - start) * 1000
    c.close()
    if r.status != 200:
        raise RuntimeError("%s: %d" % (path, r.status))
    return ttfb, total, len(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--requests", type=int, default=50)
    args = ap.parse_args()
    sluice = os.path.join(os.path.abspath(args.build), "sluice")
    work = tempfile.mkdtemp(prefix="sluice-dash-page.")
    env = dict(os.environ, SLUICE_STATE=os.path.join(work, ".sluice"))
    serve = browser = None
    try:
        big_workflow(os.path.join(work, "big.yaml"))
        t = time.time()
        subprocess.run([sluice, "run", "--quiet", "big.yaml"], cwd=work, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        run_s = time.time() - t
        run_id = subprocess.run([sluice, "runs", "--limit", "1"], cwd=work, env=env,
                                check=True, capture_output=True, text=True
                                ).stdout.splitlines()[1].split()[0]
        total_runs = add_runs(os.path.join(work, ".sluice", "state.db"), 100000)
        log = open(os.path.join(work, "serve.log"), "w+")
        serve = subprocess.Popen([sluice, "serve", "--http", "127.0.0.1:0"], cwd=work, env=env,
                                 stdout=log, stderr=subprocess.STDOUT)
        port = None
        for _ in range(200):
            log.seek(0)
            m = re.search(r"dashboard at http://127\.0\.0\.1:(\d+)/", log.read())
            if m:
                port = int(m.group(1))
                break
            time.sleep(0.05)
        if port is None:
            raise RuntimeError("serve --http did not start")
        print("machine: %s" % machine())
        print("10,000-step run recorded in %.1f s; %d runs in the database" % (run_s, total_runs))

        browser = pages_cdp.Browser()
        url = "http://127.0.0.1:%d/runs/%s" % (port, run_id)
        browser.goto(url)  # warm: the store opened, the binary's pages in the cache
        loads, frames = [], []
        for _ in range(args.loads):
            loads.append(browser.goto(url))
            frames.append(browser.eval(
                "new Promise(r => requestAnimationFrame(() => requestAnimationFrame("
                "() => r(performance.now()))))"))
        nodes = browser.eval("document.querySelectorAll('svg.graph g.node').length")
        rows = browser.eval("document.querySelectorAll('table.steps tr[data-step]').length")
        small = "http://127.0.0.1:%d/?limit=5" % port
        browser.goto(small)
        baseline = statistics.median([browser.goto(small) for _ in range(args.loads)])
        _, _, size = timed_get(port, "/runs/" + run_id)
        print("run page: %d bytes, %d graph nodes drawn, %d step rows" % (size, nodes, rows))
        print("  navigation -> load event: p50 %.0f ms, max %.0f ms (%d loads)"
              % (statistics.median(loads), max(loads), len(loads)))
        print("  navigation -> first frame after load: p50 %.0f ms, max %.0f ms"
              % (statistics.median(frames), max(frames)))
        print("  for scale: the runs page of 5 runs loads in p50 %.0f ms on this machine now"
              % baseline)
        print("  load average after: %s" % open("/proc/loadavg").read().split()[:3])
        for path in ("/?limit=50", "/?workflow=w3&status=failed&limit=50",
                     "/?before=50000&limit=50"):
            timed_get(port, path)
            samples = [timed_get(port, path) for _ in range(args.requests)]
            ttfb = [s[0] for s in samples]
            tot = [s[1] for s in samples]
            print("runs page %s: %d bytes; first byte p50 %.1f ms, max %.1f ms; total p50 "
                  "%.1f ms, max %.1f ms (%d requests)"
                  % (path, samples[0][2], statistics.median(ttfb), max(ttfb),
                     statistics.median(tot), max(tot), len(samples)))
    finally:
        if browser:
            browser.close()
        if serve:
            serve.terminate()
            serve.wait(30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
