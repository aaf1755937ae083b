#!/usr/bin/env bash
# sluice.http from Lua steps against the fixture server: JSON, sluice.map's concurrency
# bound (the server's /stats), errors caught with pcall, save_to, POST with headers and a
# body, and timeouts and Ctrl-C canceling requests in flight. No wall-clock assertions.
# Usage: lua_http.sh SLUICE BUILD_DIR SOURCE_DIR
set -u
sluice=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
build=$(cd "$2" && pwd) src=$(cd "$3" && pwd)
py=/usr/bin/python3
[[ -x $py ]] || py=python3
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-lua-http.XXXXXX")
source "$src/tests/fixture/start.sh" "$build" || exit 1
trap 'fixture_stop; rm -rf "$work"' EXIT
cd "$work" || exit 1
export SLUICE_STATE=$work/.sluice
url=$FIXTURE_URL
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
sanitizer_clean() { ! grep -qE "Sanitizer|runtime error:" "$1"; }

# run NAME EXPECTED_EXIT: runs NAME.yaml with base=the fixture; output in NAME.out/NAME.err
run() {
    timeout 60 "$sluice" run --quiet "$1.yaml" --var "base=$url" > "$1.out" 2> "$1.err" < /dev/null
    local status=$?
    if [[ $status != "$2" ]]; then
        bad "$1: exit $status, expected $2"; head -c 3000 "$1.err"; return 1
    fi
    sanitizer_clean "$1.err" || { bad "$1: sanitizer report"; head -c 3000 "$1.err"; return 1; }
    return 0
}

# check NAME PYTHON: PYTHON asserts on `r`, the JSON in NAME.json
check() {
    if $py -c 'import json, sys
r = json.load(open(sys.argv[1] + ".json"))
exec(sys.argv[2])' "$1" "$2" > "$1.check" 2>&1; then ok; else bad "$1: check"; cat "$1.check"; fi
}

# ---- GET JSON, map over 50 URLs with concurrency 8, pcall on 404, save_to, POST -------------
cat > fetch.yaml <<'EOF'
vars: { base: "http://127.0.0.1:1" }
steps:
  fetch:
    uses: lua
    with:
      base: "${{ vars.base }}"
      code: |
        local base = args.base
        local out = {}
        local r = sluice.http.get(base .. "/get?x=1")
        out.get = { status = r.status, url = r.url, x = sluice.json.decode(r.body).args.x,
                    type = r.headers["content-type"], bytes = r.bytes }
        local codes = sluice.json.decode(sluice.http.get(base .. "/en/codes.json").body)
        out.france = codes.fr

        sluice.http.get(base .. "/stats/reset")
        local urls = {}
        for i = 1, 50 do urls[i] = base .. "/get?i=" .. i .. "&delay_ms=30" end
        local got = sluice.map(urls, function(u, i)
          local args = sluice.json.decode(sluice.http.get(u).body).args
          return tonumber(args.i) * 1000 + i
        end, { concurrency = 8 })
        out.map = got
        out.stats = sluice.json.decode(sluice.http.get(base .. "/stats").body)

        local ok, err = pcall(function() return sluice.http.get(base .. "/status/404") end)
        out.not_found = { ok = ok, err = err }
        ok, err = pcall(sluice.http.get, base .. "/status/404", { expect = { 200, 404 } })
        out.expected_404 = err.status
        ok, err = pcall(sluice.http.request, { url = base .. "/get", bogus = 1 })
        out.bad_option = err
        ok, err = pcall(sluice.http.get, "http://127.0.0.1:1/refused")
        out.refused = err

        local saved = sluice.http.get(base .. "/bytes/5000", { save_to = "out/blob.bin" })
        out.saved = { path = saved.path, bytes = saved.bytes, body = saved.body == nil }

        local post = sluice.http.request({
          url = base .. "/anything/echo?q=1", method = "POST",
          headers = { ["X-Sluice-Test"] = "yes", ["Content-Type"] = "application/json" },
          body = sluice.json.encode({ n = 7 }),
        })
        local echo = sluice.json.decode(post.body)
        out.post = { method = echo.method, data = echo.data, header = echo.headers["X-Sluice-Test"],
                     n = echo.json.n, q = echo.args.q }
        -- requests from gathered functions run side by side too
        local a, b = sluice.gather(
          function() return sluice.http.get(base .. "/get?who=a&delay_ms=20").status end,
          function() return sluice.json.decode(sluice.http.get(base .. "/json").body) ~= nil end)
        out.gather = { a, b }
        return out
  record:
    uses: file.write
    with: { path: fetch.json, content: "${{ steps.fetch }}" }
