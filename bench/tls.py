"""HTTPS, HTTP/2 and HTTP/1.1 against real nginx: sluice, Python aiohttp and curl --parallel.

Usage: /usr/bin/python3 bench/tls.py BUILD_DIR [--latency-ms 50] [--shapes flags,100,10000]
                                    [--runs 3]

tests/tls/start.sh starts nginx (a private CA; TLS with HTTP/2, TLS with HTTP/1.1 only,
and cleartext HTTP/1.1) in front of the fixture server, which adds the latency to every
response. Each shape runs over the three transports for each peer at the same
concurrency:
  flags      the code list, then 306 PNGs saved to files, 32 in flight (flags.yaml)
  100        100 GETs of /ip, 100 in flight
  10000      10,000 GETs of /ip, 100 in flight
Each transport's servers are warmed up by one untimed curl run (nginx's upstream
connections to the fixture), then the peers run in rounds: the median of --runs (one for
10,000 requests) is shown. The network floor is ceil(N / concurrency) x latency (plus one round trip for flags' list;
connection setup on loopback is not counted). aiohttp speaks no HTTP/2: its "h2" row is
HTTPS over HTTP/1.1 against the same port. Prints a Markdown table.
"""
import argparse
import math
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import machine, measure, measure_rounds  # noqa: E402

from fetch import AIOHTTP  # noqa: E402  (the same peer; its 5th argument is the CA file)

# curl --parallel: the flags shape fetches the list first (one curl), then the PNGs.
CURL_FLAGS = r"""
set -e
base=$1 conc=$2 ca=$3 h2=$4
curl -sf --cacert "$ca" $h2 "$base/en/codes.json" -o codes.json
mkdir -p out/curl-flags
/usr/bin/python3 -c '
import json, sys
for c in sorted(json.load(open("codes.json"))):
    print(f"url = \"{sys.argv[1]}/256x192/{c}.png\"\noutput = \"out/curl-flags/{c}.png\"")
' "$base" > flags.curl
curl -sf --parallel --parallel-max "$conc" --cacert "$ca" $h2 -K flags.curl
"""

HTTPBIN = """
name: bench_tls_httpbin
vars: { base: "", n: 100 }
limits:
  http: { concurrency: %d, per_host: %d, ca_file: %s }
steps:
  get:
    uses: http.get
    foreach: "${{ range(1, vars.n) }}"
    with: { url: "${{ vars.base }}/ip?i=${{ item }}" }
"""


def start_servers(src, build, latency_ms, work):
    """tests/tls/start.sh in a bash that waits; returns (process, its exported variables)."""
    env_file = os.path.join(work, "servers.env")
    script = (f'trap "exit 0" TERM; source "{src}/tests/tls/start.sh" "{build}" '
              f'--latency-ms {latency_ms} || exit 1; env > "{env_file}"; '
              'while :; do sleep 0.2; done')
    proc = subprocess.Popen(["bash", "-c", script], stdout=subprocess.DEVNULL)
    for _ in range(300):
        if os.path.exists(env_file) and os.path.getsize(env_file) > 0:
            time.sleep(0.1)
            env = dict(line.split("=", 1) for line in open(env_file).read().splitlines()
                       if "=" in line)
            return proc, env
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("tests/tls/start.sh did not start the servers")


def peers(sluice, src, work, mode, n, conc, base, ca, h2):
    """(name, argv, env) of each peer for one shape and transport."""
    env = dict(os.environ, SSL_CERT_FILE=ca)
    if mode == "flags":
        sl = [sluice, "run", "--quiet", os.path.join(src, "workflows", "flags.yaml"),
              "--var", f"base={base}", "--var", "out=out/flags"]
        cu = ["bash", "-c", CURL_FLAGS, "curl-flags", base, str(conc), ca, h2]
    else:
        wf = os.path.join(work, f"httpbin_{conc}.yaml")
        with open(wf, "w") as f:
            f.write(HTTPBIN % (conc, conc, ca))
        sl = [sluice, "run", "--quiet", wf, "--var", f"base={base}", "--var", f"n={n}"]
        cu = ["curl", "-sf", "--parallel", "--parallel-max", str(conc), "--cacert", ca,
              "-o", "/dev/null", f"{base}/ip?i=[1-{n}]"] + ([h2] if h2 else [])
    py = ["/usr/bin/python3", "-c", AIOHTTP, base, mode, str(n), str(conc), ca]
    return [("sluice", sl, env), ("aiohttp", py, env), ("curl --parallel", cu, env)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--shapes", default="flags,100,10000")
    ap.add_argument("--runs", type=int, default=3, help="median of this many (10,000: one)")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    sluice = os.path.join(build, "sluice")
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    lat = args.latency_ms / 1000
    work = tempfile.mkdtemp(prefix="sluice-bench-tls.")
    proc, env = start_servers(src, build, args.latency_ms, work)
    try:
        ca = env["TLS_CA"]
        transports = [("HTTPS + HTTP/2", env["TLS_URL"], "--http2"),
                      ("HTTPS, HTTP/1.1", env["TLS11_URL"], "--http1.1"),
                      ("HTTP/1.1", env["PLAIN_URL"], "--http1.1")]
        all_shapes = {"flags": ("flags: code list + 306 PNGs saved, 32 in flight", "flags",
                                306, 32, (1 + math.ceil(306 / 32)) * lat),
                      "100": ("httpbin: 100 GETs, 100 in flight", "httpbin", 100, 100, lat),
                      "10000": ("httpbin: 10,000 GETs, 100 in flight", "httpbin", 10000, 100,
                                math.ceil(10000 / 100) * lat)}
        print(f"Machine: {machine()}; latency {args.latency_ms} ms (fixture behind nginx); "
              f"date {time.strftime('%Y-%m-%d')}\n")
        print("| shape | transport | peer | wall | CPU | CPU / request | peak RSS "
              "| ÷ sluice (wall) | ÷ floor |")
        print("|---|---|---|---:|---:|---:|---:|---:|---:|")
        for key in args.shapes.split(","):
            title, mode, n, conc, floor = all_shapes[key]
            requests = n + (1 if mode == "flags" else 0)
            for tname, base, h2 in transports:
                contenders = peers(sluice, src, work, mode, n, conc, base, ca, h2)
                measure(contenders[2][1], env=contenders[2][2], cwd=work)  # warm nginx up
                runs = args.runs if n <= 1000 else 1
                results = measure_rounds([(name, argv, None) for name, argv, _ in contenders],
                                         runs, env=contenders[0][2], cwd=work)
                ref = results["sluice"][0]
                for name, _, _ in contenders:
                    wall, cpu, rss = results[name]
                    print(f"| {title} (floor {floor:.2f} s) | {tname} | {name} | {wall:.2f} s "
                          f"| {cpu:.2f} s | {cpu / requests * 1e6:.0f} µs | {rss:.0f} MiB "
                          f"| {wall / ref:.2f}× | {wall / floor:.2f}× |", flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
