"""Readout speed and memory on the demo with the cascade's Gemma-3-270M (text prompts, no knowledge):

- probe feature extraction (`finetune.readout.extract_features`: a forward with every layer's hidden
  states, pooled and stored) vs one plain eval forward (`logits_to_keep=1`) on the same encoded samples:
  samples/s and the peak RSS of each stage, each in its own subprocess;
- readout training (`lora_head`) vs generative SFT (`finetune` run) s/step on the same train samples,
  same LoRA settings and batch, both through their run kinds (steps timed from the store's train logs).

    .venv/bin/python bench/bench_readout.py [--data demo-data] [--n 32] [--steps 6] [--threads 2]

`--data` reuses a written demo set (else one is written to a temp folder; espeak-ng is not needed as
the prompts here are text only).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _synth import REPO, current_rss_mb, peak_rss_mb


def _ds(data: Path) -> dict:
    return {"name": "demo", "root": str(data)}


def _items(spec, n: int):
    from affectbench.engine.store import Store
    from affectbench.finetune.readout import readout_inputs

    store = Store(Path(tempfile.mkdtemp()) / "affectbench.sqlite")
    return readout_inputs(store, spec).train.items[:n]


def child(stage: str, data: Path, n: int, steps: int, threads: int, work: Path) -> dict:
    import torch

    from affectbench.core.specs import FinetuneSpec, RunSpec
    from affectbench.engine.store import Store

    torch.set_num_threads(threads)
    model = {"backend": "cascade"}
    media = {"modalities": "T"}
    batch = 4
    ft = FinetuneSpec(epochs=1, lr=1e-3, batch_size=batch, rank=8, alpha=16, dropout=0.0, valid_split=None,
                      train_limit=batch * steps, threads=threads)  # fmt: skip
    if stage in ("features", "forward"):
        from affectbench.finetune.backends import trainable_for
        from affectbench.finetune.readout import extract_features

        spec = RunSpec(kind="readout", dataset=_ds(data), model=model, media=media, finetune=ft)
        items = _items(spec, n)
        trainable = trainable_for(spec.model, spec.media, None, spec.generation)
        rss0 = current_rss_mb()
        t0 = time.perf_counter()
        if stage == "features":
            store = Store(work / "affectbench.sqlite")
            feats, _ = extract_features(store, "bench", trainable, items, "last", 8)
            shape = list(feats.shape)
        else:
            shape = []
            for i in range(0, len(items), 8):
                enc = trainable.encode_prompt([trainable.prepare(it.conversation) for it in items[i : i + 8]])
                with torch.inference_mode():
                    trainable.module(**enc, logits_to_keep=1, use_cache=False)
        dt = time.perf_counter() - t0
        return {"stage": stage, "n": len(items), "samples_per_s": round(len(items) / dt, 2), "s": round(dt, 2),
                "rss_before_mb": round(rss0, 1), "peak_rss_mb": round(peak_rss_mb(), 1), "features": shape}  # fmt: skip
    store = Store(work / "ws" / "affectbench.sqlite")
    if stage == "train-head":
        from affectbench.finetune.readout import run_readout

        spec = RunSpec(kind="readout", dataset=_ds(data), model=model, media=media, finetune=ft,
                       readout={"method": "lora_head"})  # fmt: skip
        rec = run_readout(store, spec)
    else:
        from affectbench.finetune import run_finetune

        spec = RunSpec(kind="finetune", dataset=_ds(data), model=model, media=media, finetune=ft,
                       generation={"mode": "score"})  # fmt: skip
        rec = run_finetune(store, spec)
    stamps = [r[0] for r in store._conn().execute(
        "SELECT created_at FROM train_logs WHERE run_id=? AND split='train' ORDER BY step", (rec.id,))]  # fmt: skip
    rest = (stamps[-1] - stamps[0]) / max(1, len(stamps) - 1)
    return {"stage": stage, "steps": len(stamps), "s_per_step": round(rest, 3), "batch": batch,
            "peak_rss_mb": round(peak_rss_mb(), 1)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stages", default="forward,features,train-sft,train-head")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, Path(a.data), a.n, a.steps, a.threads, Path(a.work))))
        return
    tmp = tempfile.TemporaryDirectory()
    data = Path(a.data) if a.data else Path(tmp.name) / "demo-data"
    if not a.data:
        from affectbench.datasets.demo import write_demo

        write_demo(data)
    out = {}
    for stage in a.stages.split(","):
        with tempfile.TemporaryDirectory() as d:
            cmd = [sys.executable, __file__, "--child", stage, "--work", d, "--data", str(data), "--n", str(a.n)]
            cmd += ["--steps", str(a.steps), "--threads", str(a.threads)]
            res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            if res.returncode:
                print(res.stderr[-3000:], file=sys.stderr)
                raise SystemExit(res.returncode)
            out[stage] = json.loads(res.stdout.strip().splitlines()[-1])
            print(json.dumps(out[stage]))
    if "forward" in out and "features" in out:
        f, e = out["features"], out["forward"]
        print(f"features vs eval forward: {f['samples_per_s'] / e['samples_per_s']:.2f}x samples/s, "
              f"peak RSS {f['peak_rss_mb']:.0f} vs {e['peak_rss_mb']:.0f} MB")  # fmt: skip
    if "train-head" in out and "train-sft" in out:
        h, g = out["train-head"], out["train-sft"]
        print(f"lora_head vs generative SFT: {h['s_per_step']:.3f} vs {g['s_per_step']:.3f} s/step "
              f"({h['s_per_step'] / g['s_per_step']:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
