#!/usr/bin/env bash
# Load `affectbench export --format swift` output with ms-swift's own dataset and template code.
#
# 1. (.venv) a tiny random Qwen2.5-Omni checkpoint (tests/_tiny.py: real architecture, processor and chat
#    template) and 4-pair finetune runs on generated clips (three with an audio track, one without) are
#    exported with the CLI, once per audio mode the eval can use: separate streams (default media) and
#    audio interleaved in the video (media.preset qwen-omni-utils);
# 2. (.venv-swift, scripts/setup-swift.sh) for each export, with the environment its swift_args.json names
#    (USE_AUDIO_IN_VIDEO), ms-swift's load_dataset reads the JSONL and its qwen2_5_omni template encodes every
#    row for training (max_length from swift_args.json, truncation_strategy raise), decoding the video with
#    qwen_omni_utils and the audio with librosa — and, with USE_AUDIO_IN_VIDEO=1, the video's audio itself.
# Prints what ms-swift built and fails if a row was dropped, is longer than the exported max_length, has no
# video tokens, lost or doubled its audio (the interleaved row's audio tokens must match the separate row's
# within a frame), or has no answer labels.
# Not part of the test suite: the side venv is several GB (ms-swift pins transformers < 5.17).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-swift.sh
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=1
PYTHONPATH="$PWD/src:$PWD" .venv/bin/python - "$W" <<'PY'
import json, subprocess, sys
from pathlib import Path
from affectbench.core.specs import FinetuneSpec, RunSpec
from affectbench.engine.store import Store
from tests._clips import make_clip
from tests._tiny import tiny_qwen_omni

w = Path(sys.argv[1])
model = tiny_qwen_omni(w / "omni")
clip, mute = make_clip(w / "clip.mp4", 2.0), make_clip(w / "mute.mp4", 2.0, audio=False)
rows = [{"id": f"train{i:03d}", "label": ["negative", "positive"][i % 2], "transcript": f"This is clip {i}.",
         "split": "train", "video": str(mute if i == 3 else clip)} for i in range(4)]
(w / "data").mkdir()
(w / "data" / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
ds = {"name": "manifest", "root": str(w / "data"),
      "options": {"task": "classification", "labels": ["negative", "positive"], "task_name": "sentiment"}}
store = Store(w / "ws" / "affectbench.sqlite")
for mode, media in (("separate", {}), ("interleaved", {"preset": "qwen-omni-utils"})):
    spec = RunSpec(kind="finetune", dataset=ds, model={"backend": "hf", "name": str(model)}, media=media,
                   finetune=FinetuneSpec(valid_split=None))
    store.open_run(spec)
    subprocess.run([sys.executable, "-m", "affectbench.cli", "export", "--format", "swift", spec.run_id,
                    "--workspace", str(w / "ws"), "--out", str(w / mode)], check=True)
    (w / mode / "run_id").write_text(spec.run_id)
PY
for MODE in separate interleaved; do
  RID=$(cat "$W/$MODE/run_id")
  ARGS="$W/$MODE/$RID/swift_args.json"
  ENV=$(.venv/bin/python -c "import json,sys; print(' '.join(f'{k}={v}' for k, v in json.load(open(sys.argv[1]))['env'].items()))" "$ARGS")
  echo "== $MODE: env $ENV"
  env $ENV .venv-swift/bin/python - "$W" "$MODE" "$RID" <<'PY'
import json, os, sys
from pathlib import Path
from swift.dataset import load_dataset
from swift.model import get_processor
from swift.template import get_template

w, mode, rid = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
folder = w / mode / rid
args = json.loads((folder / "swift_args.json").read_text())
processor = get_processor(str(w / "omni"), model_type="qwen2_5_omni")
template = get_template(processor, max_length=args["max_length"], truncation_strategy="raise")
# the tiny checkpoint is a thinker; ms-swift's template reads the full Omni config's `thinker_config`
# (released checkpoints are full): wrap the thinker config in transformers' own Qwen2_5OmniConfig
from transformers import Qwen2_5OmniConfig
if not hasattr(template.config, "thinker_config"):
    template.config = Qwen2_5OmniConfig(thinker_config=template.config.to_dict())
template.set_mode("train")
train, _ = load_dataset(args["dataset"], strict=True)
rows = [json.loads(line) for line in Path(args["dataset"][0]).read_text().splitlines()]
tok = processor.tokenizer
audio_id, video_id = (tok.convert_tokens_to_ids(t) for t in ("<|AUDIO|>", "<|VIDEO|>"))
print(f"USE_AUDIO_IN_VIDEO={os.environ.get('USE_AUDIO_IN_VIDEO')}; max_length {args['max_length']}; "
      f"exported rows: {len(rows)}; ms-swift rows: {len(train)}")
counts = []
for i, row in enumerate(train):
    enc = template.encode(row)
    ids, labels = enc["input_ids"], enc["labels"]
    answer = tok.decode([t for t in labels if t != -100], skip_special_tokens=True).strip()
    n_a, n_v = ids.count(audio_id), ids.count(video_id)
    user = rows[i]["messages"][-2]["content"]
    print(f"row {i}: tags {user[:user.find('This')]!r}, {len(rows[i].get('audios', []))} WAVs; {len(ids)} tokens, "
          f"{n_v} video tokens, {n_a} audio tokens, answer {answer!r} (exported: {rows[i]['messages'][-1]['content']!r})")
    assert n_v > 0, "video tokens missing"
    assert answer == rows[i]["messages"][-1]["content"], "answer labels differ"
    assert len(ids) <= args["max_length"]
    counts.append(n_a)
assert len(train) == len(rows), "ms-swift dropped rows"
(w / f"{mode}.audio").write_text(json.dumps(counts))
print(f"OK: ms-swift's qwen2_5_omni template encoded every exported row ({mode})")
PY
done
.venv/bin/python - "$W" <<'PY'
import json, sys
from pathlib import Path
w = Path(sys.argv[1])
sep, inter = (json.loads((w / f"{m}.audio").read_text()) for m in ("separate", "interleaved"))
print(f"audio tokens per row: separate {sep}, interleaved {inter}")
assert sep[3] == 0 and all(n > 0 for n in sep[:3]), "separate: a clip with audio lost it, or the silent clip got some"
# one audio per clip: ms-swift decodes the track from the mp4 itself (librosa), the separate WAV is ours, so
# the lengths may differ by a frame; a doubled audio would give about twice the tokens
assert len(inter) == 3, "interleaved: the clip without an audio track must be left out"
assert all(abs(i - s) <= max(2, s // 10) for i, s in zip(inter, sep[:3])), "interleaved: audio doubled or lost"
print("OK: one audio per clip in both modes; the clip without an audio track has none (separate) or is left out")
PY
