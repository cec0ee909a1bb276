"""The knowledge stage: knowledge runs' stored texts → each sample's knowledge block, and what reached it.

Knowledge is stored as the predictions of runs of kind `knowledge` (the `raw` text per sample).
`gather_knowledge` assembles it per sample (`affectbench.knowledge.assemble`) under the run's leak
policy; `knowledge_metrics` summarises what reached an eval run's prompts; `knowledge_quality` is
what a knowledge run stores as its metrics (length, empty and refusal rates, answer-stating and
cue-naming rates; each sample's prediction meta gets `leak` and `leak_kind`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.errors import AffectbenchError
from ..core.specs import RunSpec
from ..core.types import DatasetInfo
from ..knowledge.assembly import SampleKnowledge, SourcePiece, assemble, coverage_summary
from ..knowledge.leaks import is_refusal, leak_kind, leaks
from ..knowledge.masking import mask_labels
from .store import Prediction, Store


def source_label(store: Store, run_id: str) -> str:
    """How a knowledge source is named in prompts and reports: its writer and prompt, e.g. "experts/describe"."""
    spec = store.run(run_id).run_spec
    who = spec.model.backend + (f":{spec.model.name}" if spec.model.name else "")
    return f"{who}/{spec.prompt}"


def gather_knowledge(spec: RunSpec, store: Store, info: DatasetInfo, budget: int = 1500) -> dict[str, SampleKnowledge]:
    """The knowledge block of every sample any of `spec.knowledge` covers, under `spec.knowledge_policy`.

    `budget` is the prompt's knowledge budget in characters (`TemplatePrompt.knowledge_budget`).
    Samples absent here get `missing_knowledge(spec, store)`. Raises AffectbenchError when a
    referenced knowledge run is not in the store.
    """
    per_source: list[tuple[str, dict[str, Prediction]]] = []
    for kid in spec.knowledge:
        if not store.has_run(kid):
            raise AffectbenchError(f"knowledge run {kid} is not in {store.path}; run it first")
        per_source.append((kid, {p.sample_id: p for p in store.predictions(kid)}))
    labels = {kid: source_label(store, kid) for kid, _ in per_source}
    sids = list(dict.fromkeys(sid for _, preds in per_source for sid in preds))
    out: dict[str, SampleKnowledge] = {}
    for sid in sids:
        pieces: list[SourcePiece] = []
        usable: list[tuple[str, str]] = []
        for kid, preds in per_source:
            p = preds.get(sid)
            piece, text = _piece(kid, p, spec.knowledge_policy, info)
            pieces.append(piece)
            if text is not None:
                usable.append((labels[kid], text))
        block, stats = assemble(usable, budget) if usable else (None, [])
        ok = [pc for pc in pieces if pc.status == "ok"]
        for pc, (chars, trimmed) in zip(ok, stats, strict=True):
            pc.chars, pc.trimmed = chars, trimmed
        out[sid] = SampleKnowledge(block, pieces)
    return out


def missing_knowledge(spec: RunSpec) -> SampleKnowledge:
    """The record of a sample none of the run's knowledge sources covers."""
    return SampleKnowledge(None, [SourcePiece(kid, "missing") for kid in spec.knowledge])


def _piece(kid: str, p: Prediction | None, policy: str, info: DatasetInfo) -> tuple[SourcePiece, str | None]:
    if p is None:
        return SourcePiece(kid, "missing"), None
    if p.error is not None:
        return SourcePiece(kid, "error"), None
    raw = (p.raw or "").strip()
    mods = tuple(p.modalities)
    if not raw:
        return SourcePiece(kid, "empty", modalities=mods), None
    if is_refusal(raw):
        return SourcePiece(kid, "refusal", raw_chars=len(raw), modalities=mods), None
    if policy == "drop" and leaks(raw, p.target, info):
        return SourcePiece(kid, "dropped", raw_chars=len(raw), modalities=mods), None
    if policy == "mask":
        raw = mask_labels(raw, info)
    return SourcePiece(kid, "ok", raw_chars=len(raw), modalities=mods), raw


