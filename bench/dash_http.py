"""The dashboard's HTTP server alone (engine/http/), on the router's 404 (no database read):
requests per second over keep-alive connections with pipelining, the latency of a new
connection's request with 1,000 idle connections open, and the server's memory per open
connection. Prints a Markdown table for bench/RESULTS.md.
Usage: /usr/bin/python3 bench/dash_http.py BUILD_DIR"""

import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

build = sys.argv[1] if len(sys.argv) > 1 else "build"
sluice = os.path.abspath(os.path.join(build, "sluice"))
scratch = tempfile.mkdtemp(prefix="sluice-bench-http-")
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
env = dict(os.environ, SLUICE_STATE=os.path.join(scratch, "state"),
           SLUICE_TEST_HTTP_TIMEOUT_MS="120000")
log = open(os.path.join(scratch, "serve.log"), "w+b")
proc = subprocess.Popen([sluice, "serve", "--http", "127.0.0.1:0"], env=env, cwd=scratch,
                        stdout=subprocess.DEVNULL, stderr=log)
port = None
for _ in range(200):
    log.seek(0)
    text = log.read().decode()
    if "dashboard at http://127.0.0.1:" in text:
        port = int(text.split("dashboard at http://127.0.0.1:")[1].split("/")[0])
        break
    time.sleep(0.05)
assert port, "no dashboard line"


def rss_kib():
    with open("/proc/%d/status" % proc.pid) as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def cpu_s():
    with open("/proc/%d/stat" % proc.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


REQ = b"GET /bench HTTP/1.1\r\nHost: b\r\n\r\n"
BATCH = 100


def pipelined(seconds, counts, i):
    s = socket.create_connection(("127.0.0.1", port))
    end = time.time() + seconds
    n = 0
    while time.time() < end:
        s.sendall(REQ * BATCH)
        got = 0
        buf = b""
        while got < BATCH:
            buf += s.recv(262144)
            got = buf.count(b"HTTP/1.1 404")
        n += BATCH
    counts[i] = n
    s.close()


rows = []
for conns in (1, 4):
    counts = [0] * conns
    cpu0 = cpu_s()
    threads = [threading.Thread(target=pipelined, args=(5, counts, i)) for i in range(conns)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - t0
    total = sum(counts)
    rows.append(("requests/s, %d keep-alive connection%s, %d pipelined"
                 % (conns, "" if conns == 1 else "s", BATCH),
                 "%.0f (server CPU %.0f µs/request)"
                 % (total / wall, (cpu_s() - cpu0) / total * 1e6)))

rss0 = rss_kib()
idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(1000)]
time.sleep(1)
rss1 = rss_kib()
lat = []
for _ in range(500):
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /bench HTTP/1.1\r\nConnection: close\r\n\r\n")
    while s.recv(65536):
        pass
    lat.append((time.perf_counter() - t0) * 1000)
    s.close()
lat.sort()
rows.append(("new connection + request with 1,000 idle open: p50 / p99",
             "%.3f / %.3f ms" % (statistics.median(lat), lat[int(len(lat) * 0.99)])))
rows.append(("RSS: at start / with 1,000 idle connections",
             "%.1f / %.1f MiB (%.1f KiB per connection)"
             % (rss0 / 1024, rss1 / 1024, (rss1 - rss0) / 1000)))
for s in idle:
    s.close()
proc.send_signal(signal.SIGTERM)
rc = proc.wait(20)
rows.append(("exit after SIGTERM", str(rc)))
print("| measure | result |\n|---|---:|")
for name, value in rows:
    print("| %s | %s |" % (name, value))
shutil.rmtree(scratch, ignore_errors=True)
