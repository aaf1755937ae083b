"""Worker pool overhead: a 1,000,000-item foreach of a no-op CPU kind through the pool.

Usage: /usr/bin/python3 bench/pool.py BUILD_DIR [--items N] [--workers W]
Prints a Markdown table. Three runs of the same shape:
  - sluice, `test.noop_cpu` (a CPU kind: every task crosses to a worker process and back);
  - sluice, `test.noop` (the same no-op as an IO kind, completed on the loop): the engine
    without the pool, so pool overhead per task = (pool wall - loop wall) / N;
  - Python multiprocessing.Pool.map of a no-op function over range(N), default chunksize.
CPU time and peak RSS include the worker processes (they are the engine's children).
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import machine, measure  # noqa: E402

PY_POOL = """
import multiprocessing, sys
def noop(value):
    return value
if __name__ == "__main__":
    n, workers = int(sys.argv[1]), int(sys.argv[2])
    with multiprocessing.Pool(workers) as pool:
        out = pool.map(noop, range(1, n + 1))
    assert len(out) == n and out[-1] == n
"""


def workflow(kind, n, workers):
    return (f"limits: {{ cpu: {{ workers: {workers} }} }}\n"
            f"steps:\n  items:\n    uses: {kind}\n"
            f"    foreach: \"${{{{ range(1, {n}) }}}}\"\n"
            "    with: { value: \"${{ item }}\" }\n")


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    args = ap.parse_args()
    n, workers = args.items, args.workers
    sluice = os.path.abspath(os.path.join(args.build, "sluice"))
    env = dict(os.environ, SLUICE_PLUGIN_PATH=os.path.abspath(
        os.path.join(args.build, "tests", "plugins")))
    with tempfile.TemporaryDirectory() as tmp:
        env.setdefault("SLUICE_STATE", os.path.join(tmp, ".sluice"))  # SLUICE_STATE=none: store off
        write(f"{tmp}/pool.yaml", workflow("test.noop_cpu", n, workers))
        write(f"{tmp}/loop.yaml", workflow("test.noop", n, workers))
        write(f"{tmp}/pool.py", PY_POOL)
        run = [sluice, "run", "--quiet"]
        pool = measure(run + [f"{tmp}/pool.yaml"], env=env, cwd=tmp)
        loop = measure(run + [f"{tmp}/loop.yaml"], env=env, cwd=tmp)
        py = measure(["/usr/bin/python3", f"{tmp}/pool.py", str(n), str(workers)], cwd=tmp)
    print(f"Machine: {machine()}; date: {time.strftime('%Y-%m-%d')}; command: "
          f"/usr/bin/python3 bench/pool.py {args.build} --items {n} --workers {workers}\n")
    print("| run | tasks | wall | wall per task | CPU | peak RSS | ÷ sluice pool (wall) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (wall, cpu, rss) in (("sluice, CPU kind in the pool", pool),
                                   ("sluice, the same no-op on the loop", loop),
                                   ("Python multiprocessing.Pool.map", py)):
        print(f"| {name} | {n:,} | {wall:.2f} s | {wall / n * 1e6:.2f} µs | {cpu:.2f} s "
              f"| {rss:.1f} MiB | {wall / pool[0]:.2f}× |")
    overhead = (pool[0] - loop[0]) / n * 1e6
    print(f"\nPool overhead per task (pool wall − loop wall) ÷ tasks: {overhead:.2f} µs "
          f"(target: under 10 µs); {workers} workers.")


if __name__ == "__main__":
    main()