def knowledge_texts(spec: RunSpec, store: Store, info: DatasetInfo, budget: int = 1500) -> dict[str, str]:
    """Per sample, the knowledge block that `gather_knowledge` builds (samples without knowledge left out)."""
    return {sid: k.text for sid, k in gather_knowledge(spec, store, info, budget).items() if k.text}


def knowledge_quality(store: Store, run_id: str, info: DatasetInfo) -> dict[str, Any]:
    """Quality signals of a knowledge run; also flags each sample's leak in its prediction meta.

    Metrics: `mean_chars`, `mean_words`, `empty_rate`, `refusal_rate`, `truncated_rate` (the
    writer hit max_new_tokens: finish_reason "length"), `leak_rate` (share of
    answered samples whose knowledge states the gold answer), `cue_rate` (share naming the gold
    answer only as an evidence cue), `_n`, `_errors`, `_leaked`. Meta per sample: `leak` (bool,
    states the answer) and `leak_kind` ("answer", "cue" or None; see `leak_kind`).
    """
    preds = store.predictions(run_id)
    answered = [p for p in preds if p.error is None]
    n = len(answered)
    texts = [p.raw or "" for p in answered]
    empty = sum(1 for t in texts if not t.strip())
    refusals = sum(1 for t in texts if is_refusal(t))
    cut = sum(1 for p in answered if (getattr(p, "finish_reason", None) or p.meta.get("finish_reason")) == "length")
    metrics: dict[str, Any] = {
        "_n": len(preds),
        "_errors": len(preds) - n,
        "mean_chars": round(sum(len(t) for t in texts) / n, 1) if n else 0.0,
        "mean_words": round(sum(len(t.split()) for t in texts) / n, 1) if n else 0.0,
        "empty_rate": round(empty / n, 4) if n else 0.0,
        "refusal_rate": round(refusals / n, 4) if n else 0.0,
        "truncated_rate": round(cut / n, 4) if n else 0.0,  # generation stopped at max_new_tokens
    }
    updated: list[Prediction] = []
    n_leak = n_cue = 0
    for p in answered:
        kind = leak_kind(p.raw, p.target, info)
        n_leak += kind == "answer"
        n_cue += kind == "cue"
        if p.meta.get("leak") != (kind == "answer") or p.meta.get("leak_kind", "-") != kind:
            p.meta = dict(p.meta, leak=kind == "answer", leak_kind=kind)
            updated.append(p)
    if updated:
        store.add_predictions(run_id, updated)
    metrics["leak_rate"] = round(n_leak / n, 4) if n else 0.0
    metrics["cue_rate"] = round(n_cue / n, 4) if n else 0.0
    metrics["_leaked"] = n_leak
    return metrics


def leaked_samples(store: Store, knowledge_run_ids: Sequence[str], info: DatasetInfo) -> set[str]:
    """Samples whose knowledge (from any of the runs) states the gold answer."""
    out: set[str] = set()
    for kid in knowledge_run_ids:
        for p in store.predictions(kid):
            if p.error is None and leaks(p.raw, p.target, info):
                out.add(p.sample_id)
    return out


def knowledge_metrics(store: Store, run_id: str) -> dict[str, Any]:
    """The summary of what reached an eval run's prompts, from its predictions' meta["knowledge"]:
    `_knowledge` (per knowledge run id: `coverage_summary` plus its `label`) and
    `_knowledge_modalities` (modalities that reached some prompt through knowledge). {} without knowledge."""
    kids = store.run(run_id).run_spec.knowledge
    if not kids:
        return {}
    facts = [p.meta.get("knowledge") or {} for p in store.predictions(run_id)]
    summary: dict[str, Any] = dict(coverage_summary(facts, kids))
    for kid in kids:
        summary[kid] = dict(summary[kid], label=source_label(store, kid) if store.has_run(kid) else "?")
    mods = {m for f in facts for m in f.get("modalities", ())}
    return {"_knowledge": summary, "_knowledge_modalities": [m for m in ("T", "A", "V") if m in mods]}
