"""Measuring one command: wall time, CPU time (user+sys) and peak RSS of the child.

Peak RSS comes from GNU time (/usr/bin/time -f %M): the child's own high-water mark.
(Python's wait4 rusage would carry the forking Python's pages across exec.)
"""
import os
import tempfile
import subprocess
import time


def measure(argv, env=None, cwd=None, timeout=900):
    """Runs argv and returns (wall_s, cpu_s, peak_rss_mib). Raises on a non-zero exit."""
    start = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-f", "@@ %U %S %M"] + list(argv), env=env,
                          cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          timeout=timeout)
    wall = time.monotonic() - start
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} exited with {proc.returncode}: {err[-2000:]}")
    line = [l for l in err.splitlines() if l.startswith("@@ ")][-1]
    user, system, rss_kb = line.split()[1:]
    return wall, float(user) + float(system), int(rss_kb) / 1024.0


def measure_rounds(contenders, runs, **kwargs):
    """Measures every contender `runs` times, in rounds (each contender once per round, so a
    machine that slows down for a while hurts all of them alike); returns {name: the run
    with the median wall}. contenders: (name, argv, before) with before() called ahead of
    each run (or None).

    One run of a short benchmark on a shared machine says little: the median of a few
    says what a user typically sees."""
    results = {name: [] for name, _, _ in contenders}
    for _ in range(runs):
        for name, argv, before in contenders:
            if before:
                before()
            results[name].append(measure(argv, **kwargs))
    return {name: sorted(r)[len(r) // 2] for name, r in results.items()}


def machine():
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} × {model}, {mem:.0f} GiB RAM"


def start_fixture(build, latency_ms):
    """Starts tests/fixture's server with a latency; returns (process, base URL)."""
    server = os.path.join(build, "tests", "fixture", "fixture_server")
    tmp = tempfile.mkdtemp(prefix="sluice-bench-fixture.")
    port_file = os.path.join(tmp, "url")
    proc = subprocess.Popen([server, "--port", "0", "--port-file", port_file, "--quiet",
                             "--latency-ms", str(latency_ms)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.exists(port_file) and os.path.getsize(port_file) > 0:
            return proc, open(port_file).read().strip()
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("fixture server did not start")
