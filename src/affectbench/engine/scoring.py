"""Score a stored run: why each unread answer is unread, the error/unread rates and the dataset's
metric suite; targets checked before inference; metrics that are undefined say why.

Every unread prediction gets exactly one reason from `types.UNREAD_REASONS` (`unread_reason`):
the backend or media failed → model_error; cut at max_new_tokens (finish_reason "length") →
truncated; no answer text but a separate reasoning text → reasoning_only; otherwise the parser's
reason (empty, truncated, refused, reasoning_only, ambiguous, no_label, out_of_range).

Stored metrics: the suite's keys (see `metrics.score`; a value that is undefined — a Pearson r of
constant predictions, Non0 scores when every target is 0 — is stored as None and its reason under
`_undefined[key]`), plus `_n`, `_errors`, `_error_rate`, `_parse_failure_rate` (unread among
samples without a model error), `_unread_rate` (every unread, errors included) and `_unread`
(reason → rate over all samples, every reason listed), `_parse_view` ("rules" or
"rules+extractor(backend:name)": who read the answers), `_info` (the dataset info).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from ..core.errors import ConfigError, DatasetError
from ..core.types import UNREAD_REASONS, DatasetInfo, Parsed, TaskType
from ..metrics import MetricInputError, suite_values
from ..prompts.base import Prompt
from ..prompts.parsing import CLOSING_NUMBER
from .store import Outcome, Store

# Unread reasons the `extractor` parse policy hands to a second model: free text with no label or
# number in it. Ambiguous answers are not (the extractor would silently pick one of the competitors).
EXTRACTABLE = ("no_label",)


def info_record(info: DatasetInfo) -> dict[str, Any]:
    """DatasetInfo as plain data, stored with the metrics so reports need no dataset."""
    return {
        "name": info.corpus,  # stored key kept as "name" so stored runs stay readable
        "task": info.task.value,
        "labels": list(info.labels),
        "score_range": list(info.score_range) if info.score_range else None,
        "metric_suite": info.metric_suite,
        "task_name": info.task_name,
        "language": info.language,
    }


def read_given_finish(parsed: Parsed, finish_reason: str | None) -> Parsed:
    """The parser's reading given why generation ended: a score read only because it closes the
    text is not an answer when the text was cut at max_new_tokens ("… (vader -0" is not 0.0)."""
    if parsed.ok and finish_reason == "length" and parsed.reason == CLOSING_NUMBER:
        return Parsed(
            None, False, f"cut at max_new_tokens; {parsed.reason} {parsed.value!r} is not trusted", "truncated"
        )
    return parsed


def unread_reason(
    parsed: Parsed | None, *, error: str | None, raw: str | None, finish_reason: str | None, has_reasoning: bool
) -> str | None:
    """The one reason (from UNREAD_REASONS) a prediction is unread, or None when it was read.

    Order: a model/media error; a read answer (None, even when cut at max_new_tokens); finish_reason
    "length" → truncated; no answer text but a reasoning text → reasoning_only; the parser's reason.
    """
    if error is not None:
        return "model_error"
    if parsed is not None and parsed.ok:
        return None
    if finish_reason == "length":
        return "truncated"
    if not (raw or "").strip() and has_reasoning:
        return "reasoning_only"
    return (parsed.unread if parsed is not None else None) or "no_label"


def target_problem(target: Any, info: DatasetInfo) -> str | None:
    """Why `target` cannot be scored against `info`'s task (a sentence fragment), or None."""
    if target is None or (isinstance(target, str) and not target.strip()):
        return "has no target"
    if info.task is TaskType.REGRESSION:
        try:
            x = float(target)
        except (TypeError, ValueError):
            return f"has target {target!r}, not a number"
        return None if math.isfinite(x) else f"has target {target!r}, not a finite number"
    if target not in info.labels:
        return f"has target {target!r}, which is not one of the labels ({', '.join(info.labels)})"
    return None


def check_targets(pairs: Iterable[tuple[str, Any]], info: DatasetInfo) -> None:
    """Raise DatasetError naming the first sample (id, target) whose target cannot be scored."""
    for sid, target in pairs:
        why = target_problem(target, info)
        if why:
            raise DatasetError(
                f"dataset {info.corpus!r}: sample {sid!r} {why}; fix its label (or leave it out) before scoring"
            )


