"""A small benchmark matrix written straight through the Store API, with synthetic predictions.

Runs are scored by the real scoring path (`affectbench.engine.scoring.score_run`), so the stored
metrics and `_info` have exactly the runner's shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectbench.core.specs import DatasetRef, MediaSpec, ModelSpec, RunSpec
from affectbench.core.types import DatasetInfo, TaskType
from affectbench.engine.scoring import score_run
from affectbench.engine.store import Prediction, Store

MELD_LABELS = ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger")

INFOS = {
    "mosi": DatasetInfo(
        "mosi", TaskType.REGRESSION, score_range=(-3.0, 3.0), metric_suite="mosi", task_name="sentiment"
    ),
    "sims": DatasetInfo(
        "sims", TaskType.REGRESSION, score_range=(-1.0, 1.0), metric_suite="sims", task_name="sentiment", language="zh"
    ),
    "meld": DatasetInfo("meld", TaskType.CLASSIFICATION, labels=MELD_LABELS, task_name="emotion"),
}

# model name -> probability of a correct answer (higher = better model)
MODELS = {"Qwen/Qwen2.5-Omni-7B": 0.85, "Qwen/Qwen2.5-Omni-3B": 0.7, "gemma-3-270m": 0.55}


def targets(dataset: str, n: int, seed: int = 1) -> list[float | str]:
    rng = np.random.default_rng(seed)
    if dataset == "meld":
        return [MELD_LABELS[i % 7] for i in rng.permutation(n)]
    grid = np.arange(-3, 3.01, 0.5) if dataset == "mosi" else np.round(np.arange(-1, 1.01, 0.2), 1)
    out = [float(x) for x in rng.choice(grid, size=n)]
    return [x if x != 0 else 0.5 for x in out]  # keep every MOSI/SIMS label non-zero: Acc-2 counts them all


def synth_preds(dataset: str, tgts: list, p_correct: float, seed: int, p_unparsed: float = 0.05) -> list[Prediction]:
    """Predictions right with probability p_correct (sign for regression), some unparsed."""
    rng = np.random.default_rng(seed)
    out = []
    for i, t in enumerate(tgts):
        right = rng.random() < p_correct
        unparsed = rng.random() < p_unparsed
        if dataset == "meld":
            value = t if right else MELD_LABELS[(MELD_LABELS.index(t) + 1 + i % 6) % 7]
        else:
            mag = abs(float(t)) + float(rng.normal(0, 0.2))
            value = round((1 if float(t) > 0 else -1) * (1 if right else -1) * max(mag, 0.1), 2)
        out.append(
            Prediction(
                sample_id=f"{dataset}-{i:03d}",
                raw="???" if unparsed else str(value),
                value=None if unparsed else value,
                ok=not unparsed,
                target=t,
                group=f"v{i // 4}",
            )
        )
    return out


def add_run(
    store: Store,
    dataset: str,
    preds: list[Prediction],
    name: str = "Qwen/Qwen2.5-Omni-7B",
    backend: str = "scripted",
    prompt: str = "default",
    modalities: str = "TAV",
    knowledge: list[str] | None = None,
    adapter: str | None = None,
) -> str:
    spec = RunSpec(
        dataset=DatasetRef(name=dataset),
        model=ModelSpec(backend=backend, name=name, adapter=adapter),
        prompt=prompt,
        knowledge=knowledge or [],
        media=MediaSpec(modalities=modalities),
    )
    rec = store.open_run(spec)
    store.add_predictions(rec.id, preds)
    score_run(store, rec.id, INFOS[dataset])
    store.set_status(rec.id, "done")
    return rec.id


def build_matrix(path: Path, n: int = 48) -> tuple[Store, dict[tuple[str, str, str], str]]:
    """3 models × 2 prompts × 3 datasets, plus GKP/SFT runs of the 7B on mosi and meld.

    Returns the store and {(dataset, model, setting): run id}.
    """
    store = Store(path / "affectbench.db")
    ids: dict[tuple[str, str, str], str] = {}
    for d_i, ds in enumerate(INFOS):
        tg = targets(ds, n, seed=10 + d_i)
        for m_i, (name, p) in enumerate(MODELS.items()):
            for pr_i, prompt in enumerate(("default", "cot")):
                preds = synth_preds(ds, tg, p - 0.05 * pr_i, seed=100 * d_i + 10 * m_i + pr_i)
                ids[(ds, name, prompt)] = add_run(store, ds, preds, name=name, prompt=prompt)
        if ds in ("mosi", "meld"):
            name = "Qwen/Qwen2.5-Omni-7B"
            ids[(ds, name, "gkp")] = add_run(
                store, ds, synth_preds(ds, tg, 0.9, seed=7 + d_i), name=name, prompt="gkp", knowledge=["knowledge-x"]
            )
            ids[(ds, name, "sft")] = add_run(
                store, ds, synth_preds(ds, tg, 0.97, seed=8 + d_i, p_unparsed=0.0), name=name, adapter="finetune-x"
            )
    return store, ids


def correct_pattern_preds(n: int, k_correct: int, dataset: str = "mosi") -> list[Prediction]:
    """MOSI predictions with exactly the first k_correct signs right (targets alternate ±1)."""
    out = []
    for i in range(n):
        t = 1.0 if i % 2 == 0 else -1.0
        v = t if i < k_correct else -t
        out.append(Prediction(sample_id=f"s{i:03d}", raw=str(v), value=v, ok=True, target=t, group=f"g{i}"))
    return out
