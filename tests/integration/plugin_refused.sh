#!/usr/bin/env bash
# Plugins the engine must refuse (tests/plugins/bad/): `sluice plugins` still
# works, names each bad plugin with a clear reason, and a workflow using a
# kind that no plugin provides fails validation with exit 2.
#   bash plugin_refused.sh SLUICE_BIN BUILD_DIR SOURCE_DIR
set -uo pipefail
sluice=$1 build=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sluice-refused.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; echo "--- stderr"; cat "$tmp/err" >&2; exit 1; }
export SLUICE_PLUGIN_PATH=$build/tests/badplugins SLUICE_STATE=$tmp/state
for so in wrong_abi no_entry null_entry; do
  [[ -f $SLUICE_PLUGIN_PATH/$so.so ]] || { echo "FAIL: $so.so not built"; exit 1; }
done

"$sluice" plugins > "$tmp/out" 2> "$tmp/err"
status=$?
[[ $status == 0 ]] || fail "sluice plugins exited $status"
grep -q '^ *file\.write' "$tmp/out" || grep -q 'file\.write' "$tmp/out" ||
  fail "the built-in kinds are not listed"
grep -q 'wrong_abi' "$tmp/out" && fail "a kind of wrong_abi.so was registered"

line=$(grep 'wrong_abi\.so' "$tmp/err") || fail "no message about wrong_abi.so"
[[ $line == *99.* && $line == *1.x* ]] || fail "wrong_abi.so: message names no versions: $line"
line=$(grep 'no_entry\.so' "$tmp/err") || fail "no message about no_entry.so"
[[ $line == *sl_plugin_entry_v1* ]] || fail "no_entry.so: message names no symbol: $line"
grep -q 'null_entry\.so' "$tmp/err" || fail "no message about null_entry.so"

cat > "$tmp/workflow.yaml" <<'YAML'
steps:
  a:
    uses: wrong_abi.kind
YAML
cd "$tmp" || exit 1
"$sluice" validate workflow.yaml > "$tmp/out" 2> "$tmp/err"
status=$?
[[ $status == 2 ]] || fail "validate: exit $status, expected 2"
grep -q 'workflow.yaml:[0-9]*:[0-9]*: error: .*wrong_abi\.kind' "$tmp/err" ||
  fail "validate: no located error naming wrong_abi.kind"
"$sluice" run --quiet workflow.yaml > "$tmp/out" 2> "$tmp/err"
status=$?
[[ $status == 2 ]] || fail "run: exit $status, expected 2"
echo "ok"
