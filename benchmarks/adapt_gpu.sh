#!/usr/bin/env bash
# Device run of SepLLM self-distillation (see benchmarks/adapt_gpu.py). Run from the repository root.
# Needs the carry folders made by `python -m benchmarks.adapt_gpu prepare` (two calls: README of the device).
# Extra arguments go to `benchmarks.adapt_gpu run` (e.g. --train-seconds 120).
set -euo pipefail
OUT=${OUT:-out/adapt-gpu}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
echo "[adapt-gpu.sh] $(date -u +%H:%M:%S) start in $(pwd)"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || echo "[adapt-gpu.sh] no nvidia-smi"
shopt -s nullglob
wheels=(.cache/adapt-xfer/a/*.whl .cache/adapt-xfer/b/*.whl /tmp/sepsum-stage/*.whl)
if [ ${#wheels[@]} -eq 0 ]; then
  echo "[adapt-gpu.sh] FAILED: no wheels in .cache/adapt-xfer/{a,b} or /tmp/sepsum-stage (carry them)" >&2
  exit 2
fi
# One copy of each wheel (the same file may sit in two staging folders).
declare -A seen=()
unique=()
for w in "${wheels[@]}"; do
  base=$(basename "$w")
  if [ -z "${seen[$base]:-}" ]; then seen[$base]=1; unique+=("$w"); fi
done
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "${unique[@]}"
export PYTHONPATH=/tmp/site:$(pwd) PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python3 -c "import transformers, peft, gguf; print('[adapt-gpu.sh] transformers', transformers.__version__, 'peft', peft.__version__)"
python3 -m benchmarks.adapt_gpu run --out "$OUT" "$@"
echo "[adapt-gpu.sh] $(date -u +%H:%M:%S) done"
