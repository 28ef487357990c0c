#!/usr/bin/env bash
# Every CUDA path once, with numbers, for the first GPU this project gets (< 8 min on one GPU).
#   bash bench/gpu_check.sh            # on the GPU machine, from the repository root
#   bash bench/gpu_check.sh --dry-run  # anywhere: checks each step's arguments and runs the CPU fallbacks
# Steps: StarGAN steps fp32 / bf16 autocast / torch.compile (channels_last is on by default on CUDA)
# against the official-style loop; fp32-vs-bf16 loss agreement over 300 iterations from one seed;
# generation at 256x128 against a stargan4reid-style loop; re-ID AMP steps (ResNet-50 256x128);
# exact evaluation and re-ranking on GPU (torch and faiss-gpu) against the CPU metrics; DDP on 2 GPUs.
# Each step has its own time limit and a failure does not stop the others; the summary lists them.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DRY=0
[[ "${1:-}" == "--dry-run" ]] && DRY=1
WORK=${WORK:-$(mktemp -d -t gpu_check.XXXX)}  # or WORK=DIR
FAILED=()

step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2; shift 2
  echo "=== $name"
  local t0=$SECONDS
  if timeout "$limit" "$@"; then echo "--- $name: ok in $((SECONDS - t0)) s"; else echo "--- $name: FAILED ($?)"; FAILED+=("$name"); fi
}

if [[ $DRY == 1 ]]; then
  for script in stargan_step reid_step gpu_paths stargan_precision_compare; do
    step "args: $script" 60 "$PY" "bench/$script.py" --help > /dev/null  # the step's own lines go too; failures are kept
  done
  step "cpu fallback: generation + evaluation" 300 "$PY" bench/gpu_paths.py --work "$WORK/paths" --cpu-fallback
  step "args: train_stargan" 60 "$PY" tools/train_stargan.py --config configs/stargan/market.yaml --dry-run
  echo "dry run done; failed: ${FAILED[*]:-none}"
  [[ ${#FAILED[@]} == 0 ]]
  exit
fi

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
"$PY" -c "import torch, faiss; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gpus', torch.cuda.device_count(), 'bf16', torch.cuda.is_bf16_supported(), 'faiss gpus', faiss.get_num_gpus() if hasattr(faiss, 'get_num_gpus') else 0)"
NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count())")

"$PY" tools/make_synthetic.py --out "$WORK/syn" --preset demo > /dev/null
step "stargan step fp32 (full 256x128 model)" 120 "$PY" bench/stargan_step.py --configs full --data-root "$WORK/syn" --device cuda --amp false --cycles 10
step "stargan step bf16" 120 "$PY" bench/stargan_step.py --configs full --data-root "$WORK/syn" --device cuda --amp true --cycles 10
step "stargan step bf16 + compile" 180 "$PY" bench/stargan_step.py --configs full --data-root "$WORK/syn" --device cuda --amp true --compile --cycles 10
for amp in false true; do
  step "stargan 300 iterations amp=$amp" 120 "$PY" tools/train_stargan.py --config configs/stargan/synthetic.yaml \
    --set data.root="$WORK/syn" train.seed=0 runtime.amp=$amp log.tensorboard=false --run-dir "$WORK/gan_amp_$amp" --max-steps 300 --no-progress
done
step "fp32 vs bf16 losses" 30 "$PY" bench/stargan_precision_compare.py --window 100 300 fp32="$WORK/gan_amp_false" bf16="$WORK/gan_amp_true"
step "re-ID AMP steps (ResNet-50 256x128)" 120 "$PY" bench/reid_step.py --backbone resnet50 --height 256 --width 128 --device cuda --steps 30
step "generation + evaluation + re-ranking on GPU" 180 "$PY" bench/gpu_paths.py --work "$WORK/paths"
if [[ $NGPU -ge 2 ]]; then
  step "DDP StarGAN on 2 GPUs" 180 "$PY" -m torch.distributed.run --nproc_per_node 2 tools/train_stargan.py \
    --config configs/stargan/synthetic.yaml --set data.root="$WORK/syn" train.seed=0 log.tensorboard=false \
    --run-dir "$WORK/gan_ddp" --max-steps 50 --no-progress
else
  echo "=== DDP: skipped (1 GPU)"
fi
echo "gpu check done in $SECONDS s; failed: ${FAILED[*]:-none}"