def undefined_reason(key: str, values: list[Any], targets: list[Any]) -> str:
    """Why metric `key` is undefined (NaN) on these predictions (None = unread) and targets."""
    if not targets:
        return "no samples"
    if key.startswith("recall/"):
        return "no sample has this target"
    if key == "MER_binary_WAF":
        return "every target is neutral: no polar sample left"
    if key.startswith("Non0"):
        return "every target is 0: no sample left"
    answered = [(float(v), float(t)) for v, t in zip(values, targets, strict=True) if isinstance(v, int | float)]
    if key.startswith("Corr"):
        if len(answered) < 2:
            return "fewer than 2 answered samples"
        if len({p for p, _ in answered}) == 1:
            return f"constant predictions (every answer is {answered[0][0]:g}): Pearson r is undefined"
        if len({t for _, t in answered}) == 1:
            return "constant targets: Pearson r is undefined"
        return "Pearson r is undefined on these samples"
    if key.startswith("MAE") and not answered:
        return "no answered samples"
    return "undefined on these samples"


def json_safe(x: Any) -> Any:
    """`x` with every non-finite float replaced by None, so `json.dumps(allow_nan=False)` succeeds."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x


def score_run(
    store: Store,
    run_id: str,
    info: DatasetInfo,
    prompt: Prompt | None = None,
    *,
    write: bool = True,
    decision: str | None = None,
) -> dict[str, Any]:
    """Re-parse (when a prompt is given), recompute unread reasons and score every stored prediction;
    `write=False` (rescore --dry-run) computes the metrics without storing anything. `decision`
    (score-mode runs: auto | argmax | expected): re-decide every answer from its stored option scores
    with this rule and the run's stored calibration (`models.options`); recorded as `_decision`, with
    `_calibration` (method, prior, content-free inputs or batch size). The decided value is scored as
    it is, never written as text and read back. Writing under another rule than the run's own is
    refused (ConfigError): the rule is part of the run id. Batch calibration's prior is computed here.

    Unread answers (errors included) earn no credit in any headline metric (see `metrics.score`);
    `_audio_truncated` / `_video_truncated` count samples whose audio or video was cut (a processor
    window, `max_seconds`, or a prompt budget: `models.budgets`), when any.
    Raises MetricInputError naming the sample id when a stored target cannot be scored.
    """
    if decision is not None and write:
        ruled = ((store.run(run_id).spec or {}).get("generation") or {}).get("decision", "auto")
        if decision != ruled:
            raise ConfigError(
                f"run {run_id} was decided with {ruled!r}; the decision rule is part of the run id, so "
                f"{decision!r} is another run (`affectbench rescore --decision {decision}` makes it)"
            )
    values, targets, updates = [], [], []
    n_err = n_unread = 0
    reasons = dict.fromkeys(UNREAD_REASONS, 0)
    calibration: dict[str, Any] = {}
    if decision is not None and prompt is not None:
        rows: Iterable[Outcome] = _decided(store, run_id, decision, calibration)
    else:
        rows = store.outcomes(run_id)
    for o in rows:
        why = target_problem(o.target, info)
        if why:
            raise MetricInputError(f"run {run_id}: sample {o.sample_id!r} {why}; fix the dataset's label and rescore")
        value, ok, reason = o.value, o.ok, o.reason
        if o.error is not None:
            n_err += 1
            value, ok, reason = None, False, "model_error"
        elif reason == "scoring_failed" and not o.raw:
            value, ok = None, False  # option scoring could not decide: no text to re-read
        elif o.decided is not None:
            value, ok, reason = o.decided, True, None  # option scoring's value, as decided (never re-parsed)
        else:
            parsed = prompt.parse(o.raw, info) if prompt is not None and o.raw is not None else None
            if parsed is not None and not parsed.ok and parsed.unread in EXTRACTABLE and o.extracted is not None:
                by_extractor = prompt.parse(o.extracted, info)  # type: ignore[union-attr]
                parsed = by_extractor if by_extractor.ok else parsed
            if parsed is not None:
                parsed = read_given_finish(parsed, o.finish_reason)
                value, ok = parsed.value, parsed.ok
            elif not ok:
                parsed = Parsed(None, False, "", reason if reason in UNREAD_REASONS else None)
            reason = unread_reason(
                parsed if parsed is not None else Parsed(value, True),
                error=None,
                raw=o.raw,
                finish_reason=o.finish_reason,
                has_reasoning=o.has_reasoning,
            )
        if (value, ok, reason) != (o.value, o.ok, o.reason):
            updates.append((o.sample_id, value, ok, reason))
        if not ok:
            n_unread += 1
            reasons[reason or "no_label"] += 1
        values.append(value if ok else None)
        targets.append(o.target)
    if updates and write:
        store.update_parsed(run_id, updates)
    n = len(values)
    metrics: dict[str, Any] = dict(suite_values(info, values, targets)) if n else {}
    undefined = {}
    for key, v in list(metrics.items()):
        if isinstance(v, float) and not math.isfinite(v):
            metrics[key] = None
            undefined[key] = undefined_reason(key, values, targets)
    metrics.update(
        _n=n,
        _errors=n_err,
        _error_rate=round(n_err / n, 4) if n else None,
        _parse_failure_rate=round((n_unread - n_err) / max(n - n_err, 1), 4) if n else None,
        _unread_rate=round(n_unread / n, 4) if n else None,
        _unread={r: round(k / n, 4) for r, k in reasons.items()} if n else {},
        _info=info_record(info),
        _parse_view=parse_view(store.run(run_id).spec),
    )
    if undefined:
        metrics["_undefined"] = undefined
    if decision is not None:
        metrics["_decision"] = decision
    if calibration:
        metrics["_calibration"] = calibration
    # the chat template opened a reasoning block (and score mode closed it empty); media a budget or
    # window cut; a server that counted other media than was sent
    for key in ("reasoning_opened", "reasoning_closed", "audio_truncated", "video_truncated", "server_mismatch"):
        n = store.count_meta(run_id, key)
        if n:
            metrics[f"_{key}"] = n
    if write:
        store.set_metrics(run_id, metrics)
    return metrics


def parse_view(spec: dict[str, Any]) -> str:
    """How a run's answers were read: "rules", or "rules+extractor(<backend>:<name>)"."""
    policy = spec.get("parse") or {}
    if policy.get("type") != "extractor":
        return "rules"
    m = policy.get("model") or {}
    return f"rules+extractor({m.get('backend', '?')}:{m.get('name', '')})"


