"""Time `affectbench report` (`build_report`, every format) on a store of 100 runs x 2,000 samples.

Run: PYTHONPATH=src .venv/bin/python bench/bench_report.py [STORE_DIR]
The store is written once through the public Store API with synthetic predictions (3 corpora x 11
models x zero-shot / GKP / SFT, plus one `limit` smoke run) and reused when STORE_DIR already holds it,
so two checkouts can be timed on the same store: run it with PYTHONPATH pointing at each checkout's
`src` and compare the seconds it prints (best of `REPEAT`).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from affectbench.core.specs import DatasetRef, ModelSpec, RunSpec
from affectbench.core.types import DatasetInfo, TaskType
from affectbench.engine.scoring import score_run
from affectbench.engine.store import Prediction, Store
from affectbench.report import build_report

N_SAMPLES = 2_000
N_MODELS = 11
REPEAT = 2
LABELS = ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger")
INFOS = {
    "mosi": DatasetInfo(
        "mosi", TaskType.REGRESSION, score_range=(-3.0, 3.0), metric_suite="mosi", task_name="sentiment"
    ),
    "sims": DatasetInfo(
        "sims", TaskType.REGRESSION, score_range=(-1.0, 1.0), metric_suite="sims", task_name="sentiment"
    ),
    "meld": DatasetInfo("meld", TaskType.CLASSIFICATION, labels=LABELS, task_name="emotion"),
}


def _preds(ds: str, targets: list, p: float, rng: np.random.Generator) -> list[Prediction]:
    out = []
    for i, t in enumerate(targets):
        right = rng.random() < p
        if ds == "meld":
            v = t if right else LABELS[(LABELS.index(t) + 1) % 7]
        else:
            v = round(float(t) * (1 if right else -1), 2)
        out.append(Prediction(f"{ds}-{i:05d}", str(v), v, True, t, group=f"g{i // 5}"))
    return out


def build_store(path: Path) -> Store:
    """100 scored runs x 2,000 samples (99 complete, one `limit` smoke run)."""
    store = Store(path)
    if len(store.runs()) >= 100:
        return store
    rng = np.random.default_rng(0)
    for ds in INFOS:
        if ds == "meld":
            targets = [LABELS[i % 7] for i in range(N_SAMPLES)]
        else:
            scale = INFOS[ds].score_range[1]
            targets = [float(x) or 0.5 for x in np.round(rng.uniform(-scale, scale, N_SAMPLES), 1)]
        for m in range(N_MODELS):
            for setting in ("zero-shot", "gkp", "sft"):
                spec = RunSpec(
                    dataset=DatasetRef(name=ds),
                    model=ModelSpec(
                        backend="scripted", name=f"org/model-{m}b", adapter="finetune-x" if setting == "sft" else None
                    ),
                    knowledge=["knowledge-x"] if setting == "gkp" else [],
                )
                rid = store.open_run(spec).id
                p = 0.5 + 0.03 * m + (0.05 if setting != "zero-shot" else 0.0)
                store.add_predictions(rid, _preds(ds, targets, p, rng))
                score_run(store, rid, INFOS[ds])
                store.set_status(rid, "done")
    smoke = RunSpec(dataset=DatasetRef(name="mosi"), model=ModelSpec(backend="scripted", name="org/smoke"), limit=3)
    rid = store.open_run(smoke).id
    store.add_predictions(rid, _preds("mosi", [1.0, -1.0, 2.0], 1.0, rng))
    score_run(store, rid, INFOS["mosi"])
    store.set_status(rid, "done")
    return store


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    store = build_store(folder / "affectbench.sqlite")
    print(f"store: {len(store.runs())} runs x {N_SAMPLES:,} samples at {folder} ({time.perf_counter() - start:.1f} s)")
    times = []
    for k in range(REPEAT):
        start = time.perf_counter()
        build_report(store, folder / f"report{k}", props=None)
        times.append(time.perf_counter() - start)
    each = ", ".join(f"{t:.2f}" for t in times)
    print(f"report (md, csv, latex, html; n_boot 1000): best {min(times):.2f} s of {REPEAT} ({each})")


if __name__ == "__main__":
    main()
