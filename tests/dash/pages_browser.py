#!/usr/bin/python3
"""The dashboard's pages in a real browser (issue 15; docs/dashboard.md).

Records runs with `sluice run` (one that succeeds with a small graph, one that fails with a
hostile error text, one of a scheduled workflow), starts `sluice serve --http 127.0.0.1:0`
on their state and folder, and loads each page in Debian's headless Chromium through the
DevTools protocol: the runs page lists every run of the database (and pages and filters on
the server, without JavaScript); the failed run's page shows the failed task's error as
text (no script of it runs, no element of it exists); the graph has one SVG node per step
with its id and one edge per need; the workflow page shows the next ticks `sluice next`
prints; a run going on in another process updates its page without a reload (SSE); no page
breaks its CSP or logs an error; at 375 px nothing but the scrolling boxes is wider than
the screen. Screenshots of each page at 1280x800 and 375x800 go to BUILD/dash-screens/.

Usage: pages_browser.py SLUICE BUILD_DIR SOURCE_DIR. Exit 77 (skip) only without chromium.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pages_cdp  # noqa: E402

SHOP = """name: shop
steps:
  list:
    uses: lua
    with: { code: "return {'apples', 'pears', 'plums'}" }
  prices:
    uses: lua
    foreach: ${{ steps.list }}
    with: { code: "return #item * 10" }
  stock:
    uses: lua
    foreach: ${{ steps.list }}
    with: { code: "return #item" }
  report:
    uses: lua
    needs: [prices, stock]
    with: { code: "return 'done'" }
"""

HOSTILE_ERROR = ("<script>document.title='pwned'</script>"
                 "<img src=x onerror=\"document.title='pwned'\">&amp;")
HOSTILE = """name: hostile
steps:
  first:
    uses: lua
    with: { code: "return 1" }
  boom:
    uses: lua
    needs: [first]
    foreach: [1, 2, 3]
    with:
      code: |
        if item == 2 then error([[%s]], 0) end
        return item
""" % HOSTILE_ERROR

NIGHTLY = """name: nightly
schedule:
  cron: "0 3 * * *"
  timezone: Europe/Paris
  concurrency: forbid
steps:
  hello:
    uses: lua
    with: { code: "return 'hi'" }
"""

# An error of bytes that are not UTF-8 (\351 alone, \377, \376): shown as U+FFFD.
BYTES = """name: bytes
steps:
  bad:
    uses: lua
    with: { code: "error(\\"caf\\\\233 \\\\255\\\\254 end\\", 0)" }
"""

# 1,000 failed tasks whose errors escape four-fold: a run page of some 16 MB, more than a
# socket holds, so the page is written as the client drains it.
MANY = """name: many
steps:
  fail:
    uses: lua
    foreach: ${{ range(1, 1000) }}
    on_error: continue
    with: { code: "error(string.rep('<', 4000), 0)" }
"""

SLOW = """name: slow
steps:
  tick:
    uses: exec
    foreach: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]
    concurrency: 1
    with: { argv: [sleep, "0.35"] }
"""

failures = []
passed = 0


def check(cond, what):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(what)
        print("FAIL:", what, flush=True)


def fetch(url):
    """(status, headers, body text) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode("utf-8", "replace")