EOF
if run fetch 0; then
    check fetch '
base = "'"$url"'"
assert r["get"]["status"] == 200 and r["get"]["x"] == "1", r["get"]
assert r["get"]["url"] == base + "/get?x=1" and r["get"]["bytes"] > 0, r["get"]
assert r["get"]["type"].startswith("application/json"), r["get"]
assert r["france"] == "France", r["france"]
assert r["map"] == [i * 1000 + i for i in range(1, 51)], r["map"]
peak = r["stats"]["max_inflight"]
assert 2 <= peak <= 8, r["stats"]  # concurrent, and never more than 8 at once
err = r["not_found"]["err"]
assert r["not_found"]["ok"] is False and base + "/status/404" in err and "404" in err, err
assert err.startswith("step \u0027fetch\u0027:"), err
assert "GET" in err and "attempt 1" in err, err
assert r["expected_404"] == 404, r
assert "bogus" in r["bad_option"], r["bad_option"]
assert "127.0.0.1:1/refused" in r["refused"], r["refused"]
assert r["saved"] == {"path": "out/blob.bin", "bytes": 5000, "body": True}, r["saved"]
assert r["post"] == {"method": "POST", "data": "{\"n\":7}", "header": "yes", "n": 7, "q": "1"}, r["post"]
assert r["gather"] == [200, True], r["gather"]
'
    [[ $(stat -c %s out/blob.bin 2> /dev/null) == 5000 ]] && ok || bad "save_to: out/blob.bin"
fi

# ---- a step timeout cancels requests in flight ----------------------------------------------
cat > hang.yaml <<'EOF'
vars: { base: "http://127.0.0.1:1" }
steps:
  hang:
    uses: lua
    timeout: 1s
    with:
      base: "${{ vars.base }}"
      code: |
        sluice.gather(
          function() return sluice.http.get(args.base .. "/hang") end,
          function()
            return sluice.map({ 1, 2, 3 }, function(i) return sluice.http.get(args.base .. "/hang?i=" .. i) end)
          end)
        return "never"
EOF
if run hang 1; then
    grep -q "hang: timed out after 1s" hang.err && ok || { bad "hang: message"; cat hang.err; }
    # the server saw the connections close: nothing of ours is in flight
    $py - "$url" > hang.check 2>&1 <<'PY' && ok || { bad "hang: requests still in flight"; cat hang.check; }
import json, sys, time, urllib.request
for _ in range(100):
    d = json.load(urllib.request.urlopen(sys.argv[1] + "/stats", timeout=10))
    if d["inflight"] <= 1:  # the /stats request itself
        sys.exit(0)
    time.sleep(0.05)
sys.exit("inflight: %d" % d["inflight"])
PY
fi

# ---- Ctrl-C while Lua requests are in flight ------------------------------------------------
cat > interrupt.yaml <<'EOF'
vars: { base: "http://127.0.0.1:1" }
steps:
  wait:
    uses: lua
    foreach: "${{ range(1, 4) }}"
    with:
      base: "${{ vars.base }}"
      code: |
        return sluice.map(range(1, 5), function(i)
          return sluice.http.get(args.base .. "/hang?item=" .. item .. "&i=" .. i).status
        end)
EOF
"$sluice" run --quiet interrupt.yaml --var "base=$url" > interrupt.out 2> interrupt.err < /dev/null &
pid=$!
# A watchdog rather than `timeout`, so that the signals reach sluice itself.
(trap 'kill "$nap"; exit 0' TERM; sleep 60 & nap=$!; wait "$nap"; kill -KILL "$pid") \
    > /dev/null 2>&1 &
watchdog=$!
$py - "$url" <<'PY'
import json, sys, time, urllib.request
for _ in range(200):
    if json.load(urllib.request.urlopen(sys.argv[1] + "/stats", timeout=10))["inflight"] >= 20:
        break
    time.sleep(0.05)
PY
kill -INT "$pid" # the first lets running tasks finish: these never would
sleep 0.3
kill -INT "$pid" # the second cancels them, and their requests
wait "$pid"
status=$?
kill "$watchdog" 2> /dev/null
if [[ $status != 0 && $status -lt 128 ]] || [[ $status == 130 ]]; then ok; else
    bad "interrupt: exit $status"; head -c 3000 interrupt.err; fi
sanitizer_clean interrupt.err && ok || { bad "interrupt: sanitizer report"; head -c 3000 interrupt.err; }

echo "$passed passed, $failed failed"
((failed == 0 && passed > 0))
