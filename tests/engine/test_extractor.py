"""The `parse: {type: extractor}` policy (issue 12): rules first, a second model only for answers the
rules find no label in; its answer and reason stored; rescore keeps it; tables name the view.
Both models here are the `scripted` TEST DOUBLE, not models."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from affectbench.cli import app
from affectbench.core.specs import DatasetRef, ModelSpec, ParsePolicySpec, RunSpec
from affectbench.engine.runner import run_spec
from affectbench.engine.store import Store
from affectbench.report.tables import dataset_tables

LABELS = ["negative", "neutral", "positive"]
ANSWERS = {  # what the answering test double says per clip
    "sounds positive": "The person sounds upbeat and full of energy.",  # no label word: rules cannot read it
    "sounds negative": "negative",
    "sounds neutral": "positive or neutral, hard to say",  # ambiguous: never sent to the extractor
}
EXTRACTOR = ModelSpec(
    backend="scripted", name="extractor-double", options={"rule": "table", "answers": {"upbeat": "Positive"}}
)


def _root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    with (root / "manifest.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "transcript", "label", "split"])
        for i in range(6):
            w.writerow([f"s{i}", f"clip {i} sounds {LABELS[i % 3]}", LABELS[i % 3], "test"])
    return root


def _spec(root: Path, parse: ParsePolicySpec | None = None) -> RunSpec:
    kw = {"parse": parse} if parse else {}
    return RunSpec(
        dataset=DatasetRef(name="manifest", root=str(root), options={"labels": LABELS, "task_name": "sentiment"}),
        model=ModelSpec(backend="scripted", options={"rule": "table", "answers": ANSWERS}),
        media={"modalities": "T"},
        **kw,
    )


def test_default_policy_keeps_run_ids_and_extractor_needs_a_model(tmp_path):
    plain = _spec(tmp_path)
    assert "parse" not in plain.identity()
    assert plain.run_id == _spec(tmp_path, ParsePolicySpec()).run_id
    assert _spec(tmp_path, ParsePolicySpec(type="extractor", model=EXTRACTOR)).run_id != plain.run_id
    with pytest.raises(ValidationError, match="needs parse.model"):
        ParsePolicySpec(type="extractor")


def test_extractor_reads_only_what_rules_cannot(tmp_path):
    root = _root(tmp_path)
    ws = tmp_path / "ws"
    store = Store(ws / "affectbench.sqlite")
    rules = run_spec(_spec(root), store)
    ext = run_spec(_spec(root, ParsePolicySpec(type="extractor", model=EXTRACTOR)), store)
    assert rules.metrics["_unread"]["no_label"] == pytest.approx(2 / 6, abs=1e-4)
    assert ext.metrics["_unread"]["no_label"] == 0.0
    assert ext.metrics["_unread"]["ambiguous"] == pytest.approx(2 / 6, abs=1e-4)  # not sent to the extractor
    assert ext.metrics["acc"] == pytest.approx(4 / 6, abs=1e-4) and rules.metrics["acc"] == pytest.approx(
        2 / 6, abs=1e-4
    )
    assert ext.metrics["_parse_view"] == "rules+extractor(scripted:extractor-double)"
    preds = {p.sample_id: p for p in store.predictions(ext.id)}
    upbeat = preds["s2"]
    assert upbeat.value == "positive" and upbeat.ok and upbeat.reason is None
    assert upbeat.meta["read_by"] == "extractor"
    assert upbeat.meta["extractor"]["answer"] == "Positive" and upbeat.meta["extractor"]["parse"]
    assert "extractor" not in preds["s0"].meta and "extractor" not in preds["s1"].meta
    # rescore re-reads the raw answers with the rules and keeps the extractor's stored reading
    res = CliRunner().invoke(app, ["rescore", ext.id, "--workspace", str(ws)])
    assert res.exit_code == 0, res.output
    assert Store(ws / "affectbench.sqlite").run(ext.id).metrics["acc"] == ext.metrics["acc"]
    (table,) = dataset_tables(store)
    assert any("[rules+extractor(scripted:extractor-double)]" in row for row in table.rows)
    assert any("[" not in row for row in table.rows)  # the rules-only run keeps its plain name
