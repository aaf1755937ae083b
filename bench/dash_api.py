"""The dashboard's JSON API over a big state database (issue 15's benchmark).

Usage: /usr/bin/python3 bench/dash_api.py BUILD_DIR [--runs 100000] [--tasks 1000000]
                                                    [--requests 200]

Makes a state folder with one real `sluice run` (so the schema is the store's own), then
inserts with Python's sqlite3, in that schema: RUNS runs of 20 workflows (90 % succeeded,
8 % failed, 2 % interrupted), one of them (in the middle) with 10,000 steps in a chain
(each needing the one before), one task each, 1,000 of them failed, and 1,000 log lines;
the other runs share the rest of TASKS task rows (one step each). Starts `sluice serve
--http 127.0.0.1:0` on it and times REQUESTS requests of each endpoint below on one
keep-alive connection, from the request's send to its body's last byte. Prints a Markdown
table (p50, p99, bytes).
"""
import argparse
import http.client
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import machine  # noqa: E402

WORKFLOWS = 20
BIG_STEPS = 10000
BIG_FAILED = 1000
T0 = 1_780_000_000_000  # ms: runs start from here, a minute apart


def make_schema(sluice, work, env):
    with open(os.path.join(work, "seed.yaml"), "w") as f:
        f.write("name: seed\nsteps:\n  one:\n    uses: lua\n    with: { code: \"return 1\" }\n")
    subprocess.run([sluice, "run", "seed.yaml"], cwd=work, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def fill(db_path, runs, tasks):
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA synchronous = OFF")
    seq0 = db.execute("SELECT max(seq) FROM runs").fetchone()[0]
    big = seq0 + runs // 2
    per_run, extra = divmod(max(runs - 1, tasks - BIG_STEPS), runs - 1)
    run_rows, step_rows, task_rows = [], [], []
    for k in range(runs):
        seq = seq0 + 1 + k
        wf = "wf%02d" % (k % WORKFLOWS)
        status = "interrupted" if k % 50 == 7 else "failed" if k % 12 == 5 else "succeeded"
        started = T0 + k * 60000
        n = BIG_STEPS if seq == big else per_run + (k < extra)
        failed = BIG_FAILED if seq == big else (1 if status == "failed" else 0)
        run_rows.append((seq, "2026%07d-%04x" % (k, k % 65536), wf, wf + ".yaml", "0" * 64,
                         "cron", started, started, started + 4000, status, "{}",
                         "a task failed" if status == "failed" else None, None, n - failed,
                         failed, 0, started + 3900))
        if seq == big:
            for i in range(BIG_STEPS):
                bad = i % (BIG_STEPS // BIG_FAILED) == 0
                step_rows.append((seq, i, "s%05d" % i, "lua", "failed" if bad else "ok",
                                  started, started + 10, 1, 0 if bad else 1, 1 if bad else 0,
                                  0, 0, "h", 0, json.dumps(["s%05d" % (i - 1)] if i else [])))
                task_rows.append((seq, i, 0, "failed" if bad else "ok", 1, started,
                                  started + 10, "step 's%05d':1: boom %d" % (i, i) if bad
                                  else None, 0))
        else:
            step_rows.append((seq, 0, "fetch", "http.get", status if status != "succeeded"
                              else "ok", started, started + 4000, n, n - failed, failed, 0, 0,
                              "h", 0, "[]"))
            for i in range(n):
                bad = failed and i == 0
                task_rows.append((seq, 0, i, "failed" if bad else "ok", 1, started,
                                  started + 4000, "HTTP 503 from /get" if bad else None, 0))
        if len(task_rows) > 200000 or k == runs - 1:
            flush(db, run_rows, step_rows, task_rows)
            run_rows, step_rows, task_rows = [], [], []
    logs = [(big, i, T0, "info", "s%05d[1]" % i, "line %d" % i) for i in range(1000)]
    db.executemany("INSERT INTO logs(run, seq, time, level, task, message) VALUES(?,?,?,?,?,?)",
                   logs)
    db.executemany("INSERT OR REPLACE INTO workflows(name, path, hash, updated) VALUES(?,?,?,?)",
                   [("wf%02d" % i, "wf%02d.yaml" % i, "0" * 64, T0) for i in range(WORKFLOWS)])
    db.commit()
    counts = [db.execute("SELECT count(*) FROM " + t).fetchone()[0]
              for t in ("runs", "steps", "tasks")]
    big_id = db.execute("SELECT id FROM runs WHERE seq = ?", (big,)).fetchone()[0]
    db.close()
    return counts, big_id, seq0 + 500


def flush(db, runs, steps, tasks):
    db.executemany("INSERT INTO runs(seq, id, workflow, path, hash, trigger, tick, started,"
                   " finished, status, vars, error, pid, tasks_ok, tasks_failed, tasks_cached,"
                   " active) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", runs)
    db.executemany("INSERT INTO steps(run, idx, id, kind, status, started, finished, total, ok,"
                   " failed, skipped, retries, def_hash, cached, needs)"
                   " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", steps)
    db.executemany("INSERT INTO tasks(run, step, item, status, attempts, started, finished,"
                   " error, cached) VALUES(?,?,?,?,?,?,?,?,?)", tasks)
    db.commit()


def serve(sluice, work, env):
    log = os.path.join(work, "serve.log")
    p = subprocess.Popen([sluice, "serve", "--http", "127.0.0.1:0"], cwd=work, env=env,
                         stdout=open(log, "w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        m = re.search(r"dashboard at http://127\.0\.0\.1:(\d+)/", open(log).read())
        if m:
            return p, int(m.group(1))
        time.sleep(0.05)
    p.kill()
    raise SystemExit("serve --http did not start:\n" + open(log).read())


def bench(port, path, n):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times, size = [], 0
    for _ in range(n):
        t = time.perf_counter()
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        times.append((time.perf_counter() - t) * 1000)
        if r.status != 200:
            raise SystemExit("%s: HTTP %d %s" % (path, r.status, body[:200]))
        size = len(body)
    c.close()
    times.sort()
    return times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))], size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=100000)
    ap.add_argument("--tasks", type=int, default=1000000)
    ap.add_argument("--requests", type=int, default=200)
    a = ap.parse_args()
    sluice = os.path.join(os.path.abspath(a.build), "sluice")
    work = tempfile.mkdtemp(prefix="sluice-dash-bench.")
    env = dict(os.environ, SLUICE_STATE=os.path.join(work, "state"))
    make_schema(sluice, work, env)
    t = time.time()
    (runs, steps, tasks), big, deep = fill(os.path.join(work, "state", "state.db"), a.runs,
                                           a.tasks)
    print("filled %d runs, %d steps, %d tasks in %.1f s; database %.0f MiB" % (
        runs, steps, tasks, time.time() - t,
        os.path.getsize(os.path.join(work, "state", "state.db")) / 2**20), file=sys.stderr)
    p, port = serve(sluice, work, env)
    try:
        cases = [
            ("/api/runs?limit=50", "the newest 50"),
            ("/api/runs?limit=50&before=%d" % deep, "50 deep (before the 500th run)"),
            ("/api/runs?limit=50&workflow=wf07&before=%d" % (deep + 1000), "a workflow's, deep"),
            ("/api/runs?limit=50&status=interrupted", "a rare status"),
            ("/api/runs/" + big, "a run of 10,000 steps, 1,000 failed"),
            ("/api/runs/%s/graph" % big, "its graph (10,000 nodes, 9,999 edges)"),
            ("/api/workflows", "the workflows"),
        ]
        print("%s; %d runs, %d steps, %d task rows; %d requests each on one keep-alive"
              " connection\n" % (machine(), runs, steps, tasks, a.requests))
        print("| request | what | p50 | p99 | bytes |")
        print("|---|---|---:|---:|---:|")
        for path, what in cases:
            p50, p99, size = bench(port, path, a.requests)
            print("| `%s` | %s | %.2f ms | %.2f ms | %s |" % (
                re.sub(r"/api/runs/[0-9a-f-]{10,}", "/api/runs/BIG", path), what, p50, p99,
                format(size, ",")), flush=True)
    finally:
        p.terminate()
        p.wait(30)
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
