#!/usr/bin/env bash
# Make ./.venv-swift: ms-swift (it pins transformers < 5.17, so a venv of its own) for scripts/check-swift.sh,
# which loads `affectbench export --format swift` output with ms-swift's own dataset and template code
# (Qwen2.5-Omni template, qwen_omni_utils for the video, librosa for the audio). Large (torch is taken from
# the local wheel where pip finds one); not part of scripts/setup.sh's default path.
set -euo pipefail
cd "$(dirname "$0")/.."
V=${SWIFT_VENV:-.venv-swift}
if [ -x "$V/bin/python" ] && "$V/bin/python" -c "import swift, qwen_omni_utils, librosa, decord" 2>/dev/null; then
  echo "== swift: $V already set up"; exit 0
fi
PY=${PYTHON:-python3}
echo "== ms-swift into $V"
[ -x "$V/bin/python" ] || "$PY" -m venv "$V"
case "$(uname -m)" in
  x86_64) TORCH=("torch==2.14.1" "torchvision==0.29.1") ;;
  *)      TORCH=("torch==2.9.1" "torchvision==0.24.1") ;;
esac
"$V/bin/pip" install -q "${TORCH[@]}" "ms-swift==${SWIFT_VERSION:-4.6.0}" qwen-omni-utils librosa av decord soundfile \
  2> >(grep -v "^WARNING: Location 'file://" >&2)
"$V/bin/python" -c "import swift, transformers, torch; print('== swift', swift.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__)"
