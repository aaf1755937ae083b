"""Headless Chromium driven through the DevTools protocol, for the dashboard's browser tests
(tests/dash/pages_browser.py) and benchmark (bench/dash_page.py).

Debian's /usr/bin/chromium runs with a fresh --user-data-dir in a temporary folder and
--remote-debugging-port=0; the port it picked is read from DevToolsActivePort there, and
the page target is driven over python3-websocket. Everything waits with a deadline.
"""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

CHROMIUM = "/usr/bin/chromium"


def available():
    return os.access(CHROMIUM, os.X_OK)


class Browser:
    """One Chromium process with one page; `events` keeps what the page reported."""

    def __init__(self, width=1280, height=800):
        import websocket  # python3-websocket: a test dependency (Makefile DEBS)

        self.profile = tempfile.mkdtemp(prefix="sluice-chromium.")
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking",
             "--remote-debugging-port=0", "--remote-allow-origins=*",
             "--user-data-dir=" + self.profile, "--window-size=%d,%d" % (width, height),
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = self._port(30)
        targets = self._targets(port, 15)
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30,
                                              suppress_origin=True)
        self.next_id = 0
        self.events = []
        for domain in ("Page", "Runtime", "Log"):
            self.call(domain + ".enable")

    def _port(self, seconds):
        path = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("chromium exited with %s" % self.proc.returncode)
            try:
                with open(path) as f:
                    first = f.readline().strip()
                if first:
                    return int(first)
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise RuntimeError("chromium wrote no DevToolsActivePort in %d s" % seconds)

    @staticmethod
    def _targets(port, seconds):
        deadline = time.time() + seconds
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port,
                                            timeout=5) as r:
                    targets = json.load(r)
                if any(t.get("type") == "page" for t in targets):
                    return targets
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("chromium shows no page target")
            time.sleep(0.1)

    def call(self, method, params=None, timeout=30):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params or {}}))
        deadline = time.time() + timeout
        while time.time() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)
        raise RuntimeError("%s: no answer in %d s" % (method, timeout))

    def wait_event(self, method, timeout=30, since=0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for ev in self.events[since:]:
                if ev["method"] == method:
                    return ev
            since = len(self.events)
            self.ws.settimeout(max(0.05, deadline - time.time()))
            try:
                msg = json.loads(self.ws.recv())
            except Exception:  # the socket's timeout: look again until the deadline
                continue
            finally:
                self.ws.settimeout(30)
            if "method" in msg:
                self.events.append(msg)
        raise RuntimeError("no %s in %d s" % (method, timeout))

    def goto(self, url, timeout=30):
        """Loads `url`; returns the ms from navigation to the load event."""
        since = len(self.events)
        start = time.time()
        self.call("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired", timeout, since)
        return (time.time() - start) * 1000

    def eval(self, expression, timeout=30):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True}, timeout)
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expression, r["exceptionDetails"]))
        return r["result"].get("value")

    def viewport(self, width, height, mobile=False):
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1,
                   "mobile": mobile})

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def console_errors(self):
        """What the page logged as an error or a CSP violation."""
        out = []
        for ev in self.events:
            if ev["method"] == "Log.entryAdded":
                entry = ev["params"]["entry"]
                if entry.get("level") == "error" or "Content Security Policy" in entry.get(
                        "text", ""):
                    out.append(entry.get("text", ""))
            elif ev["method"] == "Runtime.exceptionThrown":
                out.append(str(ev["params"]["exceptionDetails"].get("text")))
        return out

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
