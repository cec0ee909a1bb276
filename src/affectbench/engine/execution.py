"""How batches reach a model: prepare ahead in a worker pool, then call the backend.

An executor turns a stream of rendered Tasks into a stream of answered batches. The local one
runs in this process; the Ray one (`affectbench.engine.ray`) shards batches over actors that
each hold a model replica. Both fill the same fields, so the runner cannot tell them apart.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
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


def lower_priority(nice: int) -> None:
    """Lower the calling thread's CPU priority by `nice` steps (a ThreadPoolExecutor initializer).

    Linux keeps a nice value per thread (setpriority(2), NOTES: "under the current Linux/NPTL implementation
    of POSIX threads, the nice value is a per-thread attribute"; the thread is named by its kernel id,
    `threading.get_native_id`). Elsewhere PRIO_PROCESS would name a process, so this does nothing there.
    Raising nice needs no privilege; it ends with the thread. A refusal is logged, never raised."""
    if nice <= 0 or sys.platform != "linux":
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError as e:  # a sandbox without setpriority: same priority as before
        log.debug("prepare worker keeps its priority: %s", e)


def batched(items: Iterator[Task], size: int) -> Iterator[list[Task]]:
    batch: list[Task] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def prompt_length(model: Model, task: Task) -> int:
    """A prepared task's prompt length in tokens, for length-aware batching: the family's processor count
    of its media where the backend exposes one (`token_counter`, hf), else a proxy (text bytes / 4,
    25 audio tokens per second, one token per 28x28 px of every other frame, as Qwen's processors)."""
    if task.conversation is None:
        return 0
    counter = None
    get = getattr(model, "token_counter", None)
    if callable(get):
        try:
            counter = get()
        except Exception:  # a model that cannot load yet: use the proxy
            counter = None
    n = 0
    for msg in task.conversation:
        for p in msg.parts:
            clip = p.data
            if p.kind == "text":
                n += len((p.text or "").encode("utf-8")) // 4
            elif clip is None or not hasattr(clip, "frames"):
                continue
            elif p.kind == "audio" and clip.has_audio:
                secs = clip.audio_seconds
                n += counter.audio_clip(int(secs * counter.sample_rate)) if counter else int(25 * secs)
            elif p.kind in ("video", "image") and clip.has_video:
                t, h, w = (int(x) for x in clip.frames.shape[:3])
                n += counter.video(t, h, w) if counter else (t + 1) // 2 * (h * w) // 784
    return n


def length_batches(tasks: list[Task], size: int, length) -> list[list[Task]]:
    """`tasks` cut into batches of `size` after a stable sort by `length(task)` (ties keep arrival order)."""
    order = sorted(range(len(tasks)), key=lambda i: (length(tasks[i]), i))
    return [[tasks[i] for i in order[k : k + size]] for k in range(0, len(order), size)]


def padding_waste(batches: list[list[int]]) -> float:
    """Padded tokens / real tokens of batches given as prompt lengths (each row padded to its batch's longest)."""
    real = sum(sum(b) for b in batches)
    padded = sum(len(b) * max(b) - sum(b) for b in batches if b)
    return padded / real if real else 0.0


class LocalExecutor:
    """Prepare in a thread pool, at most `prefetch` batches ahead, in order; call in this thread.

    With `exec.prepare_nice` the pool's threads run that many nice steps below the model's (`lower_priority`):
    on a CPU the model's torch thread team and the decoders share the cores, and the model ran 1.05-1.8x
    slower inside the engine than alone (bench/bench_pipeline.py); off by default, see ExecSpec.

    With `exec.order: length` each window of `prefetch x batch_size` prepared tasks is sorted by prompt
    length (`prompt_length`) into model batches, and the window's tasks are yielded back in arrival
    order once all of its batches are answered, so the store keeps the dataset's order."""

    def __init__(self, model: Model, exec_spec: ExecSpec) -> None:
        self.model, self.exec = model, exec_spec

    def _prepared(self, tasks: Iterator[Task]) -> Iterator[Task]:
        window = max(1, self.exec.prefetch * self.exec.batch_size)
        with ThreadPoolExecutor(
            max_workers=max(1, self.exec.workers), initializer=lower_priority, initargs=(self.exec.prepare_nice,)
        ) as pool:
            queue: list[Future[Task]] = []
            for task in tasks:
                queue.append(pool.submit(prepare_task, self.model, task))
                if len(queue) >= window:
                    yield queue.pop(0).result()
            for fut in queue:
                yield fut.result()

    def _model_batches(self, tasks: Iterator[Task]) -> Iterator[tuple[list[Task], list[list[Task]] | None]]:
        """(model batch, None) in arrival order; with order=length, a window's model batches, the last of
        them carrying the window's tasks in arrival order to yield once it is answered."""
        size = self.exec.batch_size
        if self.exec.order != "length":
            for batch in batched(self._prepared(tasks), size):
                yield batch, None
            return
        window = max(size, self.exec.prefetch * size)
        for group in batched(self._prepared(tasks), window):
            parts = length_batches(group, size, lambda t: prompt_length(self.model, t))
            for i, batch in enumerate(parts):
                yield batch, ([group[k : k + size] for k in range(0, len(group), size)] if i == len(parts) - 1 else [])

    def answer(self, tasks: Iterator[Task], call: Call) -> Iterator[list[Task]]:
        """The model works on batch k+1 while the caller parses and stores batch k (with order=length:
        the window before)."""
        if self.exec.order == "length":
            yield from self._answer_by_length(tasks, call)
            return
        with ThreadPoolExecutor(max_workers=1) as model_thread:
            pending: Future[list[Task]] | None = None
            for batch in batched(self._prepared(tasks), self.exec.batch_size):
                nxt = model_thread.submit(call_model, self.model, batch, call)
                if pending is not None:
                    yield pending.result()
                pending = nxt
            if pending is not None:
                yield pending.result()

    def _answer_by_length(self, tasks: Iterator[Task], call: Call) -> Iterator[list[Task]]:
        with ThreadPoolExecutor(max_workers=1) as model_thread:
            pending: list[tuple[Future[list[Task]], list[list[Task]]]] = []
            for batch, release in self._model_batches(tasks):
                pending.append((model_thread.submit(call_model, self.model, batch, call), release or []))
                while len(pending) > 1:  # one call ahead of the caller
                    fut, out = pending.pop(0)
                    fut.result()
                    yield from out
            for fut, out in pending:
                fut.result()
                yield from out

    def close(self) -> None:
        pass
