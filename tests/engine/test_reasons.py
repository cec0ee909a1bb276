"""Issue 12: every unread prediction stores one reason; rates per run in metrics, `ls runs` and the
run summary; old stores migrate; target problems name the sample; rescore/export write valid JSON."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from affectbench.cli import app
from affectbench.core.errors import DatasetError
from affectbench.core.specs import DatasetRef, ExecSpec, ModelSpec, RunSpec
from affectbench.core.types import UNREAD_REASONS, DatasetInfo, Generation, Sample, TaskType
from affectbench.engine.execution import Task
from affectbench.engine.record import to_prediction
from affectbench.engine.runner import run_spec
from affectbench.engine.store import MIGRATIONS, SCHEMA_VERSION, Prediction, Store
from affectbench.prompts import load_prompt

LABELS = ["negative", "neutral", "positive"]
SENT = DatasetInfo("manifest", TaskType.CLASSIFICATION, labels=tuple(LABELS), task_name="sentiment")
MOSI = DatasetInfo("mosi", TaskType.REGRESSION, score_range=(-3.0, 3.0), metric_suite="mosi", task_name="sentiment")


def _manifest(root: Path, rows: list[tuple[str, str, str]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "manifest.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "transcript", "label", "split"])
        for sid, text, label in rows:
            w.writerow([sid, text, label, "test"])
    return root


def _spec(root: Path, answers: dict[str, str], **options) -> RunSpec:
    opts = {"labels": LABELS, "task_name": "sentiment", **options}
    if "score_range" in options:
        opts.pop("labels")
    return RunSpec(
        dataset=DatasetRef(name="manifest", root=str(root), options=opts),
        model=ModelSpec(backend="scripted", options={"rule": "table", "answers": answers}),
        media={"modalities": "T"},
    )


# ------------------------------------------------------------------------------------ store


def test_v1_store_migrates_and_keeps_its_predictions(tmp_path):
    path = tmp_path / "affectbench.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute(
        "INSERT INTO runs (id, kind, spec, status, created_at, updated_at) VALUES ('r', 'eval', '{}', 'done', 0, 0)"
    )
    conn.execute(
        "INSERT INTO predictions VALUES ('r', 'a', 'joy', '\"joy\"', 1, '\"joy\"', '', 0.1, NULL, NULL, NULL, 0)"
    )
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    (old,) = store.predictions("r")
    assert (old.value, old.ok, old.reason, old.finish_reason) == ("joy", True, None, None)
    store.add_predictions("r", [Prediction("b", "", None, False, "joy", reason="empty", finish_reason="length")])
    got = {p.sample_id: p for p in store.predictions("r")}
    assert (got["b"].reason, got["b"].finish_reason) == ("empty", "length")
    assert store.reason_counts("r") == {"empty": 1}


# ------------------------------------------------------------------- one reason per prediction


def _pred(text, *, finish=None, reasoning=None, error=None, info=SENT):
    task = Task(Sample("s1", "t", "positive" if info is SENT else 1.0), conversation=[])
    if error:
        task.error = error
    else:
        task.generation = Generation(text=text, finish_reason=finish, reasoning=reasoning)
    return to_prediction(info, load_prompt("default", info), task)


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"text": None, "error": "OSError: video unreadable"}, "model_error"),
        ({"text": "The speaker's tone at first seems", "finish": "length"}, "truncated"),
        ({"text": "", "reasoning": "The voice is warm, so maybe positive"}, "reasoning_only"),
        ({"text": ""}, "empty"),
        ({"text": "positive or neutral, hard to say"}, "ambiguous"),
        ({"text": "I'm sorry, I can't help with that."}, "refused"),
        ({"text": "The weather is nice."}, "no_label"),
        ({"text": "<think>first the face", "finish": "length"}, "truncated"),
        ({"text": "Positive", "finish": "length"}, None),  # read: cut afterwards, still an answer
        ({"text": "Score: 7", "info": MOSI}, "out_of_range"),
        ({"text": "face: angry 0.63; words: negative (vader -0", "finish": "length", "info": MOSI}, "truncated"),
        ({"text": "The voice is flat; I'd rate it -1.5 because", "finish": "length", "info": MOSI}, None),
    ],
)
def test_every_unread_prediction_gets_one_reason(kw, reason):
    p = _pred(kw.pop("text"), **kw)
    assert p.reason == reason
    assert p.ok == (reason is None)
    assert reason is None or reason in UNREAD_REASONS


def test_finish_reason_and_reasoning_are_stored():
    p = _pred("", finish="stop", reasoning="thinking")
    assert p.finish_reason == "stop" and p.meta["reasoning"] == "thinking"


# ----------------------------------------------------------------------- runs, CLI, JSON


def test_run_stores_reasons_and_shows_rates(tmp_path):
    rows = [(f"s{i}", f"clip {i} sounds {LABELS[i % 3]}", LABELS[i % 3]) for i in range(9)]
    root = _manifest(tmp_path / "data", rows)
    answers = {
        "sounds positive": "Positive",
        "sounds negative": "negative or neutral",
        "sounds neutral": "Sorry, I can't",
    }
    ws = tmp_path / "ws"
    store = Store(ws / "affectbench.sqlite")
    rec = run_spec(_spec(root, answers), store, ExecSpec(batch_size=4))
    assert rec.status == "done"
    reasons = {p.sample_id: p.reason for p in store.predictions(rec.id)}
    assert sorted(r for r in reasons.values() if r) == ["ambiguous"] * 3 + ["refused"] * 3
    m = rec.metrics
    assert m["_unread"]["ambiguous"] == pytest.approx(3 / 9, abs=1e-4)
    assert m["_unread"]["refused"] == pytest.approx(3 / 9, abs=1e-4)
    assert set(m["_unread"]) == set(UNREAD_REASONS) and m["_unread_rate"] == pytest.approx(6 / 9, abs=1e-4)
    out = CliRunner().invoke(app, ["ls", "runs", "--workspace", str(ws)]).output
    assert "unread 66.7%: refused 33.3%, ambiguous 33.3%" in out


def test_target_less_sample_is_caught_before_inference(tmp_path):
    root = _manifest(tmp_path / "data", [("a1", "fine", "positive"), ("b2", "meh", "")])
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    with pytest.raises(DatasetError, match="sample 'b2' has no target"):
        run_spec(_spec(root, {"fine": "positive"}), store)
    assert store.runs() == []  # nothing ran
    root = _manifest(tmp_path / "data2", [("a1", "fine", "positive"), ("c3", "hm", "banana")])
    with pytest.raises(DatasetError, match="sample 'c3' has target 'banana'"):
        run_spec(_spec(root, {"fine": "positive"}), store)


def test_scoring_crash_is_recorded_on_the_run_with_the_sample_id(tmp_path):
    root = _manifest(tmp_path / "data", [("a1", "fine", "positive"), ("b2", "bad", "negative")])
    ws = tmp_path / "ws"
    store = Store(ws / "affectbench.sqlite")
    rec = run_spec(_spec(root, {"fine": "positive", "bad": "negative"}), store)
    with sqlite3.connect(store.path) as c:  # a stored target that no longer fits the label set
        c.execute("UPDATE predictions SET target='\"banana\"' WHERE sample_id='b2'")
    # with the dataset at hand, rescore refuses first (its targets differ from the stored ones: see
    # test_identity); without it the stored targets are scored unchecked, and the crash is recorded
    (root / "manifest.csv").unlink()
    res = CliRunner().invoke(app, ["rescore", rec.id, "--workspace", str(ws)])
    assert res.exit_code != 0
    after = Store(ws / "affectbench.sqlite").run(rec.id)
    assert after.status == "failed" and "b2" in after.error and "banana" in after.error


def test_constant_predictions_give_valid_json_with_a_reason(tmp_path):
    rows = [(f"s{i}", f"clip {i}", str(x)) for i, x in enumerate([-2.0, 0.4, 1.0, 2.6])]
    root = _manifest(tmp_path / "data", rows)
    ws = tmp_path / "ws"
    store = Store(ws / "affectbench.sqlite")
    spec = _spec(root, {"clip": "1.0"}, score_range=[-3, 3])
    rec = run_spec(spec, store)
    assert rec.metrics["Corr_answered"] is None
    assert "constant predictions" in rec.metrics["_undefined"]["Corr_answered"]
    res = CliRunner().invoke(app, ["rescore", rec.id, "--workspace", str(ws)])
    assert res.exit_code == 0, res.output
    shown = json.loads(res.output, parse_constant=lambda c: pytest.fail(f"bare {c} in rescore output"))
    assert shown["Corr_answered"] is None and "constant" in shown["_undefined"]["Corr_answered"]
    res = CliRunner().invoke(app, ["export", rec.id, "--workspace", str(ws), "--out", str(tmp_path / "exp")])
    assert res.exit_code == 0, res.output
    for path in (tmp_path / "exp").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            json.loads(line, parse_constant=lambda c, name=path.name: pytest.fail(f"bare {c} in {name}"))
    row = json.loads((tmp_path / "exp" / "runs.jsonl").read_text().splitlines()[0])
    assert row["metrics"]["Corr_answered"] is None and row["metrics"]["_undefined"]["Corr_answered"]


def test_export_of_a_run_scored_before_reasons_is_valid_json(tmp_path):
    store = Store(tmp_path / "affectbench.sqlite")
    root = _manifest(tmp_path / "data", [("a1", "fine", "positive")])
    rec = run_spec(_spec(root, {"fine": "positive"}), store)
    store.set_metrics(rec.id, {"Corr": float("nan"), "acc": 1.0})  # as an older scorer stored it
    from affectbench.report.export import export_runs

    paths = export_runs(store, [rec.id], tmp_path / "exp")
    row = json.loads(paths[0].read_text(), parse_constant=lambda c: pytest.fail(c))
    assert row["metrics"]["Corr"] is None and "rescore" in row["metrics"]["_undefined"]["Corr"]


def test_an_unknown_unread_reason_is_refused():
    from affectbench.core.types import Parsed

    with pytest.raises(ValueError, match="not one of"):
        Parsed(None, False, "x", "bogus")
    with pytest.raises(ValueError, match="read answer"):
        Parsed("joy", True, "x", "ambiguous")


def test_a_crash_while_scoring_after_inference_fails_the_run(tmp_path, monkeypatch):
    import affectbench.engine.settle as runner_mod
    from affectbench.metrics import MetricInputError

    def broken(store, rid, info, prompt=None, **kw):
        raise MetricInputError(f"run {rid}: sample 'a1' has target 'x'")

    monkeypatch.setattr(runner_mod, "score_run", broken)
    root = _manifest(tmp_path / "data", [("a1", "fine", "positive")])
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    with pytest.raises(MetricInputError):
        run_spec(_spec(root, {"fine": "positive"}), store)
    (rec,) = store.runs()
    assert rec.status == "failed" and rec.error.startswith("scoring:") and "'a1'" in rec.error
    assert store.count_predictions(rec.id) == 1  # the answers are kept
