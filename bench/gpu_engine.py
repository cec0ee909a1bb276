"""GPU check: the engine on a random-weight model of the real Qwen2.5-Omni-7B thinker size, bf16, SDPA.

The model folder holds the released processor settings (bench/_zoo.py, full_scale) and a config.json whose
size-defining fields are the packaged Qwen2.5-Omni-7B thinker config (src/affectbench/models/configs/:
8.93e9 parameters, 16.64 GiB in bf16); its weights are absent, so transformers initialises them randomly
on load (straight onto the GPU). Timings are real for that architecture and prompt sizes; answers are
meaningless. N synthetic 4-20 s clips (320x240, with a tone) per phase:
- model card loop: per sample `prepare` (decode) then `generate` at batch 1, one after the other;
- engine: the Runner (prefetch pool, model one batch ahead) at batch 1, 4 and 8, cold media cache.
Printed per phase: samples/s, ratio to the model card loop, peak GPU memory (torch.cuda.max_memory_allocated).

    .venv/bin/python bench/gpu_engine.py                     # CUDA: the 7B-size check (under 5 minutes on an H200)
    .venv/bin/python bench/gpu_engine.py --tiny --clips 4    # CPU dry check: tiny sizes, float32
Without CUDA and without --tiny it says so and exits 0.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "bench")]


TASK = {"task": "classification", "labels": ["negative", "positive"], "task_name": "sentiment"}


def seven_b_folder(out: Path, tiny: bool) -> Path:
    """The tiny omni folder with the released processors; unless `tiny`, the 7B thinker's sizes and no weights."""
    import _zoo
    import torch
    from safetensors.torch import save_file

    path = _zoo.build("qwen2_5_omni", out, full_scale=True)
    if tiny:
        return path
    cfg = json.loads((path / "config.json").read_text())
    real = json.loads((ROOT / "src/affectbench/models/configs/Qwen2.5-Omni-7B.json").read_text())
    for part in ("audio_config", "vision_config", "text_config"):
        cfg[part].update(real[part])
    cfg["text_config"].pop("rope_theta", None)  # transformers 5: rope settings live in rope_parameters
    for part in ("audio_config", "vision_config", "text_config"):  # per-layer lists of the tiny model
        cfg[part].pop("layer_types", None)
    cfg["text_config"]["rope_parameters"] = {
        "rope_type": "default",
        "rope_theta": 1000000.0,
        "mrope_section": [16, 24, 24],
    }
    (path / "config.json").write_text(json.dumps(cfg, indent=1))
    for f in glob.glob(str(path / "*.safetensors*")):
        os.remove(f)
    save_file({"placeholder": torch.zeros(1)}, str(path / "model.safetensors"))  # every weight: random init
    return path


def write_data(root: Path, n: int, seed: int = 0) -> Path:
    from tests._clips import make_clip

    rng = random.Random(seed)
    rows = []
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        secs = round(rng.uniform(4.0, 20.0), 2)
        clip = make_clip(root / f"c{i:03d}.mp4", secs, size=(320, 240), freq=200 + 7 * i)
        rows.append({"id": f"g{i:03d}", "label": ["negative", "positive"][i % 2], "transcript": f"utterance {i}",
                     "split": "test", "video": str(clip), "audio": str(clip)})  # fmt: skip
    (root / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return root


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=8)
    ap.add_argument("--batch", default="1,4,8")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes on CPU (a dry check of the script)")
    ap.add_argument("--check-config", action="store_true", help="build the 7B-size folder, count it on the meta device")
    args = ap.parse_args()
    import torch

    if args.check_config:
        from transformers import AutoConfig, Qwen2_5OmniThinkerForConditionalGeneration

        with tempfile.TemporaryDirectory() as d:
            path = seven_b_folder(Path(d) / "omni7b", tiny=False)
            with torch.device("meta"):
                model = Qwen2_5OmniThinkerForConditionalGeneration(AutoConfig.from_pretrained(path))
            n = sum(p.numel() for p in model.parameters())
            print(f"7B-size folder: {n / 1e9:.3f}e9 parameters, {n * 2 / 2**30:.2f} GiB in bf16")
        return 0

    cuda = torch.cuda.is_available()
    if not cuda and not args.tiny:
        print("no CUDA device: nothing measured (use --tiny for the CPU dry check)")
        return 0
    from affectbench.core.specs import ExecSpec, GenerationSpec, RunSpec
    from affectbench.core.types import Message, Part
    from affectbench.engine.runner import Runner
    from affectbench.engine.store import Store
    from affectbench.models.hf import HFModel

    opts = {"dtype": "bfloat16", "device": "cuda", "attn_implementation": "sdpa"} if cuda else {"dtype": "float32"}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        t0 = time.perf_counter()
        model_dir = seven_b_folder(d / "omni7b", args.tiny)
        data = write_data(d / "data", args.clips)
        print(f"setup (folder + {args.clips} clips): {time.perf_counter() - t0:.1f} s")
        gen = GenerationSpec(max_new_tokens=args.tokens)
        ds = {"name": "manifest", "root": str(data),
              "options": TASK}  # fmt: skip
        rows = []

        def peak_reset():
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()

        def peak() -> str:
            return f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if cuda else "n/a (CPU)"

        # the model card's loop: decode then generate, one sample at a time
        spec = RunSpec(dataset=ds, model={"backend": "hf", "name": str(model_dir), "options": opts}, generation=gen)
        m = HFModel(spec.model, spec.media, None)
        t0 = time.perf_counter()
        m.load()
        n_params = sum(p.numel() for p in m.model.parameters())
        print(f"model load (random init): {time.perf_counter() - t0:.1f} s, {n_params / 1e9:.2f}e9 parameters")
        clips = sorted(data.glob("c*.mp4"))
        first = [Part(kind="video", path=str(clips[0])), Part(kind="audio", path=str(clips[0])), Part.of_text("x")]
        m.generate([m.prepare([Message(role="user", parts=first)])], gen)  # warm-up
        peak_reset()
        t0 = time.perf_counter()
        for c in clips:
            parts = [Part(kind="video", path=str(c)), Part(kind="audio", path=str(c)), Part.of_text("Emotion?")]
            m.generate([m.prepare([Message(role="user", parts=parts)])], gen)
        wall = time.perf_counter() - t0
        base = len(clips) / wall
        rows.append(("model card loop (batch 1)", base, 1.0, peak()))
        for b in (int(x) for x in args.batch.split(",")):
            store = Store(d / f"ws{b}" / "affectbench.sqlite")
            runner = Runner(store, ExecSpec(batch_size=b, workers=2, prefetch=4), progress=False)
            peak_reset()
            t0 = time.perf_counter()
            rec = runner.infer(spec, m)  # the model loaded above
            wall = time.perf_counter() - t0
            n = store.count_predictions(rec.id)
            rows.append((f"engine batch {b}", n / wall, (n / wall) / base, peak()))
        print("| phase | samples/s | vs model card loop | peak GPU memory |")
        print("|---|---:|---:|---|")
        for name, sps, ratio, mem in rows:
            print(f"| {name} | {sps:.2f} | {ratio:.2f}x | {mem} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
