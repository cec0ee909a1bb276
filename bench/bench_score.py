"""`hf` score mode on the tiny (random) Qwen2.5-Omni thinker: options from the prompt's KV cache vs one
prompt forward, and vs the old way (every prompt+option sequence through the whole multimodal forward).

All in one process, on the same prepared conversation (a clip with video and audio, a text question)
and the 7-option MOSI grid ("-3.0" … "3.0"):
- prompt forward: the processor on the prompt + one forward of the thinker (what one prefill costs);
- score (cached): `HFModel.score` — processor, one prompt forward, one short forward of the 7 options
  from the repeated cache; target ≤ 1.3× the prompt forward;
- full sequences (old): the processor on 7 prompt+option texts (media repeated) + one batched forward.
The cached scores are checked against a full-sequence reference (one unpadded forward per option)
to 1e-4 before any timing is reported. Model load and a warm-up call are outside every timing.

    .venv/bin/python bench/bench_score.py [--seconds 4] [--size 320x240] [--repeat 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _synth import make_clips, timer  # noqa: E402

from affectbench.core.specs import GenerationSpec, MediaSpec, ModelSpec  # noqa: E402
from affectbench.core.types import Message, Part  # noqa: E402
from affectbench.models.hf import HFModel  # noqa: E402

GRID = ["-3.0", "-2.0", "-1.0", "0.0", "1.0", "2.0", "3.0"]


def reference(m: HFModel, conv, gen) -> dict[str, float]:
    import torch

    tok = m._proc.tokenizer
    out = {}
    for opt in GRID:
        inputs = m.encode([conv], gen, suffixes=[opt])
        n = len(tok(opt, add_special_tokens=False)["input_ids"])  # this template's boundary never merges
        with torch.no_grad():
            logp = torch.log_softmax(m._model(**inputs).logits[0].float(), -1)
        ids = inputs["input_ids"][0]
        out[opt] = sum(float(logp[i - 1, ids[i]]) for i in range(len(ids) - n, len(ids)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch
    from tests._tiny import tiny_qwen_omni

    torch.set_num_threads(args.threads)
    w, h = (int(x) for x in args.size.split("x"))
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (clip,) = make_clips(d, 1, args.seconds, (w, h))
        model = HFModel(ModelSpec(backend="hf", name=str(tiny_qwen_omni(d / "omni"))), MediaSpec(fps=2), d / "ws")
        model.load()
        gen = GenerationSpec(mode="score", calibration="none")
        parts = [Part(kind="video", path=str(clip)), Part(kind="audio", path=str(clip))]
        conv = model.prepare([Message(role="user", parts=[*parts, Part.of_text("How does the speaker feel?")])])

        def prompt_forward():
            with torch.inference_mode():
                return model._model(**model.encode([conv], gen))

        def cached():
            return model.score([conv], GRID, gen)[0].scores

        def full_sequences():
            with torch.inference_mode():
                return model._model(**model.encode([conv] * len(GRID), gen, suffixes=GRID))

        got, want = cached(), reference(model, conv, gen)
        err = max(abs(got[o] - want[o]) for o in GRID)
        assert err <= 1e-4, f"cached scores differ from the full-sequence reference by {err:.2e}"
        n_prompt = int(model.encode([conv], gen)["attention_mask"].sum())
        times: dict[str, list[float]] = {"prompt": [], "cached": [], "full": []}
        for _ in range(args.repeat):  # interleaved, so load from other jobs hits all three alike
            for name, fn in (("prompt", prompt_forward), ("cached", cached), ("full", full_sequences)):
                with timer() as t:
                    fn()
                times[name].append(t.s)
        best = {k: min(v) for k, v in times.items()}
        med = {k: statistics.median(v) for k, v in times.items()}
        print(
            f"hf score mode, tiny Qwen2.5-Omni thinker, {args.seconds:g} s {w}x{h} clip (video + audio), "
            f"{n_prompt} prompt tokens, 7 options, torch threads {args.threads}, best/median of {args.repeat}"
        )
        print(f"  max |cached - full-sequence reference| = {err:.2e} (limit 1e-4)")
        for k, label in (
            ("prompt", "one prompt forward"),
            ("cached", "score, options from the KV cache"),
            ("full", "score, 7 full sequences (old)"),
        ):
            print(
                f"  {label:<36} {best[k] * 1e3:8.1f} ms  (median {med[k] * 1e3:8.1f} ms)  "
                f"{best[k] / best['prompt']:.2f}x prompt forward"
            )
        verdict = "pass" if best["cached"] / best["prompt"] <= 1.3 else "FAIL"
        print(f"  target cached <= 1.3x prompt forward: {verdict}")


if __name__ == "__main__":
    main()
