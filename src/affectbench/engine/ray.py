"""Scale-out: shard a run's batches over Ray actors, each holding one model replica.

The driver renders tasks, cuts them into batches and keeps at most `prefetch` batches in flight
per actor (bounded memory: the task stream is pulled only when an actor has room). Each actor
builds its model with `build_model`, decodes media (`prepare_task`) in a small thread pool while
the previous batch is in the model, and sends back answered tasks without their decoded media.
Results come back in completion order; the runner stores per batch, so order does not matter.
The driver stays the single writer to the store.

Failures: an exception from the backend never leaves an actor: `call_model` (shared with the local
executor) retries a failing batch sample by sample and stores each culprit's error with its id. An
actor that dies has its in-flight batches retried once on another live actor; a batch whose retry
also dies is yielded with every task marked as an error (a rerun retries them). When no actor is
left the run aborts with an `AffectbenchError`; everything already yielded is stored, so a rerun
resumes.

`ray.init(address=exec.ray_address)` joins an existing cluster (every node needs affectbench
installed and the media paths readable); without an address a local cluster is started on
127.0.0.1. vLLM tensor parallelism lives inside an actor: set `tensor_parallel_size` in the
model options and `gpus_per_actor` to match.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import AffectbenchError, require
from ..core.specs import ExecSpec, MediaSpec, ModelSpec
from .execution import Call, Task, batched, call_model, prepare_task

log = logging.getLogger(__name__)

START_TIMEOUT_S = float(os.environ.get("AFFECTBENCH_RAY_START_TIMEOUT", "900"))


class Replica:
    """The actor body: one model replica; prepares a batch's media, then calls the model.

    Runs as a threaded actor: several batches can be preparing at once (media decoding overlaps
    the model), while a lock lets one batch at a time into the model.
    """

    def __init__(
        self, model_spec: ModelSpec, media: MediaSpec, workspace: str | None, workers: int, entry: Any = None
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from ..core.registry import MODELS
        from ..models import build_model

        if entry is not None and model_spec.backend not in MODELS.names():
            # a backend registered at run time in the driver (a plugin): register it here too
            MODELS.register(model_spec.backend, entry.target, entry.extra, entry.summary)

        self.model: Any = None
        self.init_error: BaseException | None = None
        try:
            self.model = build_model(model_spec, media, Path(workspace) if workspace else None)
        except Exception as e:  # kept for ready(), so the driver sees the real error, not "actor died"
            self.init_error = e
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers))
        self.lock = threading.Lock()

    def ready(self) -> dict[str, Any]:
        """Called once after start-up: what to record about this replica (or the error that stopped it)."""
        if self.init_error is not None:
            raise self.init_error
        return {
            "pid": os.getpid(),
            "model": self.model.info(),
            "fingerprint": self.model.fingerprint(),
            "weights": self.model.weights(),
        }

    def answer(self, batch: list[Task], call: Call) -> list[Task]:
        batch = list(self.pool.map(lambda t: prepare_task(self.model, t), batch))
        with self.lock:
            batch = call_model(self.model, batch, call)
        for t in batch:  # decoded media stays here: the driver only needs the answers
            t.conversation = None
        return batch

    def close(self) -> None:
        if self.model is not None:
            self.model.close()
        self.pool.shutdown(wait=False)


@dataclass
class _Slot:
    """One actor as seen from the driver."""

    index: int
    handle: Any
    alive: bool = True
    in_flight: int = 0
    answered: int = 0  # batches
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Job:
    batch: list[Task]
    slot: _Slot
    attempt: int = 0


def init_ray(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Connect to the cluster at `address`, or start (once per process) a local one on 127.0.0.1."""
    ray = require("ray", "ray", "the ray executor")
    if not ray.is_initialized():
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if address:
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        else:
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                ignore_reinit_error=True,
                log_to_driver=False,
            )
    return ray


