#!/usr/bin/env bash
# The worker pool and signals: Ctrl-C and SIGTERM stop a CPU-heavy run cleanly with no
# worker left; an engine killed with SIGKILL leaves no orphan worker (PR_SET_PDEATHSIG).
# Usage: pool.sh SLUICE BUILD_DIR SOURCE_DIR
set -u
sluice=$1 build=$2
export SLUICE_PLUGIN_PATH=$build/tests/plugins
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-pool.XXXXXX")
engine=
cleanup() {
  [[ -n $engine ]] && kill -9 "$engine" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1
fail() { echo "FAIL: $*"; echo "--- stderr"; cat err 2>/dev/null; echo "--- stdout"; cat out 2>/dev/null; exit 1; }

cat > heavy.yaml <<'EOF'
steps:
  burn:
    uses: test.spin
    foreach: "${{ range(1, 400) }}"
    with: { ms: 50, value: "${{ item }}" }
EOF
cat > forever.yaml <<'EOF'
steps:
  burn:
    uses: test.spin
    foreach: "${{ range(1, 8) }}"
EOF

# Waits (bounded) until `engine` has `n` worker children; prints their pids.
workers_of() {
  local n=$1 pids
  for _ in $(seq 100); do
    pids=$(pgrep -P "$engine" 2>/dev/null | sort)
    if [[ $(echo "$pids" | grep -c .) -ge $n ]]; then echo "$pids"; return 0; fi
    sleep 0.05
  done
  return 1
}

# Waits (bounded) until none of the given pids exists.
all_gone() {
  for _ in $(seq 100); do
    local alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    (( alive )) || return 0
    sleep 0.05
  done
  return 1
}

# Waits (bounded) for the engine to exit; sets $status.
wait_engine() {
  for _ in $(seq 200); do
    kill -0 "$engine" 2>/dev/null || break
    sleep 0.05
  done
  kill -0 "$engine" 2>/dev/null && fail "the engine did not exit"
  wait "$engine"; status=$?
  engine=
}

# 1. One Ctrl-C: no new task starts, the running ones finish, workers exit, status 1.
"$sluice" run --workers 2 heavy.yaml > out 2> err & engine=$!
pids=$(workers_of 2) || fail "no workers started"
sleep 0.3
kill -INT "$engine"
wait_engine
[[ $status == 1 ]] || fail "Ctrl-C: exit status $status, expected 1"
grep -q "interrupted: no new tasks" err || fail "Ctrl-C: no interruption message"
grep -q "was interrupted" out || fail "Ctrl-C: the summary does not say interrupted"
grep -q "^pool: 2 workers, 0 respawned" out || fail "Ctrl-C: no pool line"
ok=$(awk '$1 == "burn" { print $4 }' out)
(( ok > 0 && ok < 400 )) || fail "Ctrl-C: $ok tasks ran, expected some but not all"
all_gone $pids || fail "Ctrl-C: workers left: $pids"

# 2. SIGTERM cancels tasks that would never finish: busy workers are killed.
"$sluice" run --workers 2 forever.yaml > out 2> err & engine=$!
pids=$(workers_of 2) || fail "no workers started"
sleep 0.3
kill -TERM "$engine"
wait_engine
[[ $status == 1 ]] || fail "SIGTERM: exit status $status, expected 1"
grep -q "terminated: canceling running tasks" err || fail "SIGTERM: no message"
all_gone $pids || fail "SIGTERM: workers left: $pids"

# 3. Ctrl-C twice on never-ending tasks: the second one cancels them.
"$sluice" run --workers 2 forever.yaml > out 2> err & engine=$!
pids=$(workers_of 2) || fail "no workers started"
sleep 0.3
kill -INT "$engine"
sleep 0.2
kill -INT "$engine"
wait_engine
[[ $status == 1 ]] || fail "Ctrl-C twice: exit status $status, expected 1"
all_gone $pids || fail "Ctrl-C twice: workers left: $pids"

# 4. The engine killed outright: its workers follow it (PR_SET_PDEATHSIG), none orphaned.
"$sluice" run --workers 3 forever.yaml > out 2> err & engine=$!
pids=$(workers_of 3) || fail "no workers started"
{ kill -9 "$engine"; wait "$engine"; } 2>/dev/null # (no "Killed" notice from bash)
engine=
all_gone $pids || fail "SIGKILL: orphaned workers: $pids"

# 5. A run without CPU steps starts no worker.
cat > io_only.yaml <<'EOF'
steps:
  nap: { uses: test.sleep, with: { ms: 300 } }
EOF
"$sluice" run io_only.yaml > out 2> err & engine=$!
sleep 0.15
[[ -z $(pgrep -P "$engine") ]] || fail "workers started for a run without CPU steps"
wait_engine
[[ $status == 0 ]] || fail "io-only run: exit status $status"
grep -q "^pool:" out && fail "io-only run: a pool line"
echo "ok"
