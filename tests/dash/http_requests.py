"""sluice serve --http: requests over raw sockets. GET and HEAD (HEAD: the same head, no
body); 405 with Allow for every other method; the router's JSON 404; 414, 431 and 413 at
their bounds; keep-alive and pipelined requests answered in order; HTTP/1.0; a client
that resets mid-response does not take the server down; SIGTERM exits 0.
Usage: http_requests.py SLUICE BUILD_DIR SOURCE_DIR"""

import json
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _http import Serve, check, connect, finish, get, parse_response, read_all, request  # noqa

sluice = sys.argv[1]
serve = Serve(sluice)
port = serve.port

# GET and HEAD
status, headers, body, _ = get(port, "/no/such/page")
check("GET of an unknown path: 404", status == 404, status)
check("the 404 is the router's JSON", headers.get("content-type") == "application/json"
      and json.loads(body) == {"error": "no such page"}, body)
check("every response has nosniff", headers.get("x-content-type-options") == "nosniff", headers)
hstatus, hheaders, _, rest = request(port, b"HEAD /no/such/page HTTP/1.1\r\nConnection: close"
                                     b"\r\n\r\n", head=True)
check("HEAD: the same status and headers", hstatus == status and hheaders == headers,
      (hstatus, hheaders))
check("HEAD: no body", rest == b"", rest)

# other methods
for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]:
    status, headers, body, _ = get(port, "/api/runs", method=method)
    check(method + ": 405 with Allow: GET, HEAD",
          status == 405 and headers.get("allow") == "GET, HEAD", (status, headers))
    check(method + ": a JSON error", "error" in json.loads(body), body)
status, headers, _, _ = request(port, b"POST /api/runs HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd")
check("POST with a body: 405 and close", status == 405 and headers.get("connection") == "close",
      (status, headers))

# bounds
status, headers, body, _ = request(port, b"GET /api/runs HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
check("GET with a body: 413", status == 413 and headers.get("connection") == "close",
      (status, headers))
status, _, _, _ = request(port, b"GET /api/runs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"5\r\nhello\r\n0\r\n\r\n")
check("GET with a chunked body: 413", status == 413, status)
status, _, _, _ = get(port, "/" + "a" * 9000)
check("a 9,000-byte target: 414", status == 414, status)
status, _, _, _ = get(port, "/" + "a" * 8000)
check("an 8,000-byte target is within the bound (404)", status == 404, status)
many = "".join("X-H%d: v\r\n" % i for i in range(70))
status, _, _, _ = get(port, "/x", extra=many)
check("70 header lines: 431", status == 431, status)
status, _, _, _ = get(port, "/x", extra="X-Big: " + "v" * 9000 + "\r\n")
check("9,000 bytes of headers: 431", status == 431, status)
status, _, _, _ = get(port, "/x", extra="".join("X-H%d: v\r\n" % i for i in range(50)))
check("50 header lines are within the bound (404)", status == 404, status)
status, _, _, _ = get(port, "/a%zzb")
check("a malformed escape in the path: 400", status == 400, status)
status, _, _, _ = get(port, "/a%00b")
check("%00 in the path: 400", status == 400, status)
status, _, _, _ = request(port, b"GARBAGE\r\n\r\n")
check("not HTTP: 400", status == 400, status)

# keep-alive and pipelining
s = connect(port)
for i in range(3):
    s.sendall(b"GET /ka/%d HTTP/1.1\r\nHost: t\r\n\r\n" % i)
    data = b""
    while parse_response(data) is None:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    r = parse_response(data)
    check("keep-alive: request %d answered on the same connection" % i, r and r[0] == 404, data)
s.close()
s = connect(port)
s.sendall(b"".join(b"GET /p/%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(20))
          + b"GET /last HTTP/1.1\r\nConnection: close\r\n\r\n")
data = read_all(s)
s.close()
count = 0
while data:
    r = parse_response(data)
    if r is None:
        break
    count += 1
    data = r[3]
check("21 pipelined requests: 21 responses", count == 21, count)

# A client that shuts its side after its requests still gets every answer
s = connect(port)
s.sendall(b"".join(b"GET /h/%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(10)))
s.shutdown(socket.SHUT_WR)
data = read_all(s)
s.close()
count = 0
while data:
    r = parse_response(data)
    if r is None:
        break
    count += 1
    data = r[3]
check("10 requests then a half-close: 10 responses, then the close", count == 10, count)

# HTTP/1.0
s = connect(port)
s.sendall(b"GET /old HTTP/1.0\r\n\r\n")
data = read_all(s)
s.close()
check("HTTP/1.0: answered and closed", data.startswith(b"HTTP/1.1 404 ") and
      b"Transfer-Encoding" not in data and data.endswith(b"}\n"), data)

# A client that resets with many answers queued
for _ in range(5):
    s = connect(port)
    s.sendall(b"GET /r HTTP/1.1\r\n\r\n" * 400)
    s.recv(100)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
status, _, _, _ = get(port, "/after/reset")
check("after clients reset mid-response the server answers", status == 404, status)

rc = serve.stop()
check("SIGTERM: exit 0", rc == 0, rc)
log = serve.text()
check("the log names the dashboard", "dashboard at http://127.0.0.1:%d/" % port in log, log)
check("no error logged", " error " not in log, log)
serve.cleanup()
finish()
