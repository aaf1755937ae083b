"""sluice serve --http under hostile clients. A slowloris sending a byte every 200 ms is
answered 408 and closed near the header timeout (shortened for the test by
SLUICE_TEST_HTTP_TIMEOUT_MS), the whole request counted, while another client is served
meanwhile. 1,000 connections at once (the cap lowered to 500 by SLUICE_TEST_HTTP_MAX_CONNS):
the server stays up, answers the 500 under the cap, refuses the rest with 503, keeps its
memory bounded and serves normally afterwards.
Usage: http_bounds.py SLUICE BUILD_DIR SOURCE_DIR"""

import os
import resource
import select
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _http import Serve, check, connect, finish, get, parse_response  # noqa

sluice = sys.argv[1]

# ---- slowloris ---------------------------------------------------------------------------
serve = Serve(sluice, env={"SLUICE_TEST_HTTP_TIMEOUT_MS": "1500"})
port = serve.port
slow = connect(port)
request = b"GET /slow HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"p" * 40 + b"\r\n\r\n"
start = time.time()
answer = b""
served_meanwhile = None
for i, byte in enumerate(request):
    try:
        slow.sendall(bytes([byte]))
    except OSError:
        break
    ready, _, _ = select.select([slow], [], [], 0.2)
    if ready:
        answer = slow.recv(4096)
        break
    if i == 3:  # the server is not held: another client is answered at once
        t0 = time.time()
        status, _, _, _ = get(port, "/meanwhile")
        served_meanwhile = (status, time.time() - t0)
elapsed = time.time() - start
check("another client is served while the slowloris sends",
      served_meanwhile and served_meanwhile[0] == 404 and served_meanwhile[1] < 1.0,
      served_meanwhile)
check("the slowloris is answered 408", answer.startswith(b"HTTP/1.1 408 "), answer)
check("near the header timeout (1.5 s), not per byte", 1.3 < elapsed < 3.0, elapsed)
slow.settimeout(5)
try:
    rest = slow.recv(4096)
    while rest and not rest.endswith(b"}"):
        rest = slow.recv(4096)
    closed = slow.recv(4096) == b""
except OSError:
    closed = True
check("and its connection closed", closed)
slow.close()
idle = connect(port)
idle.settimeout(5)
t0 = time.time()
check("an idle connection is closed at the timeout", idle.recv(100) == b"" and
      1.3 < time.time() - t0 < 3.0, time.time() - t0)
idle.close()
check("SIGTERM: exit 0", serve.stop() == 0)
serve.cleanup()

# ---- 1,000 connections -----------------------------------------------------------------
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = min(hard, 4096)
resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # the server inherits it
check("the fd limit allows the test", want >= 2200, want)
CAP = 500
serve = Serve(sluice, env={"SLUICE_TEST_HTTP_MAX_CONNS": str(CAP),
                           "SLUICE_TEST_HTTP_TIMEOUT_MS": "60000"})
port = serve.port
rss_before = serve.rss_kib()
socks = []
for i in range(1000):
    socks.append(connect(port))
time.sleep(1)
refused, waiting = [], []
for s in socks:
    ready, _, _ = select.select([s], [], [], 0)
    (refused if ready else waiting).append(s)
answers = [s.recv(4096) for s in refused]
check("1,000 connections: the server is up", serve.proc.poll() is None)
check("the %d over the cap are refused" % (1000 - CAP), len(refused) == 1000 - CAP, len(refused))
check("with 503 and a JSON reason", all(a.startswith(b"HTTP/1.1 503 ") and
                                        a.endswith(b"{\"error\": \"too many connections open\"}")
                                        for a in answers), answers[:1])
rss_during = serve.rss_kib()
check("memory bounded with %d connections open (RSS %d KiB, from %d)"
      % (CAP, rss_during, rss_before), rss_during < rss_before + 48 * 1024, rss_during)
ok = 0
for s in waiting:
    s.sendall(b"GET /under/cap HTTP/1.1\r\nHost: t\r\n\r\n")
for s in waiting:
    data = b""
    s.settimeout(10)
    while parse_response(data) is None:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    r = parse_response(data)
    ok += bool(r and r[0] == 404)
check("the %d under the cap are answered" % CAP, ok == CAP, ok)
for s in socks:
    s.close()
time.sleep(0.5)
status, _, _, _ = get(port, "/after")
check("served normally afterwards", status == 404, status)
fresh = [connect(port) for _ in range(CAP)]
time.sleep(0.3)
check("the cap is free again after the flood",
      all(not select.select([s], [], [], 0)[0] for s in fresh))
for s in fresh:
    s.close()
check("SIGTERM: exit 0", serve.stop() == 0)
serve.cleanup()
finish()
