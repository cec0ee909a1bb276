"""The architecture study: which model-card attributes go with better results across the zoo.

The unit is the *model* (not the run): each model's zero-shot runs with all the modalities it was
given (no knowledge, no adapter) are reduced to one number, its mean within-dataset relative
score (`PerfRow.relative` recomputed over those runs only, so ablation and GKP/SFT runs do not
count). For a 0/1 attribute (time_interleaved, has_audio_encoder, …) the effect is the difference
of mean model scores, with − without; for a numeric one (llm_params_b, …) it is Spearman ρ over
models. Intervals are percentile bootstraps that resample models. With fewer than `MIN_MODELS`
models, or an attribute level held by fewer than two, no effect is estimated and the study says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .ablation import MarginalRow
from .correlate import PerfRow
from .runs import finite
from .stats import Interval, percentile_interval, spearman, spearman_ci

MIN_MODELS = 4
CARD_ATTRIBUTES = ("llm_params_b", "time_interleaved", "has_audio_encoder", "has_vision_encoder", "n_modalities")


@dataclass
class AttributeEffect:
    attribute: str
    kind: str  # "difference" (with − without, relative-score units) or "spearman" (ρ over models)
    effect: float
    lo: float
    hi: float
    n_models: int
    levels: str  # "3 with / 4 without" or "7 models"
    undefined: float = 0.0  # share of bootstrap replicates where the effect was undefined

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ArchitectureStudy:
    models: dict[str, float]  # model → mean relative score (the unit of the study)
    effects: list[AttributeEffect] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # attribute → why no effect
    too_few: str | None = None  # set when the zoo is too small for any estimate


def model_scores(rows: Sequence[PerfRow]) -> tuple[dict[str, float], dict[str, dict[str, float | None]]]:
    """Each model's mean relative score over its zero-shot full-modality runs, and its card attributes."""
    kept = [r for r in rows if not r.attributes.get("knowledge") and not r.attributes.get("finetuned")]
    most: dict[tuple[str, str], float] = {}
    for r in kept:
        key = (r.model, r.corpus or r.dataset)
        most[key] = max(most.get(key, 0.0), r.attributes.get("input_modalities") or 0.0)
    kept = [r for r in kept if (r.attributes.get("input_modalities") or 0.0) == most[(r.model, r.corpus or r.dataset)]]
    by_ds: dict[str, list[PerfRow]] = {}
    for r in kept:
        by_ds.setdefault(r.corpus or r.dataset, []).append(r)
    per_model: dict[str, list[float]] = {}
    attrs: dict[str, dict[str, float | None]] = {}
    for rs in by_ds.values():
        mean = sum(r.score for r in rs) / len(rs)
        for r in rs:
            per_model.setdefault(r.model, []).append(r.score - mean)
            attrs.setdefault(r.model, {a: r.attributes.get(a) for a in CARD_ATTRIBUTES})
    return {m: float(np.mean(v)) for m, v in per_model.items()}, attrs


def _difference_ci(with_: list[float], without: list[float], n_boot: int, alpha: float, seed: int) -> Interval:
    """Mean(with) − mean(without) with a bootstrap that resamples models within each level."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(with_), np.asarray(without)
    point = float(a.mean() - b.mean())
    draws = np.array([rng.choice(a, len(a)).mean() - rng.choice(b, len(b)).mean() for _ in range(n_boot)], dtype=float)
    return percentile_interval(point, draws, len(a) + len(b), alpha)


def architecture_study(
    rows: Sequence[PerfRow],
    attributes: Iterable[str] = CARD_ATTRIBUTES,
    min_models: int = MIN_MODELS,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> ArchitectureStudy:
    """Per-attribute effects over models (see the module docstring); `too_few` when under `min_models`."""
    scores, attrs = model_scores(rows)
    study = ArchitectureStudy(scores)
    if len(scores) < min_models:
        study.too_few = (
            f"too few models to estimate attribute effects: {len(scores)} with scored zero-shot runs, "
            f"at least {min_models} needed"
        )
        return study
    for a in attributes:
        pts = [(attrs[m].get(a), s) for m, s in scores.items()]
        pts = [(float(x), y) for x, y in pts if x is not None and finite(float(x))]
        values = {x for x, _ in pts}
        if len(values) < 2:
            study.skipped[a] = "the same for every model with a card" if pts else "no card gives it"
            continue
        if values <= {0.0, 1.0}:
            with_ = [y for x, y in pts if x == 1.0]
            without = [y for x, y in pts if x == 0.0]
            if min(len(with_), len(without)) < 2:
                study.skipped[a] = f"{len(with_)} with / {len(without)} without: a level needs two models"
                continue
            ci = _difference_ci(with_, without, n_boot, alpha, seed)
            levels = f"{len(with_)} with / {len(without)} without"
            study.effects.append(
                AttributeEffect(a, "difference", ci.point, ci.lo, ci.hi, len(pts), levels, ci.undefined)
            )
        else:
            if len(pts) < min_models:
                study.skipped[a] = f"known for {len(pts)} models only"
                continue
            xs, ys = [x for x, _ in pts], [y for _, y in pts]
            if not finite(spearman(xs, ys)):
                study.skipped[a] = "scores are tied"
                continue
            ci = spearman_ci(xs, ys, n_boot=n_boot, alpha=alpha, seed=seed)
            study.effects.append(
                AttributeEffect(a, "spearman", ci.point, ci.lo, ci.hi, ci.n, f"{ci.n} models", ci.undefined)
            )
    return study


def ablation_by_family(marginals: Sequence[MarginalRow]) -> dict[str, list[MarginalRow]]:
    """Modality-ablation rows grouped by model family (rows without a card go under their model label)."""
    out: dict[str, list[MarginalRow]] = {}
    for m in sorted(marginals, key=lambda r: (r.family or r.model, r.model, r.dataset, r.modality)):
        out.setdefault(m.family or m.model, []).append(m)
    return out
