"""tests/dash/_apilib.py: what the dashboard API tests (tests/dash/api_*.py) share.

A work folder with a state folder, the fixture server, real `sluice run`s and a real
`sluice serve --http 127.0.0.1:0` (its log line "dashboard at http://127.0.0.1:PORT/" gives
the port), plain HTTP requests, a small Server-Sent Events reader over a raw socket, and
checks that count failures. Bounded: every wait has a deadline. Not a test itself (a
file named _*.py is a helper: tests/integration.cmake skips it).
"""
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time


class Env:
    def __init__(self, argv):
        self.sluice = os.path.abspath(argv[1])
        self.build = os.path.abspath(argv[2])
        self.src = os.path.abspath(argv[3])
        self.work = tempfile.mkdtemp(prefix="sluice-dashapi.")
        self.state = os.path.join(self.work, "state")
        self.env = dict(os.environ, SLUICE_STATE=self.state,
                        SLUICE_PLUGIN_PATH=os.path.join(self.build, "tests", "plugins"))
        self.procs = []
        self.passed = self.failed = 0
        self.fixture = None
        self.url = None

    # ---- checks ----
    def check(self, name, cond, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            detail = str(detail)
            print("FAIL: %s %s" % (name, detail[:600] + ("..." if len(detail) > 600 else "")),
                  flush=True)
        return cond

    def report(self):
        print("passed %d, failed %d" % (self.passed, self.failed), flush=True)
        return 0 if self.failed == 0 else 1

    # ---- processes ----
    def start_fixture(self):
        server = os.path.join(self.build, "tests", "fixture", "fixture_server")
        port_file = os.path.join(self.work, "fixture.url")
        self.fixture = subprocess.Popen([server, "--port", "0", "--port-file", port_file,
                                         "--quiet", "--exit-with-parent"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(self.fixture)
        deadline = time.time() + 10
        while time.time() < deadline:
            if os.path.exists(port_file) and open(port_file).read().strip():
                self.url = open(port_file).read().strip()
                return
            time.sleep(0.05)
        raise SystemExit("fixture server did not start")

    def write(self, name, text):
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            f.write(text.replace("URL", self.url or ""))
        return path

    def run(self, wf, expect=None, timeout=60):
        p = subprocess.run([self.sluice, "run", wf], cwd=self.work, env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if expect is not None:
            self.check("sluice run %s exits %d" % (wf, expect), p.returncode == expect,
                       (p.returncode, p.stderr.decode()[-1500:]))
        return p.returncode

    def stop(self, proc, name):
        """SIGTERM, then its exit must be 0 (a sanitizer's report is not)."""
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            code = "timeout"
        self.check("%s stops on SIGTERM with 0" % name, code == 0, code)

    def spawn_run(self, wf):
        p = subprocess.Popen([self.sluice, "run", wf], cwd=self.work, env=self.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def serve(self, *operands, log="serve.log"):
        log_path = os.path.join(self.work, log)
        logf = open(log_path, "w")
        p = subprocess.Popen([self.sluice, "serve", "--http", "127.0.0.1:0", *operands],
                             cwd=self.work, env=self.env, stdout=logf, stderr=subprocess.STDOUT)
        self.procs.append(p)
        deadline = time.time() + 15
        while time.time() < deadline:
            m = re.search(r"dashboard at http://127\.0\.0\.1:(\d+)/", open(log_path).read())
            if m:
                return p, int(m.group(1))
            if p.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit("serve --http did not start:\n" + open(log_path).read())

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        subprocess.run(["rm", "-rf", self.work])

    # ---- the database ----
    def db(self):
        return sqlite3.connect("file:%s/state.db?mode=ro" % self.state, uri=True, timeout=10)

    def q(self, sql, *args):
        with self.db() as c:
            return c.execute(sql, args).fetchall()

    def db_digest(self):
        h = hashlib.sha256()
        for name in ("state.db", "state.db-wal"):
            path = os.path.join(self.state, name)
            if os.path.exists(path):
                h.update(name.encode())
                h.update(open(path, "rb").read())
        return h.hexdigest()


def get(port, path, method="GET", headers=None, timeout=10):
    """(status, headers dict lower-cased, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        c.close()


def get_json(port, path):
    status, headers, body = get(port, path)
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    return status, headers, doc


class SSE:
    """A Server-Sent Events client on a raw socket (chunked bodies de-chunked here)."""

    def __init__(self, port, path="/api/events", last_id=None, timeout=10, rcvbuf=0):
        self.sock = socket.socket()
        if rcvbuf:  # a small window: what it does not read stays queued at the server
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.closed = False
        extra = "Last-Event-ID: %s\r\n" % last_id if last_id is not None else ""
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n%s\r\n"
                           % (path, extra)).encode())
        self.raw = b""
        self.body = b""
        self.chunked = False
        self.headers = {}
        self.status = 0
        self.text = ""
        while b"\r\n\r\n" not in self.raw:
            self._recv(time.time() + timeout)
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "")

    def _recv(self, deadline):
        self.sock.settimeout(max(0.05, deadline - time.time()))
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("stream closed")
        self.raw += data

    def _dechunk(self):
        if not self.chunked:
            self.text += self.raw.decode("utf-8", "replace")
            self.raw = b""
            return
        while True:
            nl = self.raw.find(b"\r\n")
            if nl < 0:
                return
            size = int(self.raw[:nl].split(b";")[0], 16)
            if len(self.raw) < nl + 2 + size + 2:
                return
            self.text += self.raw[nl + 2:nl + 2 + size].decode("utf-8", "replace")
            self.raw = self.raw[nl + 2 + size + 2:]

    def events(self, until, seconds):
        """Events (dicts: id, event, data parsed) until `until(list)` is true or time runs
        out; returns them all."""
        out = []
        deadline = time.time() + seconds
        while time.time() < deadline:
            self._dechunk()
            while "\n\n" in self.text:
                block, self.text = self.text.split("\n\n", 1)
                ev = {}
                for line in block.split("\n"):
                    if line.startswith(":") or not line:
                        continue
                    k, _, v = line.partition(":")
                    ev[k] = v[1:] if v.startswith(" ") else v
                if "data" in ev:
                    ev["data"] = json.loads(ev["data"])
                    out.append(ev)
            if until(out):
                return out
            try:
                self._recv(deadline)
            except (socket.timeout, TimeoutError):
                pass
            except EOFError:
                self.closed = True
                break
        return out

    def close(self):
        self.sock.close()


def main(fn):
    env = Env(sys.argv)
    try:
        fn(env)
    finally:
        env.cleanup()
    sys.exit(env.report())
