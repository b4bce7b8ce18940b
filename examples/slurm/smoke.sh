#!/bin/bash
# Smoke test of the Slurm examples on one Debian machine (not part of CI). As root, it installs
# slurm-wlm and munge from apt if missing, starts munged, slurmctld and slurmd with a throw-away
# single-node configuration (no cgroups: proctrack/linuxproc, task/none), publishes the CLI,
# submits the quick study as a 3-task array plus the merge job, waits, and checks the merged
# result: 5 verdicts, every unit present, report.md with its verdict table.
#   sudo examples/slurm/smoke.sh [WORK_DIR=/tmp/globalntk-slurm-smoke] [SHARDS=3] [SCALE=quick]
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${1:-/tmp/globalntk-slurm-smoke}"
SHARDS="${2:-3}"
SCALE="${3:-quick}"
[ "$(id -u)" -eq 0 ] || { echo "error: run as root (it starts slurmctld/slurmd)" >&2; exit 2; }
[ ! -e "$WORK" ] || { echo "error: $WORK exists; choose a new WORK_DIR" >&2; exit 2; }
command -v slurmctld >/dev/null && command -v munged >/dev/null || { apt-get update -qq; apt-get install -y -qq slurm-wlm munge >/dev/null; }
mkdir -p "$WORK"/{state,spool,log}
host="$(hostname -s)"
cpus="$(nproc)"
mem="$(awk '/MemTotal/ {print int($2/1024) - 512}' /proc/meminfo)"
cat > "$WORK/slurm.conf" <<CONF
ClusterName=smoke
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/log/slurmctld.log
SlurmdLogFile=$WORK/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=smoke Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$WORK/slurm.conf"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
if ! pgrep -x munged >/dev/null; then
  mkdir -p /run/munge && chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged
fi
munge -n | unmunge >/dev/null
slurmctld -D -f "$SLURM_CONF" & pids+=($!)
slurmd -D -f "$SLURM_CONF" & pids+=($!)
for _ in $(seq 60); do sinfo -h -o %T 2>/dev/null | grep -qE '^idle' && break; sleep 1; done
sinfo

echo "== publishing the CLI"
dotnet publish "$repo/src/GlobalNtk.Cli" -c Release -o "$WORK/cli" --nologo -v quiet
export GLOBALNTK="dotnet $WORK/cli/GlobalNtk.Cli.dll"

echo "== submitting the $SCALE study as $SHARDS shards"
start=$(date +%s)
line="$("$repo/examples/slurm/submit.sh" "$WORK/study-run" "$SHARDS" "$SCALE")"
echo "$line"
merge="$(echo "$line" | sed -E 's/.*merge job ([0-9]+).*/\1/')"
while squeue -h | grep -q .; do sleep 10; done
echo "== all jobs left the queue after $(( $(date +%s) - start )) s"
tail -n 3 "$WORK"/study-run/globalntk-*.out

result="$WORK/study-run/study/results.json"
[ -f "$result" ] || { echo "FAIL: no merged $result (merge job $merge)"; exit 1; }
claims=$(grep -c '"id": "C[1-5]"' "$result")
units=$(grep -c '"folder": "units/' "$result")
planned=$(grep -c '"folder": "units/' "$WORK"/study-run/shard-*/units/*/unit.json | awk -F: '{s+=$2} END {print s}')
[ "$claims" -eq 5 ] || { echo "FAIL: $claims verdicts in $result"; exit 1; }
[ "$units" -eq "$planned" ] || { echo "FAIL: $units units merged, $planned in the shards"; exit 1; }
head -n 12 "$WORK/study-run/study/report.md" | grep -q '^| C5 ' || { echo "FAIL: report.md does not open with the verdict table"; exit 1; }
grep '^| C' "$WORK/study-run/study/report.md" | sed -E 's/^\| (C[1-5] [^|]*)\|.*\*\*([a-z ]+)\*\* \|$/\1: \2/'
echo "PASS: $units units from $SHARDS shards merged into $WORK/study-run/study ($claims verdicts)"
