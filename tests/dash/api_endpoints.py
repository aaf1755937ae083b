#!/usr/bin/python3
"""The dashboard's JSON API against the database (docs/dashboard-api.md).

A state folder with succeeded, failed, running and dead (killed -9: recorded "running",
its lock free) runs of real workflows against the fixture server; `sluice serve --http
127.0.0.1:0`; every endpoint's JSON checked against the database and against `sluice
runs/show --json` (values, counts, order), paging (a limit/before walk sees every run
once), filters, 400 and 404 answers, HEAD, the graph's edges against the steps' needs,
a run with more failed tasks than are shown, the schedule of a served workflow against
`sluice next`, and read-only: the database files are byte-identical after every endpoint
was asked (the dead run stays "running" in the database while the API shows it
interrupted).

Usage: api_endpoints.py SLUICE BUILD_DIR SOURCE_DIR
"""
import json
import os
import signal
import socket
import subprocess
import time

from _apilib import SSE, get, get_json, main  # noqa: F401 (SSE: the events test's)

OK = """name: ok
steps:
  fetch:
    uses: http.get
    with: { url: "URL/get?x=1" }
  parse:
    uses: lua
    needs: [fetch]
    with: { code: "return 1" }
  both:
    uses: file.write
    with: { path: both.txt, content: "${{ steps.parse }} ${{ steps.fetch.status }}" }
"""
BAD = """name: bad
steps:
  items:
    uses: lua
    foreach: [1, 2, 3]
    with:
      code: |
        if item == 2 then error("item two is bad") end
        return item
  after:
    uses: lua
    needs: [items]
    with: { code: "return 1" }
"""
QUICK = """name: quick
steps:
  one:
    uses: lua
    with: { code: "return 1" }
"""
MANY = """name: many
steps:
  fail:
    uses: lua
    foreach: "${{ range(1, 1200) }}"
    on_error: continue
    with: { code: "error('no ' .. item)" }
"""
HOLD = """name: NAME
steps:
  wait:
    uses: lua
    with: { code: "sluice.sleep(120) return 1" }
"""
DEAD = """name: dead
steps:
  wait:
    uses: lua
    foreach: [1, 2, 3]
    concurrency: 1
    with: { code: "if item == 3 then sluice.sleep(120) end return item" }
"""
SCHED = """name: sched
schedule: { cron: ["0 3 * * *", "30 12 * * 1"], timezone: Europe/Paris, concurrency: queue }
steps:
  a:
    uses: lua
    with: { code: "return 1" }
"""


