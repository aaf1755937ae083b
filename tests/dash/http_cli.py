"""sluice serve --http ADDR on the command line: the address forms (HOST:PORT, :PORT,
localhost:PORT, [::1]:PORT); an address off loopback refused (exit 2, naming
--http-public) unless --http-public is given, then served with a warning; --http with
--once, --http-public alone, a malformed address and a port in use: exit 2 with a clear
message; --http beside workflows to schedule; SIGTERM exits 0.
Usage: http_cli.py SLUICE BUILD_DIR SOURCE_DIR"""

import os
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _http import Serve, check, finish, get, request  # noqa

sluice = sys.argv[1]
scratch = tempfile.mkdtemp(prefix="sluice-http-cli-")
env = dict(os.environ, SLUICE_STATE=os.path.join(scratch, "state"))


def run(*args):
    p = subprocess.run([sluice, "serve"] + list(args), cwd=scratch, env=env,
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stderr


# off loopback
rc, err = run("--http", "0.0.0.0:0")
check("0.0.0.0 without --http-public: exit 2", rc == 2, (rc, err))
check("its message names --http-public",
      "sluice: error: serve: --http 0.0.0.0:0: 0.0.0.0 is off loopback: the dashboard would "
      "be open to the network; add --http-public to serve it there" in err, err)
rc, err = run("--http", "10.20.30.40:7070")
check("another address off loopback: exit 2", rc == 2 and "off loopback" in err, (rc, err))
serve = Serve(sluice, "0.0.0.0:0", ["--http-public"])
status, _, _, _ = get(serve.port, "/x")
check("with --http-public it serves", status == 404, status)
check("and logs a warning that it is reachable from the network",
      " warn " in serve.text() and "off loopback (--http-public)" in serve.text(), serve.text())
check("SIGTERM: exit 0", serve.stop() == 0)
serve.cleanup()

# usage errors
rc, err = run("--http", "127.0.0.1:0", "--once", "wf")
check("--http with --once: exit 2", rc == 2 and "--http is for the daemon, not --once" in err,
      (rc, err))
rc, err = run("--http-public", "wf")
check("--http-public without --http: exit 2", rc == 2 and "--http-public" in err, (rc, err))
for bad in ["nonsense", "127.0.0.1", "127.0.0.1:99999", "example.com:80", "::1:80", "[::1]"]:
    rc, err = run("--http", bad)
    check("a malformed address %r: exit 2" % bad,
          rc == 2 and err.startswith("sluice: error: serve: --http %s: " % bad), (rc, err))
holder = socket.socket()
holder.bind(("127.0.0.1", 0))
holder.listen(1)
taken = holder.getsockname()[1]
rc, err = run("--http", "127.0.0.1:%d" % taken)
check("a port in use: exit 2",
      rc == 2 and "sluice: error: serve: --http 127.0.0.1:%d: address already in use" % taken
      in err, (rc, err))
holder.close()

# the address forms
for addr, host in [(":0", "127.0.0.1"), ("localhost:0", "127.0.0.1"), ("127.0.0.2:0", "127.0.0.2")]:
    serve = Serve(sluice, addr)
    check("%s binds %s" % (addr, host), serve.host == host, serve.host)
    status, _, _, _ = request(serve.port, b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\n", host=host)
    check("%s answers" % addr, status == 404, status)
    check("%s: SIGTERM exits 0" % addr, serve.stop() == 0)
    serve.cleanup()
try:
    probe = socket.socket(socket.AF_INET6)
    probe.bind(("::1", 0))
    probe.close()
    have_v6 = True
except OSError:
    have_v6 = False
if have_v6:
    serve = Serve(sluice, "[::1]:0")
    check("[::1]:0 binds ::1", serve.host == "::1", serve.host)
    status, _, _, _ = request(serve.port, b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\n",
                              host="::1")
    check("[::1] answers", status == 404, status)
    check("[::1]: SIGTERM exits 0", serve.stop() == 0)
    serve.cleanup()

# beside workflows
serve_dir = tempfile.mkdtemp(prefix="sluice-http-wf-")
with open(os.path.join(serve_dir, "nightly.yaml"), "w") as f:
    f.write("name: nightly\nschedule: { cron: \"0 3 * * *\" }\nsteps:\n"
            "  hello:\n    uses: lua\n    with: { code: \"return 1\" }\n")
serve = Serve(sluice, "127.0.0.1:0", [serve_dir])
status, _, _, _ = get(serve.port, "/x")
check("--http beside a workflow folder answers", status == 404, status)
rc = serve.stop()
log = serve.text()
check("and schedules the workflow", "serving 1 workflow file, 1 scheduled" in log, log)
check("SIGTERM: exit 0", rc == 0, rc)
serve.cleanup()
finish()
