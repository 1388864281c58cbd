#!/usr/bin/env bash
# The device (GPU) session in two parts; see docs/BENCHMARKS.md for what each measures.
#   main:  SepLLM self-distillation (benchmarks/adapt_gpu.sh), then VRAM of full vs bounded caches.
#   quant: bitsandbytes 4-bit on CUDA (carry .dev/bnb) and the gpu-marked tests.
set -u
part=${1:-main}
OUT=${OUT:-out/device}
mkdir -p "$OUT"
book=.cache/adapt-data/gutenberg_2701_Moby_Dick_Melville.txt
home=/tmp/sepsum-home
if [ "$part" = main ]; then
  bash benchmarks/adapt_gpu.sh --train-seconds 120 || echo "[device_run] adaptation failed: rc=$?"
fi
export PYTHONPATH=/tmp/site:$(pwd) SEPSUM_HOME=$home PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
mkdir -p $home/models && ln -sfn /tmp/sepsum-model $home/models/smollm2-135m-instruct
python3 -c "from app.engine import registry; registry.register_default(__import__('pathlib').Path('$home/models/smollm2-135m-instruct'))"
if [ "$part" = main ]; then
  timeout 200 python3 -m benchmarks.gpu_checks --book $book --tokens 16384 65536 --only caches \
    --out "$OUT/gpu_checks.json" || echo "[device_run] gpu_checks failed: rc=$?"
else
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site-bnb .dev/bnb/*.whl
  export PYTHONPATH=/tmp/site-bnb:$PYTHONPATH
  timeout 200 python3 -m benchmarks.gpu_checks --book $book --only 4bit --out "$OUT/gpu_4bit.json" \
    || echo "[device_run] 4-bit check failed: rc=$?"
  timeout 200 python3 -m pytest -m gpu tests/app/engine/test_gpu.py -q -p no:qt -p no:cacheprovider 2>&1 \
    | tee "$OUT/pytest_gpu.txt"
fi
echo "[device_run] $part done"
