"""The loop: RunSpec → stored, scored predictions. Resumable; one writer to the store.

Samples stream in batches: a worker pool runs `Model.prepare` (media decoding, perception)
ahead of the model, the model gets whole batches, and each batch's answers are parsed and
committed as soon as it finishes (while the model works on the next one). A rerun skips
samples already stored without error.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from . import provenance
from .datasets import load_dataset, select_samples
from .environment import environment
from .errors import AffectbenchError, StoreError
from .execution import Call, Executor, LocalExecutor, Task
from .knowledge import SampleKnowledge, gather_knowledge, knowledge_metrics, knowledge_texts, missing_knowledge
from .models import Model, build_model
from .models.options import CONTENT_FREE, apply_decision, check_rule, content_free_prior
from .progress import progress_bar
from .prompts import load_prompt
from .prompts.base import Prompt
from .prompts.extract import extractor_messages
from .scoring import EXTRACTABLE, check_targets, score_run, settle, unread_reason
from .specs import ExecSpec, GenerationSpec, ModelSpec, RunSpec
from .store import Prediction, RunRecord, Store
from .types import DatasetInfo, Generation, Sample

log = logging.getLogger(__name__)

MAX_FAILED_BATCHES = 5  # consecutive batches that fail entirely before the run is aborted


def resolve_adapter(spec: ModelSpec, store: Store) -> ModelSpec:
    """Turn an adapter given as a finetune run id into its folder in the workspace."""
    if not spec.adapter or Path(spec.adapter).exists():
        return spec
    if not store.has_run(spec.adapter):
        raise AffectbenchError(f"adapter {spec.adapter!r} is neither a folder nor a run id in {store.path}")
    path = store.artifact(spec.adapter, "adapter")
    if path is None or not path.exists():
        raise AffectbenchError(f"finetune run {spec.adapter} has no adapter yet; run it first")
    return spec.model_copy(update={"adapter": str(path)})


def check_same_inputs(
    record: RunRecord,
    env: dict[str, Any],
    store: Store | None = None,
    samples: list[Sample] | None = None,
    digests: dict[str, str] | None = None,
    action: str = "resume",
) -> None:
    """Refuse to resume (or rescore) a run whose prompt, model weights, knowledge texts, label files
    or stored samples' targets/media changed since its predictions were made; one sentence per change."""
    reasons = provenance.changed_inputs(record.id, record.env, env)
    if store is not None and samples is not None:
        targets = {s.id: s.target for s in samples}
        stored = ((p.sample_id, p.target, p.meta.get("data")) for p in store.predictions(record.id))
        reasons += provenance.changed_samples(stored, targets, digests or {}, report_gone=record.kind != "knowledge")
    provenance.refuse(record.id, reasons, action)


def model_provenance(mspec: ModelSpec) -> dict[str, Any]:
    """Model identity without loading it: the fingerprint `Model.fingerprint` gives for the spec's
    result-changing fields, and the weights' source (local folder digest or resolved hub commit)."""
    import hashlib

    from .models._hub import resolve_weights
    from .models.hf import WEIGHT_FILES
    from .specs import canonical_json

    fp = hashlib.sha256(canonical_json(mspec.identity()).encode()).hexdigest()[:16]
    return {"fingerprint": fp, "weights": resolve_weights(mspec.name, mspec.revision, WEIGHT_FILES)}


def segment_env(spec: RunSpec, prompt: Prompt, data: dict[str, Any], knowledge: dict[str, Any] | None) -> dict:
    """What one start or resume of a run records (see `provenance`): versions, prompt text, data
    and knowledge fingerprints, and the model options used (speed-only ones included)."""
    env = dict(environment(), **provenance.prompt_record(prompt), data=data, started_at=time.time())
    env["model_options"] = dict(spec.model.options)
    if knowledge is not None:
        env["knowledge"] = knowledge
    return env


