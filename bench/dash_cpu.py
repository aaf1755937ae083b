"""What the dashboard costs a busy daemon (issue 15): `sluice serve` with N scheduled
workflows (default 100, generated: one small fixture request each, every minute) for M
simulated minutes (default 3; SLUICE_NOW starts 3 s before a minute and runs at the real
pace, so this takes M real minutes per case), twice: without --http, and with --http and a
client that scrapes /metrics and polls /api/runs?limit=50 once a second each. Reports the
daemon's CPU seconds (user + system, from /proc/PID/stat 5 s before the end of the last
minute, when its tick's runs are done; then SIGTERM) both ways, the difference, the runs
recorded, and the scrapes' latency and size.

Usage: /usr/bin/python3 bench/dash_cpu.py BUILD_DIR [--workflows N] [--minutes M]
"""
import argparse
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import machine  # noqa: E402
from serve import percentile, proc_stats, start_fixture  # noqa: E402


def write_workflows(folder, url, n):
    os.makedirs(folder)
    for i in range(n):
        with open(os.path.join(folder, f"wf{i:03d}.yaml"), "w") as f:
            f.write(f"name: wf{i:03d}\nschedule: {{ cron: \"* * * * *\" }}\nsteps:\n"
                    f"  get:\n    uses: http.get\n    with: {{ url: \"{url}/get?wf={i}\" }}\n")


class Poller(threading.Thread):
    """GETs each path once a second until stopped; keeps (path, seconds, bytes, status)."""

    def __init__(self, base, paths):
        super().__init__(daemon=True)
        self.base, self.paths, self.samples = base, paths, []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            began = time.monotonic()
            for path in self.paths:
                t0 = time.monotonic()
                try:
                    with urllib.request.urlopen(self.base + path, timeout=5) as r:
                        size, status = len(r.read()), r.status
                except urllib.error.HTTPError as e:
                    size, status = 0, e.code
                except OSError:
                    size, status = 0, 0
                self.samples.append((path, time.monotonic() - t0, size, status))
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - began)))


def serve_case(sluice, work, name, minutes, http):
    state = os.path.join(work, name, "state")
    os.makedirs(state)
    real = time.time()
    base_now = (int(real) // 60 + 1) * 60 - 3
    env = dict(os.environ, SLUICE_STATE=state,
               SLUICE_NOW=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base_now)))
    argv = [sluice, "serve", os.path.join(work, "workflows")]
    if http:
        argv[2:2] = ["--http", "127.0.0.1:0"]
    log_path = os.path.join(work, name, "serve.log")
    with open(log_path, "w") as log:
        daemon = subprocess.Popen(argv, env=env, stdout=log, stderr=log)
    poller = None
    if http:
        base = None
        for _ in range(100):
            m = re.search(r"dashboard at (http://[^/\s]+)/", open(log_path).read())
            if m:
                base = m.group(1)
                break
            time.sleep(0.1)
        if base is None:
            daemon.kill()
            raise RuntimeError("no dashboard address in the log")
        poller = Poller(base, ["/metrics", "/api/runs?limit=50"])
        poller.start()
    # the same window both ways: until 5 s before the end of the last simulated minute,
    # so that the last tick's runs are done in both cases
    time.sleep(max(0.0, real + minutes * 60 - 5 - time.time()))
    cpu, rss, hwm = proc_stats(daemon.pid)
    if poller:
        poller.stop.set()
        poller.join()
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(timeout=60)
    db = sqlite3.connect(os.path.join(state, "state.db"))
    runs = db.execute("select count(*) from runs where status = 'succeeded'").fetchone()[0]
    return {"cpu": cpu, "hwm": hwm, "runs": runs, "samples": poller.samples if poller else []}


def scrape_row(samples, path):
    got = [s for s in samples if s[0] == path]
    ok = [s for s in got if s[3] == 200]
    if not ok:
        codes = sorted({s[3] for s in got})
        return f"| {path} | {len(got)} requests, none answered 200 (status {codes}) | | |"
    times = [s[1] * 1000 for s in ok]
    return (f"| {path} | {len(ok)} of {len(got)} | {percentile(times, 50):.1f} / "
            f"{max(times):.1f} ms | {sum(s[2] for s in ok) / len(ok) / 1024:.1f} KiB |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--workflows", type=int, default=100)
    ap.add_argument("--minutes", type=float, default=3)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    sluice = os.path.join(build, "sluice")
    work = tempfile.mkdtemp(prefix="sluice-dashcpu.")
    fixture, url = start_fixture(build, work)
    try:
        write_workflows(os.path.join(work, "workflows"), url, args.workflows)
        plain = serve_case(sluice, work, "plain", args.minutes, False)
        dash = serve_case(sluice, work, "dash", args.minutes, True)
    finally:
        fixture.kill()
    extra = dash["cpu"] - plain["cpu"]
    print(machine())
    print(f"{args.workflows} workflows, {args.minutes:g} simulated minutes each\n")
    print("| case | daemon CPU | runs succeeded | peak RSS |")
    print("|---|---:|---:|---:|")
    print(f"| serve | {plain['cpu']:.2f} s | {plain['runs']} | {plain['hwm']:.1f} MiB |")
    print(f"| serve --http, scraped | {dash['cpu']:.2f} s | {dash['runs']} | "
          f"{dash['hwm']:.1f} MiB |")
    print(f"\ndashboard: {extra:+.2f} s of CPU = {100 * extra / plain['cpu']:+.1f} % "
          f"of the daemon's, {100 * extra / (args.minutes * 60):+.2f} % of one core\n")
    print("| path | answered 200 | latency p50 / max | size |")
    print("|---|---:|---:|---:|")
    for path in ("/metrics", "/api/runs?limit=50"):
        print(scrape_row(dash["samples"], path))


if __name__ == "__main__":
    main()
