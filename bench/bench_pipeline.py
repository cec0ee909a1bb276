"""The engine on a real (tiny, random) Qwen2.5-Omni thinker over real clips: is a run close to
max(decode time, model time) rather than their sum? Against the naive model-card loop.

Also printed: engine time against the limit a CPU imposes, max(model wall, (decode + model
CPU-seconds) / cores) — on a CPU decode and model compete for the same cores, so max(decode, model)
is not reachable when their CPU-seconds exceed the wall the cores give.

All in one process, on the same N clips (4 s, 320x240, 25 fps, with audio) and the same model:
- naive loop: per sample, render → `HFModel.prepare` (affectbench `decode`, no cache) → `generate`
  with batch size 1 → parse; one after the other (the way model cards show it).
- decode alone: the same prepare for every sample (no cache, no pool); model alone: `generate` on the
  pre-decoded conversations at the engine's batch size. Their sum and max are the two bounds.
- engine: `Runner` with the local executor (prefetch pool + the model one batch ahead) over a manifest
  dataset and the `hf` backend pointing at the tiny model folder, cold media cache (fresh workspace),
  at batch size 1 and 4; then warm cache (a second model spec on the same workspace), and what one cache
  hit costs.

Model load and the first (warm-up) forward pass are outside every timing.

OpenMP wait policy: libgomp's default (active: idle team threads spin) made a 2-thread torch team in the
main thread 5-14x slower on this 2-core machine whenever another process kept one core busy (the model
thread of the engine was hit far less), which would flatter the engine against the main-thread naive loop.
The bench therefore sets OMP_WAIT_POLICY=PASSIVE unless the environment sets it or `--omp-active` is given.

    .venv/bin/python bench/bench_pipeline.py [--clips 24] [--seconds 4] [--tokens 8] [--batch 1,4]
        [--workers 2] [--prefetch 4] [--repeat 2] [--torch-threads 0] [--omp-active]

Each round also runs the engine with `exec.prepare_nice: 10` (prepare workers below the model's CPU
priority) at every batch size, alternating which of the two goes first, so both meet the same load.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _synth import make_clips, row, timer

from affectbench.core.specs import DatasetRef, ExecSpec, GenerationSpec, MediaSpec, ModelSpec, RunSpec
from affectbench.datasets import load_dataset
from affectbench.engine.runner import Runner
from affectbench.engine.store import Store
from affectbench.media import get_cache
from affectbench.models.hf import HFModel
from affectbench.prompts import load_prompt

LABELS = ("positive", "negative", "neutral")


def write_manifest(root: Path, clips: list[Path]) -> None:
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label", "transcript", "video"])
        for i, c in enumerate(clips):
            w.writerow([f"s{i:04d}", LABELS[i % 3], f"utterance {i} about thing {i % 7}", c.relative_to(root)])


def run_spec(root: Path, model_dir: Path, gen: GenerationSpec, media: MediaSpec, seed: int = 0) -> RunSpec:
    return RunSpec(
        dataset=DatasetRef(name="manifest", root=str(root)),
        model=ModelSpec(backend="hf", name=str(model_dir), options={"device": "cpu", "seed": seed}),
        generation=gen,
        media=media,
    )


def chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def warm_up(model: HFModel, conv, gen: GenerationSpec) -> None:
    """Load the model and run one forward pass, so no timing pays torch's first-call costs."""
    model.load()
    model.generate([conv], gen)


class Busy:
    """Seconds spent inside the engine's `call_model` and `prepare_task` (patched on the module, which
    the LocalExecutor looks them up from), to see whether the model waited or was slowed by decoding."""

    def __init__(self) -> None:
        import affectbench.engine.execution as ex

        self.ex, self.model, self.prepare = ex, 0.0, 0.0
        self._orig = (ex.call_model, ex.prepare_task)

        def call_model(*args):
            t0 = time.perf_counter()
            try:
                return self._orig[0](*args)
            finally:
                self.model += time.perf_counter() - t0

        def prepare_task(*args):
            t0 = time.perf_counter()
            try:
                return self._orig[1](*args)
            finally:
                self.prepare += time.perf_counter() - t0  # float += under the GIL: fine for a total

        ex.call_model, ex.prepare_task = call_model, prepare_task

    def close(self) -> None:
        self.ex.call_model, self.ex.prepare_task = self._orig


def cores_control(threads: int = 2, mb: int = 64) -> float:
    """CPU-seconds per wall-second of `threads` GIL-free threads (hashlib releases the GIL on large
    buffers): how many cores this process can get right now, the ceiling for any overlap."""
    buf = b"\0" * (mb << 20)
    with timer() as t, ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: hashlib.sha256(buf).digest(), range(threads)))
    return t.cpu / t.s


def check(store: Store, rid: str) -> None:
    """Every sample answered, with audio and video reaching the model (a fast run of errors proves nothing)."""
    preds = store.predictions(rid)
    bad = [p for p in preds if p.error or set(p.modalities or ()) != {"T", "A", "V"}]
    if bad:
        raise SystemExit(f"engine run {rid}: {len(bad)} of {len(preds)} predictions bad, e.g. {bad[0]}")


