"""`result_fingerprints`: short digests that agree for the same results in two workspaces and differ when
one answer, one option score or one adapter byte differs (what the demo prints per run)."""

from __future__ import annotations

from affectbench.core.specs import RunSpec
from affectbench.engine.provenance import result_fingerprints
from affectbench.engine.store import Prediction, Store


def _store(tmp, name, value="a", score=-1.25, adapter=b"w"):
    store = Store(tmp / name / "affectbench.sqlite")
    spec = RunSpec(dataset={"name": "demo"}, model={"backend": "scripted"})
    store.open_run(spec, env={"data": {"digest": "0123456789abcdef"}})
    preds = [Prediction("s1", value, value, True, "a", meta={"scores": {"a": score, "b": -2.0}}),
             Prediction("s2", "b", "b", True, "a")]  # fmt: skip
    store.add_predictions(spec.run_id, preds)
    folder = tmp / name / "adapter"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(adapter)
    store.set_artifact(spec.run_id, "adapter", folder)
    return result_fingerprints(store, spec.run_id)


def test_fingerprints_agree_on_equal_results_and_name_what_differs(tmp_path):
    base = _store(tmp_path, "a")
    assert set(base) == {"data", "adapter", "predictions", "scores"} and base["data"] == "01234567"
    assert _store(tmp_path, "b") == base
    other = _store(tmp_path, "c", score=-1.2500001)  # float noise: answers agree, scores do not
    assert other["predictions"] == base["predictions"] and other["scores"] != base["scores"]
    assert _store(tmp_path, "d", value="b")["predictions"] != base["predictions"]
    assert _store(tmp_path, "e", adapter=b"x")["adapter"] != base["adapter"]