class Env:
    def __init__(self, sluice, work):
        self.sluice = sluice
        self.work = work
        self.env = dict(os.environ, SLUICE_STATE=os.path.join(work, ".sluice"))
        self.serve = None
        self.base = None

    def run(self, *args, check_exit=None, timeout=120):
        p = subprocess.run([self.sluice, *args], cwd=self.work, env=self.env,
                           capture_output=True, text=True, timeout=timeout)
        if check_exit is not None and p.returncode != check_exit:
            raise RuntimeError("sluice %s: exit %d\n%s" % (args, p.returncode, p.stderr))
        return p

    def start_serve(self, folder):
        self.log = open(os.path.join(self.work, "serve.log"), "w+")
        self.serve = subprocess.Popen([self.sluice, "serve", "--http", "127.0.0.1:0", folder],
                                      cwd=self.work, env=self.env, stdout=self.log,
                                      stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            self.log.seek(0)
            m = re.search(r"dashboard at (http://127\.0\.0\.1:\d+)/", self.log.read())
            if m:
                self.base = m.group(1)
                return
            if self.serve.poll() is not None:
                break
            time.sleep(0.05)
        self.log.seek(0)
        raise RuntimeError("serve --http did not say where:\n" + self.log.read())

    def stop(self):
        """Stops serve with SIGTERM; its exit status (0: a clean stop)."""
        if self.serve and self.serve.poll() is None:
            self.serve.terminate()
            try:
                self.serve.wait(20)
            except subprocess.TimeoutExpired:
                self.serve.kill()
                self.serve.wait()
        return self.serve.returncode if self.serve else None


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def wide_workflow(count):
    lines = ["name: wide", "steps:"]
    for i in range(count):
        lines += ["  s%d:" % i, "    uses: lua", '    with: { code: "return 1" }']
        if i % 2:
            lines.append("    needs: [s%d]" % (i - 1))
    return "\n".join(lines) + "\n"


def record_runs(env):
    wfdir = os.path.join(env.work, "workflows")
    os.mkdir(wfdir)
    write(os.path.join(env.work, "shop.yaml"), SHOP)
    write(os.path.join(env.work, "hostile.yaml"), HOSTILE)
    write(os.path.join(env.work, "slow.yaml"), SLOW)
    write(os.path.join(wfdir, "nightly.yaml"), NIGHTLY)
    env.run("run", "--quiet", "shop.yaml", check_exit=0)
    env.run("run", "--quiet", "hostile.yaml", check_exit=1)
    env.run("run", "--quiet", os.path.join(wfdir, "nightly.yaml"), check_exit=0)
    env.run("run", "--quiet", "shop.yaml", check_exit=0)
    env.run("run", "--quiet", "hostile.yaml", check_exit=1)
    write(os.path.join(env.work, "bytes.yaml"), BYTES)
    env.run("run", "--quiet", "bytes.yaml", check_exit=1)
    write(os.path.join(env.work, "many.yaml"), MANY)
    env.run("run", "--quiet", "many.yaml", check_exit=0)
    write(os.path.join(env.work, "wide.yaml"), wide_workflow(1200))
    env.run("run", "--quiet", "wide.yaml", check_exit=0)
    runs = json.loads(env.run("runs", "--json", "--limit", "100", check_exit=0).stdout)
    return wfdir, runs


def check_http(env, runs):
    """What needs no browser: headers, paging and filters in plain HTML, 404, 400."""
    status, headers, body = fetch(env.base + "/")
    check(status == 200 and headers.get("Content-Type", "").startswith("text/html"), "/ is HTML")
    check(headers.get("Cache-Control") == "no-store", "pages are no-store")
    check((headers.get("Content-Security-Policy") or "").startswith("default-src 'self'"),
          "pages carry the CSP")
    m = re.search(r'href="(/static/app\.css\?v=[0-9a-f]+)"', body)
    check(m is not None, "the page links its stylesheet by hash")
    if m:
        s, h, css = fetch(env.base + m.group(1))
        check(s == 200 and "max-age=31536000" in (h.get("Cache-Control") or "")
              and h.get("Content-Type", "").startswith("text/css") and "@media" in css,
              "app.css is served with a long cache")
    s, h, _ = fetch(env.base + "/static/app.js")
    check(s == 200 and h.get("Content-Type", "").startswith("text/javascript"), "app.js served")
    check(fetch(env.base + "/static/nope.js")[0] == 404, "an unknown asset is 404")
    check(fetch(env.base + "/runs/20990101T000000-dead")[0] == 404, "an unknown run is 404")
    check(fetch(env.base + "/workflows/nope")[0] == 404, "an unknown workflow is 404")
    s, _, page = fetch(env.base + "/workflows/shop")
    shop = [r["id"] for r in runs if r["workflow"] == "shop"]
    check(s == 200 and "Not served by this daemon" in page
          and re.findall(r'<tr data-run="([^"]+)"', page) == shop,
          "a workflow not served but recorded shows its runs")
    check(fetch(env.base + "/?limit=0")[0] == 400, "limit=0 is 400")
    check(fetch(env.base + "/?limit=abc")[0] == 400, "limit=abc is 400")
    # Paging on the server: two at a time, following "Older" links, newest first.
    ids, url = [], "/?limit=2"
    for _ in range(10):
        s, _, page = fetch(env.base + url)
        got = re.findall(r'<tr data-run="([^"]+)"', page)
        check(s == 200 and 0 < len(got) <= 2, "a page of at most 2 runs: %s" % url)
        ids += got
        m = re.search(r'<a class="page" href="([^"]+)">Older', page)
        if not m:
            break
        url = m.group(1).replace("&amp;", "&")
    check(ids == [r["id"] for r in runs], "paging lists every run once, newest first")
    _, _, page = fetch(env.base + "/?status=failed")
    failed = [r["id"] for r in runs if r["status"] == "failed"]
    check(re.findall(r'<tr data-run="([^"]+)"', page) == failed, "the status filter")
    _, _, page = fetch(env.base + "/?workflow=shop")
    shop = [r["id"] for r in runs if r["workflow"] == "shop"]
    check(re.findall(r'<tr data-run="([^"]+)"', page) == shop, "the workflow filter")
    _, _, page = fetch(env.base + "/?workflow=%3Cb%3E")
    check("<b>" not in page and "&lt;b&gt;" in page, "the filter's value is escaped")


def check_big_run(env, runs):
    """Past the caps: 500 graph nodes and a note, 300 timeline bars, the steps table in
    pages of 250."""
    run = next(r for r in runs if r["workflow"] == "wide")
    _, _, page = fetch(env.base + "/runs/" + run["id"])
    check(page.count('<g class="node ') == 500, "the graph draws 500 of 1,200 steps")
    check("first 500 of 1200 steps" in page, "the graph says what it leaves out")
    check(page.count('<rect class="bar ') == 300, "the timeline shows 300 steps")
    seen, url = [], "/runs/" + run["id"]
    for _ in range(10):
        s, _, page = fetch(env.base + url)
        rows = re.findall(r'<tr data-step="([^"]+)"', page)
        check(s == 200 and 0 < len(rows) <= 250, "a page of at most 250 steps: %s" % url)
        seen += rows
        m = re.search(r'<a class="page" href="([^"]+)">Next', page)
        if not m:
            break
        url = m.group(1).split("#")[0]
    check(seen == ["s%d" % i for i in range(1200)], "the steps' pages list every step once")
    check("Steps 1001\u20131200 of 1200" in page, "the last page says where it is")
    check(fetch(env.base + "/runs/" + run["id"] + "?steps=x")[0] == 400, "steps=x is 400")
    _, _, page = fetch(env.base + "/runs/" + run["id"] + "?steps=99999")
    check(re.findall(r'<tr data-step="([^"]+)"', page)[:1] == ["s0"],
          "steps past the end show the first page")


def shots(browser, name, url, outdir):
    """Screenshots at 1280x800 and 375x800; at 375 the page itself must not scroll sideways."""
    for width in (1280, 375):
        browser.viewport(width, 800, mobile=width < 500)
        browser.goto(url)
        browser.screenshot(os.path.join(outdir, "%s-%d.png" % (name, width)))
        if width == 375:
            wide = browser.eval("document.documentElement.scrollWidth")
            check(wide <= 376, "%s at 375 px is %s px wide" % (name, wide))
    browser.viewport(1280, 800)


def check_runs_page(browser, env, runs):
    browser.goto(env.base + "/")
    shown = browser.eval("Array.from(document.querySelectorAll('a.run-id'))"
                         ".map(a => a.textContent)")
    check(shown == [r["id"] for r in runs], "the runs page lists the database's runs")
    badges = browser.eval("Array.from(document.querySelectorAll('table.runs .badge'))"
                          ".map(b => b.textContent)")
    check(badges == [r["status"] for r in runs], "each run's status badge")


def check_failed_run(browser, env, runs):
    run = next(r for r in runs if r["workflow"] == "hostile")
    browser.goto(env.base + "/runs/" + run["id"])
    errors = browser.eval("Array.from(document.querySelectorAll('#failed-list td.error-text'))"
                          ".map(td => td.textContent)")
    check(len(errors) == 1 and HOSTILE_ERROR in errors[0],
          "the failed task's error is shown as text: %r" % errors)
    row = browser.eval("Array.from(document.querySelectorAll('#failed-list tr')[0].cells)"
                       ".map(c => c.textContent)")
    check(row[:3] == ["boom", "2", "1"], "the failed task's step, item and attempts: %r" % row)
    check("pwned" not in browser.eval("document.title"), "no script of the error ran")
    check(browser.eval("document.querySelectorAll('main img, main script').length") == 0,
          "no element of the error exists")
    check(not any(e["method"] == "Page.javascriptDialogOpening" for e in browser.events),
          "no dialog opened")
    status = browser.eval("document.querySelector('#run-status').textContent")
    check(status == "failed", "the run's status is failed: %r" % status)
    return run


def check_bytes(env, runs):
    """Bytes that are not UTF-8 in an error: the page stays UTF-8, each shown as U+FFFD."""
    run = next(r for r in runs if r["workflow"] == "bytes")
    with urllib.request.urlopen(env.base + "/runs/" + run["id"], timeout=10) as r:
        raw = r.read()
    try:
        page = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        check(False, "the page is valid UTF-8: %s" % e)
        return
    check("caf\ufffd \ufffd\ufffd end" in page, "bytes not UTF-8 shown as U+FFFD")


def raw_get(env, path):
    """A connected socket that has sent GET `path`."""
    host, port = env.base[len("http://"):].split(":")
    sock = socket.create_connection((host, int(port)), timeout=20)
    sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
    return sock


def dechunk(raw):
    """The body of a raw HTTP/1.1 chunked response; None when it is cut short."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    if b"chunked" not in head.lower():
        return None
    out = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            return None
        if size == 0:
            return b"".join(out)
        if len(rest) < size + 2:
            return None
        out.append(rest[:size])
        rest = rest[size + 2:]


def check_streaming(env, runs):
    """A page bigger than the socket holds: whole for a slow reader, and a reader that goes
    away mid-page leaves the server serving."""
    run = next(r for r in runs if r["workflow"] == "many")
    sock, got = raw_get(env, "/runs/" + run["id"]), []
    time.sleep(1.0)  # the server fills the socket and waits for it to drain
    while True:
        piece = sock.recv(65536)
        if not piece:
            break
        got.append(piece)
        time.sleep(0.002)
    sock.close()
    body = dechunk(b"".join(got))
    check(body is not None and len(body) > 16000000 and body.rstrip().endswith(b"</html>"),
          "a slow reader gets the whole page (%s bytes)" % (body and len(body)))
    body = body or b""
    check(body.count(b"<td class=\"error-text\">" + b"&lt;" * 4000) == 1000,
          "the 1,000 failed tasks, escaped")
    for _ in range(3):
        sock = raw_get(env, "/runs/" + run["id"])
        sock.recv(4096)
        time.sleep(0.3)
        sock.close()  # gone while the server waits on the socket
    check(fetch(env.base + "/")[0] == 200, "served after readers went away mid-page")


def check_graph(browser, env, runs):
    run = next(r for r in runs if r["workflow"] == "shop")
    browser.goto(env.base + "/runs/" + run["id"])
    nodes = browser.eval("Array.from(document.querySelectorAll('svg.graph g.node'))"
                         ".map(g => [g.getAttribute('data-step'), g.textContent])")
    ids = sorted(n[0] for n in nodes)
    check(ids == ["list", "prices", "report", "stock"], "one SVG node per step: %r" % nodes)
    check(all(n[1].startswith(n[0]) for n in nodes), "each node shows its step's id")
    edges = browser.eval("document.querySelectorAll('svg.graph .edges path').length")
    check(edges == 4, "one edge per need: %r" % edges)
    xs = browser.eval("Object.fromEntries(Array.from(document.querySelectorAll("
                      "'svg.graph g.node')).map(g => [g.getAttribute('data-step'),"
                      " g.getBoundingClientRect().left]))")
    check(xs["list"] < xs["prices"] == xs["stock"] < xs["report"], "layers by depth: %r" % xs)
    bars = browser.eval("document.querySelectorAll('svg.gantt rect.bar').length")
    check(bars == 4, "a timeline bar per step: %r" % bars)
    done = browser.eval("Array.from(document.querySelectorAll('table.steps tr[data-step]'))"
                        ".map(tr => [tr.getAttribute('data-step'),"
                        " tr.querySelector('.c-done').textContent,"
                        " tr.querySelector('.c-total').textContent])")
    check(sorted(done) == [["list", "1", "1"], ["prices", "3", "3"], ["report", "1", "1"],
                           ["stock", "3", "3"]], "items done/total per step: %r" % done)
    return run


def check_workflow_page(browser, env, wfdir):
    browser.goto(env.base + "/workflows/nightly")
    ticks = browser.eval("Array.from(document.querySelectorAll('ol.ticks li'))"
                         ".map(li => li.textContent)")
    want = env.run("next", os.path.join(wfdir, "nightly.yaml"), "--count", "5",
                   check_exit=0).stdout.split()
    check(ticks == want, "the workflow page's next ticks are `sluice next`'s: %r vs %r"
          % (ticks, want))
    text = browser.eval("document.querySelector('main').textContent")
    check("0 3 * * *" in text and "Europe/Paris" in text and "forbid" in text,
          "the schedule, its timezone and policies")
    check(browser.eval("document.querySelectorAll('table.runs a.run-id').length") == 1,
          "the workflow's recent runs")


def check_live(browser, env):
    """A run in another process: its page follows it without a reload."""
    slow = subprocess.Popen([env.sluice, "run", "--quiet", "slow.yaml"], cwd=env.work,
                            env=env.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run_id = None
        deadline = time.time() + 15
        while run_id is None and time.time() < deadline:
            _, _, body = fetch(env.base + "/?status=running")
            m = re.search(r'<tr data-run="([^"]+)"', body)
            run_id = m.group(1) if m else None
            time.sleep(0.1)
        check(run_id is not None, "the slow run shows as running")
        if run_id is None:
            return
        browser.goto(env.base + "/runs/" + run_id)
        browser.eval("window.__loaded_once = 42")
        first = int(browser.eval("document.querySelector('tr[data-step=\"tick\"] .c-done')"
                                 ".textContent"))
        check(first < 20, "the page opened before the run ended (%d done)" % first)
        later, deadline = first, time.time() + 15
        while later <= first and time.time() < deadline:
            time.sleep(0.2)
            later = int(browser.eval("document.querySelector('tr[data-step=\"tick\"] "
                                     ".c-done').textContent"))
        check(later > first, "items done went %d -> %d without a reload" % (first, later))
        status, deadline = "", time.time() + 30
        while status != "succeeded" and time.time() < deadline:
            time.sleep(0.25)
            status = browser.eval("document.querySelector('#run-status').textContent")
        check(status == "succeeded", "the run's end shows live: %r" % status)
        done = browser.eval("document.querySelector('tr[data-step=\"tick\"] .c-done')"
                            ".textContent")
        check(done == "20", "all 20 items done on the page: %r" % done)
        ok, deadline = "", time.time() + 10
        while ok != "20" and time.time() < deadline:
            time.sleep(0.2)
            ok = browser.eval("document.querySelector('#run-ok').textContent")
        check(ok == "20", "the run's tasks ok counted live: %r" % ok)
        check(browser.eval("window.__loaded_once") == 42, "the page never reloaded")
        return run_id
    finally:
        try:
            slow.wait(60)
        except subprocess.TimeoutExpired:
            slow.kill()
            slow.wait()


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    if not pages_cdp.available():
        print("SKIP: %s is not installed (apt-get install chromium)" % pages_cdp.CHROMIUM)
        return 77
    sluice = os.path.abspath(sys.argv[1])
    outdir = os.path.join(os.path.abspath(sys.argv[2]), "dash-screens")
    os.makedirs(outdir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="sluice-pages.")
    env, browser = Env(sluice, work), None
    try:
        wfdir, runs = record_runs(env)
        env.start_serve(wfdir)
        check_http(env, runs)
        check_big_run(env, runs)
        check_bytes(env, runs)
        check_streaming(env, runs)
        browser = pages_cdp.Browser()
        check_runs_page(browser, env, runs)
        failed = check_failed_run(browser, env, runs)
        shop = check_graph(browser, env, runs)
        check_workflow_page(browser, env, wfdir)
        check_live(browser, env)
        check(browser.console_errors() == [], "no page logged an error or a CSP violation: %r"
              % browser.console_errors())
        shots(browser, "runs", env.base + "/", outdir)
        shots(browser, "run-failed", env.base + "/runs/" + failed["id"], outdir)
        shots(browser, "run", env.base + "/runs/" + shop["id"], outdir)
        shots(browser, "workflow", env.base + "/workflows/nightly", outdir)
    finally:
        if browser:
            browser.close()
        status = env.stop()
        if env.serve:
            check(status == 0, "serve --http stopped cleanly on SIGTERM (exit %s)" % status)
            with open(os.path.join(work, "serve.log")) as f:
                log = f.read()
            check(not re.search(r"Sanitizer|runtime error:", log),
                  "serve --http ran clean of sanitizer reports")
        if failures:
            print(open(os.path.join(work, "serve.log")).read()[-3000:])
        shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed (screenshots in %s)" % (passed, len(failures), outdir))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
