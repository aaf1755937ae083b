#!/usr/bin/env bash
# The state store from the command line (SPEC §5 "State"): runs and show in text and JSON,
# resume after a kill, a changed workflow refused and --force, the cache (hits, misses and
# their reasons, --no-cache, cache clear), HTTP revalidation against the fixture, bad state
# folders (corrupted, foreign, newer schema, a first-version database migrated), two runs
# at once on one folder, and a killed download's temporary file swept.
# Usage: state.sh SLUICE BUILD_DIR SOURCE_DIR
set -u
sluice=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
build=$(cd "$2" && pwd) src=$(cd "$3" && pwd)
py=/usr/bin/python3
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-state.XXXXXX")
source "$src/tests/fixture/start.sh" "$build" || exit 1
trap 'fixture_stop; rm -rf "$work"' EXIT
cd "$work" || exit 1
export SLUICE_STATE=$work/.sluice
url=$FIXTURE_URL
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

# sl EXPECTED_EXIT ARGS...: runs sluice, output in last.out / last.err
sl() {
    local want=$1
    shift
    timeout 120 "$sluice" "$@" > last.out 2> last.err < /dev/null
    local status=$?
    if [[ $status != "$want" ]]; then
        bad "sluice $*: exit $status, expected $want"
        head -c 2000 last.err
        return 1
    fi
    if grep -qE "Sanitizer|runtime error:" last.err; then
        bad "sluice $*: sanitizer report"; head -c 3000 last.err; return 1
    fi
    return 0
}
has() { grep -qE -- "$2" "$1" && ok || { bad "$1 lacks /$2/"; head -c 1500 "$1"; }; }
# pyc FILE PYTHON: PYTHON asserts on `r`, the JSON in FILE
pyc() {
    if $py -c 'import json, sys
r = json.load(open(sys.argv[1]))
exec(sys.argv[2])' "$1" "$2" > check.out 2>&1; then ok; else bad "check on $1: $2"; cat check.out; fi
}
stats() { curl -s "$url/stats"; }

# ---- history: runs and show, text and JSON ---------------------------------------------------
cat > hist.yaml <<'EOF'
name: hist
steps:
  nums:
    uses: lua
    foreach: [1, 2, 3]
    with: { code: "if item == 2 then error('two is bad') end return item" }
    on_error: continue
  total:
    uses: lua
    with: { code: "return #steps.nums" }
EOF
sl 0 run --quiet hist.yaml
sl 0 runs && has last.out '^run +workflow +trigger +started +duration +status +ok +failed +cached'
has last.out 'hist +manual .* succeeded +3 +1 +0'
sl 0 runs --json && pyc last.out 'assert r[0]["workflow"] == "hist" and r[0]["trigger"] == "manual" and r[0]["status"] == "succeeded" and r[0]["tasks"] == {"ok": 3, "failed": 1, "cached": 0}, r[0]'
sl 0 show last && has last.out 'run .* of hist \(hist.yaml\): succeeded'
has last.out 'nums\[2\] \(1 attempt\): .*two is bad'
has last.out '^nums +lua +partial +3 +2 +1'
sl 0 show last --json && pyc last.out 'assert [s["status"] for s in r["steps"]] == ["partial", "ok"] and r["failed"][0]["step"] == "nums" and r["failed"][0]["item"] == 2 and "two is bad" in r["failed"][0]["error"] and any("two is bad" in l["message"] for l in r["log"]), r'
id=$($py -c 'import json,sys; print(json.load(open("last.out"))["id"])')
sl 0 show "$id" && has last.out "run $id of hist"
sl 2 show no-such-run && has last.err "no run 'no-such-run'"
sl 0 runs --workflow nope && has last.out 'no runs recorded of nope'
sl 2 runs --limit 0

# ---- resume: a killed run, resumed, ends as an uninterrupted one ---------------------------
cat > slow.yaml <<'EOF'
name: slow
steps:
  a:
    uses: lua
    foreach: "${{ range(1, 40) }}"
    concurrency: 4
    with: { code: "sluice.sleep(0.05); return item * 2" }
  b:
    uses: file.write
    with: { path: out/b.json, content: "${{ steps.a }}" }
