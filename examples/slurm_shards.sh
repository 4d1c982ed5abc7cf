#!/bin/bash
# One task of one model over a Slurm array, one shard per array task, then one merge that waits for all of them:
#
#   jid=$(sbatch --parsable --array=0-3 examples/slurm_shards.sh)
#   sbatch --dependency=afterok:$jid --wrap 'rolebench-eval merge out/rolebench_specific_en/part* --output-path out/rolebench_specific_en/merged'
#
# Shards count from 0 as array ids do; the merge refuses a missing, duplicated or foreign part (exit 2), so a
# failed array task shows up there, not on the leaderboard. Rerun a failed id with `sbatch --array=<id> ...`.
# The same grid on one machine: `rolebench-eval board BOARD.yaml --jobs N` (README, "Evaluate a model").
#SBATCH --job-name=rolebench-shard
#SBATCH --gpus=1
#SBATCH --cpus-per-task=8
#SBATCH --time=04:00:00
#SBATCH --output=logs/%x-%A_%a.log
set -euo pipefail
MODEL=${MODEL:-meta-llama/Llama-3.1-8B-Instruct}
TASK=${TASK:-rolebench_specific_en}
rolebench-eval run --model vllm --model_args "pretrained=$MODEL" --tasks "$TASK" --apply_chat_template \
    --log_samples --shard "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT" --output_path "out/$TASK/part$SLURM_ARRAY_TASK_ID"
