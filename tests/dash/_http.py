"""What the http_*.py tests share: a `sluice serve --http` started on a scratch state
folder (its port read from the `dashboard at http://HOST:PORT/` log line), raw-socket
requests, and a check() that counts failures and exits non-zero at the end."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

FAILURES = []
PASSED = [0]


def check(name, cond, detail=""):
    if cond:
        PASSED[0] += 1
        print("ok   " + name)
    else:
        FAILURES.append(name)
        print("FAIL " + name + (": " + str(detail) if detail else ""))


def finish():
    print("%d passed, %d failed" % (PASSED[0], len(FAILURES)))
    sys.exit(1 if FAILURES else 0)


class Serve:
    """A `sluice serve --http ADDR [ARGS...]` in a scratch folder; stop() ends it."""

    def __init__(self, sluice, addr="127.0.0.1:0", args=(), env=None, wait=True):
        self.dir = tempfile.mkdtemp(prefix="sluice-http-")
        self.log_path = os.path.join(self.dir, "serve.log")
        e = dict(os.environ)
        e["SLUICE_STATE"] = os.path.join(self.dir, "state")
        e.update(env or {})
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sluice, "serve", "--http", addr] + list(args),
                                     cwd=self.dir, env=e, stdout=subprocess.DEVNULL,
                                     stderr=self.log)
        self.port = None
        self.host = None
        if wait:
            self.wait_port()

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_port(self, seconds=10):
        deadline = time.time() + seconds
        while time.time() < deadline:
            m = re.search(r"dashboard at http://(\[[0-9a-f:]+\]|[0-9.]+):(\d+)/", self.text())
            if m:
                self.host = m.group(1).strip("[]")
                self.port = int(m.group(2))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("no dashboard line in the log:\n" + self.text())

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def connect(port, host="127.0.0.1", timeout=10):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def read_all(s, limit=64 << 20):
    data = b""
    try:
        while len(data) < limit:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def parse_response(data, head=False):
    """(status, headers (lower-case names), body, rest) of the first response in data;
    None when it is incomplete. A chunked body is decoded; a HEAD's response has none."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    rest = data[end + 4:]
    if head:
        return status, headers, b"", rest
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            eol = rest.find(b"\r\n")
            if eol < 0:
                return None
            size = int(rest[:eol], 16)
            if len(rest) < eol + 2 + size + 2:
                return None
            body += rest[eol + 2:eol + 2 + size]
            rest = rest[eol + 2 + size + 2:]
            if size == 0:
                return status, headers, body, rest
    length = int(headers.get("content-length", "-1"))
    if length < 0:
        return status, headers, rest, b""
    if len(rest) < length:
        return None
    return status, headers, rest[:length], rest[length:]


def request(port, raw, host="127.0.0.1", head=False):
    """Sends raw bytes on a new connection, reads to EOF: (status, headers, body, rest)."""
    s = connect(port, host)
    s.sendall(raw)
    data = read_all(s)
    s.close()
    return parse_response(data, head) or (0, {}, data, b"")


def get(port, path, method="GET", extra=""):
    return request(port, ("%s %s HTTP/1.1\r\nHost: t\r\n%sConnection: close\r\n\r\n"
                          % (method, path, extra)).encode())
