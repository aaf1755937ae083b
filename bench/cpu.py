"""CPU steps: the primes and pow scenarios of SPEC §8 through sluice, against Python and C floors.

Usage: /usr/bin/python3 bench/cpu.py BUILD_DIR [--primes-from N --primes-to N]
                                               [--pow-from N --pow-to N] [--skip-python-pow]
Prints a Markdown table per scenario. Every contender does the same work and writes its
result to a file, and the results are checked against each other before anything is printed:

  primes  for every n in 1000..15999, count the primes <= n (15,000 tasks)
          - sluice: workflows/primes.yaml (primes.sieve per n, then a Lua summary and a JSON file)
          - Python multiprocessing.Pool(os.cpu_count()), and a sequential Python loop, both with
            the idiomatic bytearray sieve (slice assignment crosses off multiples), writing
            the same JSON file as primes.yaml (the summary and every count)
          - C floor: bench/floor_primes.c, the plugin's own sieve (plugins/primes/sieve.c)
            in a single-threaded loop, gcc -O2, writing only the task count and total
  pow     for every i in 1000000..1000015, i**i and its bit length, value mod 2^61-1, mod 2^64
          - sluice: workflows/pow.yaml (bigint.pow per i, then a TSV)
          - Python concurrent.futures.ProcessPoolExecutor(os.cpu_count()), Python integers
          - C floor: bench/floor_pow.c, GMP mpz_pow_ui in a single-threaded loop, gcc -O2

Wall and CPU (user+sys, the process and the children it waited for) come from the harness,
peak RSS from GNU time: for a process pool that is the largest single process, not the sum.
Every contender first runs once untimed, and its result is checked; then all run --runs
times in rounds (default 5; Python's i**i, 50 s a run, only once) and each one's median
wall is reported.
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import machine, measure, measure_rounds  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)

PY_PRIMES = '''
import json, os, sys
from multiprocessing import Pool

def count_primes(n):
    if n < 2:
        return 0
    sieve = bytearray([1]) * (n + 1)
    sieve[0] = sieve[1] = 0
    for i in range(2, int(n ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytes(len(range(i * i, n + 1, i)))
    return sieve.count(1)

if __name__ == "__main__":
    lo, hi, mode, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if mode == "pool":
        with Pool(os.cpu_count()) as pool:
            counts = pool.map(count_primes, range(lo, hi + 1))
    else:
        counts = [count_primes(n) for n in range(lo, hi + 1)]
    # what workflows/primes.yaml writes: a summary and every count
    summary = {"from": lo, "to": hi, "tasks": len(counts), "total_count": sum(counts),
               "count_at_to": max(counts)}
    with open(out, "w") as f:
        json.dump({"summary": summary,
                   "counts": [{"limit": n, "count": c} for n, c in zip(range(lo, hi + 1), counts)]},
                  f)
'''

PY_POW = '''
import os, sys
from concurrent.futures import ProcessPoolExecutor

def power(i):
    x = i ** i
    return f"{i}\\t{x.bit_length()}\\t{x % (2**61 - 1)}\\t{x & (2**64 - 1)}"

if __name__ == "__main__":
    lo, hi, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        lines = list(pool.map(power, range(lo, hi + 1)))
    with open(out, "w") as f:
        f.write("i\\tbits\\tmod61\\tlow64\\n" + "\\n".join(lines) + "\\n")
'''


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def read(path):
    with open(path) as f:
        return f.read()


def compile_floor(tmp, name, extra):
    exe = os.path.join(tmp, name)
    subprocess.run(["gcc", "-O2", "-std=c11", "-o", exe, os.path.join(HERE, name + ".c")] + extra,
                   check=True)
    return exe


def primes_result(path):
    """The "TASKS TOTAL" line, from the JSON file primes.yaml (or the Python peer) writes."""
    import json
    summary = json.loads(read(path))["summary"]
    return f"{summary['tasks']} {summary['total_count']}\n"


def bench_primes(args, sluice, env, tmp):
    lo, hi = args.primes_from, args.primes_to
    wf = os.path.join(SOURCE, "workflows", "primes.yaml")
    floor = compile_floor(tmp, "floor_primes", ["-I", os.path.join(SOURCE, "plugins", "primes"),
                                                os.path.join(SOURCE, "plugins", "primes",
                                                             "sieve.c")])
    write(f"{tmp}/primes.py", PY_PRIMES)
    results = {}
    run = [sluice, "run", "--quiet", wf, "--var", f"from={lo}", "--var", f"to={hi}"]
    contenders = [
        (f"sluice ({os.cpu_count()} workers)", run, f"{tmp}/out/primes.json"),
        ("sluice (1 worker)", run + ["--workers", "1"], f"{tmp}/out/primes.json"),
        (f"Python multiprocessing.Pool({os.cpu_count()})",
         ["/usr/bin/python3", f"{tmp}/primes.py", str(lo), str(hi), "pool", f"{tmp}/p.json"],
         f"{tmp}/p.json"),
        ("Python, sequential loop",
         ["/usr/bin/python3", f"{tmp}/primes.py", str(lo), str(hi), "seq", f"{tmp}/p.json"],
         f"{tmp}/p.json"),
        ("C floor (single thread, same sieve)", [floor, str(lo), str(hi), f"{tmp}/r.txt"],
         f"{tmp}/r.txt"),
    ]
    for name, argv, out in contenders:
        measure(argv, env=env, cwd=tmp)
        results[name] = (read(out) if out.endswith(".txt") else primes_result(out))
    check_same("primes", results)
    timed = measure_rounds([(name, argv, None) for name, argv, _ in contenders], args.runs,
                           env=env, cwd=tmp)
    rows = [(name,) + timed[name] for name, _, _ in contenders]
    total = int(results[name].split()[1])
    return rows, f"{hi - lo + 1:,} tasks, n in {lo}..{hi}; {total:,} primes counted in all"


def bench_pow(args, sluice, env, tmp):
    lo, hi = args.pow_from, args.pow_to
    wf = os.path.join(SOURCE, "workflows", "pow.yaml")
    floor = compile_floor(tmp, "floor_pow", ["-lgmp"])
    write(f"{tmp}/pow.py", PY_POW)
    results = {}
    run = [sluice, "run", "--quiet", wf, "--var", f"from={lo}", "--var", f"to={hi}"]
    contenders = [
        (f"sluice ({os.cpu_count()} workers)", run, f"{tmp}/out/pow.tsv"),
        ("sluice (1 worker)", run + ["--workers", "1"], f"{tmp}/out/pow.tsv"),
        ("C floor (single thread, GMP)", [floor, str(lo), str(hi), f"{tmp}/r.tsv"], f"{tmp}/r.tsv"),
    ]
    if not args.skip_python_pow:
        contenders.insert(2, (f"Python ProcessPoolExecutor({os.cpu_count()})",
                              ["/usr/bin/python3", f"{tmp}/pow.py", str(lo), str(hi),
                               f"{tmp}/r.tsv"], f"{tmp}/r.tsv"))
    once = {}
    for name, argv, out in contenders:
        once[name] = measure(argv, env=env, cwd=tmp)
        results[name] = read(out)
    check_same("pow", results)
    timed = measure_rounds([(name, argv, None) for name, argv, _ in contenders
                            if not name.startswith("Python")], args.runs, env=env, cwd=tmp)
    rows = [(name,) + timed.get(name, once[name]) for name, _, _ in contenders]
    bits = int(hi * math.log2(hi)) + 1
    return rows, f"{hi - lo + 1} tasks, i**i for i in {lo}..{hi} (up to {bits:,} bits each)"


def check_same(what, results):
    values = set(results.values())
    if len(values) != 1:
        raise SystemExit(f"{what}: results differ: {results}")


def table(title, note, rows):
    print(f"### {title}\n\n{note}\n")
    print("| contender | wall | CPU (user+sys) | peak RSS | wall ÷ sluice wall | CPU ÷ sluice CPU |")
    print("|---|---:|---:|---:|---:|---:|")
    base_wall, base_cpu = rows[0][1], rows[0][2]
    for name, wall, cpu, rss in rows:
        print(f"| {name} | {wall:.3f} s | {cpu:.2f} s | {rss:.1f} MiB "
              f"| {wall / base_wall:.2f}× | {cpu / max(base_cpu, 1e-3):.2f}× |")
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--primes-from", type=int, default=1000)
    ap.add_argument("--primes-to", type=int, default=15999)
    ap.add_argument("--pow-from", type=int, default=1000000)
    ap.add_argument("--pow-to", type=int, default=1000015)
    ap.add_argument("--runs", type=int, default=5, help="runs per contender (median reported)")
    ap.add_argument("--skip-python-pow", action="store_true",
                    help="leave out Python's i**i (about 6 s of CPU per item)")
    args = ap.parse_args()
    sluice = os.path.abspath(os.path.join(args.build, "sluice"))
    env = dict(os.environ)
    env.pop("SLUICE_PLUGIN_PATH", None)
    with tempfile.TemporaryDirectory() as tmp:
        env.setdefault("SLUICE_STATE", os.path.join(tmp, ".sluice"))  # SLUICE_STATE=none: store off
        primes_rows, primes_note = bench_primes(args, sluice, env, tmp)
        pow_rows, pow_note = bench_pow(args, sluice, env, tmp)
    argv = " ".join(sys.argv[1:])
    print(f"Machine: {machine()}; date: {time.strftime('%Y-%m-%d')}; "
          f"command: /usr/bin/python3 bench/cpu.py {argv}\n")
    table("primes.sieve (workflows/primes.yaml)", primes_note, primes_rows)
    table("bigint.pow (workflows/pow.yaml)", pow_note, pow_rows)


if __name__ == "__main__":
    main()
