#!/usr/bin/env bash
# The assembly after docs/scaling/slurm-shard.sh's array (see there). It restores every
# generate stage from the DVC remote's run cache and runs cross-evaluate and report; a shard
# that never pushed is an error naming it. Not run by featviz's own CI.
#SBATCH --job-name=featviz-assemble
#SBATCH --cpus-per-task=8
#SBATCH --time=01:00:00
set -euo pipefail
WORKERS=4

clone="${TMPDIR:-/tmp}/featviz-assemble-$SLURM_JOB_ID"
git clone --quiet "$REPO_URL" "$clone"
cd "$clone"
python -m pip install --quiet -e .
featviz assemble --workers "$WORKERS"
echo "results in $clone: dvc.lock, metrics/, data/report/index.html"
