"""The state store's costs and what it buys (issue 12's targets).

Usage: /usr/bin/python3 bench/state.py BUILD_DIR [--items N] [--chain N] [--pages N]

1. Store overhead: bench/sched.py's 1,000,000-item foreach and 100,000-step chain of no-op
   tasks with the store off (SLUICE_STATE=none) and on, interleaved, median of 3; and the
   longest stretch the loop worked between polls (SLUICE_LOOP_STATS=1).
2. A cached rerun of workflows/flags.yaml (with `defaults: {cache: true}`) against the
   fixture at 50 ms: cold, revalidated (one conditional request per flag, no body), and
   with `cache: {max_age: 1h}` (no request at all).
3. A recurring scrape: N pages fetched and parsed (html.select) twice, 1% of them changed
   between the runs: the bytes and parses of the second run.
4. Resume of a killed 10,000-request run: time from the resume's start to its first new
   request (the fixture's counter, polled every 2 ms).
Prints Markdown tables for bench/RESULTS.md.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import machine, measure, start_fixture  # noqa: E402


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def last_line(argv, env, cwd, prefix):
    out = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"{argv}: {out.stderr[-2000:]}")
    return [l for l in out.stdout.splitlines() if l.startswith(prefix)]


def overhead(build, tmp, items, chain):
    sluice = os.path.join(build, "sluice")
    env = dict(os.environ, SLUICE_PLUGIN_PATH=os.path.join(build, "tests", "plugins"))
    write(f"{tmp}/foreach.yaml", "steps:\n  items:\n    uses: test.noop\n"
          f"    foreach: \"${{{{ range(1, {items}) }}}}\"\n    with: {{ value: \"${{{{ item }}}}\" }}\n")
    lines = ["steps:", "  s0: { uses: test.noop, with: { value: 0 } }"]
    lines += [f"  s{i}: {{ uses: test.noop, needs: [s{i - 1}], with: {{ value: {i} }} }}"
              for i in range(1, chain)]
    write(f"{tmp}/chain.yaml", "\n".join(lines) + "\n")
    print("### Store overhead\n")
    print("| shape | tasks | store off | store on | added | added per task | longest loop "
          "turn off | on |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, n in (("foreach", items), ("chain", chain)):
        walls = {"off": [], "on": []}
        turns = {"off": [], "on": []}
        for _ in range(3):
            for mode in ("off", "on"):
                state = f"{tmp}/state-{name}"
                shutil.rmtree(state, ignore_errors=True)
                e = dict(env, SLUICE_STATE="none" if mode == "off" else state)
                argv = [sluice, "run", "--quiet", f"{tmp}/{name}.yaml"]
                walls[mode].append(measure(argv, env=e, cwd=tmp)[0])
                e["SLUICE_LOOP_STATS"] = "1"
                shutil.rmtree(state, ignore_errors=True)
                line = last_line(argv, e, tmp, "loop:")[0]
                turns[mode].append(float(line.split()[3]))
        off, on = statistics.median(walls["off"]), statistics.median(walls["on"])
        print(f"| {name} | {n:,} | {off:.2f} s | {on:.2f} s | {on - off:+.2f} s | "
              f"{(on - off) / n * 1e6:.2f} µs | {max(turns['off']):.1f} ms | "
              f"{max(turns['on']):.1f} ms |")
    print()


def with_cache(src, dst, cache):
    text = open(src).read()
    # flags.yaml has a `defaults:` map? Add the cache to it, or add one.
    if "\ndefaults:" in text:
        text = text.replace("\ndefaults:", f"\ndefaults:\n  cache: {cache}", 1)
    else:
        text = text.replace("\nsteps:", f"\ndefaults:\n  cache: {cache}\nsteps:", 1)
    write(dst, text)


def cached_flags(build, src, tmp, base):
    sluice = os.path.join(build, "sluice")
    flags = os.path.join(src, "workflows", "flags.yaml")
    with_cache(flags, f"{tmp}/flags_cached.yaml", "true")
    with_cache(flags, f"{tmp}/flags_max_age.yaml", "{ max_age: 1h }")
    env = dict(os.environ, SLUICE_STATE=f"{tmp}/flags-state")
    print("### A cached rerun of flags.yaml (fixture at 50 ms)\n")
    print("| run | wall | of cold | requests | conditional | 304 | body bytes |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    cold = None
    for name, wf in (("cold (empty state)", "flags_cached.yaml"),
                     ("rerun: revalidated", "flags_cached.yaml"),
                     ("rerun: `max_age: 1h`", "flags_max_age.yaml")):
        get_json(f"{base}/stats/reset")
        argv = [sluice, "run", "--quiet", f"{tmp}/{wf}", "--var", f"base={base}"]
        wall = measure(argv, env=env, cwd=tmp)[0]
        s = get_json(f"{base}/stats")
        cold = cold or wall
        print(f"| {name} | {wall:.3f} s | {wall / cold * 100:.1f} % | {s['requests']} | "
              f"{s['conditional']} | {s['not_modified']} | {s['full_bytes']:,} |")
    print()


SCRAPE = """name: scrape
vars: { base: "http://127.0.0.1:1", n: 10 }
limits: { http: { concurrency: 100, per_host: 100 } }
defaults: { cache: true }
steps:
  pages:
    uses: http.get
    foreach: "${{ range(0, vars.n - 1) }}"
    with: { url: "${{ vars.base }}/page/${{ item }}" }
  titles:
    uses: html.select
    foreach: "${{ steps.pages }}"
    with: { html: "${{ item.body }}", css: "p.version" }
