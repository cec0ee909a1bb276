"""Reading runs for analysis: dataset info, primary metrics, aligned predictions, labels.

Everything here reads the store only (no datasets, no models): the runner records each run's
DatasetInfo under `metrics["_info"]`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.errors import AffectbenchError
from ..core.specs import canonical_json
from ..core.types import DatasetInfo
from ..engine.store import RunRecord, Store
from ..metrics import primary_metric
from .model_cards import ModelCard, card_for

MetricFn = Callable[[Sequence[Any], Sequence[Any]], float]

# Metrics where a smaller number is better; everything else is higher-is-better.
_LOWER_BETTER = ("mae", "mse", "rmse", "loss", "error", "parse_failure", "unread", "latency")


def higher_is_better(metric_name: str) -> bool:
    """Direction of a metric, from its name (MAE, losses and failure rates go down)."""
    n = metric_name.lower().lstrip("_")
    return not any(n == k or n.startswith(k) or n.endswith(k) for k in _LOWER_BETTER)


def info_from_run(run: RunRecord) -> DatasetInfo:
    """Rebuild a run's DatasetInfo from `metrics["_info"]`, which the runner stores when it scores a run."""
    from ..engine.scoring import info_from_record

    raw = (run.metrics or {}).get("_info")
    if not raw:
        raise AffectbenchError(
            f"run {run.id} has no dataset info (metrics['_info']); rescore it with the current runner "
            "(affectbench rescore) so the report knows its task and labels"
        )
    return info_from_record(raw)


def metric_value(run: RunRecord, name: str) -> float | None:
    """A stored metric as a float, None when absent or not a number; "_unread/<reason>" reads the
    rate of one unread reason."""
    metrics = run.metrics or {}
    if name.startswith("_unread/"):
        metrics = metrics.get("_unread") or {}
        name = name.split("/", 1)[1]
    v = metrics.get(name)
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def primary_value(run: RunRecord) -> tuple[str, float | None]:
    """(name, stored value) of a run's primary metric."""
    name, _ = primary_metric(info_from_run(run))
    return name, metric_value(run, name)


# Run kinds whose predictions are scored by a dataset's metric suite: eval (generated or option-scored
# answers) and readout (a head's values on hidden states, finetune.readout).
SCORED_KINDS = ("eval", "readout")


def has_metrics(run: RunRecord) -> bool:
    """A scored run (eval or readout) with stored metrics and dataset info."""
    return run.kind in SCORED_KINDS and bool(run.metrics) and "_info" in (run.metrics or {})


def eval_runs(store: Store) -> list[RunRecord]:
    """Every scored run (eval and readout kinds), in creation order."""
    return sorted((r for k in SCORED_KINDS for r in store.runs(k) if has_metrics(r)), key=lambda r: r.created_at)


def readout_label(run: RunRecord) -> str:
    """The readout label of a run: "readout:<method>" (e.g. readout:probe), "" for other kinds."""
    if run.kind != "readout":
        return ""
    ro = run.run_spec.readout
    return f"readout:{ro.method if ro else 'probe'}"


@dataclass
class Aligned:
    """Predictions of several runs on the samples they all answered, in one order."""

    sample_ids: list[str]
    preds: dict[str, list[Any]]  # run id -> values (None where unparseable)
    targets: list[Any]
    groups: list[str]


def aligned(store: Store, run_ids: Sequence[str], exclude: Collection[str] = ()) -> Aligned:
    """Join runs on shared sample ids, less those in `exclude`, under the headline numbers' policy:
    unparseable answers and samples that failed (media or model error) are None and count as wrong,
    so two complete runs are compared on every sample their stored metrics cover."""
    by_run = {}
    for rid in run_ids:
        by_run[rid] = {p.sample_id: p for p in store.predictions(rid)}
    if not run_ids:
        return Aligned([], {}, [], [])
    first = by_run[run_ids[0]]
    shared = [sid for sid in first if sid not in exclude and all(sid in by_run[r] for r in run_ids[1:])]
    targets = [first[sid].target for sid in shared]
    groups = [first[sid].group for sid in shared]

    def value(p: Any) -> Any:
        return p.value if p.ok and p.error is None else None

    preds = {rid: [value(by_run[rid][sid]) for sid in shared] for rid in run_ids}
    return Aligned(shared, preds, targets, groups)


