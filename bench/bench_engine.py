"""Engine overhead: what the harness itself costs per sample, and whether a model's time dominates.

1. Scripted backend, zero delay: a full `run_spec` (dataset load, render, prepare pool, model,
   parse, per-batch SQLite commit, scoring) vs the floor — the same render + generate + parse in a
   bare loop with no pool and no store. Target: well under 5 ms per sample.
2. Scripted backend with a fixed per-batch delay standing in for a model: total wall time vs the
   sum of the delays. Target: within 10%. The LocalExecutor calls the model on batch i+1 in a
   thread while the runner parses and stores batch i, so the serial store step should hide behind
   the model's time.

Timings are the best of --repeat runs (the machine is shared; the minimum is the least noisy).

    .venv/bin/python bench/bench_engine.py [--n 5000] [--delays 0.1,0.02] [--delay-n 400] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
from pathlib import Path

from _synth import register, row, timer

from affectbench.core.specs import DatasetRef, ExecSpec, GenerationSpec, ModelSpec, RunSpec
from affectbench.datasets import load_dataset
from affectbench.engine.execution import batched
from affectbench.engine.runner import Runner
from affectbench.engine.store import Store
from affectbench.models import build_model
from affectbench.prompts import load_prompt


def spec(root: Path, n: int, delay: float = 0.0) -> RunSpec:
    return RunSpec(
        dataset=DatasetRef(name="bench-synth", root=str(root), options={"n": n}),
        model=ModelSpec(
            backend="scripted", options={"rule": "hash", "choices": ["positive", "negative"], "delay": delay}
        ),
        media={"modalities": "T"},
    )


def floor(s: RunSpec, batch_size: int) -> float:
    """Render + generate + parse in a bare loop: the work any harness must do."""
    ds = load_dataset(s.dataset.name, s.dataset.root, **s.dataset.options)
    prompt, model = load_prompt(s.prompt, ds.info), build_model(s.model, s.media)
    with timer() as t:
        convs = (prompt.render(x, ds.info, modalities="T") for x in ds.load(s.split))
        for batch in batched(convs, batch_size):
            for g in model.generate(batch, GenerationSpec()):
                prompt.parse(g.text, ds.info)
    return t.s


def timed_run(s: RunSpec, db: Path, ex: ExecSpec, repeat: int) -> float:
    best = float("inf")
    for i in range(repeat):
        runner = Runner(Store(db.with_name(f"{db.stem}-{i}.sqlite")), ex, progress=False)
        with timer() as t:
            runner.run(s)
        runner.close()
        best = min(best, t.s)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--delays", default="0.1,0.02", help="per-batch delays (s) to try")
    ap.add_argument("--delay-n", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--profile", action="store_true", help="print the top of a cProfile of the zero-delay run")
    a = ap.parse_args()
    register()
    ex = ExecSpec(batch_size=a.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"engine overhead (scripted backend, batch {a.batch_size}, workers {ex.workers}, prefetch {ex.prefetch})")
        s0 = spec(root, a.n)
        base = min(floor(s0, a.batch_size) for _ in range(a.repeat))
        prof = cProfile.Profile() if a.profile else None
        if prof:
            prof.enable()
        t_s = timed_run(s0, root / "ws" / "db.sqlite", ex, a.repeat)
        if prof:
            prof.disable()
        rec = Store(root / "ws" / "db-0.sqlite").run(s0.run_id)
        assert rec.metrics and rec.metrics["_n"] == a.n
        per = t_s / a.n * 1e3
        row(f"baseline: bare render+generate+parse loop, {a.n} samples", base, "s", f"{base / a.n * 1e3:.3f} ms/sample")
        row(f"run_spec, zero delay, {a.n} samples", t_s, "s", f"{per:.3f} ms/sample")
        row("harness cost over the bare loop", (t_s - base) / a.n * 1e3, "ms/sample", f"ratio {t_s / base:.2f}x")
        print(f"  -> target < 5 ms/sample: {'PASS' if per < 5 else 'FAIL'}")

        n_batches = -(-a.delay_n // a.batch_size)
        for delay in (float(x) for x in a.delays.split(",")):
            s1 = spec(root, a.delay_n, delay)
            delay_sum = n_batches * delay
            t_run = timed_run(s1, root / "d" / f"run{delay}.sqlite", ex, a.repeat)
            print(f"per-batch delay {delay}s ({delay / a.batch_size * 1e3:.1f} ms/sample), {a.delay_n} samples:")
            row(f"baseline: delay sum ({n_batches} batches x {delay}s)", delay_sum, "s")
            ok = "PASS" if t_run <= 1.1 * delay_sum else "FAIL"
            row(
                "run_spec (model one batch ahead of parse+store)",
                t_run,
                "s",
                f"ratio {t_run / delay_sum:.3f} (<=1.10: {ok})",
            )
        if prof:
            print("\nprofile of the zero-delay run (cumulative, top 25):")
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
