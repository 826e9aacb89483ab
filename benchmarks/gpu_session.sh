#!/usr/bin/env bash
# One device call: correctness on CUDA, then the engine (this checkout, and an older checkout in .gpu_old if carried)
# side by side, the kernel micro-benchmark, cold start. Each step has its own time limit; results land in $OUT.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src OVOZ_RESULTS_DIR=${OUT:-/tmp}/results
mkdir -p "$OVOZ_RESULTS_DIR"
nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm --format=csv
python3 -c "import torch, transformers, triton; print('torch', torch.__version__, 'transformers', transformers.__version__, 'triton', triton.__version__)"
step() { local limit=$1; shift; echo "=== $* (limit ${limit}s)"; local t0=$SECONDS; timeout "$limit" "$@"; echo "=== rc=$? in $((SECONDS - t0)) s: $*"; }
step 100 python3 -m pytest -q -p no:cacheprovider -m gpu tests/gemma -x
step 60 python3 benchmarks/engine_parity.py --devices cuda
step 200 python3 benchmarks/engine.py --check --batches 1 128 512 --fused off on inductor --skip-generate
if [ -d .gpu_old ]; then (cd .gpu_old && PYTHONPATH=$PWD/src step 120 python3 benchmarks/engine.py --batches 1 128 512 --fused off on --skip-generate); fi
step 120 python3 benchmarks/bench_kernels.py

