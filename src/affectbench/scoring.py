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


def score_run(store: Store, run_id: str, info: DatasetInfo, prompt: Prompt | None = None) -> dict[str, Any]:
    """Re-parse (when a prompt is given) and score every stored prediction of `run_id`.

    Samples that failed (media or model error) and unparseable answers count as wrong; their
    rates are reported as `_error_rate` and `_parse_failure_rate`; `_audio_truncated` counts samples
    whose audio was cut to the model's audio window (only when there are any).
    """
    values, targets, updates = [], [], []
    n_err = n_unparsed = 0
    for sid, raw, value, ok, target, error in store.outcomes(run_id):
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
    n_cut = store.count_meta(run_id, "audio_truncated")  # audio longer than the model's window, cut (hf)
    if n_cut:
        metrics["_audio_truncated"] = n_cut
    store.set_metrics(run_id, metrics)
    return metrics


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