EOF
sl 0 run --quiet slow.yaml && cp out/b.json full.json && rm -rf out
"$sluice" run --quiet slow.yaml > /dev/null 2>&1 &
pid=$!
sleep 0.35
kill -9 $pid
wait $pid 2>/dev/null
[[ ! -e out/b.json ]] && ok || bad "the killed run wrote b.json"
sl 0 runs --workflow slow && has last.out 'interrupted'
sl 0 run --quiet slow.yaml --resume last && has last.out 'resumed run .*: [1-9][0-9]* tasks? reused'
cmp -s out/b.json full.json && ok || bad "resumed b.json differs from an uninterrupted run's"
sl 0 runs --json --workflow slow && pyc last.out 'assert r[0]["trigger"] == "resume" and r[0]["resumed_from"] == r[1]["id"] and r[1]["status"] == "interrupted", r[:2]'
sl 2 run slow.yaml --resume last --var x=1 && has last.err 'a resumed run keeps the vars'
sl 2 run slow.yaml --resume no-such-run && has last.err "no run 'no-such-run'"
# The workflow changed: refused, naming the step; --force reruns it.
sed 's/item \* 2/item * 3/' slow.yaml > slow2.yaml && mv slow2.yaml slow.yaml
sl 2 run slow.yaml --resume last && has last.err "slow.yaml:1:1: error: the workflow changed since run .*step 'a' changed.*--force"
sl 0 run --quiet slow.yaml --resume last --force && has last.err "step 'a' changed"
$py -c 'import json; v = json.load(open("out/b.json")); assert v == [i * 3 for i in range(1, 41)], v' && ok ||
    bad "--force did not rerun the changed step"
sl 2 run slow.yaml --force && has last.err -- '--force is for --resume'

# ---- cache: hits, misses and why, --no-cache, cache clear -----------------------------------
echo hello > in.txt
cat > cached.yaml <<'EOF'
name: cached
defaults: { cache: true }
steps:
  read:
    uses: file.read
    with: { path: in.txt }
  up:
    uses: lua
    foreach: [1, 2, 3]
    with: { code: "return steps.read .. item" }
EOF
note() { # the cache notes of the last run, as "step:item:cached:note" lines
    sqlite3 "$SLUICE_STATE/state.db" "select s.id || ':' || t.item || ':' || t.cached || ':' || coalesce(t.cache_note, '') from tasks t join steps s on s.run = t.run and s.idx = t.step where t.run = (select max(seq) from runs) order by t.step, t.item"
}
sl 0 run --quiet cached.yaml && [[ $(note | grep -c ':0:not cached before') == 4 ]] && ok || bad "first run: $(note)"
sl 0 run --quiet cached.yaml && [[ $(note | grep -c ':1:cached') == 4 ]] && ok || bad "rerun: $(note)"
touch -d '2030-01-01' in.txt # touched, same content: still cached
sl 0 run --quiet cached.yaml && [[ $(note | grep -c ':1:cached') == 4 ]] && ok || bad "touched: $(note)"
printf 'HELLO\n' > in.txt && touch -d '2030-01-01' in.txt # changed, same mtime: a miss
sl 0 run --quiet cached.yaml
note | grep -q "^read:0:0:file in.txt changed" && ok || bad "changed file: $(note)"
[[ $(note | grep -c '^up:.:0:steps.read changed') == 3 ]] && ok || bad "dependants: $(note)"
sl 0 show last --json && pyc last.out 'c = {x["step"]: x for x in r["cache"]}; assert c["up"]["misses"] == {"steps.read changed": 3} and c["read"]["misses"] == {"file in.txt changed": 1}, r["cache"]'
sl 0 show last && has last.out 'up: 0 cached, 3 ran: steps.read changed'
sl 0 run --quiet cached.yaml --no-cache && [[ $(note | grep -c ':0:--no-cache') == 4 ]] && ok || bad "--no-cache: $(note)"
sl 0 cache clear --workflow cached && has last.out 'cache: [1-9][0-9]* entries removed of cached'
sl 0 run --quiet cached.yaml && [[ $(note | grep -c ':0:not cached before') == 4 ]] && ok || bad "after clear: $(note)"
sl 2 cache frobnicate

