#!/usr/bin/python3
"""/api/events: live progress as Server-Sent Events (docs/dashboard-api.md).

A client connects to a `sluice serve --http`; a `sluice run` in another process (its items
a little slow, its last one failing) shows up as run_started, step_progress while it runs
(items done, not yet all), task_failed with the error, run_finished with its status; ids
increase; a reconnect with Last-Event-ID gets exactly what came after that id; ?run=
keeps one run's events; HEAD gets the head only; the 65th stream is refused with 503.

Usage: api_events.py SLUICE BUILD_DIR SOURCE_DIR
"""
import time

from _apilib import SSE, get, main

SLOW = """name: slow
steps:
  tick:
    uses: lua
    foreach: [1, 2, 3, 4, 5, 6]
    concurrency: 1
    with:
      code: |
        sluice.sleep(0.4)
        if item == 6 then error("six is out") end
        return item
  after:
    uses: lua
    needs: [tick]
    with: { code: "return 1" }
"""
QUICK = """name: quick
steps:
  one:
    uses: lua
    with: { code: "return 1" }
"""


def finished(run_id):
    return lambda evs: any(e["event"] == "run_finished" and e["data"]["run"] == run_id
                           for e in evs)


def check_live(env, evs, run_id):
    mine = [e for e in evs if e["data"].get("run") == run_id]
    kinds = [e["event"] for e in mine]
    env.check("run_started first", kinds[:1] == ["run_started"], kinds)
    env.check("run_finished last", kinds[-1:] == ["run_finished"], kinds)
    start = mine[0]["data"] if mine else {}
    env.check("run_started names the workflow", start.get("workflow") == "slow" and
              start.get("trigger") == "manual", start)
    progress = [e["data"] for e in mine if e["event"] == "step_progress"]
    env.check("step_progress has its fields", progress and all(
        set(p) == {"run", "step", "status", "total", "ok", "failed", "skipped"}
        for p in progress), progress[:1])
    live = [p for p in progress if p["step"] == "tick" and p["status"] == "running" and
            0 < p["ok"] < 5]
    env.check("progress arrives while the step runs", len(live) >= 1, progress)
    oks = [p["ok"] for p in progress if p["step"] == "tick"]
    env.check("counts only grow", oks == sorted(oks), oks)
    failed = [e["data"] for e in mine if e["event"] == "task_failed"]
    env.check("task_failed with the error", len(failed) == 1 and failed[0]["step"] == "tick" and
              failed[0]["item"] == 6 and "six is out" in failed[0]["error"] and
              failed[0]["attempts"] == 1, failed)
    end = mine[-1]["data"] if mine else {}
    env.check("run_finished: failed, with a duration", end.get("status") == "failed" and
              end.get("duration_ms", 0) >= 2000, end)
    ids = [int(e["id"]) for e in evs]
    env.check("ids increase", ids == sorted(set(ids)), ids)


def check_slow_client(env, port):
    """6,000 steps each failing with a long error (13 MB of events): a client that reads
    gets every event, in bursts bigger than its socket takes at once (written as it
    drains); one that reads nothing is dropped once the ring has moved past it."""
    steps = "".join("  s%05d:\n    uses: lua\n    on_error: continue\n"
                    "    with: { code: \"error(string.rep('x', 3000))\" }\n" % i
                    for i in range(6000))
    env.write("big.yaml", "name: big\nsteps:\n" + steps)
    slow = SSE(port, rcvbuf=4096)
    reader = SSE(port)
    time.sleep(1)
    run = env.spawn_run("big.yaml")
    started = reader.events(lambda evs: any(e["event"] == "run_started" for e in evs), 60)
    rid = started[0]["data"]["run"] if started else None
    evs = started + reader.events(finished(rid), 90)
    env.check("the run of 6,000 failing steps ends", run.wait(60) in (0, 1))
    told = {e["data"]["step"] for e in evs if e["event"] == "step_progress"}
    failed = {e["data"]["step"] for e in evs if e["event"] == "task_failed"}
    env.check("a reading client hears of every step and failed task", len(told) == 6000 and
              len(failed) == 6000 and finished(rid)(evs), (len(told), len(failed)))
    got = slow.events(finished(rid), 20)
    env.check("a client that read nothing was dropped before the end",
              slow.closed and not finished(rid)(got), (slow.closed, len(got)))
    reader.close()
    slow.close()


def test(env):
    env.write("slow.yaml", SLOW)
    env.write("quick.yaml", QUICK)
    env.run("quick.yaml", expect=0)
    serve, port = env.serve()
    sse = SSE(port)
    env.check("the stream is 200", sse.status == 200, sse.status)
    env.check("as text/event-stream", sse.headers.get("content-type", "")
              .startswith("text/event-stream"), sse.headers)
    env.check("not cached", sse.headers.get("cache-control") == "no-store", sse.headers)
    time.sleep(1)  # the poller's first look: what is there is not news
    run = env.spawn_run("slow.yaml")
    evs = sse.events(lambda evs: any(e["event"] == "run_finished" for e in evs), 40)
    env.check("the slow run fails (its last item)", run.wait(30) == 1)
    run_id = evs[0]["data"]["run"] if evs else None
    env.check("the run's id is the database's", run_id ==
              env.q("select id from runs where workflow = 'slow'")[0][0], run_id)
    check_live(env, evs, run_id)
    env.check("nothing of the runs before it", all(e["data"].get("run") == run_id for e in evs),
              [e["data"] for e in evs if e["data"].get("run") != run_id])
    env.run("quick.yaml", expect=0)
    quick_id = env.q("select id from runs where workflow = 'quick' order by seq desc")[0][0]
    more = sse.events(finished(quick_id), 20)
    env.check("a second run's start and end", [e["event"] for e in more] ==
              ["run_started", "step_progress", "run_finished"] and
              more[-1]["data"]["status"] == "succeeded", [e["event"] for e in more])
    sse.close()
    everything = evs + more
    # A reconnect with Last-Event-ID: what came after it, in order.
    mid = everything[2]["id"]
    again = SSE(port, last_id=mid)
    got = again.events(lambda e: len(e) >= len(everything) - 3, 10)
    env.check("Last-Event-ID: the missed events, exactly", [e["id"] for e in got] ==
              [e["id"] for e in everything[3:]], ([e["id"] for e in got], mid))
    again.close()
    one = SSE(port, path="/api/events?run=" + run_id, last_id="0")
    got = one.events(finished(run_id), 10)
    env.check("?run= keeps one run's events", [e["id"] for e in got] ==
              [e["id"] for e in evs], len(got))
    one.close()
    status, headers, body = get(port, "/api/events", method="HEAD")
    env.check("HEAD: the head only", status == 200 and body == b"" and
              headers.get("content-type", "").startswith("text/event-stream"), (status, body))
    status, _, _ = get(port, "/api/events?run=")
    env.check("an empty ?run= is 400", status == 400, status)
    check_slow_client(env, port)
    streams = [SSE(port) for _ in range(64)]
    env.check("64 streams at once", all(s.status == 200 for s in streams))
    status, _, _ = get(port, "/api/events")
    env.check("the 65th is refused", status == 503, status)
    for s in streams:
        s.close()
    time.sleep(0.5)
    late = SSE(port)
    env.check("a stream again once they closed", late.status == 200, late.status)
    late.close()
    env.stop(serve, "serve --http")


if __name__ == "__main__":
    main(test)
