#!/usr/bin/env bash
# Make ./.venv-llamafactory: LLaMA-Factory 0.9.5 (it pins transformers <= 5.6, so a venv of its own) for
# scripts/check-llamafactory.sh, which loads `affectbench export --format llamafactory` output with
# LLaMA-Factory's own data pipeline (template qwen2_omni). Large (≈6.7 GB, a few minutes); not part of
# scripts/setup.sh's default path: AFFECTBENCH_LLAMAFACTORY=1 bash scripts/setup.sh runs it too.
set -euo pipefail
cd "$(dirname "$0")/.."
V=${LLAMAFACTORY_VENV:-.venv-llamafactory}
if [ -x "$V/bin/python" ] && "$V/bin/python" -c "import llamafactory, torchcodec" 2>/dev/null; then
  echo "== llamafactory: $V already set up"; exit 0
fi
PY=${PYTHON:-python3}
echo "== llamafactory into $V"
[ -x "$V/bin/python" ] || "$PY" -m venv "$V"
"$V/bin/pip" install -q "llamafactory==0.9.5" torchcodec torchvision 2> >(grep -v "^WARNING: Location 'file://" >&2)
"$V/bin/python" -c "import llamafactory, transformers, torch; print('== llamafactory', llamafactory.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__)"