# ---- HTTP revalidation: 304s reuse the recorded output and file ----------------------------
cat > pages.yaml <<'EOF'
name: pages
vars: { base: "http://127.0.0.1:1", mode: "" }
defaults: { cache: true }
steps:
  pages:
    uses: http.get
    foreach: "${{ range(0, 19) }}"
    with: { url: "${{ vars.base }}/page/${{ item }}?validators=${{ vars.mode }}" }
  flags:
    uses: http.get
    foreach: [fr, de, it]
    with: { url: "${{ vars.base }}/w20/${{ item }}.png", save_to: "out/${{ item }}.png" }
  versions:
    uses: lua
    with: { code: "local v = {} for i, p in ipairs(steps.pages) do v[i] = p.body:match('class=\"version\">(%d+)') end return table.concat(v, ',')" }
EOF
sl 0 run --quiet pages.yaml --var "base=$url"
curl -s "$url/stats/reset" > /dev/null
curl -s "$url/pages/touch?from=3&count=2" > /dev/null
sl 0 run --quiet pages.yaml --var "base=$url"
stats > st.json && pyc st.json 'assert r["conditional"] == 23 and r["not_modified"] == 21, r'
sl 0 run --quiet --no-cache pages.yaml --var "base=$url" # the same answers, uncached
sqlite3 "$SLUICE_STATE/state.db" "select cache_note from tasks where run = (select max(seq) - 1 from runs) and step = 0 order by item" > notes.txt
[[ $(grep -c 'revalidated: 304' notes.txt) == 18 && $(grep -c 'new version' notes.txt) == 2 ]] && ok || bad "revalidation notes: $(sort notes.txt | uniq -c)"
sl 0 show last --json && pyc last.out 'pass'
for f in fr de it; do [[ -s out/$f.png ]] && ok || bad "out/$f.png gone after 304s"; done
# A server that ignores the validators: every page comes whole, and stays right.
curl -s "$url/stats/reset" > /dev/null
sl 0 run --quiet pages.yaml --var "base=$url" --var mode=ignore
stats > st.json && pyc st.json 'assert r["not_modified"] == 3, r' # the flags still answer 304

# ---- bad state folders --------------------------------------------------------------------
bad_state() { # NAME: a state folder holding what the caller wrote into $1/state.db
    SLUICE_STATE=$work/$1 sl "$2" run --quiet hist.yaml
}
mkdir -p corrupt foreign newer
head -c 8192 /dev/urandom > corrupt/state.db
bad_state corrupt 3 || bad_state corrupt 2
has last.err 'state.db'
sqlite3 foreign/state.db 'create table mine(x); insert into mine values(1)'
bad_state foreign 2 && has last.err 'is not a sluice state database'
sqlite3 newer/state.db "create table meta(key text primary key, value text); insert into meta values('application','sluice'); pragma user_version = 99"
bad_state newer 2 && has last.err 'schema version 99, newer than this sluice'
SLUICE_STATE=$work/none-yet sl 2 runs && has last.err 'no state in .* yet'
SLUICE_STATE=none sl 0 run --quiet hist.yaml && [[ ! -e $work/none ]] && ok || bad "SLUICE_STATE=none kept state"
SLUICE_STATE=none sl 2 runs && has last.err "no state is kept"

