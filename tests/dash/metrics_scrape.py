"""tests/dash/metrics_scrape.py: /metrics of a real `sluice serve --http` counts the runs it
made. Three workflows scheduled every minute against the fixture server, with SLUICE_NOW
3 s before a minute: each runs its on-time tick at once and the next minute's 3 s later.
`ok` fetches 100 bytes, runs Lua over three items and a CPU step in the pool (two runs);
`bad` gets an HTTP 500, so its step fails and the step after it never runs (two runs);
`slow`'s request takes 7 s, so its second tick finds it running and is skipped (forbid:
one run). The scrape must parse as strict Prometheus text (metrics_prom.py) and its
counters match: runs started and finished by status, ticks skipped, tasks by kind and
outcome, HTTP transfers by class and bytes, the schedule lag, the next tick (what `sluice
next` says), the pool's workers, build and process metrics.

Usage: metrics_scrape.py SLUICE BUILD_DIR SOURCE_DIR
"""
import calendar
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import metrics_prom  # noqa: E402

failures = []


def check(name, cond):
    if not cond:
        failures.append(name)
        print(f"FAIL: {name}")


def start_fixture(build, work):
    port_file = os.path.join(work, "fixture.url")
    proc = subprocess.Popen([os.path.join(build, "tests/fixture/fixture_server"), "--port", "0",
                             "--port-file", port_file, "--quiet", "--exit-with-parent"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.exists(port_file) and os.path.getsize(port_file) > 0:
            with open(port_file) as f:
                return proc, f.readline().strip()
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("the fixture server did not start")


def write_workflows(work, url):
    with open(os.path.join(work, "ok.yaml"), "w") as f:
        f.write(f"""name: ok
schedule: {{ cron: "* * * * *" }}
steps:
  get:
    uses: http.get
    with: {{ url: "{url}/bytes/100" }}
  words:
    uses: lua
    with: {{ code: "return {{'a', 'bb', 'ccc'}}" }}
  lengths:
    uses: lua
    foreach: "${{{{ steps.words }}}}"
    with: {{ code: "return #item" }}
  primes:
    uses: primes.sieve
    with: {{ limit: 1000 }}
""")
    with open(os.path.join(work, "slow.yaml"), "w") as f:
        f.write(f"""name: slow
schedule: {{ cron: "* * * * *", concurrency: forbid }}
steps:
  get:
    uses: http.get
    with: {{ url: "{url}/drip?bytes=8&interval_ms=1000" }}
""")
    with open(os.path.join(work, "bad.yaml"), "w") as f:
        f.write(f"""name: bad
schedule: {{ cron: "* * * * *" }}
steps:
  get:
    uses: http.get
    with: {{ url: "{url}/status/500" }}
  after:
    uses: lua
    needs: [get]
    with: {{ code: "return 1" }}
""")


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def dashboard_url(log_path, proc, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        with open(log_path, errors="replace") as f:
            m = re.search(r"dashboard at (http://[^/\s]+)/", f.read())
        if m:
            return m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    return None


def scrape(base):
    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
        return r.status, dict(r.headers), r.read().decode("utf-8")


def total(families, name, **labels):
    f = families.get(name)
    return None if f is None else f.get(**labels)


def wait_runs(base, want, seconds=40):
    """Scrapes until `want` runs finished (or the time is up); returns the last parse."""
    deadline = time.time() + seconds
    families = {}
    while time.time() < deadline:
        families = metrics_prom.parse(scrape(base)[2])
        f = families.get("sluice_runs_finished_total")
        done = sum(v for _, _, v in f.samples) if f else 0
        if done >= want:
            time.sleep(0.5)  # the reap and the last counts settle
            return metrics_prom.parse(scrape(base)[2])
        time.sleep(0.25)
    return families


def check_counts(fam, work, sluice, now_of_daemon):
    check("runs started ok", total(fam, "sluice_runs_started_total", workflow="ok",
                                   trigger="cron") == 2)
    check("runs started bad", total(fam, "sluice_runs_started_total", workflow="bad",
                                    trigger="cron") == 2)
    check("ok succeeded twice", total(fam, "sluice_runs_finished_total", workflow="ok",
                                      status="succeeded") == 2)
    check("bad failed twice", total(fam, "sluice_runs_finished_total", workflow="bad",
                                    status="failed") == 2)
    check("slow started once", total(fam, "sluice_runs_started_total", workflow="slow",
                                     trigger="cron") == 1)
    check("slow succeeded once", total(fam, "sluice_runs_finished_total", workflow="slow",
                                       status="succeeded") == 1)
    check("no other run status", len(fam["sluice_runs_finished_total"].samples) == 3)
    check("slow's second tick skipped: forbid",
          total(fam, "sluice_ticks_skipped_total", workflow="slow", reason="forbid") == 1)
    check("no other skip", len(fam["sluice_ticks_skipped_total"].samples) == 1)
    tasks = fam["sluice_tasks_total"]
    check("http.get ok: 2 + 1", tasks.get(kind="http.get", outcome="ok") == 3)
    check("primes.sieve ok: 2", tasks.get(kind="primes.sieve", outcome="ok") == 2)
    check("http.get failed: 2", tasks.get(kind="http.get", outcome="failed") == 2)
    check("lua ok: 2 x (1 + 3) items", tasks.get(kind="lua", outcome="ok") == 8)
    check("no lua failed", tasks.get(kind="lua", outcome="failed") == 0)
    dur = fam["sluice_task_duration_seconds"]
    check("durations of http.get: 5", dur.get("_count", kind="http.get") == 5)
    check("slow's request took over 3 s",
          dur.get("_bucket", kind="http.get", le="2.5") == 4)
    check("durations of lua: 8", dur.get("_count", kind="lua") == 8)
    req = fam["sluice_http_requests_total"]
    check("2xx transfers: 3", req.get(code_class="2xx") == 3)
    check("5xx transfers: 2", req.get(code_class="5xx") == 2)
    check("no transport error", req.get(code_class="error") == 0)
    body_500 = len('{"status": 500}\n')
    got = total(fam, "sluice_http_response_bytes_total")
    check(f"body bytes: 2 x 100 + 2 x {body_500} + 8 (got {got})",
          got == 200 + 2 * body_500 + 8)
    lag = fam["sluice_schedule_lag_seconds"]
    check("lag counted per run", lag.get("_count", workflow="ok") == 2 and
          lag.get("_count", workflow="bad") == 2)
    # the on-time tick started 57 s after it (the minute just begun), the next at once
    check("lag of the late tick over 30 s", lag.get("_bucket", workflow="ok", le="30") == 1)
    check("lag of the late tick under 60 s", lag.get("_bucket", workflow="ok", le="60") == 2)
    out = subprocess.run([sluice, "next", os.path.join(work, "ok.yaml")], capture_output=True,
                         text=True, env=dict(os.environ, SLUICE_NOW=iso(now_of_daemon())))
    first = out.stdout.split("\n")[0]
    want = calendar.timegm(time.strptime(first[:19], "%Y-%m-%dT%H:%M:%S")) if first else None
    nxt = fam["sluice_schedule_next_tick_timestamp_seconds"]
    check(f"next tick of ok is `sluice next`'s {first}",
          want is not None and nxt.get(workflow="ok") == want)
    check("next tick of bad the same minute", nxt.get(workflow="bad") == want)


def check_rest(fam, headers, text):
    check("content type 0.0.4",
          headers.get("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
    check("not cached", headers.get("Cache-Control") == "no-store")
    version = subprocess.run([sys.argv[1], "--version"], capture_output=True, text=True).stdout
    info = fam["sluice_build_info"].samples
    check("build info names the version",
          len(info) == 1 and info[0][2] == 1 and info[0][1]["version"] in version)
    check("process cpu", (total(fam, "process_cpu_seconds_total") or 0) > 0)
    check("process rss", (total(fam, "process_resident_memory_bytes") or 0) > 1 << 20)
    start = total(fam, "process_start_time_seconds") or 0
    check(f"process start time near now ({start})", abs(start - time.time()) < 120)
    workers = fam["sluice_pool_workers"]
    check("no worker busy once the runs are done", workers.get(state="busy") == 0)
    check("workers idle", (workers.get(state="idle") or 0) >= 1)
    check("none respawned", total(fam, "sluice_pool_workers_respawned_total") == 0)
    for f in fam.values():
        for name, labels, _ in f.samples:
            for value in labels.values():
                check(f"no run id in a label: {name}{labels}",
                      not re.match(r"\d{8}T\d{6}", value))
    check("every family has HELP", all(f.help for f in fam.values()))
    names = [line.split(" ")[2] for line in text.split("\n") if line.startswith("# TYPE")]
    check("families sorted by name", names == sorted(names))


def main():
    sluice, build = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    metrics_prom.selftest()
    work = tempfile.mkdtemp(prefix="sluice-metrics.")
    fixture, url = start_fixture(build, work)
    daemon = None
    try:
        write_workflows(work, url)
        real = time.time()
        base_now = (int(real) // 60 + 2) * 60 - 3  # 3 s before a minute
        env = dict(os.environ, SLUICE_STATE=os.path.join(work, "state"), SLUICE_NOW=iso(base_now))
        log_path = os.path.join(work, "serve.log")
        with open(log_path, "w") as log:
            argv = [sluice, "serve", "--http", "127.0.0.1:0", "ok.yaml", "bad.yaml", "slow.yaml"]
            daemon = subprocess.Popen(argv, cwd=work, env=env, stdout=log, stderr=log)
        base = dashboard_url(log_path, daemon)
        check("the dashboard's address is logged", base is not None)
        if base is None:
            return
        fam = wait_runs(base, 5)
        status, headers, text = scrape(base)
        check("200", status == 200)
        fam = metrics_prom.parse(text)
        check_counts(fam, work, sluice, lambda: base_now + time.time() - real)
        check_rest(fam, headers, text)
        req = urllib.request.Request(base + "/metrics", method="HEAD")
        with urllib.request.urlopen(req, timeout=5) as r:
            check("HEAD: no body", r.status == 200 and r.read() == b"")
        daemon.send_signal(signal.SIGTERM)
        check("the daemon exits 0", daemon.wait(timeout=30) == 0)
    finally:
        if daemon and daemon.poll() is None:
            daemon.kill()
        fixture.kill()
        if failures:
            with open(os.path.join(work, "serve.log"), errors="replace") as f:
                sys.stdout.write(f.read()[-4000:])
        shutil.rmtree(work, ignore_errors=True)


main()
print(f"{'FAILED: ' + str(len(failures)) if failures else 'passed'}")
sys.exit(1 if failures else 0)
