#!/usr/bin/env bash
# tests/slurm/cluster.sh: a one-node Slurm cluster on localhost for the Slurm tests (root; no
# systemd). Installs Debian's slurm-wlm daemons and munge when they are missing.
#   start [DIR]   install, write the config, start munged, slurmctld and slurmd (those not
#                 running), wait until the node takes jobs; prints "export ..." lines:
#                 eval "$(bash tests/slurm/cluster.sh start)"
#   stop [DIR]    cancel this cluster's jobs, stop the daemons it started (by PID file only)
#   status [DIR]
# DIR: $SLUICE_SLURM_DIR or /tmp/sluice-slurm (config, state, spool, logs, PID files, key).
# Knobs, read at start (stop first to change them): SLUICE_SLURM_CPUS (default 2),
# SLUICE_SLURM_MAX_ARRAY (MaxArraySize, default 1001), SLUICE_SLURM_PORT (6827; uses P, P+1).
# Exit 77 (the tests' skip code) when not root: the tests say so and ctest shows SKIPPED.
# No accounting database: sluice tracks elements with squeue and its own files, so sacct is
# not needed. Traps (from shared/tools/slurm-local.sh): munge wants a socket folder others
# may enter and a key only root reads; RealMemory must be set or any --mem is refused;
# batch_sched_delay=0 and a short sched_interval make a job start in about a second; PID 1
# here does not reap, so a dead daemon can stay a zombie: "alive" reads /proc/PID/cmdline.
set -euo pipefail
cmd=${1:-start}
D=$(realpath -m "${2:-${SLUICE_SLURM_DIR:-/tmp/sluice-slurm}}")
P=${SLUICE_SLURM_PORT:-6827} H=$(hostname -s)
CONF=$D/etc/slurm.conf SOCK=$D/munge/munge.socket R=$D/run L=$D/log
export SLURM_CONF=$CONF
log() { echo "slurm cluster: $*" >&2; }
die() { log "$*"; exit 1; }
if [ "$(id -u)" != 0 ]; then log "SKIP: not root (installing and starting Slurm needs root)"; exit 77; fi

live() { local c; [ -n "$1" ] && c=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") && [[ " $c" == *[/\ ]"$2 "* ]]; }
pid_of() { local p; p=$(cat "$R/$1.pid" 2>/dev/null) && live "$p" "$1" && echo "$p"; }
alive() { pid_of "$1" >/dev/null; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { # wait_for SECONDS WHAT COMMAND...
  local t=$1 what=$2; shift 2
  for ((i = 0; i < t * 5; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  tail -n 20 "$L"/*.log >&2 || true; die "timed out waiting for $what"
}
stop_one() {
  local p; p=$(pid_of "$1") || { rm -f "$R/$1.pid"; return 0; }
  log "stopping $1 ($p)"; kill "$p" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do live "$p" "$1" || break; sleep 0.1; done
  if live "$p" "$1"; then kill -9 "$p" 2>/dev/null || true; fi
  rm -f "$R/$1.pid"
}

case $cmd in
stop)
  if alive slurmctld && squeue -h -o %A | xargs -r scancel; then
    for ((i = 0; i < 50; i++)); do [ -z "$(squeue -h -o %A)" ] && break; sleep 0.2; done
  fi
  for d in slurmd slurmctld munged; do stop_one $d; done
  exit 0 ;;
status) for d in munged slurmctld slurmd; do
    if p=$(pid_of $d); then echo "$d: running ($p)"; else echo "$d: stopped"; fi; done
  exit 0 ;;
start) ;;
*) die "usage: $0 start|stop|status [DIR]" ;;
esac

pk="slurmctld slurmd slurm-client munge"
miss=(); for p in $pk; do dpkg -s "$p" >/dev/null 2>&1 || miss+=("$p"); done
if [ ${#miss[@]} -gt 0 ]; then
  log "installing ${miss[*]}"; export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${miss[@]}" >&2 ||
    { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${miss[@]}" >&2; }
fi

mkdir -p "$D"/{etc,munge,state,spool,run,log}; chmod 755 "$D" "$D/munge"
[ -s "$D/munge/munge.key" ] ||
  { head -c 1024 /dev/urandom >"$D/munge/munge.key"; chmod 400 "$D/munge/munge.key"; }
MEM=$(awk '/^MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
cat >"$CONF" <<CONF
ClusterName=sluicetest
SlurmctldHost=$H(127.0.0.1)
SlurmctldPort=$P
SlurmdPort=$((P + 1))
SlurmUser=root
AuthInfo=socket=$SOCK
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$R/slurmctld.pid
SlurmdPidFile=$R/slurmd.pid
SlurmctldLogFile=$L/slurmctld.log
SlurmdLogFile=$L/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,sched_interval=1,bf_interval=1
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=5
MaxArraySize=${SLUICE_SLURM_MAX_ARRAY:-1001}
ReturnToService=2
MailProg=/bin/true
SlurmdParameters=config_overrides
NodeName=$H NodeAddr=127.0.0.1 CPUs=${SLUICE_SLURM_CPUS:-2} RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

run() { "$@" </dev/null >>"$L/daemons.out" 2>&1; }
alive munged || run munged --socket="$SOCK" --key-file="$D/munge/munge.key" --force \
  --pid-file="$R/munged.pid" --log-file="$L/munged.log" --seed-file="$D/munge/seed"
wait_for 20 munged munge -S "$SOCK" -n
alive slurmctld || { port_busy "$P" && die "port $P busy; set SLUICE_SLURM_PORT"; run slurmctld -f "$CONF"; }
wait_for 60 slurmctld scontrol ping
alive slurmd || run slurmd -f "$CONF"
node_ready() { case $(sinfo -h -n "$H" -o %t) in idle | mix | alloc | comp) return 0 ;;
  down* | drain* | drng*) scontrol update nodename="$H" state=resume ;; esac; return 1; }
wait_for 60 "node $H to take jobs" node_ready
log "ready: $(sinfo -h -o '%P %a %D %t %N %c CPUs')"
printf 'export %s\n' "SLURM_CONF=$CONF" "SLUICE_SLURM_DIR=$D"
