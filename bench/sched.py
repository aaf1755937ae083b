"""Scheduler throughput: a 1,000,000-item foreach and a 100,000-step chain of no-op tasks.

Usage: /usr/bin/python3 bench/sched.py BUILD_DIR [--items N] [--chain N]
Prints a Markdown table. The peer is Python asyncio doing the same work shape:
N tasks gathered (foreach), and N tasks each awaiting the previous one's result (chain).
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import machine, measure  # noqa: E402

ASYNCIO_FOREACH = """
import asyncio, sys
async def noop(value):
    return value
async def main(n):
    out = await asyncio.gather(*(noop(i) for i in range(1, n + 1)))
    assert len(out) == n
asyncio.run(main(int(sys.argv[1])))
"""

ASYNCIO_CHAIN = """
import asyncio, sys
async def noop(value):
    return value
async def main(n):
    value = 0
    for _ in range(n):
        value = await asyncio.create_task(noop(value + 1))
    assert value == n
asyncio.run(main(int(sys.argv[1])))
"""


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def foreach_workflow(n):
    return ("steps:\n  items:\n    uses: test.noop\n"
            f"    foreach: \"${{{{ range(1, {n}) }}}}\"\n"
            "    with: { value: \"${{ item }}\" }\n")


def chain_workflow(n):
    lines = ["steps:", "  s0: { uses: test.noop, with: { value: 0 } }"]
    lines += [f"  s{i}: {{ uses: test.noop, needs: [s{i - 1}], with: {{ value: {i} }} }}"
              for i in range(1, n)]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--chain", type=int, default=100_000)
    args = ap.parse_args()
    sluice = os.path.abspath(os.path.join(args.build, "sluice"))
    env = dict(os.environ, SLUICE_PLUGIN_PATH=os.path.abspath(
        os.path.join(args.build, "tests", "plugins")))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env.setdefault("SLUICE_STATE", os.path.join(tmp, ".sluice"))  # SLUICE_STATE=none: store off
        write(f"{tmp}/one.yaml", foreach_workflow(1))
        write(f"{tmp}/foreach.yaml", foreach_workflow(args.items))
        write(f"{tmp}/chain.yaml", chain_workflow(args.chain))
        write(f"{tmp}/foreach.py", ASYNCIO_FOREACH)
        write(f"{tmp}/chain.py", ASYNCIO_CHAIN)
        run = [sluice, "run", "--quiet"]
        _, _, base_rss = measure(run + [f"{tmp}/one.yaml"], env=env, cwd=tmp)
        for name, n, wf, peer in (("foreach", args.items, "foreach.yaml", "foreach.py"),
                                  ("chain", args.chain, "chain.yaml", "chain.py")):
            wall, cpu, rss = measure(run + [f"{tmp}/{wf}"], env=env, cwd=tmp)
            load, _, _ = measure([sluice, "validate", f"{tmp}/{wf}"], env=env, cwd=tmp)
            pwall, pcpu, prss = measure(["/usr/bin/python3", f"{tmp}/{peer}", str(n)], cwd=tmp)
            per_task = (rss - base_rss) * 2**20 / n
            rows.append((name, n, wall, load, cpu, rss, per_task, pwall, pcpu, prss))
    print(f"Machine: {machine()}; date: {time.strftime('%Y-%m-%d')}; "
          f"command: /usr/bin/python3 bench/sched.py {args.build} "
          f"--items {args.items} --chain {args.chain}\n")
    print("| shape | tasks | sluice wall | of which loading | tasks/s (whole run) "
          "| tasks/s (scheduling) | sluice CPU | sluice peak RSS | bytes/task | asyncio wall "
          "| asyncio peak RSS | asyncio ÷ sluice (wall) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, n, wall, load, cpu, rss, per_task, pwall, pcpu, prss in rows:
        sched = max(wall - load, 1e-3)
        print(f"| {name} | {n:,} | {wall:.2f} s | {load:.2f} s | {n / wall:,.0f} "
              f"| {n / sched:,.0f} | {cpu:.2f} s | {rss:.1f} MiB | {per_task:,.0f} "
              f"| {pwall:.2f} s | {prss:.1f} MiB | {pwall / wall:.2f}× |")
    print(f"\n(loading = `sluice validate` of the same file; scheduling = wall − loading; "
          f"bytes/task = (peak RSS − {base_rss:.1f} MiB of a one-task run) ÷ tasks)")


if __name__ == "__main__":
    main()
