#!/usr/bin/env bash
# A SLURM array: one featviz shard per task, each in its own clone on one GPU
# (docs/scaling.md, recipe 1). Submit the shards, then the assembly after them:
#   jobid=$(sbatch --parsable docs/scaling/slurm-shard.sh)
#   sbatch --dependency=afterok:$jobid docs/scaling/slurm-assemble.sh
# Set REPO_URL (and the DVC remote's credentials) in the environment; adjust the array to
# WORKERS - 1. Not run by featviz's own CI.
#SBATCH --job-name=featviz-shard
#SBATCH --array=0-3
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --time=04:00:00
set -euo pipefail
WORKERS=4

clone="${TMPDIR:-/tmp}/featviz-shard-$SLURM_ARRAY_JOB_ID-$SLURM_ARRAY_TASK_ID"
git clone --quiet "$REPO_URL" "$clone"
cd "$clone"
python -m pip install --quiet -e .
dvc repro --glob '*model-files@*'
featviz shard --workers "$WORKERS" --index "$SLURM_ARRAY_TASK_ID" |
  xargs -r dvc repro --single-item
featviz push
