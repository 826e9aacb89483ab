#!/usr/bin/env bash
# One device call: correctness on CUDA, then the engine (this checkout, and an older checkout in .gpu_old if carried)
# side by side, the kernel micro-benchmark, cold start. Each step has its own time limit; results land in $OUT.
set -u
if [ -d .whl ]; then python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH_EXTRA=/tmp/site; fi
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src${PYTHONPATH_EXTRA:+:$PYTHONPATH_EXTRA} OVOZ_RESULTS_DIR=${OUT:-/tmp}/results
mkdir -p "$OVOZ_RESULTS_DIR"
nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm --format=csv
python3 -c "import torch, transformers, triton; print('torch', torch.__version__, 'transformers', transformers.__version__, 'triton', triton.__version__)"
step() { local limit=$1; shift; echo "=== $* (limit ${limit}s)"; local t0=$SECONDS; timeout "$limit" "$@"; echo "=== rc=$? in $((SECONDS - t0)) s: $*"; }

step 200 python3 benchmarks/engine.py --check --batches 1 128 512 --fused off on inductor --skip-generate
if [ -d .gpu_old ]; then (cd .gpu_old && OVOZ_SHARED_CLIPS=$PWD/../shared/data/uz_clips PYTHONPATH=$PWD/src:/tmp/site step 100 python3 benchmarks/engine.py --batches 1 128 512 --fused off on --skip-generate); fi

step 40 python3 benchmarks/engine_parity.py --devices cuda
