"""Length-aware batching (`exec.order: length`) vs arrival order, same run, same clips, same model.

A MELD-like mix of clip lengths (1–30 s: log-normal around 3 s, as MELD's utterances, with a tail to
30 s; seeded), each a real mp4 with a 16 kHz tone, through the `hf` backend on a tiny random Qwen2.5-Omni
thinker (the released processor settings: 25 audio tokens/s, 128..768 tokens per video frame pair) via
the Runner, cold media cache each time. Figures per order: padding waste = padded tokens / real tokens
over every batch (from the rows' `padded_to` and `n_input_tokens` the backend records), samples/s (wall,
model load outside), and whether the answers equal between the two orders (Qwen2.5-Omni is batch-invariant).

    PYTHONPATH=src .venv/bin/python bench/bench_batching.py [--clips 32] [--batch 4] [--prefetch 4] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "bench")]
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from tests._clips import make_clip  # noqa: E402

from affectbench.core.specs import ExecSpec, RunSpec  # noqa: E402
from affectbench.engine.runner import Runner  # noqa: E402
from affectbench.engine.store import Store  # noqa: E402

TASK = {"task": "classification", "labels": ["negative", "positive"], "task_name": "sentiment"}


def meld_like_seconds(n: int, seed: int = 0) -> list[float]:
    """Clip lengths (s) in [1, 30]: log-normal, median ≈ 3 s (MELD's utterances average ≈ 3.6 s)."""
    rng = np.random.default_rng(seed)
    return [float(x) for x in np.clip(rng.lognormal(np.log(3.0), 0.9, n), 1.0, 30.0).round(2)]


def write_data(root: Path, seconds: list[float]) -> Path:
    rows = []
    for i, s in enumerate(seconds):
        clip = make_clip(root / f"c{i:03d}.mp4", s, size=(96, 64), freq=180 + 17 * i)
        rows.append(
            {"id": f"u{i:03d}", "label": ["negative", "positive"][i % 2], "transcript": f"utterance {i}",
             "split": "test", "video": str(clip), "audio": str(clip)}
        )  # fmt: skip
    (root / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return root


def one(spec: RunSpec, exec_spec: ExecSpec, ws: Path, runner_model=None) -> dict:
    store = Store(ws / "affectbench.sqlite")
    runner = Runner(store, exec_spec, progress=False)
    model = runner.model_for(spec)
    model.load()  # load outside the timing
    t0 = time.perf_counter()
    rec = runner.run(spec)
    wall = time.perf_counter() - t0
    preds = store.predictions(rec.id)
    real = sum(p.meta["n_input_tokens"] for p in preds)
    padded = sum(p.meta.get("padded_to", p.meta["n_input_tokens"]) - p.meta["n_input_tokens"] for p in preds)
    runner.close()
    return {"wall": wall, "sps": len(preds) / wall, "waste": padded / real, "answers": [p.raw for p in preds],
            "order_ids": [p.sample_id for p in preds]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--prefetch", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=4)
    args = ap.parse_args()
    import _zoo

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        model_dir = _zoo.build("qwen2_5_omni", d / "omni", full_scale=True)
        seconds = meld_like_seconds(args.clips)
        data = write_data(d / "data", seconds)
        print(f"{args.clips} clips, seconds: min {min(seconds)}, median {np.median(seconds):.2f}, max {max(seconds)}")
        spec = RunSpec(
            dataset={"name": "manifest", "root": str(data),
                     "options": TASK},
            model={"backend": "hf", "name": str(model_dir), "options": {"media_cache": False}},
            generation={"max_new_tokens": args.tokens},
        )  # fmt: skip
        results: dict[str, list[dict]] = {"arrival": [], "length": []}
        for r in range(args.repeat):
            for order in ("arrival", "length") if r % 2 == 0 else ("length", "arrival"):
                ex = ExecSpec(batch_size=args.batch, prefetch=args.prefetch, workers=2, order=order)
                results[order].append(one(spec, ex, d / f"ws-{order}-{r}"))
        for order, rs in results.items():
            best = max(rs, key=lambda x: x["sps"])
            runs = ", ".join(f"{x['sps']:.2f}" for x in rs)
            print(
                f"order={order:8s} batch {args.batch}: padding waste {rs[0]['waste']:.3f} (padded/real tokens), "
                f"samples/s best {best['sps']:.2f} (runs: {runs})"
            )
        a, b = results["arrival"][0], results["length"][0]
        speed = max(x["sps"] for x in results["length"]) / max(x["sps"] for x in results["arrival"])
        print(f"waste length/arrival: {b['waste'] / a['waste']:.3f}; samples/s length/arrival (best): {speed:.3f}")
        same, kept = a["answers"] == b["answers"], a["order_ids"] == b["order_ids"]
        print(f"answers equal between orders: {same}; store order equal: {kept}")


if __name__ == "__main__":
    main()
