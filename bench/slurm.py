"""executor: slurm against the local pool, on the same machine (docs/slurm.md, issue 17).

Usage: /usr/bin/python3 bench/slurm.py BUILD_DIR [--runs N] [--heavy N]
Needs root: it starts the one-node cluster of tests/slurm/cluster.sh (all the machine's
CPUs, MaxArraySize 1001) and stops it at the end. Two workloads, each run by the pool
(`executor: local`) and by the cluster (`executor: slurm`), the outputs compared:

  primes  workflows/primes.yaml: 15,000 tiny tasks. Slurm's wall minus the pool's is the
          fixed overhead of the Slurm path (submission, scheduling, worker starts, polls,
          files), also given per array element.
  heavy   primes.sieve of the --heavy (default 4,500) integers below 10^7: a CPU-heavy
          run of about 20 s in the pool on 2 cores. Target: Slurm within 1.3x of the pool.

Each contender runs --runs times (default 3) in rounds; the median wall is reported.
"""
import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)

HEAVY = """steps:
  sieve:
    uses: primes.sieve
    executor: {executor}
    foreach: "${{{{ range({start}, 9999999) }}}}"
    with: {{ limit: "${{{{ item }}}}" }}
  report:
    uses: file.write
    with: {{ path: out/heavy.json, content: "${{{{ steps.sieve }}}}" }}
"""


def slurm_variant(text):
    return text.replace("    uses: primes.sieve\n", "    uses: primes.sieve\n    executor: slurm\n")


def run(sluice, folder, workflow):
    for old in glob.glob(os.path.join(folder, ".sluice")):
        shutil.rmtree(old)
    env = dict(os.environ, SLUICE_STATE="none")
    start = time.monotonic()
    proc = subprocess.run([sluice, "run", "--quiet", workflow], cwd=folder, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"{workflow} in {folder} failed:\n{proc.stdout}\n{proc.stderr}")
    elements = len(glob.glob(os.path.join(folder, ".sluice/slurm/*/e*.in")))
    return wall, elements


def prepare(work, name, text, out):
    folders = {}
    for executor in ("local", "slurm"):
        folder = os.path.join(work, f"{name}-{executor}")
        os.makedirs(folder)
        with open(os.path.join(folder, "w.yaml"), "w") as f:
            f.write(text(executor))
        folders[executor] = folder
    return folders


def measure(sluice, folders, out, runs):
    walls = {"local": [], "slurm": []}
    elements = 0
    for _ in range(runs):
        for executor, folder in folders.items():
            wall, n = run(sluice, folder, "w.yaml")
            walls[executor].append(wall)
            elements = max(elements, n)
    with open(os.path.join(folders["local"], out), "rb") as a, \
            open(os.path.join(folders["slurm"], out), "rb") as b:
        if a.read() != b.read():
            sys.exit(f"{out}: the cluster's result differs from the pool's")
    return statistics.median(walls["local"]), statistics.median(walls["slurm"]), elements


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--heavy", type=int, default=4500)
    args = ap.parse_args()
    sluice = os.path.abspath(os.path.join(args.build, "sluice"))
    cluster = os.path.join(SOURCE, "tests/slurm/cluster.sh")
    env = dict(os.environ, SLUICE_SLURM_CPUS=str(os.cpu_count()), SLUICE_SLURM_PORT="6847",
               SLUICE_SLURM_DIR="/tmp/sluice-slurm-bench")
    os.environ.update(env)
    started = subprocess.run(["bash", cluster, "start"], env=env, stdout=subprocess.PIPE,
                             text=True)
    if started.returncode != 0:
        sys.exit("the cluster did not start")
    for line in started.stdout.splitlines():
        key, _, value = line.replace("export ", "").partition("=")
        os.environ[key] = value
    work = tempfile.mkdtemp(prefix="sluice-bench-slurm.")
    try:
        primes = open(os.path.join(SOURCE, "workflows/primes.yaml")).read()
        rows = []
        f = prepare(work, "primes", lambda e: primes if e == "local" else slurm_variant(primes),
                    "out/primes.json")
        rows.append(("primes.yaml (15,000 tasks)",) + measure(sluice, f, "out/primes.json",
                                                             args.runs))
        start = 9999999 - args.heavy + 1
        f = prepare(work, "heavy", lambda e: HEAVY.format(executor=e, start=start),
                    "out/heavy.json")
        rows.append((f"heavy ({args.heavy:,} sieves below 10^7)",) +
                    measure(sluice, f, "out/heavy.json", args.runs))
        print(f"{os.cpu_count()} CPUs, median of {args.runs} runs\n")
        print("| workload | pool | slurm | slurm / pool | elements | overhead | per element |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, local, slurm, elements in rows:
            over = slurm - local
            per = over / elements if elements else 0
            print(f"| {name} | {local:.2f} s | {slurm:.2f} s | {slurm / local:.2f}x | "
                  f"{elements} | {over:.2f} s | {per:.2f} s |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        subprocess.run(["bash", cluster, "stop"], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
