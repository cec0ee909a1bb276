#!/usr/bin/env bash
# The main job on the embedded default, offline on CPU: install, write the synthetic demo data,
# run zero-shot → experts knowledge → LoRA fine-tune → eval with the small LLM, then report.
set -euo pipefail
cd "$(dirname "$0")/.."
AFFECTBENCH_SKIP_VLLM=1 bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
AB=.venv/bin/affectbench
[ -f demo-data/label.csv ] || $AB data demo demo-data
$AB run src/affectbench/experiments/demo.yaml "$@"
$AB report --workspace workspace
echo "report: workspace/report/report.html (open it in a browser)"