"""


def scrape(build, tmp, base, pages):
    sluice = os.path.join(build, "sluice")
    write(f"{tmp}/scrape.yaml", SCRAPE)
    env = dict(os.environ, SLUICE_STATE=f"{tmp}/scrape-state")
    argv = [sluice, "run", "--quiet", f"{tmp}/scrape.yaml", "--var", f"base={base}",
            "--var", f"n={pages}"]
    print(f"### A recurring scrape: {pages:,} pages, 1 % changed between runs\n")
    print("| run | wall | requests | 304 | body bytes | pages parsed | tasks cached |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in ("first", "second (1 % changed)"):
        if name != "first":
            get_json(f"{base}/pages/touch?from=0&count={pages // 100}")
        get_json(f"{base}/stats/reset")
        wall = measure(argv, env=env, cwd=tmp)[0]
        s = get_json(f"{base}/stats")
        show = json.loads(subprocess.run([sluice, "show", "last", "--json"], env=env, cwd=tmp,
                                         capture_output=True, text=True).stdout)
        titles = [x for x in show["steps"] if x["id"] == "titles"][0]
        print(f"| {name} | {wall:.2f} s | {s['requests']:,} | {s['not_modified']:,} | "
              f"{s['full_bytes']:,} | {titles['ok'] - titles['cached']:,} | "
              f"{show['tasks']['cached']:,} |")
    print()


KILLED = """name: killed
vars: { base: "http://127.0.0.1:1" }
limits: { http: { concurrency: 128, per_host: 128 } }
steps:
  get:
    uses: http.get
    foreach: "${{ range(1, 10000) }}"
    with: { url: "${{ vars.base }}/get?i=${{ item }}" }
"""


def first_request_after(argv, env, cwd, base):
    before = get_json(f"{base}/stats")["requests"]
    start = time.monotonic()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    first = None
    while proc.poll() is None and first is None:
        s = get_json(f"{base}/stats")
        if s["requests"] + s["inflight"] > before + 1:  # the poll itself is one
            first = time.monotonic() - start
        time.sleep(0.002)
    proc.wait()
    return first


def resume(build, tmp, base):
    sluice = os.path.join(build, "sluice")
    write(f"{tmp}/killed.yaml", KILLED)
    env = dict(os.environ, SLUICE_STATE=f"{tmp}/killed-state")
    print("### Resume of a killed 10,000-request run (fixture at 50 ms)\n")
    print("| attempt | killed after | tasks done | time to the first new request |")
    print("|---|---:|---:|---:|")
    for attempt in range(3):
        shutil.rmtree(f"{tmp}/killed-state", ignore_errors=True)
        proc = subprocess.Popen([sluice, "run", "--quiet", f"{tmp}/killed.yaml", "--var",
                                 f"base={base}"], env=env, cwd=tmp,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = subprocess.run(["sqlite3", f"{tmp}/killed-state/state.db",
                               "select count(*) from tasks where status = 'ok'"],
                              capture_output=True, text=True).stdout.strip()
        t = first_request_after([sluice, "run", "--quiet", f"{tmp}/killed.yaml", "--resume",
                                 "last"], env, tmp, base)
        print(f"| {attempt + 1} | 2.0 s | {done} | {t * 1000:.0f} ms |")
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--chain", type=int, default=100_000)
    ap.add_argument("--pages", type=int, default=10_000)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    print(f"Machine: {machine()}; date {time.strftime('%Y-%m-%d')}; command: /usr/bin/python3 "
          f"bench/state.py {' '.join(sys.argv[1:])}\n")
    tmp = tempfile.mkdtemp(prefix="sluice-bench-state.")
    proc, base = start_fixture(build, 50)
    try:
        overhead(build, tmp, args.items, args.chain)
        cached_flags(build, src, tmp, base)
        scrape(build, tmp, base, args.pages)
        resume(build, tmp, base)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