class Runner:
    """Executes runs against one store. Models are built once per distinct model spec."""

    def __init__(self, store: Store, exec_spec: ExecSpec | None = None, *, progress: bool = True) -> None:
        self.store = store
        self.exec = exec_spec or ExecSpec()
        self.progress = progress
        self._models: dict[str, Model] = {}

    def model_for(self, spec: RunSpec) -> Model:
        mspec = resolve_adapter(spec.model, self.store)
        key = mspec.model_dump_json() + spec.media.model_dump_json()
        if key not in self._models:
            self._models[key] = build_model(mspec, spec.media, self.store.workspace)
        return self._models[key]

    def close(self) -> None:
        for m in self._models.values():
            m.close()
        self._models.clear()

    def run(self, spec: RunSpec) -> RunRecord:
        if spec.kind == "finetune":
            from .finetune import run_finetune

            return run_finetune(self.store, spec, progress=self.progress)
        return self.infer(spec)

    # --- eval and knowledge runs ------------------------------------------------------------
    def infer(self, spec: RunSpec, model: Model | None = None) -> RunRecord:
        dataset = load_dataset(spec.dataset.name, spec.dataset.root, **spec.dataset.options)
        info = dataset.info
        prompt = load_prompt(spec.prompt, info, spec.prompt_language)
        samples = select_samples(dataset.load(spec.split), spec.limit, spec.seed)
        if spec.kind == "eval":
            check_targets(((s.id, s.target) for s in samples), info)  # before any run or model exists
        record = self.store.open_run(spec)
        rid = record.id
        data = provenance.data_record(samples, dataset.label_files(spec.split), dataset.root)
        digests = data.pop("samples")
        data["split"] = dataset.describe_split(spec.split)  # which split/fold the number used, in words
        budget = getattr(prompt, "knowledge_budget", 1500)
        knowledge = gather_knowledge(spec, self.store, info, budget) if spec.knowledge else {}
        texts = {sid: k.text for sid, k in knowledge.items() if k.text}
        kfp = provenance.knowledge_record(spec.knowledge, texts, digests) if spec.knowledge else None
        env = segment_env(spec, prompt, data, kfp)
        stored = self.store.count_predictions(rid)
        if stored:  # a rerun: never mix predictions made from other data, knowledge or prompt
            check_same_inputs(record, env, self.store, samples, digests)
        done = self.store.done_ids(rid)
        pending = [s for s in samples if s.id not in done]
        if not pending and record.status == "done":
            if score_mode(spec) and (record.metrics or {}).get("_decision") != spec.generation.decision:
                # the decision rule is applied at parse time: a spec asking for another one rescores, no model call
                score_run(self.store, rid, info, prompt, decision=spec.generation.decision)
                return self.store.run(rid)
            return record
        self.store.set_status(rid, "running")
        try:
            executor = self.executor(spec, model)
            if isinstance(executor, LocalExecutor):
                m = executor.model
                env.update(model=m.info(), fingerprint=m.fingerprint(), weights=m.weights())
            elif hasattr(executor, "env"):  # Ray: the replicas report their model
                env.update(executor.env())
            if stored:
                check_same_inputs(record, env)
            env["resumed_at"] = len(samples) - len(pending)
            self.store.open_run(spec, env=env)
            try:
                self._stream(
                    spec,
                    info,
                    prompt,
                    executor,
                    pending,
                    knowledge,
                    rid,
                    len(samples) - len(pending),
                    len(samples),
                    digests=digests,
                )
            finally:
                executor.close()
        except BaseException as e:
            self.store.set_status(rid, "failed" if isinstance(e, Exception) else "interrupted", error=str(e))
            raise
        del samples, pending  # scoring reads the store; keep memory flat on large datasets
        try:
            if spec.kind == "eval":
                decision = spec.generation.decision if score_mode(spec) else None
                metrics = score_run(self.store, rid, info, prompt, decision=decision)
                if spec.knowledge:
                    self.store.set_metrics(rid, dict(metrics, **knowledge_metrics(self.store, rid)))
            else:
                from .knowledge import knowledge_quality

                quality = knowledge_quality(self.store, rid, info)
                # the elicitation template actually chosen (e.g. describe_zh for a Chinese dataset)
                self.store.set_metrics(
                    rid, dict(quality, _template=prompt.name, _language=getattr(prompt, "language", "en"))
                )
        except Exception as e:
            self.store.set_status(rid, "failed", error=f"scoring: {e}")
            raise
        self.store.set_status(rid, "done")
        return self.store.run(rid)

    def _render(self, spec: RunSpec, info: DatasetInfo, prompt: Prompt, knowledge: dict[str, SampleKnowledge]):
        def render(sample: Sample) -> Task:
            k = knowledge.get(sample.id)
            try:
                conv = prompt.render(
                    sample,
                    info,
                    knowledge=k.text if k else None,
                    modalities=spec.media.modalities,
                    system=spec.generation.system_prompt,
                )
                return Task(sample, conv)
            except AffectbenchError as e:
                return Task(sample, error=f"render: {e}")

        return render

    def executor(self, spec: RunSpec, model: Model | None) -> Executor:
        if self.exec.executor == "ray":
            from .ray_executor import RayExecutor

            mspec = resolve_adapter(spec.model, self.store)
            return RayExecutor(mspec, spec.media, self.store.workspace, self.exec)
        return LocalExecutor(model or self.model_for(spec), self.exec)

    def _stream(
        self, spec, info, prompt, executor: Executor, pending, knowledge, rid, n_done, n_total, digests=None
    ) -> None:
        render = self._render(spec, info, prompt, knowledge)
        score = score_mode(spec)
        call = Call(spec.generation, tuple(prompt.options(info)) if score else None, seed=spec.seed)
        gen = spec.generation
        prior = None
        if score:
            check_rule(gen.decision, call.options)
        if score and gen.calibration == "contextual":
            prior = self._content_free_prior(spec, info, prompt, executor, call, bool(knowledge))
        failed_batches = 0
        with progress_bar(self.progress, f"{rid}", n_total, n_done) as advance:
            for batch in executor.answer((render(s) for s in pending), call):
                if score:
                    for t in batch:
                        apply_decision(t.generation, gen.decision, gen.calibration, prior)
                preds = [self._prediction(info, prompt, t) for t in batch]
                if spec.knowledge:
                    for p in preds:
                        self._record_knowledge(p, knowledge.get(p.sample_id) or missing_knowledge(spec))
                for p in preds:  # which version of the sample this answer saw (see provenance)
                    if digests and p.sample_id in digests:
                        p.meta["data"] = digests[p.sample_id]
                if spec.parse.type == "extractor" and spec.kind == "eval":
                    self._extract(spec, info, prompt, preds)
                self.store.add_predictions(rid, preds)
                advance(len(preds))
                model_failed = [t for t in batch if t.generation is not None and t.generation.error]
                if model_failed and len(model_failed) == sum(t.generation is not None for t in batch):
                    failed_batches += 1
                    if failed_batches >= MAX_FAILED_BATCHES:
                        raise AffectbenchError(
                            f"{failed_batches} batches in a row failed in the model (last: {model_failed[0].error}); "
                            "stored results are kept — fix the backend and rerun to continue"
                        )
                else:
                    failed_batches = 0

    def _extract(self, spec: RunSpec, info: DatasetInfo, prompt: Prompt, preds: list[Prediction]) -> None:
        """The extractor policy: answers the rules found no label or number in (`no_label`) go to the
        extractor model; its answer, read by the same rules, becomes the prediction when it is read.
        The extractor's answer and how it was read are kept in meta["extractor"] either way."""
        todo = [p for p in preds if not p.ok and p.reason in EXTRACTABLE and (p.raw or "").strip()]
        if not todo:
            return
        mspec = spec.parse.model
        assert mspec is not None  # ParsePolicySpec checks it
        key = "extractor:" + mspec.model_dump_json()
        if key not in self._models:
            self._models[key] = build_model(mspec, None, self.store.workspace)
        model = self._models[key]
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

    def _content_free_prior(self, spec, info, prompt: Prompt, executor: Executor, call: Call, knowledge: bool) -> dict:
        """log p_cf of the options: the run's template scored on content-free inputs (Zhao et al. 2021):
        the transcript (and the knowledge slot, when the run uses knowledge) holds "N/A", "" or "[MASK]";
        no media."""
        samples = [Sample(id=f"__content_free_{i}__", transcript=t, target=None) for i, t in enumerate(CONTENT_FREE)]
        texts = {s.id: SampleKnowledge(s.transcript or "N/A") for s in samples} if knowledge else {}
        render = self._render(spec, info, prompt, texts)
        runs = []
        for batch in executor.answer((render(s) for s in samples), call):
            for t in batch:
                g = t.generation
                if t.error or g is None or g.scores is None:
                    why = t.error or (g.meta.get("scoring_error") if g else None) or "no output"
                    raise AffectbenchError(
                        f"contextual calibration: scoring the content-free input {t.sample.transcript!r} failed: {why}"
                    )
                runs.append(g.scores)
        return content_free_prior(runs)

    @staticmethod
    def _record_knowledge(pred: Prediction, k: SampleKnowledge) -> None:
        """meta["knowledge"]: the sources present, their characters, trimming, and the modalities that
        reached the model through knowledge; meta["modalities_total"]: direct ∪ through knowledge."""
        facts = k.facts()
        pred.meta = dict(pred.meta, knowledge=facts)
        total = set(pred.modalities) | set(facts["modalities"])
        pred.meta["modalities_total"] = [m for m in ("T", "A", "V") if m in total]

    @staticmethod
    def _prediction(info: DatasetInfo, prompt: Prompt, task: Task) -> Prediction:
        s, g = task.sample, task.generation
        if task.error or g is None:
            return Prediction(
                s.id, None, None, False, s.target, s.group, None, task.error or "no output", reason="model_error"
            )
        parsed = settle(prompt.parse(g.text, info), g.finish_reason)
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


def score_mode(spec: RunSpec) -> bool:
    """Whether a run scores candidate options (eval runs with generation.mode: score)."""
    return spec.generation.mode == "score" and spec.kind == "eval"


def run_spec(spec: RunSpec, store: Store, exec_spec: ExecSpec | None = None, progress: bool = False) -> RunRecord:
    """Convenience: execute one run and close its model."""
    runner = Runner(store, exec_spec, progress=progress)
    try:
        return runner.run(spec)
    finally:
        runner.close()


__all__ = ["Runner", "knowledge_texts", "run_spec", "select_samples", "StoreError"]
