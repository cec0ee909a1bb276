"""The last stage of a run: score what the store holds, record the metrics and mark the run done."""

from __future__ import annotations

from ..core.specs import RunSpec
from ..core.types import DatasetInfo
from ..prompts.base import Prompt
from .gather import knowledge_metrics, knowledge_quality
from .scoring import score_run
from .store import RunRecord, Store


def score_mode(spec: RunSpec) -> bool:
    """Whether a run scores candidate options (eval runs with generation.mode: score)."""
    return spec.generation.mode == "score" and spec.kind == "eval"


def settle(store: Store, spec: RunSpec, run_id: str, info: DatasetInfo, prompt: Prompt) -> RunRecord:
    """Score an eval run (its metric suite, plus what knowledge reached its prompts) or judge a
    knowledge run (`knowledge_quality`), store the metrics and set status "done". Scoring reads
    the store, not the samples, so memory stays flat on large datasets. On any exception the run
    is marked "failed" ("scoring: ...") and the exception propagates."""
    try:
        if spec.kind == "eval":
            decision = spec.generation.decision if score_mode(spec) else None
            metrics = score_run(store, run_id, info, prompt, decision=decision)
            if spec.knowledge:
                store.set_metrics(run_id, dict(metrics, **knowledge_metrics(store, run_id)))
        else:
            quality = knowledge_quality(store, run_id, info)
            # the elicitation template actually chosen (e.g. describe_zh for a Chinese dataset)
            store.set_metrics(run_id, dict(quality, _template=prompt.name, _language=getattr(prompt, "language", "en")))
    except Exception as e:
        store.set_status(run_id, "failed", error=f"scoring: {e}")
        raise
    store.set_status(run_id, "done")
    return store.run(run_id)


def redecide(store: Store, spec: RunSpec, record: RunRecord, info: DatasetInfo, prompt: Prompt) -> RunRecord:
    """A finished run asked for again: when its spec asks for another option-decision rule than the
    stored metrics used, rescore from the stored option scores (no model call); else return it as is."""
    if score_mode(spec) and (record.metrics or {}).get("_decision") != spec.generation.decision:
        score_run(store, record.id, info, prompt, decision=spec.generation.decision)
        return store.run(record.id)
    return record
