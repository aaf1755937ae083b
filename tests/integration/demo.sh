#!/usr/bin/env bash
# `make run`'s demo workflow, and every workflow in workflows/ validates.
# Usage: demo.sh SLUICE BUILD_DIR SOURCE_DIR
set -u
sluice=$1 src=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $1"; fi; }
"$sluice" run "$src/workflows/demo.yaml" > out.txt 2> err.txt
check '[[ $? == 0 ]]'
check 'grep -q "succeeded" out.txt'
check 'grep -q "done: 20 squares (10 even, sum 2870)" err.txt'
check '/usr/bin/python3 -c "import json; d=json.load(open(\"out/demo/report.json\")); assert d[\"title\"] == \"squares\" and len(d[\"squares\"]) == 20 and d[\"squares\"][2] == {\"n\": 3, \"square\": 9, \"even\": False} and not d[\"machine\"].endswith(\"\\n\"), d"'
for wf in "$src"/workflows/*.yaml; do
  check "\"$sluice\" validate \"$wf\" > /dev/null"
done
[[ $failed == 0 ]] || { echo "--- stderr ---"; cat err.txt; }
echo "$passed passed, $failed failed"
(( failed == 0 ))
