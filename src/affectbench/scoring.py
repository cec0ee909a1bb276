"""Score a stored run: parse-failure rate, error count and the dataset's metric suite."""

from __future__ import annotations

import math
from typing import Any

from .metrics import score
from .prompts.base import Prompt
from .store import Store
from .types import DatasetInfo


def info_record(info: DatasetInfo) -> dict[str, Any]:
    """DatasetInfo as plain data, stored with the metrics so reports need no dataset."""
    return {
        "name": info.name,
        "task": info.task.value,
        "labels": list(info.labels),
        "score_range": list(info.score_range) if info.score_range else None,
        "metric_suite": info.metric_suite,
        "task_name": info.task_name,
        "language": info.language,
    }


def score_run(
    store: Store, run_id: str, info: DatasetInfo, prompt: Prompt | None = None, decision: str | None = None
) -> dict[str, Any]:
    """Re-parse (when a prompt is given) and score every stored prediction of `run_id`.

    Samples that failed (media or model error) and unparseable answers count as wrong; their
    rates are reported as `_error_rate` and `_parse_failure_rate`. `decision` (score-mode runs:
    auto | argmax | expected): re-decide every answer from its stored option scores with this rule and
    the run's stored calibration (`models.options`) before parsing; recorded as `_decision`.
    """
    values, targets, updates = [], [], []
    n_err = n_unparsed = 0
    rows = store.outcomes(run_id) if decision is None or prompt is None else _decided(store, run_id, decision)
    for sid, raw, value, ok, target, error in rows:
        if error is not None:
            n_err += 1
            value, ok = None, False
        elif prompt is not None and raw is not None:
            parsed = prompt.parse(raw, info)
            if (parsed.value, parsed.ok) != (value, ok):
                updates.append((sid, parsed.value, parsed.ok))
            value, ok = parsed.value, parsed.ok
        n_unparsed += error is None and not ok
        values.append(value if ok else None)
        targets.append(target)
    if updates:
        store.update_parsed(run_id, updates)
    n = len(values)
    metrics: dict[str, Any] = dict(score(info, values, targets)) if n else {}
    metrics.update(
        _n=n,
        _errors=n_err,
        _error_rate=round(n_err / n, 4) if n else math.nan,
        _parse_failure_rate=round(n_unparsed / max(n - n_err, 1), 4) if n else math.nan,
        _info=info_record(info),
    )
    if decision is not None:
        metrics["_decision"] = decision
    store.set_metrics(run_id, metrics)
    return metrics


def _decided(store: Store, run_id: str, decision: str):
    """store.outcomes rows whose raw text is re-decided from the stored option scores with `decision`."""
    from .models.options import apply_decision, check_rule
    from .types import Generation

    preds = store.predictions(run_id)
    for p in preds[:1]:
        if p.meta.get("scores"):
            check_rule(decision, list(p.meta["scores"]))
    for p in preds:
        raw = p.raw
        scores = (p.meta or {}).get("scores")
        if p.error is None and scores:
            g = Generation(text="", scores=scores)
            apply_decision(g, decision, p.meta.get("calibration", "none"), p.meta.get("score_prior"))
            raw = g.text
        yield p.sample_id, raw, p.value, p.ok, p.target, p.error


def info_from_record(record: dict[str, Any]) -> DatasetInfo:
    """Rebuild the DatasetInfo stored with a run's metrics (see `info_record`)."""
    from .types import TaskType

    rng = record.get("score_range")
    return DatasetInfo(
        name=record["name"],
        task=TaskType(record["task"]),
        labels=tuple(record.get("labels") or ()),
        score_range=tuple(rng) if rng else None,
        metric_suite=record.get("metric_suite", "classification"),
        task_name=record.get("task_name", ""),
        language=record.get("language", "en"),
    )
