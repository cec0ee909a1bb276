"""Media pipeline: clips/s of the engine's prefetch + cache vs a naive sequential loop, decode vs raw
PyAV decode, and matrix reuse (M models x P prompts over the same clips decode each clip once).

- raw PyAV: open + decode every video and audio frame of the clip, nothing else (the decoder's floor).
- affectbench `decode`: frame sampling (fps, max_frames), RGB conversion at max_pixels, 16 kHz resample.
- naive loop: for each sample, decode then call the model, one after the other, no cache.
- engine: `run_spec` with a backend whose `prepare` decodes through the media cache, in the prepare
  pool (`workers`) ahead of the model (`prefetch`); cold cache, then warm cache (second model, same clips).

- cache bookkeeping: eviction cost per miss with a running total vs a walk of the folder per miss.

    .venv/bin/python bench/bench_media.py [--clips 12] [--seconds 4] [--delay 0.05] [--repeat 3] [--entries 5000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from _synth import make_clips, register, row, timer

from affectbench.core.specs import DatasetRef, ExecSpec, GenerationSpec, MediaSpec, ModelSpec, RunSpec
from affectbench.datasets import load_dataset
from affectbench.engine.execution import batched
from affectbench.engine.runner import Runner
from affectbench.engine.store import Store
from affectbench.media import MediaCache, decode, decode_count
from affectbench.models import build_model
from affectbench.prompts import load_prompt


def raw_pyav(path: Path) -> None:
    import av

    with av.open(str(path)) as c:
        for _ in c.decode(*c.streams):
            pass


def cache_rows(root: Path, entries: int) -> None:
    """What a cache miss costs in eviction bookkeeping with `entries` entries in the folder."""
    import numpy as np

    folder = root / "evict"
    folder.mkdir()
    for i in range(entries):
        np.savez(folder / f"{i:032x}.npz", audio=np.zeros(256, np.float32))
    cache = MediaCache(folder, max_bytes=1 << 40)
    cache._evict(0)  # the one walk that starts the running total
    puts = 2000
    with timer() as t_put:
        for _ in range(puts):
            cache._evict(1)
    walks = 20
    with timer() as t_walk:
        for _ in range(walks):
            cache._scan()
    row(
        f"baseline: a folder walk per miss ({entries} entries)",
        t_walk.s / walks * 1e3,
        "ms/miss",
        f"cold pass of {entries} misses: {t_walk.s / walks * entries / 2:.1f} s walking",
    )
    row(
        f"cache miss bookkeeping, running total ({entries} entries)",
        t_put.s / puts * 1e3,
        "ms/miss",
        f"{t_walk.s / walks / (t_put.s / puts):.0f}x less; {cache.stats.scans - 1} walks in {puts} puts",
    )


def spec(root: Path, n: int, clips: int, model_opts: dict, prompt: str = "default") -> RunSpec:
    return RunSpec(
        dataset=DatasetRef(name="bench-synth", root=str(root), options={"n": n, "clips": clips}),
        model=ModelSpec(
            backend="bench-decode", options={"rule": "hash", "choices": ["positive", "negative"], **model_opts}
        ),
        prompt=prompt,
        media=MediaSpec(modalities="TAV"),
    )


def naive(s: RunSpec) -> float:
    """Decode then answer, one sample at a time, no cache, no pool."""
    ds = load_dataset(s.dataset.name, s.dataset.root, **s.dataset.options)
    prompt = load_prompt(s.prompt, ds.info)
    model = build_model(s.model.model_copy(update={"options": {**s.model.options, "cache": False}}), s.media)
    with timer() as t:
        convs = (prompt.render(x, ds.info, modalities=s.media.modalities) for x in ds.load(s.split))
        for batch in batched(convs, 8):
            model.generate([model.prepare(c) for c in batch], GenerationSpec())
    return t.s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--delay", type=float, default=0.05, help="model seconds per batch of 8")
    ap.add_argument("--models", type=int, default=2)
    ap.add_argument("--prompts", default="default,classify")
    ap.add_argument("--repeat", type=int, default=3, help="decode vs raw: interleaved rounds, best taken")
    ap.add_argument("--entries", type=int, default=5000, help="cache entries for the eviction bookkeeping row")
    a = ap.parse_args()
    register()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clips = make_clips(root, a.clips, a.seconds)
        n = a.clips
        media = MediaSpec()
        print(f"media pipeline: {n} distinct {a.seconds:.0f}s 320x240 25fps clips with audio; MediaSpec defaults")

        raw_s, dec_s = [], []
        for _ in range(a.repeat):  # interleaved, best of `repeat`: the machine is shared and noisy
            with timer() as t_raw:
                for c in clips:
                    raw_pyav(c)
            with timer() as t_dec:
                for c in clips:
                    decode(c, media)
            raw_s.append(t_raw.s)
            dec_s.append(t_dec.s)
        med_ratio = statistics.median(dec_s) / statistics.median(raw_s)
        row("baseline: raw PyAV decode of every frame", min(raw_s) / n * 1e3, "ms/clip", f"best of {a.repeat}")
        row(
            "affectbench decode (sampled frames + 16 kHz audio)",
            min(dec_s) / n * 1e3,
            "ms/clip",
            f"ratio {min(dec_s) / min(raw_s):.2f}x raw (median {med_ratio:.2f}x)",
        )
        cache_rows(root, a.entries)

        ex = ExecSpec(batch_size=8, workers=2, prefetch=4)
        s = spec(root, n, n, {"delay": a.delay})
        t_naive = naive(s)
        store = Store(root / "ws" / "db.sqlite")
        runner = Runner(store, ex, progress=False)
        with timer() as t_cold:
            runner.run(s)
        s_warm = spec(root, n, n, {"delay": a.delay, "default": "other model"})
        with timer() as t_warm:
            runner.run(s_warm)
        runner.close()
        model_s = -(-n // 8) * a.delay
        print(f"  (model time in every variant: {model_s:.2f}s = {-(-n // 8)} batches x {a.delay}s)")
        row("baseline: naive sequential decode + model loop", n / t_naive, "clips/s")
        row("engine, prefetch pool, cold cache", n / t_cold.s, "clips/s", f"{t_naive / t_cold.s:.2f}x naive")
        row("engine, prefetch pool, warm cache", n / t_warm.s, "clips/s", f"{t_naive / t_warm.s:.2f}x naive")

        # matrix reuse: M models x P prompts over the same clips (each clip used by two samples)
        prompts = a.prompts.split(",")
        mroot = root / "matrix"
        make_clips(mroot, a.clips, a.seconds)
        mstore = Store(mroot / "ws" / "db.sqlite")
        runner = Runner(mstore, ex, progress=False)
        before = decode_count()
        runs = 0
        for m in range(a.models):
            for p in prompts:
                runner.run(spec(mroot, 2 * n, n, {"default": f"model {m}"}, p))
                runs += 1
        runner.close()
        decodes = decode_count() - before
        print(
            f"matrix reuse: {a.models} models x {len(prompts)} prompts = {runs} runs over {2 * n} samples on {n} clips"
        )
        row("baseline: decodes without a cache (runs x samples)", runs * 2 * n, "decodes")
        row("decodes done", decodes, "decodes", f"{decodes / n:.2f} per clip ({'PASS' if decodes == n else 'FAIL'})")


if __name__ == "__main__":
    main()
