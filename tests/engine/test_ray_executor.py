"""The `ray` executor on a local 127.0.0.1 cluster: same stored predictions as a local run,
actor deaths handled, and a rerun after an interrupted run resumes. One Ray session per module."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import pytest

from affectbench.core.errors import AffectbenchError, ModelError
from affectbench.core.specs import DatasetRef, ExecSpec, GenerationSpec, ModelSpec, RunSpec
from affectbench.core.types import Message, Part, Sample
from affectbench.engine.execution import Call, Task
from affectbench.engine.ray import RayExecutor, init_ray
from affectbench.engine.runner import Runner, run_spec
from affectbench.engine.store import Store

ray = pytest.importorskip("ray")

LABELS = ["positive", "negative", "neutral"]
N = 48


@pytest.fixture(scope="module")
def ray_session():
    init_ray(None, num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("manifest")
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label", "transcript"])
        for i in range(N):
            w.writerow([f"s{i:03d}", LABELS[i % 3], f"clip {i}: it was {'great' if i % 2 else 'awful'}"])
    return root


def spec_for(root: Path, **options) -> RunSpec:
    opts = {"rule": "hash", "choices": LABELS, **options}
    return RunSpec(
        dataset=DatasetRef(name="manifest", root=str(root)),
        model=ModelSpec(backend="scripted", options=opts),
        media={"modalities": "T"},
    )


def stored(store: Store, rid: str) -> dict[str, tuple]:
    return {p.sample_id: (p.raw, p.value, p.ok, p.error, p.modalities) for p in store.predictions(rid)}


def ray_exec(actors: int = 2, **kw) -> ExecSpec:
    return ExecSpec(executor="ray", actors=actors, batch_size=4, prefetch=2, workers=1, **kw)


def test_tasks_and_calls_pickle():
    conv = [Message("user", [Part.of_text("hi"), Part(kind="video", path="/x.mp4", span=(0.0, 1.0))])]
    task = Task(Sample("a", "hi", "positive", media={"video": "/x.mp4"}), conv)
    call = Call(GenerationSpec(), ("positive", "negative"))
    back = pickle.loads(pickle.dumps((task, call)))
    assert back == (task, call)


def test_same_predictions_as_local(ray_session, data_root, tmp_path):
    spec = spec_for(data_root)
    local = run_spec(spec, Store(tmp_path / "local" / "db.sqlite"))
    rs = Store(tmp_path / "ray" / "db.sqlite")
    remote = run_spec(spec, rs, ray_exec())
    assert remote.status == "done" and remote.id == local.id
    expected = stored(Store(tmp_path / "local" / "db.sqlite"), local.id)
    assert len(expected) == N
    assert stored(rs, remote.id) == expected
    assert remote.metrics == local.metrics


def test_knowledge_run_same_as_local(ray_session, data_root, tmp_path):
    spec = spec_for(data_root, rule="table", answers={"great": "smiling, upbeat voice"}, default="flat voice")
    spec = spec.model_copy(update={"kind": "knowledge", "prompt": "describe"})
    local = run_spec(spec, Store(tmp_path / "local.sqlite"))
    rs = Store(tmp_path / "ray.sqlite")
    remote = run_spec(spec, rs, ray_exec())
    assert remote.status == "done"
    assert rs.knowledge(remote.id) == Store(tmp_path / "local.sqlite").knowledge(local.id)
    assert len(rs.knowledge(remote.id)) == N


def test_work_is_spread_and_streamed(ray_session, data_root):
    spec = spec_for(data_root, delay=0.05)
    ex = RayExecutor(spec.model, spec.media, None, ray_exec())
    try:
        tasks = (
            Task(Sample(f"t{i}", f"text {i}", None), [Message("user", [Part.of_text(f"t{i}")])]) for i in range(40)
        )
        seen, peak = [], 0
        for batch in ex.answer(tasks, Call(GenerationSpec())):
            peak = max(peak, sum(s.in_flight for s in ex.slots))
            seen += [t.sample.id for t in batch]
            assert all(t.generation is not None and t.conversation is None for t in batch)
        assert sorted(seen) == sorted(f"t{i}" for i in range(40))
        assert peak <= 2 * 2  # backpressure: at most `prefetch` batches per actor
        assert all(s.answered > 0 for s in ex.slots), [s.answered for s in ex.slots]
        assert len({s.info["pid"] for s in ex.slots}) == 2
    finally:
        ex.close()


def _drive_with_kill(ex, n: int, kill_after: int, victims: list[int]) -> list[Task]:
    tasks = (Task(Sample(f"k{i}", "", None), [Message("user", [Part.of_text(f"k{i}")])]) for i in range(n))
    out: list[Task] = []
    for i, batch in enumerate(ex.answer(tasks, Call(GenerationSpec()))):
        out += batch
        if i == kill_after:
            for v in victims:
                ex.kill_actor(v)
    return out


def test_killed_actor_batches_are_retried(ray_session, data_root):
    spec = spec_for(data_root, delay=0.1)
    ex = RayExecutor(spec.model, spec.media, None, ray_exec())
    try:
        out = _drive_with_kill(ex, 40, 0, [0])
        assert sorted(t.sample.id for t in out) == sorted(f"k{i}" for i in range(40))
        assert all(t.error is None for t in out)
        assert ex.retried >= 1 and not ex.slots[0].alive and ex.slots[1].alive
    finally:
        ex.close()


def test_killed_actor_without_retry_marks_errors(ray_session, data_root):
    spec = spec_for(data_root, delay=0.1)
    ex = RayExecutor(spec.model, spec.media, None, ray_exec(), retry=False)
    try:
        out = _drive_with_kill(ex, 40, 0, [0])
        assert sorted(t.sample.id for t in out) == sorted(f"k{i}" for i in range(40))
        failed = [t for t in out if t.error]
        assert failed and all("actor died" in t.error for t in failed)
        assert len(failed) < 40  # the live actor answered the rest
    finally:
        ex.close()


class HookedRunner(Runner):
    """Runs `after_batch(executor, i)` in the driver after the i-th batch is handed to the runner."""

    def after_batch(self, ex, i: int) -> None:
        raise NotImplementedError

    def executor(self, spec, model):
        ex = super().executor(spec, model)
        inner = ex.answer

        def answer(tasks, call):
            for i, batch in enumerate(inner(tasks, call)):
                yield batch
                self.after_batch(ex, i)

        ex.answer = answer
        return ex


class KillingRunner(HookedRunner):
    """Kills every actor after the first stored batch: the run must fail cleanly, keeping what it stored."""

    def after_batch(self, ex, i: int) -> None:
        if i == 0:
            for s in ex.slots:
                ex.kill_actor(s.index)


def test_all_actors_dead_aborts_and_rerun_resumes(ray_session, data_root, tmp_path):
    spec = spec_for(data_root, delay=0.05)
    store = Store(tmp_path / "db.sqlite")
    runner = KillingRunner(store, ray_exec(), progress=False)
    with pytest.raises(AffectbenchError, match="every actor died"):
        runner.run(spec)
    rid = spec.run_id
    assert store.run(rid).status == "failed"
    preds = store.predictions(rid)
    first = {p.sample_id for p in preds if p.error is None}
    assert 0 < len(first) < N
    # a batch retried on the other (also killed) actor is stored as an error, to be redone by the rerun
    assert all("actor died" in p.error for p in preds if p.error)
    stamps = dict(store._conn().execute("SELECT sample_id, created_at FROM predictions WHERE run_id=?", (rid,)))

    again = run_spec(spec, store, ray_exec())
    assert again.status == "done" and store.count_predictions(rid) == N
    after = dict(store._conn().execute("SELECT sample_id, created_at FROM predictions WHERE run_id=?", (rid,)))
    assert all(after[s] == stamps[s] for s in first)  # stored rows were not redone
    local = run_spec(spec, Store(tmp_path / "local.sqlite"))
    assert stored(store, rid) == stored(Store(tmp_path / "local.sqlite"), local.id)


def test_model_error_propagates_like_local(ray_session, data_root):
    spec = spec_for(data_root, rule="nope")  # scripted raises ModelError per conversation → stored errors
    ex = RayExecutor(spec.model, spec.media, None, ray_exec(actors=1))
    try:
        tasks = iter([Task(Sample("e", "", None), [Message("user", [Part.of_text("x")])])])
        (batch,) = list(ex.answer(tasks, Call(GenerationSpec())))
        assert batch[0].error and "unknown rule" in batch[0].error
    finally:
        ex.close()


def test_plain_backend_exception_isolated_to_its_sample_like_local(ray_session, data_root):
    # the scripted test double raises a RuntimeError for any batch holding "clip 5:"
    spec = spec_for(data_root, raise_on="clip 5:")
    ex = RayExecutor(spec.model, spec.media, None, ray_exec(actors=1))
    try:
        tasks = iter(
            [Task(Sample(f"s{i}", "", None), [Message("user", [Part.of_text(f"clip {i}: x")])]) for i in range(4, 8)]
        )
        batches = list(ex.answer(tasks, Call(GenerationSpec())))
    finally:
        ex.close()
    done = {t.sample.id: t for b in batches for t in b}
    assert sorted(done) == ["s4", "s5", "s6", "s7"]
    assert [sid for sid, t in sorted(done.items()) if t.error] == ["s5"]
    assert "s5" in done["s5"].error and "RuntimeError" in done["s5"].error


def test_replica_start_error_is_the_backend_error(ray_session, data_root):
    ex = RayExecutor(ModelSpec(backend="hf", name=""), spec_for(data_root).media, None, ray_exec(actors=1))
    with pytest.raises(ModelError, match="model name is empty"):
        ex.start()
    assert ex.slots == []


def test_gpu_request_without_gpus_is_a_clear_error(ray_session, data_root):
    if ray.cluster_resources().get("GPU", 0):
        pytest.skip("this machine has GPUs")
    spec = spec_for(data_root)
    with pytest.raises(AffectbenchError, match="GPUs"):
        RayExecutor(spec.model, spec.media, None, ray_exec(gpus_per_actor=1.0)).start()


class InterruptedRunner(HookedRunner):
    """A Ctrl-C in the driver after the second stored batch."""

    def after_batch(self, ex, i: int) -> None:
        if i == 1:
            raise KeyboardInterrupt


def test_driver_interrupt_keeps_stored_batches_and_rerun_resumes(ray_session, data_root, tmp_path):
    spec = spec_for(data_root)
    store = Store(tmp_path / "db.sqlite")
    with pytest.raises(KeyboardInterrupt):
        InterruptedRunner(store, ray_exec(), progress=False).run(spec)
    assert store.run(spec.run_id).status == "interrupted"
    assert store.count_predictions(spec.run_id) == 2 * 4  # the two batches handed over, nothing else
    assert run_spec(spec, store, ray_exec()).status == "done"
    assert store.count_predictions(spec.run_id) == N


@pytest.mark.slow
def test_tiny_hf_same_predictions_as_local(ray_session, tmp_path_factory):
    """A real transformers backend (tiny random Qwen2.5-Omni thinker) with media decoded inside the actors."""
    pytest.importorskip("transformers")
    pytest.importorskip("torchvision")
    from tests._clips import make_clip
    from tests._tiny import tiny_qwen_omni

    root = tmp_path_factory.mktemp("hfdata")
    make_clip(root / "a.mp4", 1.0)
    make_clip(root / "b.mp4", 1.0, freq=300, color=(60, 200, 60))
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label", "transcript", "video"])
        for i in range(4):
            w.writerow([f"h{i}", LABELS[i % 3], f"clip {i}", "a.mp4" if i % 2 else "b.mp4"])
    model_dir = tiny_qwen_omni(tmp_path_factory.mktemp("omni"))
    spec = RunSpec(
        dataset=DatasetRef(name="manifest", root=str(root)),
        model=ModelSpec(backend="hf", name=str(model_dir), options={"device": "cpu"}),
        generation=GenerationSpec(max_new_tokens=3),
        media={"modalities": "TAV", "fps": 2, "max_frames": 4},
    )
    ws = tmp_path_factory.mktemp("ws")
    local = run_spec(spec, Store(ws / "local" / "db.sqlite"), ExecSpec(batch_size=2))
    rs = Store(ws / "ray" / "db.sqlite")
    remote = run_spec(spec, rs, ExecSpec(executor="ray", actors=2, batch_size=2, workers=1, prefetch=1))
    expected = stored(Store(ws / "local" / "db.sqlite"), local.id)
    assert all(v[3] is None and v[4] == ("T", "A", "V") for v in expected.values()), expected
    assert stored(rs, remote.id) == expected