def wait_for(seconds, cond):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def cli_json(env, *args):
    p = subprocess.run([env.sluice, *args], cwd=env.work, env=env.env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    return json.loads(p.stdout) if p.returncode == 0 else None


def make_state(env):
    env.start_fixture()
    for name, text in (("ok", OK), ("bad", BAD), ("quick", QUICK), ("many", MANY)):
        env.write(name + ".yaml", text)
    env.write("hold.yaml", HOLD.replace("NAME", "hold"))
    env.write("dead.yaml", DEAD)
    env.write("sched.yaml", SCHED)
    for wf, code in (("ok", 0), ("bad", 1), ("quick", 0), ("ok", 0), ("quick", 0), ("bad", 1),
                     ("quick", 0), ("many", 0), ("quick", 0), ("quick", 0)):
        env.run(wf + ".yaml", expect=code)


def start_running(env):
    """A run going on (hold) and one whose process was killed (dead)."""
    hold = env.spawn_run("hold.yaml")
    dead = env.spawn_run("dead.yaml")
    running = lambda: env.q("select count(*) from runs where status = 'running'")[0][0] == 2
    env.check("two runs are recorded running", wait_for(15, running))
    progress = lambda: env.q("select s.status from steps s join runs r on r.seq = s.run"
                             " where r.workflow = 'dead'") == [("running",)]
    env.check("the dead run's step is recorded running before the kill", wait_for(15, progress))
    dead.send_signal(signal.SIGKILL)
    dead.wait(10)
    time.sleep(1)  # the live one is asleep in its task: nothing more is written
    return hold


def check_runs_list(env, port):
    status, headers, doc = get_json(port, "/api/runs")
    env.check("/api/runs is 200", status == 200, status)
    env.check("/api/runs is JSON", headers.get("content-type", "").startswith("application/json"))
    env.check("/api/runs is not cached", headers.get("cache-control") == "no-store")
    db = env.q("select seq, id, workflow, status, tasks_ok, tasks_failed from runs"
               " order by seq desc")
    runs = doc["runs"]
    env.check("every run, newest first", [r["id"] for r in runs] == [r[1] for r in db],
              [r["id"] for r in runs])
    env.check("no next page", doc["next"] is None)
    by_id = {r["id"]: r for r in runs}
    for seq, rid, wf, st, ok, failed in db:
        r = by_id.get(rid, {})
        want = "interrupted" if wf == "dead" else st
        env.check("run %s's fields" % rid, (r.get("seq"), r.get("workflow"), r.get("status"))
                  == (seq, wf, want), r)
        if st != "running":
            env.check("run %s's counts" % rid, r["tasks"]["ok"] == ok and
                      r["tasks"]["failed"] == failed, r.get("tasks"))
    dead = [r for r in runs if r["workflow"] == "dead"][0]
    env.check("the dead run says why", dead["error"] == "the process recording it ended", dead)
    _, _, doc = get_json(port, "/api/runs/" + dead["id"])
    step = doc["steps"][0]
    env.check("the dead run's step: canceled, with its counts so far", step["status"] ==
              "canceled" and step["total"] == 3 and step["ok"] >= 1, step)
    hold = [r for r in runs if r["workflow"] == "hold"][0]
    env.check("the live run is running, unfinished", hold["status"] == "running" and
              hold["finished"] is None, hold)
    return runs


def check_filters(env, port):
    _, _, doc = get_json(port, "/api/runs?workflow=bad")
    env.check("workflow filter", [r["workflow"] for r in doc["runs"]] == ["bad", "bad"], doc)
    _, _, doc = get_json(port, "/api/runs?status=failed")
    want = [r[0] for r in env.q("select id from runs where status = 'failed' order by seq desc")]
    env.check("status filter", [r["id"] for r in doc["runs"]] == want, doc)
    _, _, doc = get_json(port, "/api/runs?status=succeeded&workflow=quick&limit=2")
    env.check("both filters and a limit", len(doc["runs"]) == 2 and
              all(r["workflow"] == "quick" and r["status"] == "succeeded" for r in doc["runs"])
              and doc["next"] == doc["runs"][1]["id"], doc)
    _, _, doc = get_json(port, "/api/runs?status=running")
    env.check("a dead run is not running", [r["workflow"] for r in doc["runs"]] == ["hold"], doc)
    for query, word in (("limit=0", "limit"), ("limit=501", "limit"), ("limit=x", "limit"),
                        ("limit=", "limit"), ("status=done", "status"), ("workflow=", "workflow"),
                        ("before=nosuchrun", "before"), ("before=", "before"),
                        ("workflow=" + "w" * 300, "workflow")):
        status, headers, doc = get_json(port, "/api/runs?" + query)
        env.check("400 for %s" % query[:20], status == 400 and doc and
                  doc.get("error", "").startswith(word), (status, doc))


def check_paging(env, port, all_runs):
    for limit in (1, 3, 4):
        seen, before, pages = [], None, 0
        while pages < 100:
            path = "/api/runs?limit=%d" % limit + ("&before=" + before if before else "")
            status, _, doc = get_json(port, path)
            if status != 200:
                break
            seen += [r["id"] for r in doc["runs"]]
            pages += 1
            before = doc["next"]
            if before is None:
                break
        env.check("paging by %d sees every run once" % limit,
                  seen == [r["id"] for r in all_runs], seen)
        env.check("paging by %d takes ceil(n/limit) pages" % limit,
                  pages == -(-len(all_runs) // limit), pages)
    seq = all_runs[4]["seq"]
    _, _, doc = get_json(port, "/api/runs?before=%d" % seq)
    env.check("before a seq", [r["id"] for r in doc["runs"]] ==
              [r["id"] for r in all_runs[5:]], doc)
    _, _, doc = get_json(port, "/api/runs?before=%s&workflow=quick" % all_runs[0]["id"])
    want = [r["id"] for r in all_runs[1:] if r["workflow"] == "quick"]
    env.check("before an id, with a filter", [r["id"] for r in doc["runs"]] == want, doc)


def check_run(env, port, rid):
    status, headers, doc = get_json(port, "/api/runs/" + rid)
    env.check("/api/runs/RUN is 200", status == 200, status)
    env.check("/api/runs/RUN is not cached", headers.get("cache-control") == "no-store")
    seq = doc["seq"]
    steps = env.q("select id, status, total, ok, failed, skipped, needs from steps"
                  " where run = ? order by idx", seq)
    env.check("the run's steps, in order", [(s["id"], s["status"], s["total"], s["ok"],
                                             s["failed"], s["skipped"]) for s in doc["steps"]]
              == [s[:6] for s in steps], doc["steps"])
    env.check("the steps' needs", [s["needs"] for s in doc["steps"]] ==
              [json.loads(s[6]) for s in steps], doc["steps"])
    failed = env.q("select s.id, t.item, t.error, t.attempts from tasks t join steps s on"
                   " s.run = t.run and s.idx = t.step where t.run = ? and t.status = 'failed'"
                   " order by t.step, t.item limit 1000", seq)
    env.check("the failed tasks", [(f["step"], f["item"] - 1, f["error"], f["attempts"])
                                   for f in doc["failed"]] == failed, doc["failed"])
    logs = env.q("select message from (select * from logs where run = ? order by seq desc"
                 " limit 200) order by seq", seq)
    env.check("the log tail", [line["message"] for line in doc["log"]] == [m[0] for m in logs])
    return doc


def check_runs(env, port, runs):
    bad = [r for r in runs if r["workflow"] == "bad"][0]
    doc = check_run(env, port, bad["id"])
    env.check("the failed task's error", doc["failed"] and
              "item two is bad" in doc["failed"][0]["error"] and doc["failed"][0]["item"] == 2,
              doc["failed"])
    env.check("not more failed than shown", doc["failed_more"] is False)
    many = [r for r in runs if r["workflow"] == "many"][0]
    doc = check_run(env, port, many["id"])
    env.check("1,000 failed shown, and a flag for more", len(doc["failed"]) == 1000 and
              doc["failed_more"] is True and doc["steps"][0]["failed"] == 1200,
              (len(doc["failed"]), doc["failed_more"]))
    _, _, last = get_json(port, "/api/runs/last")
    env.check("/api/runs/last is the newest", last["id"] == runs[0]["id"], last.get("id"))
    for path in ("/api/runs/nosuch", "/api/runs/nosuch/graph", "/api/runs/%s/bogus" % bad["id"],
                 "/api/workflows/nosuch", "/api/nothing", "/api/runs/" + "x" * 200):
        status, _, doc = get_json(port, path)
        env.check("404 for %s" % path[:40], status == 404 and doc and "error" in doc,
                  (status, doc))
    status, headers, body = get(port, "/api/runs", method="HEAD")
    env.check("HEAD /api/runs: the head, no body", status == 200 and body == b"" and
              headers.get("content-type", "").startswith("application/json"), (status, body))
    status, _, body = get(port, "/api/runs/" + many["id"], method="HEAD")
    env.check("HEAD of a big run: no body", status == 200 and body == b"", status)


def check_graph(env, port, runs):
    ok = [r for r in runs if r["workflow"] == "ok"][0]
    status, _, doc = get_json(port, "/api/runs/%s/graph" % ok["id"])
    env.check("the graph is 200", status == 200, status)
    env.check("its nodes are the steps", [(n["id"], n["kind"], n["status"]) for n in
                                          doc["nodes"]] ==
              [("fetch", "http.get", "ok"), ("parse", "lua", "ok"), ("both", "file.write", "ok")],
              doc["nodes"])
    env.check("nodes have counts", all(n["total"] == 1 and n["ok"] == 1 and n["failed"] == 0
                                       for n in doc["nodes"]), doc["nodes"])
    edges = {(e["from"], e["to"]) for e in doc["edges"]}
    db = set()
    for sid, needs in env.q("select id, needs from steps where run = ?", ok["seq"]):
        db |= {(n, sid) for n in json.loads(needs)}
    env.check("edges are the recorded needs", edges == db, (edges, db))
    env.check("explicit and implied needs", edges == {("fetch", "parse"), ("fetch", "both"),
                                                      ("parse", "both")}, edges)


def check_workflows(env, port, served):
    status, headers, doc = get_json(port, "/api/workflows")
    env.check("/api/workflows is 200", status == 200 and
              headers.get("cache-control") == "no-store", status)
    names = {w["name"]: w for w in doc["workflows"]}
    stored = {r[0] for r in env.q("select name from workflows")}
    env.check("every recorded workflow", stored <= set(names), (stored, set(names)))
    env.check("recorded only: not served", all(not names[n]["served"] for n in stored), names)
    _, _, one = get_json(port, "/api/workflows/quick")
    want = [r[0] for r in env.q("select id from runs where workflow = 'quick'"
                                " order by seq desc limit 20")]
    env.check("a workflow's last runs", [r["id"] for r in one["runs"]] == want, one)
    env.check("its path and hash", one["path"] == "quick.yaml" and one["hash"] ==
              env.q("select hash from workflows where name = 'quick'")[0][0], one)
    if not served:
        return
    s = names.get("sched")
    env.check("the served workflow is listed", s is not None and s["served"], names.keys())
    if s is None:
        return
    env.check("its schedule", s["schedule"] == {"cron": ["0 3 * * *", "30 12 * * 1"],
                                                "timezone": "Europe/Paris",
                                                "concurrency": "queue", "missed": "last",
                                                "catchup_ms": 3600000, "jitter_ms": 0},
              s["schedule"])
    nxt = subprocess.run([env.sluice, "next", "sched.yaml", "--count", "5"], cwd=env.work,
                         env=env.env, stdout=subprocess.PIPE, timeout=30).stdout.decode().split()
    env.check("its next ticks, as `sluice next` prints them", s["next"] == nxt, (s["next"], nxt))
    env.check("its lease and runs", s["lease_held"] is True and s["active"] == 0, s)


def check_empty(env):
    """Before any run: empty lists, 404 for a run."""
    serve, port = env.serve(log="serve0.log")
    status, _, doc = get_json(port, "/api/runs")
    env.check("no runs yet: an empty list", status == 200 and doc == {"runs": [], "next": None},
              (status, doc))
    status, _, doc = get_json(port, "/api/runs/last")
    env.check("no runs yet: 404 for the last", status == 404 and "error" in doc, (status, doc))
    status, _, doc = get_json(port, "/api/workflows")
    env.check("no runs yet: no workflows", status == 200 and doc == {"workflows": []}, doc)
    env.stop(serve, "serve --http on no state")


def check_big_run(env, port):
    """A run of 10,000 steps (2 MB of JSON): read slowly through a small window it comes
    whole and the same as read at once (written while the socket drains); a client that
    goes away in the middle leaves the server answering."""
    steps = "".join("  s%05d:\n    uses: lua\n    with: { code: \"return 1\" }\n" % i
                    for i in range(10000))
    env.write("big.yaml", "name: big\nsteps:\n" + steps)
    env.run("big.yaml", expect=0, timeout=120)
    rid = env.q("select id from runs where workflow = 'big'")[0][0]
    status, _, fast = get(port, "/api/runs/" + rid, timeout=60)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(30)
    s.connect(("127.0.0.1", port))
    s.sendall(("GET /api/runs/%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
               % rid).encode())
    time.sleep(1)  # the server fills the window and waits for the drain
    raw = b""
    while True:
        data = s.recv(4096)
        if not data:
            break
        raw += data
        time.sleep(0.0005)
    s.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    text, rest = b"", body
    while rest:  # de-chunk
        size, _, rest = rest.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            break
        text, rest = text + rest[:n], rest[n + 2:]
    doc = json.loads(text)
    env.check("a run of 10,000 steps read slowly comes whole", len(doc["steps"]) == 10000 and
              doc == json.loads(fast), (len(text), len(fast)))
    env.check("it is over 2 MB", len(fast) > 2000000, len(fast))
    for _ in range(3):  # gone in the middle, three times
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(("GET /api/runs/%s HTTP/1.1\r\nHost: x\r\n\r\n" % rid).encode())
        s.recv(4096)
        s.close()
    status, _, doc = get_json(port, "/api/runs?limit=1")
    env.check("the server answers after clients left mid-answer", status == 200 and
              doc["runs"][0]["id"] == rid, status)


def test(env):
    check_empty(env)
    make_state(env)
    serve, port = env.serve()
    hold = start_running(env)
    before = env.db_digest()
    runs = check_runs_list(env, port)
    check_filters(env, port)
    check_paging(env, port, runs)
    check_runs(env, port, runs)
    check_graph(env, port, runs)
    check_workflows(env, port, served=False)
    for path in ("/api/runs", "/api/runs/last", "/api/runs/last/graph", "/api/workflows"):
        get(port, path)
    env.check("the database is byte-identical after every endpoint", env.db_digest() == before)
    env.check("the dead run is still 'running' in the database",
              env.q("select status from runs where workflow = 'dead'") == [("running",)])
    # The same fields as the command line's (which marks the dead run as the API showed it).
    cli = cli_json(env, "runs", "--json", "--limit", "100")
    _, _, doc = get_json(port, "/api/runs")
    api = [{k: v for k, v in r.items() if k != "seq"} for r in doc["runs"]]
    env.check("/api/runs says what `sluice runs --json` says", api == cli, (api[:2], cli[:2]))
    env.check("the reap marks the dead run's running step canceled",
              env.q("select s.status from steps s join runs r on r.seq = s.run"
                    " where r.workflow = 'dead'") == [("canceled",)])
    bad = [r for r in runs if r["workflow"] == "bad"][0]["id"]
    cli = cli_json(env, "show", "--json", bad)
    _, _, doc = get_json(port, "/api/runs/" + bad)
    for key in ("id", "workflow", "path", "trigger", "status", "error", "started", "finished",
                "duration_ms", "tasks", "failed"):
        env.check("show --json's %s" % key, doc.get(key) == cli.get(key), (doc.get(key),
                                                                            cli.get(key)))
    env.check("show --json's steps", [{k: v for k, v in s.items() if k != "needs"}
                                      for s in doc["steps"]] == cli["steps"])
    check_big_run(env, port)
    hold.send_signal(signal.SIGTERM)
    hold.wait(20)
    env.stop(serve, "serve --http")
    serve, port = env.serve("sched.yaml", log="serve2.log")
    wait_for(10, lambda: env.q("select count(*) from leases where workflow = 'sched'")[0][0])
    check_workflows(env, port, served=True)
    env.stop(serve, "serve --http with a schedule")


if __name__ == "__main__":
    main(test)
