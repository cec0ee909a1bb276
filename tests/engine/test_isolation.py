"""A backend exception on one sample costs that sample only: the executor retries the batch sample
by sample, stores the culprit's error with its id, and a rerun goes on. Only systematic failure aborts."""

from __future__ import annotations

import pytest

from affectbench.core.errors import AffectbenchError
from affectbench.core.specs import ExecSpec, GenerationSpec, ModelSpec
from affectbench.engine.runner import MAX_FAILED_BATCHES, run_spec
from affectbench.engine.store import Store
from tests.engine.test_runner import manifest_spec, write_manifest


def raising(marker: str) -> ModelSpec:
    # `scripted` is the labelled test double; raise_on makes its whole batch call raise a RuntimeError
    return ModelSpec(backend="scripted", options={"rule": "constant", "default": "neutral", "raise_on": marker})


@pytest.mark.parametrize("mode", ["generate", "score"])
def test_plain_exception_costs_only_the_culprit_and_rerun_continues(tmp_path, mode):
    root = write_manifest(tmp_path / "data", 12)
    store = Store(tmp_path / "ws.sqlite")
    # scripted one-hot scores would give a content-free prior of -inf (refused): score uncalibrated
    spec = manifest_spec(root, model=raising("utterance 5 "), generation=GenerationSpec(mode=mode, calibration="none"))
    rec = run_spec(spec, store, ExecSpec(batch_size=4))
    assert rec.status == "done"
    preds = {p.sample_id: p for p in store.predictions(rec.id)}
    assert len(preds) == 12
    errs = sorted(sid for sid, p in preds.items() if p.error)
    assert errs == ["s0005"]
    assert "s0005" in preds["s0005"].error and "RuntimeError" in preds["s0005"].error
    assert all(p.raw == "neutral" for sid, p in preds.items() if sid != "s0005")  # batch-mates answered
    assert rec.metrics["_errors"] == 1

    again = run_spec(spec, store, ExecSpec(batch_size=4))  # the rerun retries the culprit only, and finishes
    assert again.status == "done"
    assert store.count_predictions(rec.id) == 12
    assert store.done_ids(rec.id) == {f"s{i:04d}" for i in range(12)} - {"s0005"}


def test_systematic_failure_still_aborts_and_keeps_what_was_stored(tmp_path):
    root = write_manifest(tmp_path / "data", 40)
    store = Store(tmp_path / "ws.sqlite")
    spec = manifest_spec(root, model=raising("utterance"))  # every sample raises
    with pytest.raises(AffectbenchError, match="batches in a row failed"):
        run_spec(spec, store, ExecSpec(batch_size=4))
    preds = store.predictions(spec.run_id)
    assert len(preds) == 4 * MAX_FAILED_BATCHES
    assert all(p.error and p.sample_id in p.error for p in preds)
