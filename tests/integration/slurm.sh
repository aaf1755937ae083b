#!/usr/bin/env bash
# executor: slurm against a real one-node cluster (tests/slurm/cluster.sh, MaxArraySize=10):
# batching (10,000 tasks in at most 10 sbatch calls), polling at a constant number of
# squeue calls per interval, primes.yaml giving the local pool's results, a crashing
# element retried then reported with its job id and log, a request no node can meet
# failing with Slurm's reason, SIGTERM leaving squeue empty, the array limit honoured by
# splitting, a killed run resumed without resubmitting finished elements, and the runs of
# serve (--once and the daemon) recording their jobs as `run` does. Cluster
# calls are counted by wrappers first on PATH. Skips (exit 77) when not root.
# Usage: slurm.sh SLUICE BUILD_DIR SOURCE_DIR
set -u
sluice=$1 build=$2 src=$3
if [[ $(id -u) != 0 ]]; then
  echo "SKIP: the Slurm tests need root to install and start a local cluster"; exit 77
fi
export SLUICE_PLUGIN_PATH=$build/tests/plugins
export SLUICE_SLURM_DIR=/tmp/sluice-slurm-test SLUICE_SLURM_PORT=6837 SLUICE_SLURM_MAX_ARRAY=10
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-slurm.XXXXXX")
engine=
cleanup() {
  [[ -n $engine ]] && kill -9 "$engine" 2>/dev/null
  bash "$src/tests/slurm/cluster.sh" stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1
fail() {
  echo "FAIL: $*"; echo "--- stderr"; tail -c 3000 "$work/err" 2>/dev/null
  echo "--- stdout"; tail -c 2000 "$work/out" 2>/dev/null; exit 1
}
env_lines=$(bash "$src/tests/slurm/cluster.sh" start) || { echo "FAIL: the cluster did not start"; exit 1; }
eval "$env_lines"

# Wrappers first on PATH: each call is counted (one line per call in calls/NAME).
mkdir -p bin calls
for c in sbatch squeue sacct scancel scontrol sinfo; do
  real=$(command -v $c) || { echo "FAIL: $c missing"; exit 1; }
  printf '#!/bin/sh\necho "$*" >> %s/calls/%s\nexec %s "$@"\n' "$work" $c "$real" > bin/$c
  chmod +x bin/$c
done
export PATH=$work/bin:$PATH
calls() { cat "$work/calls/$1" 2>/dev/null | wc -l; }
reset_calls() { rm -f "$work"/calls/*; }
queue_empty() { # waits (bounded) for the cluster's queue to be empty
  for _ in $(seq 50); do [[ -z $(squeue -h -o %i) ]] && return 0; sleep 0.2; done; return 1
}
run() { timeout 120 "$sluice" run "$@" > "$work/out" 2> "$work/err"; }

# 1. 10,000 short tasks: at most 10 sbatch calls; squeue a constant number per interval.
cat > many.yaml <<'YAML'
limits: { slurm: { poll: 500ms } }
steps:
  sieve:
    uses: primes.sieve
    executor: slurm
    foreach: "${{ range(1, 10000) }}"
    with: { limit: "${{ item }}" }
YAML
reset_calls
start=$(date +%s.%N)
run many.yaml || fail "10,000 tasks on slurm"
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
grep -q "sieve .* ok  *10000 " out || fail "not 10,000 ok tasks"
(( $(calls sbatch) >= 1 && $(calls sbatch) <= 10 )) || fail "$(calls sbatch) sbatch calls for 10,000 tasks"
# One squeue per 0.5 s interval at most (back-off only lowers it), however many elements.
max_polls=$(echo "$elapsed / 0.5 + 2" | bc)
(( $(calls squeue) >= 1 && $(calls squeue) <= max_polls )) ||
  fail "$(calls squeue) squeue calls in ${elapsed}s (at most $max_polls)"
grep -q -- "--name=sluice-" calls/squeue || fail "squeue is not one call for the run's jobs"
queue_empty || fail "jobs left after a finished run"

# 2. primes.yaml on the cluster gives the local pool's results.
mkdir -p local cluster
sed 's/^    uses: primes.sieve$/    uses: primes.sieve\n    executor: slurm/' \
  "$src/workflows/primes.yaml" > cluster/primes.yaml
grep -q "executor: slurm" cluster/primes.yaml || fail "could not make the slurm variant"
cp "$src/workflows/primes.yaml" local/primes.yaml
(cd local && run primes.yaml) || fail "primes.yaml in the pool"
(cd cluster && run primes.yaml) || fail "primes.yaml on slurm"
cmp -s local/out/primes.json cluster/out/primes.json || fail "slurm results differ from the pool's"

# 3. A crashing element is retried, then reported with its job id and its log.
cat > crash.yaml <<'YAML'
limits: { slurm: { poll: 200ms } }
steps:
  boom:
    uses: test.crash
    executor: slurm
    retry: { attempts: 2, backoff: 100ms }
YAML
reset_calls
run crash.yaml && fail "a crashing element succeeded"
(( $(calls sbatch) == 2 )) || fail "$(calls sbatch) submissions, expected 2 (one retry)"
grep -q "slurm job [0-9]*_0 (element [0-9]*, state [A-Z]*) ended without its results" err ||
  fail "no job id and state in the error"
grep -q "worker exited with status 139" err || fail "no log tail in the error"

# 4. More CPUs than the node has: Slurm's reason, not a wait forever.
cat > big.yaml <<'YAML'
limits: { slurm: { poll: 200ms } }
steps:
  big:
    uses: primes.sieve
    executor: slurm
    slurm: { cpus: 64 }
    with: { limit: 100 }
YAML
run big.yaml && fail "a 64-CPU request on a 2-CPU node succeeded"
grep -q "can never start: Slurm says PartitionConfig" err || fail "no Slurm reason"
queue_empty || fail "the impossible job was left queued"

# 5. SIGTERM while elements run: the run's jobs are scancel'ed, squeue is empty after.
cat > slow.yaml <<'YAML'
limits: { slurm: { poll: 200ms } }
steps:
  burn:
    uses: test.spin
    executor: slurm
    foreach: "${{ range(1, 8) }}"
    with: { ms: 30000 }
YAML
reset_calls
# (not under timeout: it signals its whole process group; cleanup kills a hung engine)
"$sluice" run slow.yaml > out 2> err &
engine=$!
for _ in $(seq 100); do [[ -n $(squeue -h -t R -o %i) ]] && break; sleep 0.1; done
[[ -n $(squeue -h -t R -o %i) ]] || fail "no element started running"
kill -TERM $engine
wait $engine; status=$?; engine=
(( status == 1 )) || fail "exit $status after SIGTERM, expected 1"
(( $(calls scancel) >= 1 )) || fail "no scancel"
queue_empty || fail "squeue not empty after SIGTERM: $(squeue -h)"

# 6. MaxArraySize=10: 25 elements go out as arrays of at most 10.
cat > split.yaml <<'YAML'
limits: { slurm: { poll: 200ms } }
steps:
  sieve:
    uses: primes.sieve
    executor: slurm
    concurrency: 25
    foreach: "${{ range(1, 25) }}"
    with: { limit: "${{ item * 10 }}" }
YAML
reset_calls
run split.yaml || fail "25 elements"
(( $(calls sbatch) == 3 )) || fail "$(calls sbatch) sbatch calls for 25 elements, expected 3"
if grep -o -- "--array=0-[0-9]*" calls/sbatch | grep -qv -- "--array=0-[0-9]$"; then
  fail "an array above MaxArraySize: $(cat calls/sbatch)"
fi
# 8. Under serve (--once, and the daemon) a run's Slurm jobs are recorded as `run`'s are, so
# that a resume can take them over.
cat > cron.yaml <<'YAML'
name: cronslurm
schedule: { cron: "* * * * *" }
limits: { slurm: { poll: 200ms } }
steps:
  burn:
    uses: test.spin
    executor: slurm
    foreach: "${{ range(1, 2) }}"
    with: { ms: 200, value: "${{ item }}" }
YAML
slurm_rows() { sqlite3 .sluice/state.db "select count(*) from slurm_jobs s join runs r
  on s.run = r.seq where r.workflow = 'cronslurm' and r.status = 'succeeded'"; }
SLUICE_NOW=2030-01-07T10:00:05Z timeout 120 "$sluice" serve --once cron.yaml > out 2> err ||
  fail "serve --once of a Slurm step"
(( $(slurm_rows) >= 1 )) || fail "serve --once did not record its Slurm job"
SLUICE_NOW=2030-01-07T10:01:05Z "$sluice" serve cron.yaml > out 2> err &
engine=$!
for _ in $(seq 300); do [[ $(slurm_rows) -ge 2 ]] && break; sleep 0.1; done
kill -TERM $engine; wait $engine; status=$?; engine=
(( $(slurm_rows) >= 2 )) || fail "the daemon's run did not record its Slurm job"
(( status == 0 )) || fail "the daemon exited $status"
queue_empty || fail "jobs left after serve"
# 7. The engine killed mid-job, then --resume: finished elements are collected and running
# ones re-attached to, with no new submission; the killed run's finished tasks are reused.
cat > resume.yaml <<'YAML'
limits: { slurm: { poll: 200ms } }
steps:
  burn:
    uses: test.spin
    executor: slurm
    concurrency: 6
    foreach: "${{ range(1, 6) }}"
    with: { ms: 3000, value: "${{ item }}" }
YAML
reset_calls
"$sluice" run resume.yaml > out 2> err &
engine=$!
for _ in $(seq 150); do [[ -n $(squeue -h -t R -o %i) ]] && break; sleep 0.1; done
sleep 4 # the first two elements finish, the next two are running
kill -9 $engine; wait $engine 2>/dev/null; engine=
[[ -n $(squeue -h -o %i) ]] || fail "no element left on the cluster after the kill"
(( $(calls sbatch) == 1 )) || fail "$(calls sbatch) submissions before the kill, expected 1"
run resume.yaml --resume last || fail "the resumed run"
grep -q "burn .* ok  *6 " out || fail "not 6 ok tasks after the resume"
(( $(calls sbatch) == 1 )) || fail "the resume submitted again ($(calls sbatch) sbatch calls)"
grep -q "resumed run .*: [1-9] tasks\? reused" out || fail "no task reused"
queue_empty || fail "jobs left after the resumed run"
echo "ok"
