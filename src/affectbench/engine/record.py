"""The record stage: an answered Task → the Prediction row the store keeps.

`to_prediction` reads the answer (parser + why generation ended) and gives every unread answer
its one reason; `record_knowledge` and the data digest say what the answer saw; `read_with_extractor`
is the extractor parse policy (a second model reads the answers the rules found no label in).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..core.specs import GenerationSpec, ModelSpec, RunSpec
from ..core.types import DatasetInfo, Generation, Parsed
from ..knowledge import SampleKnowledge
from ..models import Model
from ..prompts.base import Prompt
from ..prompts.extract import extractor_messages
from .execution import Task
from .scoring import EXTRACTABLE, read_given_finish, unread_reason
from .store import Prediction


def to_prediction(info: DatasetInfo, prompt: Prompt, task: Task) -> Prediction:
    """The stored row of one answered (or failed) task: parsed value, ok flag, unread reason
    (`scoring.unread_reason`), finish_reason, token counts, option scores and reasoning in meta."""
    s, g = task.sample, task.generation
    if task.error or g is None:
        return Prediction(
            s.id, None, None, False, s.target, s.group, None, task.error or "no output", reason="model_error"
        )
    if g.scores is not None and "decided" in g.meta:  # option scoring decided a value: never re-read from text
        parsed = Parsed(g.meta["decided"], True, f"decided by option scoring ({g.meta.get('decision_rule')})")
    else:
        parsed = read_given_finish(prompt.parse(g.text, info), g.finish_reason)
    meta: dict[str, Any] = {"n_input_tokens": g.n_input_tokens, "n_output_tokens": g.n_output_tokens}
    if g.scores is not None:
        meta["scores"] = g.scores
    if parsed.reason:
        meta["parse"] = parsed.reason
    if g.reasoning:
        meta["reasoning"] = g.reasoning
    meta.update(g.meta)
    reason = meta.get("unread_reason") or unread_reason(  # option scoring that could not decide
        parsed, error=None, raw=g.text, finish_reason=g.finish_reason, has_reasoning=bool(g.reasoning)
    )
    return Prediction(
        s.id, g.text, parsed.value, parsed.ok, s.target, s.group, task.latency, None, g.modalities, meta,
        reason=reason, finish_reason=g.finish_reason,
    )  # fmt: skip


def record_knowledge(pred: Prediction, k: SampleKnowledge) -> None:
    """meta["knowledge"]: the sources present, their characters, trimming, and the modalities that
    reached the model through knowledge; meta["modalities_total"]: direct ∪ through knowledge."""
    facts = k.facts()
    pred.meta = dict(pred.meta, knowledge=facts)
    total = set(pred.modalities) | set(facts["modalities"])
    pred.meta["modalities_total"] = [m for m in ("T", "A", "V") if m in total]


def read_with_extractor(
    spec: RunSpec,
    info: DatasetInfo,
    prompt: Prompt,
    preds: Sequence[Prediction],
    model_for: Callable[[ModelSpec], Model],
) -> None:
    """The extractor policy: answers the rules found no label or number in (`no_label`) go to the
    extractor model (`model_for(spec.parse.model)`); its answer, read by the same rules, becomes the
    prediction when it is read. The extractor's answer and how it was read are kept in
    meta["extractor"] either way; an extractor that raises leaves the answers unread."""
    todo = [p for p in preds if not p.ok and p.reason in EXTRACTABLE and (p.raw or "").strip()]
    if not todo:
        return
    mspec = spec.parse.model
    assert mspec is not None  # ParsePolicySpec checks it
    model = model_for(mspec)
    gen = GenerationSpec(max_new_tokens=spec.parse.max_new_tokens)
    try:
        outs = model.generate([extractor_messages(p.raw or "", info) for p in todo], gen)
    except Exception as e:  # the extractor failing must not lose the answers: they stay unread
        outs = [Generation(text="", error=f"{type(e).__name__}: {e}") for _ in todo]
    for p, g in zip(todo, outs, strict=True):
        read = prompt.parse(g.text, info) if not g.error else None
        p.meta["extractor"] = {
            "model": f"{mspec.backend}:{mspec.name}",
            "answer": g.text,
            "parse": g.error if read is None else read.reason,
        }
        if read is not None and read.ok:
            p.value, p.ok, p.reason = read.value, True, None
            p.meta["read_by"] = "extractor"
