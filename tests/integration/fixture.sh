#!/usr/bin/env bash
# The fixture HTTP server (tests/fixture/): every endpoint, the faults, /stats, keep-alive,
# pipelining, limits and a clean exit on SIGTERM. Lower bounds on time only.
# Usage: fixture.sh SLUICE BUILD_DIR SOURCE_DIR
set -u
build=$(cd "$2" && pwd) src=$(cd "$3" && pwd)
py=/usr/bin/python3
[[ -x $py ]] || py=python3
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-fixture-test.XXXXXX")
source "$src/tests/fixture/start.sh" "$build" || exit 1
trap 'fixture_stop; rm -rf "$work"' EXIT
cd "$work" || exit 1
url=$FIXTURE_URL
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { # check DESCRIPTION -- COMMAND...: passes when the command succeeds
    local what=$1; shift 2
    if "$@" > check.out 2>&1; then ok; else bad "$what"; cat check.out; fi
}
status_of() { curl -s -o /dev/null -w '%{http_code}' -m 20 "$@"; }
curl_exit() { curl -s -o /dev/null -m 20 "$@"; echo $?; }
elapsed_ms() { # elapsed_ms COMMAND...: runs it, prints the wall time in ms
    local t0 t1
    t0=$(date +%s%N)
    "$@" > /dev/null 2>&1
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}
pyjson() { # pyjson URL EXPRESSION: evaluates EXPRESSION with `d` the decoded JSON body
    $py -c 'import json, sys, urllib.request
d = json.load(urllib.request.urlopen(sys.argv[1], timeout=20))
sys.exit(0 if eval(sys.argv[2]) else "got: " + json.dumps(d)[:300])' "$1" "$2"
}

