"""Knowledge runs: leak flags, masking, quality metrics, reuse on rerun, the source table."""

from __future__ import annotations

from pathlib import Path

import pytest

from affectbench.config import plan_experiment
from affectbench.knowledge import (
    apply_leak_policy,
    knowledge_quality,
    leaks,
    mask_labels,
    source_markdown,
    source_table,
)
from affectbench.models.scripted import ScriptedModel
from affectbench.runner import Runner
from affectbench.store import Prediction, Store
from affectbench.types import DatasetInfo, TaskType
from tests.finetune._fixtures import dataset_ref, write_corpus

SENT = DatasetInfo("s", TaskType.REGRESSION, score_range=(-3.0, 3.0), metric_suite="mosi", task_name="sentiment")
EMO = DatasetInfo("e", TaskType.CLASSIFICATION, labels=("joy", "anger", "sadness"), task_name="emotion")


def test_leak_detection_is_gold_specific_and_word_bounded():
    assert leaks("The voice sounds positive and warm.", 1.2, SENT)
    assert not leaks("The voice sounds positive and warm.", -1.2, SENT)  # names the wrong polarity: no leak
    assert leaks("Clearly neutral.", 0.0, SENT)
    assert leaks("She shows JOY.", "joy", EMO)
    assert not leaks("She is joyful, overjoyed.", "joy", EMO)  # not the label word itself
    assert not leaks("", "joy", EMO) and not leaks(None, "joy", EMO)


def test_masking_blanks_every_answer_word_not_only_the_gold_one():
    text = "Looks positive, though the words are negative; not neutral."
    masked = mask_labels(text, SENT)
    assert "positive" not in masked and "negative" not in masked and "neutral" not in masked
    assert masked.count("[…]") == 3
    texts = {"a": "anger in the face", "b": "calm voice"}
    assert apply_leak_policy(texts, {"a": "anger", "b": "joy"}, EMO, "drop") == {"b": "calm voice"}
    assert apply_leak_policy(texts, {}, EMO, "mask")["a"] == "[…] in the face"
    with pytest.raises(ValueError):
        apply_leak_policy(texts, {}, EMO, "hide")


def test_quality_metrics_and_per_sample_flags(tmp_path):
    from affectbench.specs import RunSpec

    store = Store(tmp_path / "db.sqlite")
    spec = RunSpec(kind="knowledge", dataset={"name": "x"}, model={"backend": "scripted"})
    store.open_run(spec)
    rid = spec.run_id
    store.add_predictions(
        rid,
        [
            Prediction("1", "The face shows joy.", None, True, target="joy"),
            Prediction("2", "I'm sorry, I cannot help with that.", None, False, target="joy"),
            Prediction("3", "", None, False, target="anger"),
            Prediction("4", "Tense, loud voice.", None, True, target="anger"),
            Prediction("5", None, None, False, target="anger", error="boom"),
        ],
    )
    m = knowledge_quality(store, rid, EMO)
    assert m["_n"] == 5 and m["_errors"] == 1
    assert m["empty_rate"] == 0.25 and m["refusal_rate"] == 0.25 and m["leak_rate"] == 0.25
    flags = {p.sample_id: p.meta.get("leak") for p in store.predictions(rid) if p.error is None}
    assert flags == {"1": True, "2": False, "3": False, "4": False}


EXPERIMENT = """
workspace: ws
defaults:
  dataset: DATASET
  split: test
  prompt: sentiment_polarity
  media: {modalities: T}
runs:
  - name: self
    kind: knowledge
    model: self
    prompt: describe
  - name: generator
    kind: knowledge
    model: {backend: scripted, options: {rule: table, default: "cue: calm", answers: {great: "cue: cheerful", wonderful: "cue: cheerful", happy: "cue: cheerful", love: "cue: cheerful", excellent: "cue: cheerful", nice: "cue: cheerful"}}}
    prompt: describe
  - name: leaky
    kind: knowledge
    model: {backend: scripted, options: {rule: table, default: "sounds negative", answers: {great: "sounds positive", wonderful: "sounds positive", happy: "sounds positive", love: "sounds positive", excellent: "sounds positive", nice: "sounds positive"}}}
    prompt: describe
  - name: zeroshot
    model: &m {backend: scripted, options: {rule: table, default: negative, answers: {cheerful: positive, "sounds positive": positive, "This is great": positive}}}
  - name: gkp_self
    model: *m
    knowledge: [self]
  - name: gkp_generator
    model: *m
    knowledge: [generator]
  - name: gkp_leaky
    model: *m
    knowledge: [leaky]
  - name: gkp_all
    model: *m
    knowledge: [self, generator]
"""


@pytest.fixture
def experiment(tmp_path):
    root = write_corpus(tmp_path / "data", {"test": 24})
    import json

    text = EXPERIMENT.replace("DATASET", json.dumps(dataset_ref(root)))
    return plan_experiment(text, base_dir=tmp_path)


def _run_all(plan, store, monkeypatch) -> int:
    calls = [0]
    orig = ScriptedModel.generate

    def counting(self, batch, gen):
        calls[0] += len(batch)
        return orig(self, batch, gen)

    monkeypatch.setattr(ScriptedModel, "generate", counting)
    runner = Runner(store, plan.exec, progress=False)
    try:
        for spec in plan.runs:
            runner.run(spec)
    finally:
        runner.close()
    return calls[0]


def test_sources_table_and_rerun_reuses_stored_knowledge(experiment, monkeypatch):
    plan = experiment
    store = Store(Path(plan.workspace) / "affectbench.sqlite")
    first = _run_all(plan, store, monkeypatch)
    assert first > 0
    # knowledge runs: one per source (self is derived for the eval model), generated once
    know = {r.id for r in store.runs("knowledge")}
    assert len(know) == 3
    assert _run_all(plan, store, monkeypatch) == 0  # rerun: nothing generated again

    rows = source_table(store, plan.names, baseline="zeroshot", n_boot=200)
    by_entry = {r.label.split(":")[0]: r for r in rows}
    assert set(by_entry) == {"gkp_self", "gkp_generator", "gkp_leaky", "gkp_all"}
    gen = by_entry["gkp_generator"]
    assert gen.value == 1.0 and gen.baseline_value < 1.0 and gen.lo > 0  # the interval excludes zero
    assert by_entry["gkp_all"].value == 1.0
    md = source_markdown(rows)
    assert "gkp_generator" in md and "95% CI" in md

    leaky = store.run(plan.names["gkp_leaky"][0]).run_spec.knowledge[0]
    assert store.run(leaky).metrics["leak_rate"] == 1.0
    assert store.run(plan.names["gkp_generator"][0]).run_spec.knowledge[0] != leaky
    # with leaked samples excluded nothing is left to credit the leaky source with
    with pytest.raises(Exception, match="leaked knowledge is excluded"):
        source_table(store, plan.names, entries=["gkp_leaky"], exclude_leaked=True, n_boot=50)
    clean = source_table(store, plan.names, entries=["gkp_generator"], exclude_leaked=True, n_boot=50)
    assert clean[0].n == 24 and "leaks excluded" in clean[0].label
