"""Ray scale-out: two actors vs one on the same CPU-bound work, and the fixed start-up cost.

The model is `bench-burn`: the scripted double that spins the CPU for --work CPU-seconds per
batch (pure Python, so threads cannot overlap it: only processes can). Baseline: the same run
through the local executor in this process. Timings are the best of --repeat runs. Run times
exclude actor start-up, which is reported on its own (ray.init of a local cluster, then actors
building their model replicas).

    .venv/bin/python bench/bench_ray.py [--n 160] [--work 0.1] [--actors 1,2] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from _synth import register, row, timer

from affectbench.core.specs import DatasetRef, ExecSpec, ModelSpec, RunSpec
from affectbench.engine.ray import RayExecutor, init_ray
from affectbench.engine.runner import Runner
from affectbench.engine.store import Store


class TimedRunner(Runner):
    """Keeps the executor so its start-up time can be subtracted."""

    last = None

    def executor(self, spec, model):
        ex = super().executor(spec, model)
        if isinstance(ex, RayExecutor):
            ex.start()
        TimedRunner.last = ex
        return ex


def spec(root: Path, n: int, work: float) -> RunSpec:
    return RunSpec(
        dataset=DatasetRef(name="bench-synth", root=str(root), options={"n": n}),
        model=ModelSpec(
            backend="bench-burn", options={"rule": "hash", "choices": ["positive", "negative"], "work": work}
        ),
        media={"modalities": "T"},
    )


def run(root: Path, s: RunSpec, ex: ExecSpec, tag: str, repeat: int) -> tuple[float, float]:
    """Best of `repeat`: (run seconds without start-up, start-up seconds)."""
    best = (float("inf"), float("inf"))
    for i in range(repeat):
        runner = TimedRunner(Store(root / f"{tag}-{i}" / "db.sqlite"), ex, progress=False)
        with timer() as t:
            runner.run(s)
        runner.close()
        start = getattr(TimedRunner.last, "start_seconds", None) or 0.0
        best = (min(best[0], t.s - start), min(best[1], start))
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=160)
    ap.add_argument("--work", type=float, default=0.1, help="CPU-seconds per batch of 8")
    ap.add_argument("--actors", default="1,2")
    ap.add_argument("--n-overhead", type=int, default=4000, help="samples for the zero-work overhead row")
    ap.add_argument("--repeat", type=int, default=2, help="best of this many runs per setting (shared machine)")
    a = ap.parse_args()
    register()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        s = spec(root, a.n, a.work)
        batches = -(-a.n // 8)
        print(f"ray scale-out: {a.n} samples, {batches} batches x {a.work} CPU-s, {cores} cores on this machine")
        t_local, _ = run(root, s, ExecSpec(batch_size=8), "local", a.repeat)
        row("baseline: local executor (in process)", t_local, "s", f"CPU work alone {batches * a.work:.2f}s")

        with timer() as t_init:
            init_ray(None, num_cpus=max(cores, 2))
        row("fixed cost: ray.init of a local cluster", t_init.s, "s")
        one = None
        for k in (int(x) for x in a.actors.split(",")):
            t_run, t_start = run(
                root, s, ExecSpec(executor="ray", actors=k, batch_size=8, workers=1), f"ray{k}", a.repeat
            )
            one = one or t_run
            row(f"fixed cost: start {k} actor(s) with model replicas", t_start, "s")
            row(
                f"ray, {k} actor(s), run time without start-up",
                t_run,
                "s",
                f"{t_local / t_run:.2f}x local, {one / t_run:.2f}x one actor",
            )
        s0 = spec(root, a.n_overhead, 0.0)
        t_loc0, _ = run(root, s0, ExecSpec(batch_size=8), "local0", a.repeat)
        t_ray0, _ = run(root, s0, ExecSpec(executor="ray", actors=2, batch_size=8, workers=1), "ray0", a.repeat)
        print(f"harness cost per sample with zero model work ({a.n_overhead} samples):")
        row("baseline: local executor", t_loc0 / a.n_overhead * 1e3, "ms/sample")
        row(
            "ray, 2 actors (Tasks pickled both ways)",
            t_ray0 / a.n_overhead * 1e3,
            "ms/sample",
            f"{t_ray0 / t_loc0:.2f}x local",
        )
        import ray

        ray.shutdown()


if __name__ == "__main__":
    main()
