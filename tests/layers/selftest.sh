#!/usr/bin/env bash
# A test of the layer check: on a copy of engine/ it must pass, then fail, naming the file
# and line, on each kind of violation planted in the copy.
set -u
here=$(cd "$(dirname "$0")" && pwd)
engine=$here/../../engine
check=("${PYTHON:-/usr/bin/python3}" "$here/check.py")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

fresh() {
    rm -rf "$tmp/engine" && cp -r "$engine" "$tmp/engine"
    cp "$here/layers.txt" "$tmp/layers.txt"
}

# expect NAME PATTERN: the check fails and its output matches PATTERN (an ERE).
expect() {
    local out
    if out=$("${check[@]}" "$tmp/engine" "$tmp/layers.txt" 2>&1); then
        echo "FAIL: $1: the check passed"; fails=$((fails + 1)); return
    fi
    if ! grep -Eq "$2" <<<"$out"; then
        echo "FAIL: $1: output does not match /$2/:"; echo "$out"; fails=$((fails + 1)); return
    fi
    echo "ok: $1"
}

fresh
if ! "${check[@]}" "$tmp/engine" "$tmp/layers.txt" >/dev/null; then
    echo "FAIL: the unchanged tree does not pass"; exit 1
fi

# A lower layer including a higher one: util/buf.c pulls in the scheduler.
fresh
line=$(grep -n '#include' "$tmp/engine/util/buf.c" | tail -n 1 | cut -d: -f1)
sed -i "${line}a #include \"sched/sched.h\"" "$tmp/engine/util/buf.c"
expect "upward include" "engine/util/buf.c:$((line + 1)): error: util/ may not include sched/sched.h"

# An executor including the layer that binds it: pool/ reaching host/.
fresh
printf '#include "host/host.h"\n' >>"$tmp/engine/pool/pool.h"
expect "sideways include" "engine/pool/pool.h:[0-9]+: error: pool/ may not include host/host.h"

# A new module without a row.
fresh
mkdir "$tmp/engine/unlisted" && printf '/* x */\n' >"$tmp/engine/unlisted/unlisted.c"
expect "module without a row" "engine/unlisted/unlisted.c:1: error: module 'unlisted' has no row"

# A row that closes a cycle.
fresh
sed -i 's/^util:.*/util: sched/' "$tmp/layers.txt"
expect "cycle in the table" "error: the table has a cycle: .*util"

# A symbol whose prefix names neither its module nor its file.
fresh
printf 'int sl__sched_misplaced(void)\n{\n    return 0;\n}\n' >>"$tmp/engine/value/json.c"
expect "prefix" "engine/value/json.c:[0-9]+: error: 'sl__sched_misplaced' is defined in value/json.c"

(( fails == 0 )) || { echo "$fails failure(s)"; exit 1; }
echo "layer check self-test: all planted violations caught"
