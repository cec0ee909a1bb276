"""The loop: RunSpec → stored, scored predictions. Resumable; one writer to the store.

`Runner.run` dispatches on the run's kind through `core.registry.RUN_KINDS` (eval and knowledge
runs come back to `infer`; finetune and readout kinds live in their own layer), so the engine
imports no kind's implementation. `infer` is a short list of stages, each its own module:
select samples (`select`) → knowledge (`gather`) → render (`render`) → execute (`execution`, in a
worker pool ahead of the model; `ray` across actors) → record (`record`) → settle (`settle`).
Each batch's answers are committed as soon as it finishes, so a rerun skips samples already
stored without error.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..core.errors import AffectbenchError
from ..core.progress import progress_bar
from ..core.registry import RUN_KINDS
from ..core.specs import ExecSpec, ModelSpec, RunSpec
from ..knowledge import SampleKnowledge
from ..models import Model, build_model
from ..models.options import apply_decision, check_rule
from .calibration import contextual_prior
from .execution import Call, Executor, LocalExecutor
from .gather import gather_knowledge, missing_knowledge
from .provenance import check_same_inputs, knowledge_record, segment_env
from .record import read_with_extractor, record_knowledge, to_prediction
from .render import renderer
from .select import Selection, select
from .settle import redecide, score_mode, settle
from .store import RunRecord, Store

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

    def extractor_for(self, mspec: ModelSpec) -> Model:
        """The model of the extractor parse policy (built once per spec, no media)."""
        key = "extractor:" + mspec.model_dump_json()
        if key not in self._models:
            self._models[key] = build_model(mspec, None, self.store.workspace)
        return self._models[key]

    def close(self) -> None:
        for m in self._models.values():
            m.close()
        self._models.clear()

    def run(self, spec: RunSpec) -> RunRecord:
        """Execute one run of any kind (see `RUN_KINDS`); returns its record."""
        return RUN_KINDS.load(spec.kind)(self, spec)

    # --- eval and knowledge runs ------------------------------------------------------------
    def infer(self, spec: RunSpec, model: Model | None = None) -> RunRecord:
        """An eval or knowledge run, from its samples to its stored metrics; resumes a stored run."""
        sel = select(spec)
        record = self.store.open_run(spec)
        rid = record.id
        budget = getattr(sel.prompt, "knowledge_budget", 1500)
        knowledge = gather_knowledge(spec, self.store, sel.info, budget) if spec.knowledge else {}
        texts = {sid: k.text for sid, k in knowledge.items() if k.text}
        kfp = knowledge_record(spec.knowledge, texts, sel.digests) if spec.knowledge else None
        env = segment_env(spec, sel.prompt, sel.data, kfp)
        stored = self.store.count_predictions(rid)
        if stored:  # a rerun: never mix predictions made from other data, knowledge or prompt
            check_same_inputs(record, env, self.store, sel.samples, sel.digests)
        done = self.store.done_ids(rid)
        pending = [s for s in sel.samples if s.id not in done]
        if not pending and record.status == "done":
            return redecide(self.store, spec, record, sel.info, sel.prompt)
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
            env["resumed_at"] = len(sel.samples) - len(pending)
            self.store.open_run(spec, env=env)
            try:
                self._stream(spec, sel, executor, pending, knowledge, rid)
            finally:
                executor.close()
        except BaseException as e:
            self.store.set_status(rid, "failed" if isinstance(e, Exception) else "interrupted", error=str(e))
            raise
        info, prompt = sel.info, sel.prompt
        del sel, pending  # scoring reads the store; keep memory flat on large datasets
        return settle(self.store, spec, rid, info, prompt)

    def executor(self, spec: RunSpec, model: Model | None) -> Executor:
        if self.exec.executor == "ray":
            from .ray import RayExecutor

            mspec = resolve_adapter(spec.model, self.store)
            return RayExecutor(mspec, spec.media, self.store.workspace, self.exec)
        return LocalExecutor(model or self.model_for(spec), self.exec)

    def _stream(
        self, spec: RunSpec, sel: Selection, executor: Executor, pending, knowledge: dict[str, SampleKnowledge], rid
    ) -> None:
        """Render → execute → record, batch by batch, committing each batch to the store."""
        info, prompt = sel.info, sel.prompt
        render = renderer(spec, info, prompt, knowledge)
        score = score_mode(spec)
        call = Call(spec.generation, tuple(prompt.options(info)) if score else None, seed=spec.seed)
        gen = spec.generation
        prior = cf_inputs = None
        if score:
            check_rule(gen.decision, call.options)
        if score and gen.calibration == "contextual":
            folder = Path(self.store.workspace) / "calibration"
            prior, cf_inputs = contextual_prior(
                spec, info, prompt, executor, call, bool(knowledge), sel.samples, folder
            )
        failed_batches = 0
        n_total = len(sel.samples)
        with progress_bar(self.progress, f"{rid}", n_total, n_total - len(pending)) as advance:
            for batch in executor.answer((render(s) for s in pending), call):
                if score:
                    for t in batch:
                        apply_decision(t.generation, gen.decision, gen.calibration, prior)
                        if cf_inputs and t.generation is not None and t.generation.scores is not None:
                            t.generation.meta["calibration_inputs"] = cf_inputs
                preds = [to_prediction(info, prompt, t) for t in batch]
                if spec.knowledge:
                    for p in preds:
                        record_knowledge(p, knowledge.get(p.sample_id) or missing_knowledge(spec))
                for p in preds:  # which version of the sample this answer saw (see provenance)
                    if p.sample_id in sel.digests:
                        p.meta["data"] = sel.digests[p.sample_id]
                if spec.parse.type == "extractor" and spec.kind == "eval":
                    read_with_extractor(spec, info, prompt, preds, self.extractor_for)
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


def infer_kind(runner: Runner, spec: RunSpec) -> RunRecord:
    """The `RUN_KINDS` entry of eval and knowledge runs."""
    return runner.infer(spec)


def run_spec(spec: RunSpec, store: Store, exec_spec: ExecSpec | None = None, progress: bool = False) -> RunRecord:
    """Convenience: execute one run and close its model."""
    runner = Runner(store, exec_spec, progress=progress)
    try:
        return runner.run(spec)
    finally:
        runner.close()


__all__ = ["MAX_FAILED_BATCHES", "Runner", "infer_kind", "resolve_adapter", "run_spec"]
