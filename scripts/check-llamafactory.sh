#!/usr/bin/env bash
# Load `affectbench export --format llamafactory` output with LLaMA-Factory's own data pipeline.
#
# 1. (.venv) a tiny random Qwen2.5-Omni checkpoint (tests/_tiny.py: real architecture, processor and chat
#    template) and a 4-pair finetune run on generated clips (video + audio track) are exported with the CLI;
# 2. (.venv-llamafactory, scripts/setup-llamafactory.sh) LLaMA-Factory's get_train_args / load_tokenizer /
#    get_template_and_fix_tokenizer / get_dataset tokenise it for SFT with template qwen2_omni, which
#    decodes each video and its audio with LLaMA-Factory's mm_plugin and expands the media tokens.
# Prints what LLaMA-Factory built and fails if a row was dropped, has no media tokens or no answer labels.
# Not part of the test suite: the side venv is ≈6.7 GB (LLaMA-Factory pins transformers <= 5.6).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-llamafactory.sh
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=1
PYTHONPATH="$PWD/src:$PWD" .venv/bin/python - "$W" <<'PY'
import subprocess, sys
from pathlib import Path
from affectbench.core.specs import FinetuneSpec, RunSpec
from affectbench.engine.store import Store
from tests._clips import make_clip
from tests._tiny import tiny_qwen_omni
from tests.finetune._fixtures import dataset_ref, write_corpus

w = Path(sys.argv[1])
model = tiny_qwen_omni(w / "omni")
clip = make_clip(w / "clip.mp4", 2.0)
ds = dataset_ref(write_corpus(w / "data", {"train": 4, "valid": 0, "test": 0}, media={"video": str(clip)}))
spec = RunSpec(kind="finetune", dataset=ds, model={"backend": "hf", "name": str(model)},
               finetune=FinetuneSpec(valid_split=None))
Store(w / "ws" / "affectbench.sqlite").open_run(spec)
subprocess.run([sys.executable, "-m", "affectbench.cli", "export", "--format", "llamafactory", spec.run_id,
                "--workspace", str(w / "ws"), "--out", str(w / "lf")], check=True)
(w / "run_id").write_text(spec.run_id)
PY
RID=$(cat "$W/run_id")
.venv-llamafactory/bin/python - "$W" "$RID" <<'PY'
import json, sys
from pathlib import Path
from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
from llamafactory.hparams import get_train_args
from llamafactory.model import load_tokenizer

w, rid = Path(sys.argv[1]), sys.argv[2]
model_args, data_args, training_args, *_ = get_train_args({
    "model_name_or_path": str(w / "omni"), "stage": "sft", "do_train": True, "finetuning_type": "lora",
    "dataset": f"{rid}-train", "dataset_dir": str(w / "lf" / rid), "template": "qwen2_omni",
    "cutoff_len": 8192, "output_dir": str(w / "out"), "report_to": "none", "video_fps": 2.0,
    "overwrite_cache": True, "preprocessing_num_workers": None,
})
tok_module = load_tokenizer(model_args)
tok = tok_module["tokenizer"]
template = get_template_and_fix_tokenizer(tok, data_args)
data = get_dataset(template, model_args, data_args, training_args, stage="sft", **tok_module)["train_dataset"]
rows = json.loads((w / "lf" / rid / f"{rid}-train.json").read_text())
print(f"exported rows: {len(rows)}; LLaMA-Factory examples: {len(data)}")
audio_id, video_id = (tok.convert_tokens_to_ids(t) for t in ("<|AUDIO|>", "<|VIDEO|>"))
for i, ex in enumerate(data):
    ids, labels = ex["input_ids"], ex["labels"]
    answer = tok.decode([t for t in labels if t != -100], skip_special_tokens=True).strip()
    n_a, n_v = ids.count(audio_id), ids.count(video_id)
    print(f"example {i}: {len(ids)} tokens, {n_v} video tokens, {n_a} audio tokens, answer {answer!r} "
          f"(exported: {rows[i]['messages'][-1]['content']!r})")
    assert n_a > 0 and n_v > 0, "media tokens missing"
    assert answer == rows[i]["messages"][-1]["content"], "answer labels differ"
assert len(data) == len(rows), "LLaMA-Factory dropped rows"
print("OK: LLaMA-Factory's qwen2_omni pipeline loaded every exported row with its video, audio and answer")
PY
