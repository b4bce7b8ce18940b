#!/bin/bash
# Submits a sharded `globalntk reproduce` study: an array of SHARDS tasks and a merge job that
# runs after all of them succeeded. Prints the two job ids.
#   examples/slurm/submit.sh STUDY_DIR [SHARDS=8] [SCALE=paper]
# GLOBALNTK names the command (default: globalntk on PATH).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
STUDY_DIR="$(mkdir -p "$1" && cd "$1" && pwd)"
SHARDS="${2:-8}"
SCALE="${3:-paper}"
export STUDY_DIR SCALE GLOBALNTK="${GLOBALNTK:-globalntk}"
array=$(sbatch --parsable --chdir="$STUDY_DIR" --array=0-$((SHARDS - 1)) --export=ALL "$here/reproduce-array.sbatch")
array="${array%%;*}"
merge=$(sbatch --parsable --chdir="$STUDY_DIR" --dependency=afterok:"$array" --export=ALL "$here/reproduce-merge.sbatch")
echo "array job $array ($SHARDS shards of the $SCALE study), merge job $merge; report: $STUDY_DIR/study/report.md"
