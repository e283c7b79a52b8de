#!/usr/bin/env bash
# Every benchmark on a CUDA machine, then the notebooks' `cuda` cells; the tables go to one file.
# About 8 minutes on one H100/H200-class GPU (longer with the OT solvers' evaluation shape). Needs the environment of
# the README's first command, plus pip install -e ".[bench]" for the GeomLoss rows (without it they say so).
#   bench/gpu.sh [OUTPUT.md]        (default: bench/out/gpu-YYYYMMDD.md)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/out/gpu-$(date +%Y%m%d).md}
mkdir -p "$(dirname "$out")"
export PYTHONUNBUFFERED=1
{
  echo "# align_nb benchmarks on $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader), $(date -u +%Y-%m-%d)"
  python -c "import torch, open_clip, ot; print(f'torch {torch.__version__}, CUDA {torch.version.cuda}, open_clip {open_clip.__version__}, POT {ot.__version__}')"
  echo; echo '## Token-level OT head'; echo
  python bench/ot_head.py --device cuda --repeats 10 --solver-shapes train eval
  echo; echo '## Training step'; echo
  python bench/train_step.py --device cuda --K 10 100 --repeats 5
  echo; echo '## torch.compile'; echo
  python bench/train_step.py --device cuda --K 100 --repeats 5 --configs align_nb "align_nb + torch.compile"
  echo; echo '## Evaluation'; echo
  python bench/eval.py --device cuda --K 100 1000 --batch 100 --batches 3
  echo; echo '## Memory of one ImageNet-sized (K = 1000) training step'; echo
  python bench/train_step.py --device cuda --K 1000 --repeats 1 \
    --configs "authors' algorithm" "align_nb, no truncation (77 tokens)" align_nb "align_nb + text checkpointing"
  echo; echo '## CoCoOp: training step and evaluation against the authors per-image loop'; echo
  python bench/cocoop.py --device cuda --K 100 1000 --eval_batch 100 --repeats 3
  echo; echo '## The notebooks'"'"' cuda cells'; echo
  nbdev_test --n_workers 1 --flags cuda --do_print 2>&1 | tail -3
} 2>&1 | tee "$out"