class RayExecutor:
    """The `ray` executor (see the module docstring). Actors start on first use and live until `close`."""

    def __init__(
        self,
        model_spec: ModelSpec,
        media: MediaSpec,
        workspace: str | Path | None,
        exec_spec: ExecSpec,
        *,
        retry: bool = True,
    ) -> None:
        self.model_spec, self.media, self.exec = model_spec, media, exec_spec
        self.workspace = str(workspace) if workspace is not None else None
        if exec_spec.order != "arrival":
            log.warning(
                "exec.order %r: the ray executor batches in arrival order (length order is local only)", exec_spec.order
            )
        self.cpus_per_actor = float(exec_spec.cpus_per_actor or 1)
        self.retry = retry
        self.max_in_flight = max(1, exec_spec.prefetch)  # batches per actor
        self.slots: list[_Slot] = []
        self.start_seconds: float | None = None
        self.retried = 0

    # --- actors ------------------------------------------------------------------------------
    def start(self) -> list[_Slot]:
        """Start the actors (idempotent) and wait until every replica has built its model."""
        if self.slots:
            return self.slots
        from ..core.registry import MODELS

        entry = MODELS.entry(self.model_spec.backend)  # an unknown backend fails here, before Ray starts
        t0 = time.perf_counter()
        n = max(1, self.exec.actors)
        local_cpus = None
        if not self.exec.ray_address:
            # oversubscribe rather than leave actors pending forever on a small machine
            local_cpus = max(os.cpu_count() or 1, int(n * self.cpus_per_actor + 0.999))
        ray = init_ray(self.exec.ray_address, local_cpus)
        gpus = float(self.exec.gpus_per_actor or 0.0)
        have = ray.cluster_resources().get("GPU", 0.0)
        if gpus and have < gpus * n:
            msg = f"ray executor: {n} actors x {gpus} GPUs need {gpus * n:g} GPUs but the cluster has {have:g}"
            if not self.exec.ray_address:
                raise AffectbenchError(f"{msg}; lower actors or gpus_per_actor, or give ray_address of a GPU cluster")
            log.warning("%s; actors wait until the cluster scales up", msg)
        remote = ray.remote(Replica).options(
            num_cpus=self.cpus_per_actor,
            num_gpus=gpus,
            max_concurrency=self.max_in_flight + 1,
            max_restarts=0,
        )
        workers = max(1, self.exec.workers)
        handles = [remote.remote(self.model_spec, self.media, self.workspace, workers, entry) for _ in range(n)]
        refs = [h.ready.remote() for h in handles]
        ready, waiting = ray.wait(refs, num_returns=len(refs), timeout=START_TIMEOUT_S)
        if waiting:
            for h in handles:
                ray.kill(h)
            raise AffectbenchError(
                f"ray executor: {len(waiting)} of {n} actors did not start within {START_TIMEOUT_S:.0f}s "
                "(not enough CPU/GPU in the cluster?); set AFFECTBENCH_RAY_START_TIMEOUT or lower actors"
            )
        try:
            infos = ray.get(refs)
        except Exception as e:
            for h in handles:
                ray.kill(h)
            cause = _cause(e)
            if isinstance(cause, AffectbenchError):  # the same message a local run gives
                raise cause from None
            raise AffectbenchError(f"ray executor: a model replica failed to start: {cause}") from e
        self.slots = [_Slot(i, h, info=info) for i, (h, info) in enumerate(zip(handles, infos, strict=True))]
        self.start_seconds = time.perf_counter() - t0
        log.info("ray executor: %d actors ready in %.1fs", n, self.start_seconds)
        return self.slots

    def env(self) -> dict[str, Any]:
        """What to record with the run: the model as the replicas see it, and the Ray layout."""
        slots = self.start()
        first = slots[0].info
        return {
            "model": first.get("model", {}),
            "fingerprint": first.get("fingerprint"),
            "weights": first.get("weights", {}),
            "ray": {"actors": len(slots), "gpus_per_actor": self.exec.gpus_per_actor, "address": self.exec.ray_address},
        }

    def kill_actor(self, index: int) -> None:
        """Kill one actor (tests and chaos drills): its in-flight batches go through the failure path."""
        import ray

        ray.kill(self.slots[index].handle, no_restart=True)

    # --- the stream ----------------------------------------------------------------------------
    def _pick(self) -> _Slot | None:
        free = [s for s in self.slots if s.alive and s.in_flight < self.max_in_flight]
        return min(free, key=lambda s: s.in_flight) if free else None

    def answer(self, tasks: Iterator[Task], call: Call) -> Iterator[list[Task]]:
        import ray
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, RayTaskError

        self.start()
        source = batched(tasks, self.exec.batch_size)
        jobs: dict[Any, _Job] = {}
        retry_queue: list[_Job] = []
        exhausted = False

        def submit(job: _Job) -> None:
            job.slot.in_flight += 1
            jobs[job.slot.handle.answer.remote(job.batch, call)] = job

        try:
            while True:
                # fill: retries first, then new batches, while some live actor has room
                while (slot := self._pick()) is not None:
                    if retry_queue:
                        job = retry_queue.pop(0)
                        job.slot = slot
                        submit(job)
                        continue
                    if exhausted:
                        break
                    batch = next(source, None)
                    if batch is None:
                        exhausted = True
                        break
                    if all(t.error is not None for t in batch):  # nothing for a model to do (render errors)
                        yield batch
                        continue
                    submit(_Job(batch, slot))
                if not jobs:
                    if retry_queue or not exhausted:  # work left but no live actor to take it
                        raise AffectbenchError(
                            "ray executor: every actor died before the run finished; stored results are kept "
                            "— rerun to continue"
                        )
                    return
                done, _ = ray.wait(list(jobs), num_returns=1)
                ref = done[0]
                job = jobs.pop(ref)
                job.slot.in_flight -= 1
                try:
                    result = ray.get(ref)
                except RayTaskError as e:  # not the backend (call_model catches that): a bug in affectbench itself
                    raise _cause(e) from None
                except (RayActorError, ActorDiedError, ActorUnavailableError) as e:
                    if job.slot.alive:
                        job.slot.alive = False
                        log.warning("ray executor: actor %d died (%s)", job.slot.index, type(e).__name__)
                    if self.retry and job.attempt == 0:
                        job.attempt += 1
                        self.retried += 1
                        retry_queue.append(job)
                        if not any(s.alive for s in self.slots):
                            raise AffectbenchError(
                                "ray executor: every actor died; stored results are kept — rerun to continue"
                            ) from e
                        continue
                    why = "died twice" if job.attempt else "died"
                    yield _failed(job.batch, f"ray: actor {why} while answering this batch ({type(e).__name__})")
                    continue
                job.slot.answered += 1
                yield result
        finally:
            for ref in jobs:
                try:
                    ray.cancel(ref, force=False)
                except Exception:  # best effort: the actors are killed in close() anyway
                    pass
            for job in jobs.values():
                job.slot.in_flight -= 1

    def close(self) -> None:
        if not self.slots:
            return
        import ray

        for s in self.slots:
            if s.alive:
                try:
                    ray.get(s.handle.close.remote(), timeout=30)
                except Exception:
                    pass
            try:
                ray.kill(s.handle, no_restart=True)
            except Exception:
                pass
        self.slots = []


def _failed(batch: list[Task], reason: str) -> list[Task]:
    for t in batch:
        if t.error is None:
            t.error = reason
        t.conversation = None
    return batch


def _cause(e: BaseException) -> BaseException:
    """The user-facing exception inside a Ray error."""
    cause = getattr(e, "cause", None)
    return cause if isinstance(cause, BaseException) else e


__all__ = ["RayExecutor", "Replica", "init_ray"]