def spec_without(run: RunRecord, *paths: str) -> str:
    """The run's identity with the dotted `paths` removed, as canonical JSON (to group runs)."""
    ident = run.run_spec.identity()
    for path in paths:
        node = ident
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.get(p, {})
        node.pop(leaf, None)
    return canonical_json(ident)


def is_partial(run: RunRecord) -> bool:
    """A run that must not be ranked: not finished, or scored on a `limit` subset of its split."""
    return run.status != "done" or run.run_spec.limit is not None


def partial_reason(run: RunRecord) -> str:
    """Why a run is partial, in a word or two: its status ("failed", "running") or "limit N"."""
    return run.status if run.status != "done" else f"limit {run.run_spec.limit}"


def analysed_runs(store: Store) -> tuple[list[RunRecord], list[RunRecord]]:
    """(complete scored eval runs, the partial ones left out): every analysis (correlations, the
    architecture study, gains, ablations, error analysis) reads only the first list, and says how many
    runs it left out with `excluded_note`; a partial run (unfinished, failed, interrupted or a `limit`
    subset) measured other samples than its siblings."""
    runs = eval_runs(store)
    return [r for r in runs if not is_partial(r)], [r for r in runs if is_partial(r)]


def excluded_note(excluded: Sequence[RunRecord]) -> str:
    """ "2 partial runs left out (failed 1, limit 3 1)", or "" when none was."""
    if not excluded:
        return ""
    counts: dict[str, int] = {}
    for r in excluded:
        counts[partial_reason(r)] = counts.get(partial_reason(r), 0) + 1
    what = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    n = len(excluded)
    return f"{n} partial run{'s' if n > 1 else ''} left out ({what})"


def split_text(run: RunRecord) -> str:
    """Which split (and fold) a run used, in words: what the dataset adapter recorded with the run,
    else the split name and the dataset options."""
    data = (run.env or {}).get("data") or {}
    if data.get("split"):
        return str(data["split"])
    opts = run.run_spec.dataset.options
    extra = ", ".join(f"{k}={v}" for k, v in sorted(opts.items()) if k != "trust_pickles")
    return f"{run.run_spec.split} ({extra})" if extra else run.run_spec.split


def run_n(run: RunRecord) -> int | None:
    """Samples a run's stored metrics cover (`_n`), None when unscored."""
    n = (run.metrics or {}).get("_n")
    return int(n) if isinstance(n, int | float) else None


def fold_of(run: RunRecord) -> Any:
    """The run's `fold` dataset option (IEMOCAP LOSO session, MUStARD fold), None when it has none."""
    return run.run_spec.dataset.options.get("fold")


def model_label(run: RunRecord, cards: Iterable[ModelCard] | None = None) -> str:
    """A short model name: the card id when one matches, else the model name or backend."""
    spec = run.run_spec
    card = None
    try:
        card = card_for(spec.model, cards)
    except AffectbenchError:
        card = None
    base = card.id if card else (spec.model.name.rstrip("/").split("/")[-1] if spec.model.name else spec.model.backend)
    if not card and spec.model.name and spec.model.backend not in base:
        base = f"{spec.model.backend}:{base}"
    return base


def setting_label(run: RunRecord) -> str:
    """What a run adds to its model: knowledge, adapter (SFT), modalities; "zero-shot" when nothing."""
    spec = run.run_spec
    bits = []
    if spec.knowledge:
        bits.append("GKP" if len(spec.knowledge) == 1 else f"GKP×{len(spec.knowledge)}")
    if spec.model.adapter:
        bits.append("SFT")
    if readout_label(run):
        bits.append(readout_label(run))
    if spec.media.modalities != "TAV":
        bits.append(spec.media.modalities)
    return "+".join(bits) if bits else "zero-shot"


def label(run: RunRecord, by: Sequence[str] = ("model", "prompt"), cards: Iterable[ModelCard] | None = None) -> str:
    """A column label for a run from the named facets: model, backend, prompt, setting, modalities, split."""
    spec = run.run_spec
    parts = []
    for facet in by:
        if facet == "model":
            parts.append(model_label(run, cards))
        elif facet == "backend":
            parts.append(spec.model.backend)
        elif facet == "prompt":
            parts.append(spec.prompt)
        elif facet in ("setting", "knowledge"):
            parts.append(setting_label(run))
        elif facet == "modalities":
            parts.append(spec.media.modalities)
        elif facet == "split":
            parts.append(spec.split)
        else:
            raise AffectbenchError(
                f"unknown report facet {facet!r}; use model, backend, prompt, setting, modalities or split"
            )
    return " / ".join(parts)


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)