# A database of the first schema: kept, migrated by a run, its runs still listed.
mkdir -p v1
sqlite3 v1/state.db <<'EOF'
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES('application', 'sluice');
CREATE TABLE workflows(name TEXT PRIMARY KEY, path TEXT, hash TEXT, updated INTEGER);
CREATE TABLE runs(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, workflow TEXT NOT NULL, path TEXT, hash TEXT, trigger TEXT NOT NULL, tick INTEGER, started INTEGER NOT NULL, finished INTEGER, status TEXT NOT NULL, vars TEXT, error TEXT, pid INTEGER);
CREATE INDEX runs_workflow ON runs(workflow, seq);
CREATE TABLE steps(run INTEGER NOT NULL, idx INTEGER NOT NULL, id TEXT NOT NULL, kind TEXT, status TEXT, started INTEGER, finished INTEGER, total INTEGER, ok INTEGER, failed INTEGER, skipped INTEGER, retries INTEGER, PRIMARY KEY(run, idx)) WITHOUT ROWID;
CREATE TABLE tasks(run INTEGER NOT NULL, step INTEGER NOT NULL, item INTEGER NOT NULL, status TEXT NOT NULL, attempts INTEGER, started INTEGER, finished INTEGER, error TEXT, output BLOB, object TEXT, PRIMARY KEY(run, step, item)) WITHOUT ROWID;
INSERT INTO runs(id, workflow, path, trigger, started, finished, status) VALUES('old-run-1', 'ancient', 'a.yaml', 'manual', 1700000000000, 1700000001000, 'succeeded');
PRAGMA user_version = 1;
EOF
SLUICE_STATE=$work/v1 sl 2 runs && has last.err 'schema version 1; a `sluice run` updates it to 6'
SLUICE_STATE=$work/v1 sl 0 run --quiet hist.yaml
[[ $(sqlite3 v1/state.db 'pragma user_version') == 6 ]] && ok || bad "v1 not migrated"
SLUICE_STATE=$work/v1 sl 0 runs && has last.out 'old-run-1 +ancient +manual +2023-11-14T22:13:20Z +1.000s +succeeded'
has last.out 'hist +manual'

# A full disk (a small tmpfs; root only): the run stops with a clear error, exit 3.
if [[ $(id -u) == 0 ]] && mkdir -p full && mount -t tmpfs -o size=96k tmpfs full 2>/dev/null; then
    cat > big.yaml <<'EOF'
name: big
steps:
  big:
    uses: lua
    foreach: "${{ range(1, 400) }}"
    with: { code: "return string.rep('x', 2000) .. item" }
EOF
    SLUICE_STATE=$work/full sl 3 run --quiet big.yaml && has last.err 'state'
    umount full
else
    echo "SKIP: the full-disk case needs root (mount -t tmpfs)"
fi

# ---- two runs at once on one state folder ---------------------------------------------------
"$sluice" run --quiet slow.yaml > two1.out 2> two1.err &
p1=$!
"$sluice" run --quiet hist.yaml > two2.out 2> two2.err &
p2=$!
wait $p1; s1=$?
wait $p2; s2=$?
[[ $s1 == 0 && $s2 == 0 ]] && ok || { bad "concurrent runs: $s1 $s2"; cat two1.err two2.err; }
sl 0 runs --limit 2 --json && pyc last.out 'assert sorted(x["workflow"] for x in r) == ["hist", "slow"] and all(x["status"] == "succeeded" for x in r), r'
[[ $(sqlite3 "$SLUICE_STATE/state.db" 'pragma integrity_check') == ok ]] && ok || bad "integrity"

# ---- a killed download leaves no temporary file ------------------------------------------------
cat > drip.yaml <<'EOF'
name: drip
vars: { base: "http://127.0.0.1:1" }
steps:
  get:
    uses: http.get
    with: { url: "${{ vars.base }}/drip?bytes=100&interval_ms=100&chunk=1", save_to: out/drip.bin }
EOF
"$sluice" run --quiet drip.yaml --var "base=$url" > /dev/null 2>&1 &
pid=$!
for _ in $(seq 50); do ls out/drip.bin.part-* > /dev/null 2>&1 && break; sleep 0.1; done
ls out/drip.bin.part-* > /dev/null 2>&1 && ok || bad "no temporary file while downloading"
kill -9 $pid
wait $pid 2>/dev/null
sl 0 runs > /dev/null # reading does not sweep; a run does
sl 0 run --quiet hist.yaml
ls out/drip.bin.part-* > /dev/null 2>&1 && bad "the killed download's .part file is still there" || ok
sl 0 runs --workflow drip && has last.out 'interrupted'

echo "$passed passed, $failed failed"
((failed == 0))
