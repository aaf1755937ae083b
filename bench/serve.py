"""sluice serve with many scheduled workflows (issue 14).

Generates N workflows (default 1,000), each one small fixture request (`/get`) on
`* * * * *`, serves them all with one daemon on the real clock for M minutes (default 5:
ticks are real minutes, so this takes M real minutes), then stops it with SIGTERM and
reads the state store. Reports: daemon CPU time and peak RSS (total and per workflow),
the delay from each tick to its run's first task start (the HTTP request is submitted at
that moment; p50/p99/max), and whether every (workflow, tick) ran exactly once.

Usage: /usr/bin/python3 bench/serve.py BUILD_DIR [--workflows N] [--minutes M]
"""
import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import machine  # noqa: E402


def start_fixture(build, work):
    port_file = os.path.join(work, "port")
    proc = subprocess.Popen([os.path.join(build, "tests/fixture/fixture_server"), "--port", "0",
                             "--port-file", port_file, "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        text = open(port_file).read().strip() if os.path.exists(port_file) else ""
        if text:
            return proc, text if text.startswith("http") else "http://127.0.0.1:" + text
        time.sleep(0.1)
    raise RuntimeError("the fixture server did not start")


def proc_stats(pid):
    """(cpu seconds, rss MiB, peak rss MiB) of a live process."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = hwm = 0.0
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    return cpu, rss, hwm


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--workflows", type=int, default=1000)
    ap.add_argument("--minutes", type=int, default=5)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    work = tempfile.mkdtemp(prefix="sluice-bench-serve.")
    fixture, url = start_fixture(build, work)
    folder = os.path.join(work, "wf")
    os.makedirs(folder)
    for i in range(args.workflows):
        with open(os.path.join(folder, f"w{i:04d}.yaml"), "w") as f:
            f.write(f'name: w{i:04d}\nschedule: {{ cron: "* * * * *" }}\nsteps:\n'
                    f'  get:\n    uses: http.get\n    with: {{ url: "{url}/get?wf={i}" }}\n')
    env = dict(os.environ, SLUICE_STATE=os.path.join(work, "state"))
    env.pop("SLUICE_NOW", None)
    # Start 20 s before a minute: loading and the on-time tick's runs settle before the
    # first tick measured.
    while int(time.time()) % 60 != 40:
        time.sleep(0.2)
    started = time.time()
    log = open(os.path.join(work, "serve.log"), "w")
    daemon = subprocess.Popen([os.path.join(build, "sluice"), "serve", folder], env=env,
                              cwd=work, stdout=subprocess.DEVNULL, stderr=log)
    first_tick = (int(started) // 60 + 1) * 60
    last_tick = first_tick + 60 * (args.minutes - 1)
    end = last_tick + 20
    samples = []
    cpu_at_first = None
    while time.time() < end:
        time.sleep(1)
        stats = proc_stats(daemon.pid)
        samples.append((time.time(), *stats))
        if cpu_at_first is None and time.time() >= first_tick - 1:
            cpu_at_first = stats[0]
    cpu_end, _, hwm = proc_stats(daemon.pid)
    daemon.send_signal(signal.SIGTERM)
    status = daemon.wait(timeout=120)
    fixture.terminate()
    fixture.wait()
    db = sqlite3.connect(os.path.join(work, "state", "state.db"))
    rows = db.execute(
        "select r.workflow, r.tick, r.status, min(t.started) from runs r "
        "left join tasks t on t.run = r.seq where r.tick between ? and ? "
        "group by r.seq", (first_tick * 1000, last_tick * 1000)).fetchall()
    expected = args.workflows * args.minutes
    keys = {(w, tick) for w, tick, _, _ in rows}
    ok = sum(1 for _, _, s, _ in rows if s == "succeeded")
    delays = [(start - tick) for _, tick, _, start in rows if start is not None]
    cpu_run = cpu_end - (cpu_at_first or 0)
    print(f"machine: {machine()}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"command: /usr/bin/python3 bench/serve.py {args.build} --workflows {args.workflows}"
          f" --minutes {args.minutes}")
    print(f"daemon exit status after SIGTERM: {status}")
    print(f"ticks measured: {args.minutes} (from {time.strftime('%H:%M', time.gmtime(first_tick))}"
          f" UTC), runs expected {expected}, recorded {len(rows)}, distinct (workflow, tick) "
          f"{len(keys)}, succeeded {ok}")
    print(f"tick -> first task start: p50 {percentile(delays, 50):.0f} ms, "
          f"p99 {percentile(delays, 99):.0f} ms, max {max(delays):.0f} ms" if delays else
          "no delays measured")
    print(f"daemon CPU over the measured ticks: {cpu_run:.1f} s "
          f"({cpu_run / max(1, expected) * 1000:.1f} ms per run, "
          f"{cpu_run / args.workflows * 1000:.1f} ms per workflow for {args.minutes} minutes)")
    print(f"daemon peak RSS: {hwm:.1f} MiB ({hwm * 1024 / args.workflows:.1f} KiB per workflow)")
    print(f"work folder (kept): {work}")


if __name__ == "__main__":
    main()
