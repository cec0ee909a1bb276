"""Repeated sample ids are refused before inference, naming the ids and their entries; an adapter may
declare how it tells repeated rows apart."""

import csv

import pytest

from affectbench.core.errors import DatasetError, StoreError
from affectbench.core.types import Sample
from affectbench.datasets.base import Dataset
from affectbench.engine.runner import run_spec
from affectbench.engine.select import unique_ids
from affectbench.engine.store import Prediction, Store
from tests.engine.test_runner import manifest_spec


def _manifest_with_a_repeated_id(root):
    root.mkdir(parents=True, exist_ok=True)
    rows = [("a", "positive"), ("b", "negative"), ("a", "negative"), ("c", "positive")]
    with (root / "manifest.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "transcript", "label", "split"])
        for sid, lab in rows:
            w.writerow([sid, f"it sounds {lab}", lab, "test"])
    return root


def test_a_repeated_id_is_refused_before_any_run_record_or_model(tmp_path):
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    with pytest.raises(DatasetError) as e:
        run_spec(manifest_spec(_manifest_with_a_repeated_id(tmp_path / "d")), store)
    msg = str(e.value)
    assert "'a' at entries 1, 3" in msg and "manifest.csv" in msg and "1 sample id(s)" in msg
    assert store.runs() == []  # nothing was created, so nothing scored 3 of 4 rows


class _Segments(Dataset):
    """A toy adapter whose ids repeat across segments and that declares how to tell them apart."""

    from affectbench.core.types import DatasetInfo, TaskType

    info = DatasetInfo("toy", TaskType.CLASSIFICATION, labels=("x", "y"))

    def load(self, split):
        return [Sample("v1", "t", "x", meta={"seg": 0}), Sample("v1", "t", "y", meta={"seg": 1})]

    def disambiguate_ids(self, split, samples):
        for s in samples:
            s.id = f"{s.id}[{s.meta['seg']}]"
        return samples


def test_an_adapter_may_declare_how_it_disambiguates(tmp_path):
    ds = _Segments(tmp_path)
    assert [s.id for s in unique_ids(ds, "test", ds.load("test"))] == ["v1[0]", "v1[1]"]


def test_the_store_refuses_one_id_twice_in_a_batch(tmp_path):
    from affectbench.core.specs import DatasetRef, ModelSpec, RunSpec

    store = Store(tmp_path / "s.db")
    rid = store.open_run(RunSpec(dataset=DatasetRef(name="mosi"), model=ModelSpec(backend="scripted"))).id
    batch = [Prediction("a", "1", 1.0, True, 1.0), Prediction("a", "-1", -1.0, True, -1.0)]
    with pytest.raises(StoreError, match="'a' occur twice in one batch"):
        store.add_predictions(rid, batch)
    assert store.count_predictions(rid) == 0
    store.add_predictions(rid, batch[:1])
    store.add_predictions(rid, batch[1:])  # a later batch (a retry) replaces the row
    assert [p.value for p in store.predictions(rid)] == [-1.0]