def unread_summary(metrics: dict[str, Any] | None) -> str:
    """One line: the unread rate and each non-zero reason's rate ("unread 12.5%: ambiguous 5.0%, …")."""
    if not metrics or "_unread" not in metrics:
        return "unread: not recorded (rescore the run)"
    rates = {r: v for r, v in (metrics.get("_unread") or {}).items() if v}
    total = metrics.get("_unread_rate") or 0.0
    if not rates:
        return f"unread {total:.1%}"
    return f"unread {total:.1%}: " + ", ".join(f"{r} {v:.1%}" for r, v in rates.items())


def _decided(store: Store, run_id: str, decision: str, calibration: dict[str, Any]) -> Iterator[Outcome]:
    """`store.outcomes` of a score-mode run, each answer re-decided from its stored option scores with
    `decision` (a failed decision carries the reason "scoring_failed" and no text). `calibration` is
    filled with what the run's calibration used: its method, its prior and, for contextual calibration,
    the content-free inputs (stored with the run's predictions); for batch calibration (Zhou et al.
    2024) the prior is computed here, from every answered sample's scores."""
    from ..core.types import Generation
    from ..models.options import apply_decision, check_prior, check_rule, content_free_prior

    preds = store.predictions(run_id)
    for p in preds[:1]:
        if p.meta.get("scores"):
            check_rule(decision, list(p.meta["scores"]))
    method = next((p.meta.get("calibration") for p in preds if p.meta.get("scores")), None)
    batch_prior = None
    if method == "batch":
        sets = [p.meta["scores"] for p in preds if p.error is None and p.meta.get("scores")]
        sets = [s for s in sets if any(math.isfinite(v) for v in s.values())]
        if sets:
            batch_prior = content_free_prior(sets)
            check_prior(batch_prior, f"batch calibration of run {run_id} ({len(sets)} samples)")
            calibration.update(method="batch", prior=batch_prior, n=len(sets))
    elif method == "contextual":
        first = next((p.meta for p in preds if p.meta.get("score_prior")), None)
        if first:
            calibration.update(method="contextual", prior=first["score_prior"], inputs=first.get("calibration_inputs"))
    elif method:
        calibration.update(method=method)
    for p in preds:
        o = Outcome(
            p.sample_id,
            p.raw,
            p.value,
            p.ok,
            p.target,
            p.error,
            p.reason,
            p.finish_reason,
            bool(p.meta.get("reasoning")),
        )
        scores = (p.meta or {}).get("scores")
        if p.error is None and scores:
            g = Generation(text="", scores=scores)
            prior = batch_prior if method == "batch" else p.meta.get("score_prior")
            apply_decision(g, decision, p.meta.get("calibration", "none"), prior)
            o = replace(o, raw=g.text, reason=g.meta.get("unread_reason"), decided=g.meta.get("decided"))
        yield o


def info_from_record(record: dict[str, Any]) -> DatasetInfo:
    """Rebuild the DatasetInfo stored with a run's metrics (see `info_record`)."""
    rng = record.get("score_range")
    return DatasetInfo(
        corpus=record["name"],
        task=TaskType(record["task"]),
        labels=tuple(record.get("labels") or ()),
        score_range=tuple(rng) if rng else None,
        metric_suite=record.get("metric_suite", "classification"),
        task_name=record.get("task_name", ""),
        language=record.get("language", "en"),
    )
