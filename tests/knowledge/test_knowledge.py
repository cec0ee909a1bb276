"""Knowledge runs: leak flags, masking, quality metrics, reuse on rerun, the source table."""

from __future__ import annotations

from pathlib import Path

import pytest

from affectbench.config import plan_experiment
from affectbench.core.types import DatasetInfo, TaskType
from affectbench.engine.gather import knowledge_quality
from affectbench.engine.runner import Runner
from affectbench.engine.store import Prediction, Store
from affectbench.knowledge.leaks import leak_kind, leaks
from affectbench.knowledge.masking import apply_leak_policy, mask_labels
from affectbench.models.scripted import ScriptedModel
from affectbench.report.knowledge import source_markdown, source_table
from tests.finetune._fixtures import dataset_ref, write_corpus

SENT = DatasetInfo("s", TaskType.REGRESSION, score_range=(-3.0, 3.0), metric_suite="mosi", task_name="sentiment")
EMO = DatasetInfo("e", TaskType.CLASSIFICATION, labels=("joy", "anger", "sadness"), task_name="emotion")


MELD = DatasetInfo(
    "meld",
    TaskType.CLASSIFICATION,
    labels=("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"),
    task_name="emotion",
)


def test_stating_the_answer_is_told_apart_from_naming_an_evidence_cue():
    # states the answer: a verdict that is the gold label, a synonym the emotion template lists, or the polarity
    assert leak_kind("Clearly neutral.", 0.0, SENT) == "answer"
    assert leak_kind("She shows JOY.", "joy", EMO) == "answer"
    assert leak_kind("Overall the speaker is happy.", "joy", MELD) == "answer"  # emotion.yaml: joy <- happy
    assert leak_kind("She is joyful, overjoyed.", "joy", EMO) == "answer"  # joyful is a listed synonym
    assert leak_kind("整体情感是积极的。", 0.6, SENT) == "answer"  # sentiment_polarity.yaml: positive <- 积极
    # names an evidence cue: the experts' own correct cues are not leaks
    assert leak_kind("face: happy 0.71, neutral 0.20 over 8 frames", "joy", MELD) == "cue"
    assert leak_kind("face: happy 0.71, neutral 0.20 over 8 frames", "neutral", MELD) == "cue"  # 0.71 ends no clause
    assert leak_kind("The voice sounds positive and warm.", 1.2, SENT) == "cue"
    assert leak_kind('heard: "fine"; words: neutral (vader +0.62)', 1.0, SENT) == "cue"  # the score's sign
    assert leak_kind("words: neutral (HowNet pos 3, neg 0)", 0.8, SENT) == "cue"
    assert leaks("Overall the speaker is happy.", "joy", MELD) and not leaks("face: happy 0.71", "joy", MELD)
    # not the gold answer, negated, or no text: nothing
    assert leak_kind("Clearly negative.", 1.2, SENT) is None
    assert leak_kind("vader -0.40", 1.2, SENT) is None
    assert leak_kind("She is not happy at all.", "joy", MELD) is None
    assert leak_kind("", "joy", EMO) is None and leak_kind(None, "joy", EMO) is None


def test_masking_blanks_every_answer_word_synonym_and_polarity_score_not_only_the_gold_one():
    text = "Looks positive, though the words are negative; not neutral. words: positive (vader +0.62)"
    masked = mask_labels(text, SENT)
    for word in ("positive", "negative", "neutral", "0.62"):
        assert word not in masked
    assert masked.count("[…]") == 5
    assert mask_labels("HowNet pos 3, neg 0; 积极", SENT) == "HowNet […]; […]"
    # FER's "happy" on MELD's joy and other listed synonyms go, whatever the gold label
    assert (
        mask_labels("face: happy 0.71; the tone is furious, Grossed-Out", MELD)
        == "face: […] 0.71; the tone is […], […]"
    )
    assert mask_labels("Smiling and laughing.", MELD) == "Smiling and laughing."  # paraphrases are not in the lists
    texts = {"a": "anger in the face", "b": "calm voice", "c": "Overall: anger."}
    assert apply_leak_policy(texts, {"a": "anger", "b": "joy", "c": "anger"}, EMO, "drop") == {
        "a": "anger in the face",  # a cue: kept
        "b": "calm voice",
    }
    assert apply_leak_policy(texts, {}, EMO, "mask")["a"] == "[…] in the face"
    with pytest.raises(ValueError):
        apply_leak_policy(texts, {}, EMO, "hide")


def test_quality_metrics_and_per_sample_flags(tmp_path):
    from affectbench.core.specs import RunSpec

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
            Prediction("6", "The speaker is angry.", None, True, target="anger"),
            Prediction("5", None, None, False, target="anger", error="boom"),
        ],
    )
    m = knowledge_quality(store, rid, EMO)
    assert m["_n"] == 6 and m["_errors"] == 1
    assert m["empty_rate"] == 0.2 and m["refusal_rate"] == 0.2
    assert m["leak_rate"] == 0.2 and m["cue_rate"] == 0.2  # "angry" states anger; "face shows joy" is a cue
    kinds = {
        p.sample_id: (p.meta.get("leak"), p.meta.get("leak_kind")) for p in store.predictions(rid) if p.error is None
    }
    assert kinds == {
        "1": (False, "cue"),
        "2": (False, None),
        "3": (False, None),
        "4": (False, None),
        "6": (True, "answer"),
    }


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


@pytest.mark.parametrize(
    "text",
    [
        "Overall JOY; face: Happy 0.71, neutral 0.20; the tone is grossed-out and FURIOUS, no_emotion at all.",
        "The speaker sounds excited_and amused. words: sad (vader -0.44). Looks terrified.",
        "整体情感是积极的；用词负面。 HowNet pos 3, neg 0; words: positive (vader +0.62), sentiment score: -1.5",
    ],
)
@pytest.mark.parametrize("info", [MELD, SENT, EMO], ids=lambda i: i.corpus)
def test_mask_leaves_nothing_the_parsers_matcher_can_read_as_an_answer(text, info):
    from affectbench.knowledge.leaks import answer_matcher
    from affectbench.prompts.parsing import fold

    masked = mask_labels(text, info)
    matcher = answer_matcher(info)  # the parser's own LabelMatcher with the template's synonyms
    assert matcher.pattern.search(fold(masked)) is None
    for label in info.labels or ("positive", "negative", "neutral"):
        target = {"positive": 1.0, "negative": -1.0, "neutral": 0.0}.get(label, label) if not info.labels else label
        assert leak_kind(masked, target, info) is None
