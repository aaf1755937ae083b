#!/usr/bin/env bash
# The command line: exit codes, help, usage errors, graph, plugins, signals, a long chain.
# Usage: cli.sh SLUICE BUILD_DIR SOURCE_DIR
set -u
sluice=$1 build=$2
export SLUICE_PLUGIN_PATH=$build/tests/plugins
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-cli.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
expect_exit() { # expect_exit CODE DESCRIPTION -- COMMAND...
  local want=$1 what=$2; shift 3
  "$@" > out.txt 2> err.txt < /dev/null
  local got=$?
  if [[ $got == "$want" ]]; then ok; else bad "$what: exit $got, expected $want"; cat err.txt; fi
}

expect_exit 0 "--version" -- "$sluice" --version
grep -Eq '^sluice [0-9]+\.[0-9]+\.[0-9]+$' out.txt && ok || bad "--version output: $(cat out.txt)"
expect_exit 0 "--help" -- "$sluice" --help
grep -q "validate" out.txt && ok || bad "--help lists commands"
for cmd in run validate graph plugins next; do
  expect_exit 0 "$cmd --help" -- "$sluice" "$cmd" --help
  grep -q "usage: sluice $cmd" out.txt && ok || bad "$cmd --help prints its usage"
done
expect_exit 2 "no command" -- "$sluice"
expect_exit 2 "unknown command" -- "$sluice" frobnicate
grep -q "unknown command 'frobnicate'" err.txt && ok || bad "unknown command message"
expect_exit 2 "run without a file" -- "$sluice" run
expect_exit 2 "run with an unknown option" -- "$sluice" run x.yaml --bogus
expect_exit 2 "validate a missing file" -- "$sluice" validate nope.yaml
grep -q "^nope.yaml: error: " err.txt && ok || bad "missing file message: $(cat err.txt)"

cat > wf.yaml <<'YAML'
name: tiny
steps:
  a: { uses: test.noop, with: { value: 1 } }
  b: { uses: test.echo, foreach: [1, 2], with: { v: "${{ steps.a }}" } }
YAML
expect_exit 2 "--var without =" -- "$sluice" run wf.yaml --var novalue
expect_exit 2 "--log bad" -- "$sluice" run wf.yaml --log xml
expect_exit 0 "graph dot" -- "$sluice" graph wf.yaml
grep -q "digraph" out.txt && grep -Eq '"?a"? *-> *"?b"?' out.txt && ok || bad "dot output: $(cat out.txt)"
expect_exit 0 "graph mermaid" -- "$sluice" graph wf.yaml --format mermaid
grep -Eq "^(flowchart|graph)" out.txt && grep -q -- "-->" out.txt && ok || bad "mermaid: $(cat out.txt)"
expect_exit 2 "graph bad format" -- "$sluice" graph wf.yaml --format svg
expect_exit 0 "plugins" -- "$sluice" plugins
for kind in lua file.write file.read exec json.parse test.noop; do
  grep -q "^$kind " out.txt && ok || bad "plugins lists $kind"
done
expect_exit 0 "run --log json" -- "$sluice" run wf.yaml --log json
grep -q '"level":"info"' err.txt && ok || bad "json log lines: $(head -3 err.txt)"

# SIGINT: running tasks finish, nothing new starts, exit 1, a summary.
cat > slow.yaml <<'YAML'
steps:
  nap: { uses: test.sleep, with: { ms: 1500 } }
  after: { uses: test.noop, needs: [nap], with: { value: 1 } }
YAML
"$sluice" run slow.yaml > out.txt 2> err.txt &
pid=$!
sleep 0.5
kill -INT $pid
wait $pid
status=$?
[[ $status == 1 ]] && ok || bad "SIGINT exit $status, expected 1"
grep -q "interrupted" out.txt && ok || bad "summary says interrupted: $(cat out.txt)"
grep -Eq "^nap +test.sleep +ok +1" out.txt && ok || bad "the running task finished: $(cat out.txt)"
grep -Eq "^after .*not run" out.txt && ok || bad "no new task started: $(cat out.txt)"

# Twice: running tasks are canceled.
"$sluice" run slow.yaml > out.txt 2> err.txt &
pid=$!
sleep 0.4; kill -INT $pid; sleep 0.2; kill -INT $pid
wait $pid
[[ $? == 1 ]] && ok || bad "double SIGINT exit"
grep -Eq "^nap +test.sleep +canceled +0 +1" out.txt && ok || bad "second SIGINT cancels: $(cat out.txt)"

# SIGTERM (a supervisor's stop) cancels running tasks at once.
"$sluice" run slow.yaml > out.txt 2> err.txt &
pid=$!
sleep 0.4; kill -TERM $pid
wait $pid
[[ $? == 1 ]] && ok || bad "SIGTERM exit"
grep -Eq "^nap +test.sleep +canceled +0 +1" out.txt && ok || bad "SIGTERM cancels: $(cat out.txt)"
grep -q "terminated: canceling running tasks" err.txt && ok || bad "SIGTERM message: $(cat err.txt)"

# Output that cannot be written is an error, not a silent success.
"$sluice" --version > /dev/full 2> err.txt
[[ $? == 3 ]] && ok || bad "--version to a full disk"
grep -q "cannot write the output" err.txt && ok || bad "output error message: $(cat err.txt)"
"$sluice" graph wf.yaml > /dev/full 2> err.txt
[[ $? == 3 ]] && ok || bad "graph to a full disk"

# A 5,000-step chain: no recursion limits, correct order.
{
  echo "steps:"
  echo "  s0: { uses: test.noop, with: { value: 0 } }"
  for ((i = 1; i < 5000; i++)); do
    echo "  s$i: { uses: lua, needs: [s$((i - 1))], with: { code: 'return steps[\"s$((i - 1))\"] + 1' } }"
  done
  echo "  last: { uses: file.write, with: { path: chain.txt, content: \"\${{ steps.s4999 }}\" } }"
} > chain.yaml
expect_exit 0 "5,000-step chain" -- "$sluice" run --quiet chain.yaml
[[ $(cat chain.txt 2>/dev/null) == 4999 ]] && ok || bad "chain result: $(cat chain.txt 2>/dev/null)"

echo "$passed passed, $failed failed"
(( failed == 0 ))
