"""How batches reach a model: prepare ahead in a worker pool, then call the backend.

An executor turns a stream of rendered Tasks into a stream of answered batches. The local one
runs in this process; the Ray one (`affectbench.engine.ray`) shards batches over actors that
each hold a model replica. Both fill the same fields, so the runner cannot tell them apart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from ..core.errors import AffectbenchError
from ..core.specs import ExecSpec, GenerationSpec
from ..core.types import Generation, Sample
from ..models.base import Conversation, Model, sample_seed

log = logging.getLogger(__name__)


@dataclass
class Task:
    """One sample on its way through the pipeline."""

    sample: Sample
    conversation: Conversation | None = None
    error: str | None = None
    generation: Generation | None = None
    latency: float | None = None


@dataclass(frozen=True)
class Call:
    """What to ask the model: free generation, or scores of candidate answers."""

    generation: GenerationSpec
    options: tuple[str, ...] | None = None  # set → score mode
    seed: int | None = None  # the run's seed: per-sample sampling seeds derive from it and the sample id


class Executor(Protocol):
    def answer(self, tasks: Iterator[Task], call: Call) -> Iterator[list[Task]]: ...

    def close(self) -> None: ...


def prepare_task(model: Model, task: Task) -> Task:
    """Decode media etc.; a failure marks this task only."""
    if task.error is None and task.conversation is not None:
        try:
            task.conversation = model.prepare(task.conversation)
        except AffectbenchError as e:
            task.error = f"{type(e).__name__}: {e}"
        except Exception as e:  # a decoder crash on one file must not stop the run
            task.error = f"prepare failed: {type(e).__name__}: {e}"
    return task


def call_model(model: Model, batch: list[Task], call: Call) -> list[Task]:
    """Run one batch through the model; no exception from a backend can stop the run.

    Any `Exception` from the backend (a CUDA out-of-memory, a server's "prompt too long", a
    processor rejecting one clip, an affectbench error) fails the batch call; the batch is then
    retried sample by sample, so only the culprit(s) keep an error, each naming its sample id,
    and every other sample gets its answer. A backend that fails on every sample fails every
    task of the batch (the runner aborts after `MAX_FAILED_BATCHES` such batches in a row).
    `BaseException`s that are not `Exception`s (KeyboardInterrupt, SystemExit) still propagate.
    """
    ready = [t for t in batch if t.error is None]
    if not ready:
        return batch
    t0 = time.perf_counter()
    try:
        outs = _ask(model, ready, call)
    except Exception as e:
        if len(ready) == 1:
            _fail(ready[0], e, time.perf_counter() - t0)
            return batch
        log.warning(
            "backend failed on a batch of %d (%s: %s); retrying it sample by sample",
            len(ready),
            type(e).__name__,
            _short(e),
        )
        for task in ready:  # isolate the culprit: one call per sample
            t1 = time.perf_counter()
            try:
                (out,) = _ask(model, [task], call)
            except Exception as e1:
                _fail(task, e1, time.perf_counter() - t1)
            else:
                _store(task, out, time.perf_counter() - t1)
        return batch
    latency = (time.perf_counter() - t0) / len(ready)
    for task, out in zip(ready, outs, strict=True):
        _store(task, out, latency)
    return batch


def _ask(model: Model, tasks: list[Task], call: Call) -> list[Generation]:
    convs = [t.conversation for t in tasks]
    if call.options is not None:
        outs = model.score(convs, list(call.options), call.generation)
    else:
        kw = {}
        if call.seed is not None and getattr(model, "accepts_seeds", False):
            kw["seeds"] = [sample_seed(call.seed, t.sample.id) for t in tasks]
        outs = model.generate(convs, call.generation, **kw)
    if len(outs) != len(tasks):
        raise AffectbenchError(f"backend returned {len(outs)} answers for {len(tasks)} conversations")
    return outs


def _store(task: Task, out: Generation, latency: float) -> None:
    task.generation, task.latency = out, latency
    if out.error:
        task.error = out.error


def _short(e: BaseException, limit: int = 500) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fail(task: Task, e: Exception, latency: float) -> None:
    """Mark one task as failed in the model, naming its sample (the runner counts these)."""
    kind = "" if isinstance(e, AffectbenchError) else "backend raised "
    msg = f"sample {task.sample.id}: {kind}{type(e).__name__}: {_short(e)}"
    _store(task, Generation(text="", error=msg), latency)


def batched(items: Iterator[Task], size: int) -> Iterator[list[Task]]:
    batch: list[Task] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class LocalExecutor:
    """Prepare in a thread pool, at most `prefetch` batches ahead, in order; call in this thread."""

    def __init__(self, model: Model, exec_spec: ExecSpec) -> None:
        self.model, self.exec = model, exec_spec

    def _prepared(self, tasks: Iterator[Task]) -> Iterator[Task]:
        window = max(1, self.exec.prefetch * self.exec.batch_size)
        with ThreadPoolExecutor(max_workers=max(1, self.exec.workers)) as pool:
            queue: list[Future[Task]] = []
            for task in tasks:
                queue.append(pool.submit(prepare_task, self.model, task))
                if len(queue) >= window:
                    yield queue.pop(0).result()
            for fut in queue:
                yield fut.result()

    def answer(self, tasks: Iterator[Task], call: Call) -> Iterator[list[Task]]:
        """The model works on batch k+1 while the caller parses and stores batch k."""
        with ThreadPoolExecutor(max_workers=1) as model_thread:
            pending: Future[list[Task]] | None = None
            for batch in batched(self._prepared(tasks), self.exec.batch_size):
                nxt = model_thread.submit(call_model, self.model, batch, call)
                if pending is not None:
                    yield pending.result()
                pending = nxt
            if pending is not None:
                yield pending.result()

    def close(self) -> None:
        pass