def engine_run(spec: RunSpec, ws: Path, ex: ExecSpec, warm_conv, spec_warm: RunSpec | None = None) -> dict:
    """One engine run on a fresh workspace (cold cache); optionally a second model spec on it (warm)."""
    store = Store(ws / "db.sqlite")
    runner = Runner(store, ex, progress=False)
    out = {}
    try:
        warm_up(runner.model_for(spec), warm_conv, spec.generation)
        busy = Busy()
        try:
            with timer() as t:
                rec = runner.run(spec)
        finally:
            busy.close()
        out["cold"], out["busy_model"], out["busy_prepare"] = t.s, busy.model, busy.prepare
        out["cold_cpu"] = t.cpu
        check(store, rec.id)
        if spec_warm is not None:
            warm_up(runner.model_for(spec_warm), warm_conv, spec.generation)
            with timer() as t:
                rec = runner.run(spec_warm)
            out["warm"] = t.s
            check(store, rec.id)
    finally:
        runner.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--tokens", type=int, default=8, help="max_new_tokens (greedy)")
    ap.add_argument("--batch", default="1,4", help="engine batch sizes")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--prefetch", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=2, help="rounds over every variant; best and median reported")
    ap.add_argument("--torch-threads", type=int, default=0, help="torch.set_num_threads (0: leave torch's default)")
    ap.add_argument("--omp-active", action="store_true", help="keep libgomp's default (spinning) wait policy")
    a = ap.parse_args()
    if not a.omp_active:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when torch loads libgomp, so before import
    assert "torch" not in sys.modules, "torch was imported before the OpenMP wait policy was set"

    import torch
    from tests._tiny import tiny_qwen_omni

    if a.torch_threads:
        torch.set_num_threads(a.torch_threads)
    sizes = [int(b) for b in a.batch.split(",")]
    gen = GenerationSpec(max_new_tokens=a.tokens)
    media = MediaSpec()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir = tiny_qwen_omni(root / "omni")
        clips = make_clips(root / "data", a.clips, a.seconds)
        write_manifest(root / "data", clips)
        n = len(clips)
        spec = run_spec(root / "data", model_dir, gen, media)
        ds = load_dataset("manifest", str(root / "data"))
        prompt = load_prompt(spec.prompt, ds.info)
        samples = ds.load("test")

        def render(s):
            return prompt.render(s, ds.info, modalities=media.modalities)

        model = HFModel(ModelSpec(backend="hf", name=str(model_dir), options={"device": "cpu"}), media, None)
        first = model.prepare(render(samples[0]))
        warm_up(model, first, gen)
        print(
            f"pipeline: {n} distinct {a.seconds:.0f}s 320x240 25fps clips with audio; tiny Qwen2.5-Omni thinker, "
            f"greedy {a.tokens} tokens; MediaSpec defaults; torch threads {torch.get_num_threads()}, "
            f"prepare workers {a.workers}, prefetch {a.prefetch} batches, "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(default: active)')}"
        )

        res: dict[str, list[float]] = {}

        def add(key: str, s: float) -> None:
            res.setdefault(key, []).append(s)

        for r in range(a.repeat):
            add("control", cores_control())
            with timer() as t:  # naive: decode, generate, parse, one sample at a time
                for s in samples:
                    g = model.generate([model.prepare(render(s))], gen)[0]
                    prompt.parse(g.text, ds.info)
            add("naive", t.s)
            add("naive_cpu", t.cpu)
            with timer() as t:
                convs = [model.prepare(render(s)) for s in samples]
            add("decode", t.s)
            add("decode_cpu", t.cpu)
            for b in sizes:
                with timer() as t:
                    for batch in chunks(convs, b):
                        model.generate(batch, gen)
                add(f"model{b}", t.s)
                add(f"model{b}_cpu", t.cpu)
            for b in sizes:
                # the default engine (prepare workers at the model's priority, as before) and the same engine
                # with them lowered (prepare_nice 10), alternated, each first in turn, so both meet the same load
                variants = [("", 0), ("_nice", 10)]
                for tag, nice in variants if r % 2 == 0 else variants[::-1]:
                    ex = ExecSpec(batch_size=b, workers=a.workers, prefetch=a.prefetch, prepare_nice=nice)
                    warm = run_spec(root / "data", model_dir, gen, media, seed=1) if b == sizes[0] and not tag else None
                    out = engine_run(spec, root / f"ws-{r}-{b}{tag}", ex, first, warm)
                    add(f"engine{b}{tag}", out["cold"])
                    add(f"engine{b}{tag}_cpu", out["cold_cpu"])
                    add(f"busy_model{b}{tag}", out["busy_model"])
                    add(f"busy_prepare{b}{tag}", out["busy_prepare"])
                    if "warm" in out:
                        add(f"warm{b}", out["warm"])
                        cache = get_cache(root / f"ws-{r}-{b}" / "cache" / "media")
                        with timer() as t:
                            for c in clips:
                                cache.get(c, media)
                        add("hit", t.s)

        def best(k: str) -> float:
            return min(res[k])

        def spread(k: str) -> str:
            v = res[k]
            return f"runs {', '.join(f'{x:.2f}' for x in v)} s (median {statistics.median(v):.2f})"

        per = 1e3 / n
        row("naive loop (decode → generate bs1 → parse)", best("naive") * per, "ms/clip", spread("naive"))
        row("decode alone (prepare, no cache, no pool)", best("decode") * per, "ms/clip", spread("decode"))
        for b in sizes:
            row(f"model alone, batch {b} (pre-decoded)", best(f"model{b}") * per, "ms/clip", spread(f"model{b}"))
        print("  ratios on the best of each (medians in brackets):")
        for b in sizes:
            for pick, name in ((min, "best"), (statistics.median, "median")):
                d, m, e = pick(res["decode"]), pick(res[f"model{b}"]), pick(res[f"engine{b}"])
                nv = pick(res["naive"])
                if name == "best":
                    row(f"engine, batch {b}, cold cache", e * per, "ms/clip", spread(f"engine{b}"))
                print(
                    f"    [{name:>6}] batch {b}: engine {e:.2f}s, max {max(d, m):.2f}s, sum {d + m:.2f}s → "
                    f"engine/max {e / max(d, m):.2f}, engine/sum {e / (d + m):.2f}, naive/engine {nv / e:.2f}"
                )
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        print(f"  against the CPU limit max(model wall, (decode + model CPU-seconds) / {cores} cores):")
        for b in sizes:
            for pick, name in ((min, "best"), (statistics.median, "median")):
                m, e, nv = pick(res[f"model{b}"]), pick(res[f"engine{b}"]), pick(res["naive"])
                limit = max(m, (pick(res["decode_cpu"]) + pick(res[f"model{b}_cpu"])) / cores)
                print(
                    f"    [{name:>6}] batch {b}: engine {e:.2f}s, limit {limit:.2f}s → engine/limit {e / limit:.2f} "
                    f"(target ≤ 1.10), naive/engine {nv / e:.2f} (target ≥ 1.00)"
                )
        print("  the engine with its prepare workers lowered (exec.prepare_nice 10), same rounds, alternated:")
        for b in sizes:
            for pick, name in ((min, "best"), (statistics.median, "median")):
                m, nv = pick(res[f"model{b}"]), pick(res["naive"])
                e0, e = pick(res[f"engine{b}"]), pick(res[f"engine{b}_nice"])
                limit = max(m, (pick(res["decode_cpu"]) + pick(res[f"model{b}_cpu"])) / cores)
                print(
                    f"    [{name:>6}] batch {b}: default {e0:.2f}s → engine/limit {e0 / limit:.2f}, naive/engine "
                    f"{nv / e0:.2f}; nice 10 {e:.2f}s → {e / limit:.2f}, {nv / e:.2f}; nice/default {e / e0:.2f}"
                )
            bm0, m0 = statistics.median(res[f"busy_model{b}_nice"]), statistics.median(res[f"model{b}"])
            print(f"    nice 10, batch {b}: model calls {bm0:.2f}s ({bm0 / m0:.2f}x model alone)")
        for b in sizes:
            bm, bp = statistics.median(res[f"busy_model{b}"]), statistics.median(res[f"busy_prepare{b}"])
            print(
                f"    inside the engine, batch {b} (medians): model calls {bm:.2f}s "
                f"({bm / statistics.median(res[f'model{b}']):.2f}x model alone), prepare tasks {bp:.2f}s "
                f"({bp / statistics.median(res['decode']):.2f}x decode alone, summed over the pool's threads)"
            )
        med = {k: statistics.median(v) for k, v in res.items()}
        print("  CPU seconds of this process (all threads), medians; cpu/wall = cores actually used:")
        for k in (
            ["naive", "decode"]
            + [f"{v}{b}" for v in ("model", "engine") for b in sizes]
            + [f"engine{b}_nice" for b in sizes]
        ):
            print(
                f"    {k:<10} cpu {med[k + '_cpu']:.2f}s, wall {med[k]:.2f}s, cpu/wall {med[k + '_cpu'] / med[k]:.2f}"
            )
        print(f"    control: 2 GIL-free sha256 threads, cpu/wall {', '.join(f'{x:.2f}' for x in res['control'])}")
        for b in sizes:
            c = med["decode_cpu"] + med[f"model{b}_cpu"]
            print(
                f"    batch {b}: engine cpu {med[f'engine{b}_cpu']:.2f}s vs decode+model cpu {c:.2f}s "
                f"({med[f'engine{b}_cpu'] / c:.2f}x)"
            )
        b0 = sizes[0]
        row(
            f"engine, batch {b0}, warm cache",
            best(f"warm{b0}") * per,
            "ms/clip",
            f"{spread(f'warm{b0}')}; /model alone {best(f'warm{b0}') / best(f'model{b0}'):.2f}",
        )
        row("cache hit (MediaCache.get, warm)", best("hit") * per, "ms/clip", spread("hit"))


if __name__ == "__main__":
    main()
