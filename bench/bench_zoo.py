"""Per family, on CPU: input tokens per second of clip at the family's default media recipe (processor
at released scale, model tiny), the media decode time, and the tiny model's forward (prefill) time.

    .venv/bin/python bench/bench_zoo.py [--seconds 10] [--repeat 3]

Input tokens per clip second are what a GPU budget needs (KV cache and activations grow with them);
the forward time is the tiny model's (hidden 32, one layer per tower), not a real checkpoint's.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _zoo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length (s); 640x360, 25 fps, 16 kHz tone")
    ap.add_argument("--repeat", type=int, default=3, help="forward timings per family (best is printed)")
    ap.add_argument("--families", default=",".join(_zoo.ZOO))
    args = ap.parse_args()

    import torch

    from affectbench.core.specs import GenerationSpec, MediaSpec, ModelSpec
    from affectbench.core.types import Message, Part
    from affectbench.models.hf import HFModel

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench_zoo_"))
    clip = _zoo.make_clip(tmp / "clip.mp4", args.seconds, size=(640, 360), fps=25)
    gen = GenerationSpec(max_new_tokens=1)
    print(f"clip: {args.seconds:g} s, 640x360, 25 fps, audio 16 kHz; torch threads 1")
    header = ("family", "recipe", "input tokens", "tokens/s of clip", "A tokens", "V tokens", "decode ms", "forward ms")
    print(" | ".join(header))
    for key in args.families.split(","):
        _, mods = _zoo.ZOO[key]
        path = _zoo.build(key, tmp / key, full_scale=True)
        model = HFModel(ModelSpec(backend="hf", name=str(path)), MediaSpec(modalities=mods), tmp / "ws")
        parts = [Part(kind=k, path=str(clip)) for k, m in (("video", "V"), ("audio", "A")) if m in mods]
        conv = [Message(role="user", parts=[*parts, Part.of_text("What is the sentiment of this clip?")])]
        t0 = time.perf_counter()
        prepared = model.prepare(conv)
        decode_ms = (time.perf_counter() - t0) * 1e3
        model.load()
        enc = model.encode([prepared], gen)
        ids = enc["input_ids"][0].tolist()
        proc, tok = model._proc, model._proc.tokenizer

        def count(*attrs, ids=ids, proc=proc, tok=tok):
            toks = {getattr(proc, a, None) or getattr(tok, a, None) for a in attrs} - {None}
            return sum(ids.count(tok.convert_tokens_to_ids(t)) for t in toks)

        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            (g,) = model.generate([prepared], gen)
            best = min(best, time.perf_counter() - t0)
        r = model.recipe
        if r.video == "none":
            recipe = f"no video, audio {model.media.sample_rate} Hz"
        else:
            recipe = f"{r.max_frames} frames as images" if r.video == "frames" else f"video {model.media.fps:g} fps"
            recipe += f", ≤{model.media.max_pixels} px/frame"
        row = (key, recipe, g.n_input_tokens, f"{g.n_input_tokens / args.seconds:.0f}", count("audio_token"))
        row += (count("image_token", "video_token"), f"{decode_ms:.0f}", f"{best * 1e3:.0f}")
        print(" | ".join(str(x) for x in row), flush=True)
        model.close()


if __name__ == "__main__":
    main()
