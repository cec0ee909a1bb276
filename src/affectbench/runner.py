"""The loop: RunSpec → stored, scored predictions. Resumable; one writer to the store.

Samples stream in batches: a worker pool runs `Model.prepare` (media decoding, perception)
ahead of the model, the model gets whole batches, and each batch's answers are parsed and
committed as soon as it finishes (while the model works on the next one). A rerun skips
samples already stored without error.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .datasets import load_dataset, select_samples
from .environment import environment
from .errors import AffectbenchError, StoreError
from .execution import Call, Executor, LocalExecutor, Task
from .knowledge import knowledge_texts
from .models import Model, build_model
from .progress import progress_bar
from .prompts import load_prompt
from .prompts.base import Prompt
from .scoring import score_run
from .specs import ExecSpec, ModelSpec, RunSpec
from .store import Prediction, RunRecord, Store
from .types import DatasetInfo, Sample

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


def check_same_inputs(record: RunRecord, env: dict[str, Any]) -> None:
    """Refuse to resume a run whose prompt template or model weights changed since it started."""
    before = record.env or {}
    for key, what in (("prompt", "prompt template"), ("fingerprint", "model (weights, adapter or settings)")):
        if before.get(key) and env.get(key) and before[key] != env[key]:
            raise StoreError(
                f"run {record.id}: the {what} changed since its stored predictions were made "
                f"({before[key]} → {env[key]}); refusing to mix them. "
                f"Delete it (affectbench rm {record.id}) or use a new prompt name"
            )


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
        prompt = load_prompt(spec.prompt, info)
        record = self.store.open_run(spec)
        rid = record.id
        samples = select_samples(dataset.load(spec.split), spec.limit, spec.seed)
        done = self.store.done_ids(rid)
        pending = [s for s in samples if s.id not in done]
        if not pending and record.status == "done":
            return record
        knowledge = knowledge_texts(spec, self.store, info)
        self.store.set_status(rid, "running")
        try:
            executor = self.executor(spec, model)
            env = dict(environment(), prompt=getattr(prompt, "fingerprint", prompt.version))
            if isinstance(executor, LocalExecutor):
                env.update(model=executor.model.info(), fingerprint=executor.model.fingerprint())
            elif hasattr(executor, "env"):  # Ray: the replicas report their model
                env.update(executor.env())
            if done:
                check_same_inputs(record, env)
            self.store.open_run(spec, env=env)
            try:
                self._stream(
                    spec, info, prompt, executor, pending, knowledge, rid, len(samples) - len(pending), len(samples)
                )
            finally:
                executor.close()
        except BaseException as e:
            self.store.set_status(rid, "failed" if isinstance(e, Exception) else "interrupted", error=str(e))
            raise
        del samples, pending  # scoring reads the store; keep memory flat on large datasets
        if spec.kind == "eval":
            score_run(self.store, rid, info, prompt)
        else:
            from .knowledge import knowledge_quality

            self.store.set_metrics(rid, knowledge_quality(self.store, rid, info))
        self.store.set_status(rid, "done")
        return self.store.run(rid)

    def _render(self, spec: RunSpec, info: DatasetInfo, prompt: Prompt, knowledge: dict[str, str]):
        def render(sample: Sample) -> Task:
            try:
                conv = prompt.render(
                    sample,
                    info,
                    knowledge=knowledge.get(sample.id),
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

    def _stream(self, spec, info, prompt, executor: Executor, pending, knowledge, rid, n_done, n_total) -> None:
        render = self._render(spec, info, prompt, knowledge)
        score = spec.generation.mode == "score" and spec.kind == "eval"
        call = Call(spec.generation, tuple(prompt.options(info)) if score else None)
        failed_batches = 0
        with progress_bar(self.progress, f"{rid}", n_total, n_done) as advance:
            for batch in executor.answer((render(s) for s in pending), call):
                preds = [self._prediction(info, prompt, t) for t in batch]
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

    @staticmethod
    def _prediction(info: DatasetInfo, prompt: Prompt, task: Task) -> Prediction:
        s, g = task.sample, task.generation
        if task.error or g is None:
            return Prediction(s.id, None, None, False, s.target, s.group, None, task.error or "no output")
        parsed = prompt.parse(g.text, info)
        meta: dict[str, Any] = {"n_input_tokens": g.n_input_tokens, "n_output_tokens": g.n_output_tokens}
        if g.scores is not None:
            meta["scores"] = g.scores
        if parsed.reason:
            meta["parse"] = parsed.reason
        meta.update(g.meta)
        return Prediction(
            s.id, g.text, parsed.value, parsed.ok, s.target, s.group, task.latency, None, g.modalities, meta
        )


def run_spec(spec: RunSpec, store: Store, exec_spec: ExecSpec | None = None, progress: bool = False) -> RunRecord:
    """Convenience: execute one run and close its model."""
    runner = Runner(store, exec_spec, progress=progress)
    try:
        return runner.run(spec)
    finally:
        runner.close()


__all__ = ["Runner", "run_spec", "select_samples", "StoreError"]