[[ $url =~ ^http://127\.0\.0\.1:[0-9]+$ ]] && ok || bad "FIXTURE_URL is $url"

# Flags.
check "codes.json has 306 entries" -- pyjson "$url/en/codes.json" \
    'len(d) == 306 and d["fr"] == "France" and "us-ca" in d and "gb-sct" in d'
ctype=$(curl -s -o /dev/null -w '%{content_type}' "$url/en/codes.json")
[[ $ctype == application/json* ]] && ok || bad "codes.json content type: $ctype"
curl -s -o fr.png -w '%{content_type}' "$url/256x192/fr.png" > ctype.txt
[[ $(cat ctype.txt) == image/png ]] && ok || bad "png content type: $(cat ctype.txt)"
check "png is valid (signature, CRCs, zlib, size)" -- $py - fr.png <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "signature"
assert 200 <= len(data) <= 4096, len(data)
pos, chunks = 8, {}
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
    assert zlib.crc32(kind + body) == crc, kind
    chunks[kind] = body
    pos += 12 + n
w, h, depth, ctype = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
raw = zlib.decompress(chunks[b"IDAT"])
assert len(raw) == h * (w + 1) and ctype == 3 and depth == 8, (w, h, len(raw))
assert b"IEND" in chunks
PY
cmp -s fr.png <(curl -s "$url/w20/fr.png") && ok || bad "a flag is the same whatever the size"
curl -s "$url/w20/de.png" | cmp -s fr.png - && bad "fr and de flags are identical" || ok
[[ $(status_of "$url/w20/zz.png") == 404 ]] && ok || bad "unknown flag code is 404"
[[ $(status_of "$url/w20/us-tx.png") == 200 ]] && ok || bad "us-tx flag"

# Genres.
check "genre is a JSON string of two words or more" -- pyjson "$url/genre" \
    'isinstance(d, str) and len(d.split()) >= 2'
check "genre/ too" -- pyjson "$url/genre/" 'isinstance(d, str)'

# httpbin.
check "/ip" -- pyjson "$url/ip" 'd == {"origin": "127.0.0.1"}'
check "/get args and headers" -- pyjson "$url/get?a=1&b=x%20y&a=2" \
    '(d["args"] == {"a": ["1", "2"], "b": "x y"} and "Host" in d["headers"]
      and d["url"].endswith("/get?a=1&b=x%20y&a=2"))'
ua=$(curl -s -A "fixture-test/1" "$url/user-agent")
[[ $ua == '{"user-agent": "fixture-test/1"}' ]] && ok || bad "/user-agent: $ua"
curl -s -H "X-Probe: 42" "$url/headers" | grep -q '"X-Probe": "42"' && ok || bad "/headers"
curl -s -X POST -H 'Content-Type: application/json' --data '{"n": [1, 2]}' "$url/anything/x?q=1" \
    > anything.json
check "/anything echoes method, body and json" -- $py -c 'import json
d = json.load(open("anything.json"))
assert d["method"] == "POST" and d["data"] == "{\"n\": [1, 2]}" and d["json"] == {"n": [1, 2]}, d
assert d["args"] == {"q": "1"}, d'
head -c 3000000 /dev/zero | tr '\0' a > big.txt
[[ $(status_of -X POST --data-binary @big.txt "$url/anything") == 413 ]] && ok ||
    bad "a 3 MB body to /anything is 413"
[[ $(status_of -X POST --data-binary @big.txt "$url/get") == 200 ]] && ok ||
    bad "a 3 MB body to /get is read and dropped"
[[ $(status_of "$url/status/418") == 418 ]] && ok || bad "/status/418"
loc=$(curl -s -o /dev/null -w '%{redirect_url}' "$url/status/301")
[[ $loc == "$url/get" ]] && ok || bad "/status/301 Location: $loc"
[[ $(status_of "$url/status/99") == 400 ]] && ok || bad "/status/99 is 400"
[[ $(curl -s "$url/bytes/1000" | wc -c) == 1000 ]] && ok || bad "/bytes/1000"
[[ $(curl -s "$url/bytes/10000000" | wc -c) == 10000000 ]] && ok || bad "/bytes/10000000"
check "/bytes pattern is byte i = i % 256" -- $py -c 'import sys, urllib.request
d = urllib.request.urlopen(sys.argv[1] + "/bytes/70000").read()
assert d == bytes(i % 256 for i in range(70000))' "$url"
check "/json" -- pyjson "$url/json" '"slideshow" in d'

# Redirects.
out=$(curl -s -L -o /dev/null -w '%{num_redirects} %{url_effective}' "$url/redirect/3")
[[ $out == "4 $url/get" ]] && ok || bad "/redirect/3 takes 4 redirects to /get: $out"
out=$(curl -s -L -o /dev/null -w '%{num_redirects} %{url_effective}' "$url/absolute-redirect/2")
[[ $out == "3 $url/get" ]] && ok || bad "/absolute-redirect/2: $out"
[[ $(curl_exit -L --max-redirs 5 "$url/redirect-loop") == 47 ]] && ok || bad "redirect loop"
[[ $(curl_exit -L --max-redirs 5 "$url/redirect-loop/a") == 47 ]] && ok || bad "2-cycle loop"

# Retry-After.
curl -s -D h429.txt -o /dev/null "$url/status/429?retry_after=7"
grep -qi '^Retry-After: 7' h429.txt && ok || bad "429 Retry-After seconds"
curl -s -D h429d.txt -o /dev/null "$url/status/429?retry_after_date=60"
check "429 Retry-After HTTP-date about 60 s ahead" -- $py -c 'import email.utils, re, time
text = open("h429d.txt").read()
m = re.search(r"(?im)^Retry-After: (.*?)\r?$", text)
assert m and m.group(1).endswith(" GMT"), text
delta = email.utils.parsedate_to_datetime(m.group(1)).timestamp() - time.time()
assert 30 < delta <= 61, delta'

# Flaky.
key=k$RANDOM$$
codes=""
for _ in 1 2 3; do codes+="$(status_of "$url/flaky/$key?fail=2&code=502&retry_after=1") "; done
[[ $codes == "502 502 200 " ]] && ok || bad "flaky fails twice then succeeds: $codes"
check "flaky success body" -- pyjson "$url/flaky/$key?fail=2" \
    'd == {"key": "'"$key"'", "attempt": 4}'
curl -s -D hflaky.txt -o /dev/null "$url/flaky/r$key?retry_after=3"
grep -qi '^Retry-After: 3' hflaky.txt && grep -q ' 503 ' hflaky.txt && ok ||
    bad "flaky default 503 with Retry-After"
curl -s "$url/flaky-reset" > /dev/null
[[ $(status_of "$url/flaky/$key?fail=1") == 503 ]] && ok || bad "/flaky-reset clears"

# Faults.
[[ $(curl_exit "$url/truncated?bytes=1000") == 18 ]] && ok || bad "truncated: curl exit 18"
[[ $(curl -s "$url/truncated?bytes=1000" | wc -c) == 500 ]] && ok || bad "truncated sends N/2"
check "gzip decodes" -- $py -c 'import gzip, json, sys, urllib.request
r = urllib.request.urlopen(sys.argv[1] + "/gzip")
assert r.headers["Content-Encoding"] == "gzip"
d = json.loads(gzip.decompress(r.read()))
assert d["gzipped"] is True and d["method"] == "GET", d' "$url"
curl -s --compressed "$url/gzip" | grep -q '"gzipped": true' && ok || bad "curl --compressed"
ms=$(elapsed_ms curl -s -m 20 -o drip.bin "$url/drip?bytes=5&interval_ms=100")
((ms >= 450)) && ok || bad "drip 5 bytes at 100 ms took only $ms ms"
[[ $(wc -c < drip.bin) == 5 ]] && ok || bad "drip body size"
[[ $(curl_exit -m 1 "$url/hang") == 28 ]] && ok || bad "hang: curl -m 1 times out"
ms=$(elapsed_ms curl -s -m 20 "$url/get?delay_ms=300")
((ms >= 290)) && ok || bad "delay_ms=300 took only $ms ms"
ms=$(elapsed_ms curl -s -m 20 "$url/w20/fr.png?delay_ms=200")
((ms >= 190)) && ok || bad "delay_ms on any endpoint: $ms ms"

# Articles, movies, graph.
curl -s "$url/wiki/Article_42" > a42.html
grep -q '<span class="mw-page-title-main">Article 42</span></h1>' a42.html && ok ||
    bad "wiki h1"
size=$(wc -c < a42.html)
((size >= 20000 && size <= 60000)) && ok || bad "wiki size $size"
curl -s "$url/wiki/Article_42" | cmp -s a42.html - && ok || bad "wiki page is deterministic"
loc=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$url/wiki/Special:Random")
[[ $loc =~ ^302\ $url/wiki/Article_[0-9]+$ ]] && ok || bad "Special:Random: $loc"
a=$(curl -s -o /dev/null -w '%{redirect_url}' "$url/wiki/Special:Random?seed=7")
b=$(curl -s -o /dev/null -w '%{redirect_url}' "$url/wiki/Special:Random?seed=7")
[[ $a == "$b" && -n $a ]] && ok || bad "Special:Random?seed= is deterministic"
curl -s "$url/title/tt0000042/" > m42.html
grep -q '<span class="hero__primary-text">Movie 0000042</span>' m42.html && ok ||
    bad "movie title"
grep -q '<a class="year" href="[^"]*">1992</a>' m42.html && ok || bad "movie year 1950+42%75"
[[ $(grep -c 'class="cast-member"' m42.html) == 5 ]] && ok || bad "cast of 3+42%10"
curl -s "$url/title/tt0000042" | cmp -s m42.html - && ok || bad "movie without trailing slash"
check "movies.json lists 100 ids" -- pyjson "$url/movies.json" \
    'len(d) == 100 and all(x.startswith("tt") for x in d)'
curl -s "$url/graph/0" > g0.html
grep -q '<title>Node 0</title>' g0.html && ok || bad "graph title"
links=$(grep -c 'href="/graph/' g0.html)
((links >= 2 && links <= 6)) && grep -q 'href="/graph/1"' g0.html && ok ||
    bad "graph links: $links"
for path in /nope /graph/10000 /title/ttabc /wiki/ /redirect/x /flaky/; do
    code=$(status_of "$url$path")
    [[ $code == 404 || ($path == /flaky/ && $code == 400) ]] && ok || bad "$path: $code"
done

# /stats: 50 parallel delayed requests are 50 in flight at once (the delay is long enough
# for 50 curl processes to start on a loaded machine).
curl -s "$url/stats/reset" > /dev/null
pids=()
for _ in $(seq 50); do
    curl -s -o /dev/null -m 30 "$url/get?delay_ms=4000" &
    pids+=($!)
done
wait "${pids[@]}" # not a bare wait: the server is a child of this shell too
check "max_inflight is 50" -- pyjson "$url/stats" \
    'd["max_inflight"] == 50 and d["requests"] == 50 and d["inflight"] == 0 and '\
'd["max_inflight_by_host"] == {"'"${url#http://}"'": 50} and d["max_connections"] >= 50'

# A client that gives up stops counting as in flight.
[[ $(curl_exit -m 1 "$url/get?delay_ms=20000") == 28 ]] && ok || bad "curl -m 1 on a 20 s delay"
check "an abandoned request leaves the in-flight count" -- $py -c 'import json, sys, time
import urllib.request
for _ in range(100):
    d = json.load(urllib.request.urlopen(sys.argv[1] + "/stats", timeout=20))
    if d["inflight"] == 0:
        break
    time.sleep(0.1)
assert d["inflight"] == 0, d' "$url"

# Protocol: keep-alive, pipelining, HTTP/1.0, Connection: close, HEAD, limits.
check "protocol" -- timeout 120 $py - "$url" <<'PY'
import http.client, socket, sys
host, port = sys.argv[1][7:].split(":")
port = int(port)

def raw(data, read_until_close=True):
    s = socket.create_connection((host, port), timeout=20)
    s.sendall(data)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
        if not read_until_close and out.count(b"HTTP/1.1") >= 2 and out.endswith(b"}\n"):
            break
    s.close()
    return out

conn = http.client.HTTPConnection(host, port, timeout=20)
for i in range(10000):
    conn.request("GET", "/ip" if i % 2 else "/genre")
    r = conn.getresponse()
    assert r.status == 200, r.status
    r.read()
conn.close()
out = raw(b"GET /ip HTTP/1.1\r\nHost: x\r\n\r\nGET /json HTTP/1.1\r\nHost: x\r\n"
          b"Connection: close\r\n\r\n")
assert out.count(b"HTTP/1.1 200 OK") == 2 and b"slideshow" in out, out[:200]
out = raw(b"GET /ip HTTP/1.0\r\n\r\n")
assert out.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in out, out
out = raw(b"HEAD /bytes/5000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
assert b"Content-Length: 5000" in out and out.endswith(b"\r\n\r\n"), out
out = raw(b"GET /ip HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
assert out.startswith(b"HTTP/1.1 431 "), out[:100]
out = raw(b"BLAH\r\n\r\n")
assert out.startswith(b"HTTP/1.1 400 "), out[:100]
out = raw(b"GET /ip HTTP/2.0\r\n\r\n")
assert out.startswith(b"HTTP/1.1 505 "), out[:100]
PY
check "1000 simultaneous connections" -- timeout 120 $py - "$url" <<'PY'
import asyncio, sys
host, port = sys.argv[1][7:].split(":")

async def one(i):
    r, w = await asyncio.open_connection(host, int(port))
    await ready.wait()
    w.write(b"GET /get?delay_ms=300 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = await r.read()
    w.close()
    return data.startswith(b"HTTP/1.1 200 OK")

async def main():
    global ready
    ready = asyncio.Event()
    tasks = [asyncio.create_task(one(i)) for i in range(1000)]
    await asyncio.sleep(0.5)
    ready.set()
    results = await asyncio.gather(*tasks)
    assert all(results), results.count(False)

asyncio.run(main())
PY

# The port file and a clean exit on SIGTERM.
"$build/tests/fixture/fixture_server" --port-file "$work/port" > stdout.txt 2> stderr.txt &
pid=$!
for _ in $(seq 100); do [[ -s $work/port ]] && break; sleep 0.1; done
[[ -s $work/port && $(cat "$work/port") == "$(cat stdout.txt)" ]] && ok ||
    bad "port file matches stdout"
curl -s -m 10 "$(cat "$work/port")/hang" > /dev/null &
hung=$!
sleep 0.3
kill -TERM $pid
wait $pid
rc=$?
[[ $rc == 0 ]] && ok || bad "SIGTERM exit status $rc"
wait $hung 2> /dev/null
fixture_stop
[[ $FIXTURE_EXIT_STATUS == 0 ]] && ok || bad "the test's server exited with $FIXTURE_EXIT_STATUS"

echo "$passed passed, $failed failed"
((failed == 0))
