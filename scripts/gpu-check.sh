#!/usr/bin/env bash
# The real-Axolotl tier on a GPU machine: the same tests as on CPU (e2e/axolotl/trainer.test.ts), with bf16, flash
# attention and Axolotl's LoRA Triton kernels on, and with 2 GPUs or more a 2-node x 1-GPU job whose ranks meet over
# NCCL (static rendezvous on loopback), so node 1 must follow node 0's resume decision.
#
#   bash scripts/gpu-check.sh                  # builds the pinned Axolotl venv if needed (needs PyPI), then runs
#   FINETUNE_AXOLOTL_VENV=/opt/venv bash scripts/gpu-check.sh   # use an existing environment with CUDA torch
#
# Needs: nvidia-smi, Node (npm ci done), python3.11 or the given venv. Writes its logs under ${OUT:-/tmp}/gpu-check.
set -euo pipefail
cd "$(dirname "$0")/.."

out="${OUT:-/tmp}/gpu-check"
mkdir -p "$out"
command -v nvidia-smi >/dev/null || { echo "no nvidia-smi: this is not a GPU machine" >&2; exit 2; }
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv | tee "$out/gpus.csv"
gpus=$(nvidia-smi --query-gpu=index --format=csv,noheader | wc -l)
[ "$gpus" -ge 1 ] || { echo "nvidia-smi lists no GPU" >&2; exit 2; }
[ -x node_modules/.bin/node ] || npm ci --no-audit --no-fund

node=node_modules/.bin/node
if [ -z "${FINETUNE_AXOLOTL_VENV:-}" ]; then
  "$node" e2e/axolotl/env.ts | tee "$out/env.txt"
fi
py="${FINETUNE_AXOLOTL_VENV:+$FINETUNE_AXOLOTL_VENV/bin/python}"
"${py:-$(tail -n 1 "$out/env.txt")}" -c "import torch, axolotl; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available(), 'devices', torch.cuda.device_count()); print('axolotl', axolotl.__version__)" | tee "$out/versions.txt"

# Two GPUs are enough for the 2-node case; more would only slow the tiny model down.
export FINETUNE_REAL_GPUS=$(( gpus >= 2 ? 2 : 1 ))
echo "running the real-Axolotl tier with FINETUNE_REAL_GPUS=$FINETUNE_REAL_GPUS"
FINETUNE_KEEP_REAL=1 "$node" --test --test-reporter=spec --test-concurrency=1 e2e/axolotl/trainer.test.ts 2>&1 | tee "$out/tier.log"
