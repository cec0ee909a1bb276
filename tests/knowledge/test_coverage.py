"""What reached the prompt: per-source fair shares, trimming at sentence ends, coverage per prediction,
in the run summary and in the report; the drop policy; the fine-tune coverage gate."""

from __future__ import annotations

import json

import pytest

from affectbench.config import plan_experiment
from affectbench.core.errors import AffectbenchError, ConfigError
from affectbench.engine.runner import Runner
from affectbench.engine.store import Store
from affectbench.knowledge.assembly import (
    TRIM_MARKER,
    SampleKnowledge,
    SourcePiece,
    assemble,
    check_coverage,
    fair_shares,
)
from tests.finetune._fixtures import dataset_ref, write_corpus

LONG = " ".join(f"Sentence number {i} describes a calm voice." for i in range(80))  # ~3.5k characters


def test_fair_shares_are_max_min_fair():
    assert fair_shares([100, 2000, 3000], 1500) == [100, 700, 700]  # the short source's leftover is shared
    assert fair_shares([10, 20], 1500) == [10, 20]
    assert fair_shares([900, 900, 900], 1500) == [500, 500, 500]
    assert sum(fair_shares([5000, 1, 777, 3000], 1234)) <= 1234


def test_assemble_cuts_each_source_at_a_sentence_end_and_says_so():
    block, stats = assemble([("a", "Short cue."), ("b", LONG)], 600)
    assert len(block) <= 600
    first, second = block.split("\n", 1)
    assert first == "[source 1/2: a] Short cue."
    assert second.startswith("[source 2/2: b] Sentence number 0")
    body = second.rsplit("\n", 1)[0]
    assert body.endswith("voice.")  # a whole sentence, not a cut word
    assert second.endswith(TRIM_MARKER)
    assert stats[0] == (len("Short cue."), False) and stats[1][1] is True
    # the last source keeps its fair share: no longer "loses most of its last source"
    block, stats = assemble([("a", LONG), ("b", LONG)], 1500)
    assert abs(stats[0][0] - stats[1][0]) < 60 and min(s[0] for s in stats) > 600


EXPERIMENT = """
workspace: ws
defaults:
  dataset: DATASET
  split: test
  prompt: sentiment_polarity
  media: {modalities: T}
exec: {batch_size: 1}
runs:
  - name: long
    kind: knowledge
    model: {backend: scripted, options: {rule: constant, default: LONGTEXT}}
    prompt: describe
  - name: short
    kind: knowledge
    model: {backend: scripted, options: {rule: constant, default: "cue: calm"}}
    prompt: describe
  - name: partial           # fails on the samples that mention "great"
    kind: knowledge
    model: {backend: scripted, options: {rule: constant, default: "cue: tense", fail_on: great}}
    prompt: describe
  - name: refuser
    kind: knowledge
    model: {backend: scripted, options: {rule: constant, default: "I'm sorry, I cannot help with that."}}
    prompt: describe
  - name: leaky
    kind: knowledge
    model: {backend: scripted, options: {rule: table, default: "The answer is negative.", answers: {great: "The answer is positive."}}}
    prompt: describe
  - name: zeroshot
    model: &m {backend: scripted, options: {rule: constant, default: negative}}
  - name: gkp_all
    model: *m
    knowledge: [long, short, partial, refuser]
  - name: gkp_leaky_drop
    model: *m
    knowledge: [leaky, short]
    knowledge_policy: drop
"""


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cov")
    root = write_corpus(tmp / "data", {"test": 8})
    text = EXPERIMENT.replace("DATASET", json.dumps(dataset_ref(root))).replace("LONGTEXT", json.dumps(LONG))
    plan = plan_experiment(text, base_dir=tmp)
    store = Store(plan.workspace / "affectbench.sqlite")
    runner = Runner(store, plan.exec, progress=False)
    try:
        for spec in plan.runs:
            runner.run(spec)
    finally:
        runner.close()
    return plan, store, tmp


def test_each_prediction_records_sources_chars_and_trimming(ran):
    plan, store, _ = ran
    run = store.run(plan.names["gkp_all"][0])
    long_id, short_id, partial_id, refuser_id = run.run_spec.knowledge
    preds = store.predictions(run.id)
    assert len(preds) == 8
    n_great = 0
    for p in preds:
        k = p.meta["knowledge"]["sources"]
        assert k[long_id]["status"] == "ok" and k[long_id]["trimmed"] is True
        assert k[long_id]["raw_chars"] == len(LONG) and k[long_id]["chars"] < len(LONG)
        assert k[short_id] == {
            "status": "ok",
            "chars": len("cue: calm"),
            "raw_chars": len("cue: calm"),
            "trimmed": False,
        }
        assert k[refuser_id]["status"] == "refusal" and k[refuser_id]["chars"] == 0  # a refusal is not knowledge
        assert k[partial_id]["status"] in ("ok", "error")
        n_great += k[partial_id]["status"] == "error"
        assert p.meta["knowledge"]["chars"] <= 1500  # the template's knowledge_budget
    rows = [json.loads(line) for line in (plan.workspace.parent / "data" / "manifest.jsonl").read_text().splitlines()]
    want_great = sum("great" in r["transcript"] for r in rows if r["split"] == "test")
    assert n_great == want_great > 0
    cov = run.metrics["_knowledge"]
    assert cov[long_id]["coverage"] == 1.0 and cov[long_id]["trimmed_rate"] == 1.0
    assert cov[refuser_id]["coverage"] == 0.0 and cov[refuser_id]["refusal_rate"] == 1.0
    assert cov[partial_id]["coverage"] == round(1 - want_great / 8, 4)
    assert cov[partial_id]["error_rate"] == round(want_great / 8, 4)
    from affectbench.engine.gather import knowledge_metrics

    assert knowledge_metrics(store, run.id)["_knowledge"] == cov  # what `affectbench rescore` recomputes


def test_drop_policy_leaves_out_only_the_source_that_states_the_answer(ran):
    plan, store, _ = ran
    run = store.run(plan.names["gkp_leaky_drop"][0])
    assert run.run_spec.knowledge_policy == "drop"
    leaky_id, short_id = run.run_spec.knowledge
    leaky_texts = store.knowledge(leaky_id)
    statuses = []
    for p in store.predictions(run.id):
        k = p.meta["knowledge"]["sources"]
        assert k[short_id]["status"] == "ok"
        said = "positive" if "positive" in leaky_texts[p.sample_id] else "negative"
        assert (k[leaky_id]["status"] == "dropped") == (said == p.target)  # dropped exactly where it is the gold
        statuses.append(k[leaky_id]["status"])
    assert {"dropped", "ok"} == set(statuses)


def test_report_shows_coverage_next_to_the_gain(ran):
    from affectbench.report import build_report

    plan, store, tmp = ran
    out = build_report(store, tmp / "report", formats=("md", "html"), n_boot=50)
    md = out["md"].read_text()
    assert "## Knowledge: what reached the prompt" in md
    run = store.run(plan.names["gkp_all"][0])
    long_id, _, _, refuser_id = run.run_spec.knowledge
    line = next(row for row in md.splitlines() if f"({refuser_id})" in row)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[4] == "0%" and cells[8] == "100%"  # coverage 0, refusal rate 100%
    long_line = next(row for row in md.splitlines() if f"({long_id})" in row)
    lcells = [c.strip() for c in long_line.strip("|").split("|")]
    assert lcells[4] == "100%" and lcells[5] == "100%"  # covered, and trimmed every time
    assert lcells[11] != "–"  # the gain over zero-shot sits on the same row
    assert "Knowledge: what reached the prompt" in out["html"].read_text()


def test_finetune_gate_refuses_low_coverage():
    ok = SampleKnowledge("x", [SourcePiece("k1", "ok", 1, 1)])
    missing = SampleKnowledge(None, [SourcePiece("k1", "missing")])
    knowledge = {f"s{i}": ok for i in range(19)} | {"s19": missing}
    assert check_coverage(knowledge, [f"s{i}" for i in range(20)], ["k1"])["k1"]["coverage"] == 0.95
    with pytest.raises(AffectbenchError, match="k1: 90%"):
        check_coverage(knowledge | {"s18": missing}, [f"s{i}" for i in range(20)], ["k1"])


def test_knowledge_recipe_inherits_media_and_system_prompt_and_refuses_foreign_modalities(tmp_path):
    base = """
defaults:
  dataset: {name: demo}
  media: {modalities: TA, max_frames: 4, fps: 1.0}
  generation: {system_prompt: "You are careful."}
runs:
  - name: self
    kind: knowledge
    model: self
    prompt: describe
    generation: {max_new_tokens: 160}
    MEDIA
  - name: gkp
    model: {backend: scripted}
    knowledge: [self]
"""
    plan = plan_experiment(base.replace("MEDIA", ""), base_dir=tmp_path)
    (k,) = [r for r in plan.runs if r.kind == "knowledge"]
    (e,) = [r for r in plan.runs if r.kind == "eval"]
    assert k.media == e.media and k.generation.system_prompt == "You are careful."
    assert k.generation.max_new_tokens == 160  # its own decoding, recorded in its spec
    plan = plan_experiment(base.replace("MEDIA", "media: {modalities: AV}"), base_dir=tmp_path)
    (k,) = [r for r in plan.runs if r.kind == "knowledge"]
    assert k.media.modalities == "A"  # intersected with the eval's TA
    with pytest.raises(ConfigError, match="brings in|would bring in"):
        plan_experiment(base.replace("MEDIA", "media: {modalities: V}"), base_dir=tmp_path)


def test_score_mode_with_contextual_calibration_renders_content_free_knowledge(tmp_path):
    """The content-free prior (Zhao et al. 2021) renders knowledge slots too; regression for a crash."""
    root = write_corpus(tmp_path / "data", {"test": 4})
    text = """
workspace: ws
defaults: {dataset: DATASET, split: test, prompt: sentiment_polarity, media: {modalities: T}}
runs:
  - name: short
    kind: knowledge
    model: {backend: scripted, options: {rule: constant, default: "cue: calm"}}
    prompt: describe
  - name: gkp
    model: {backend: scripted, options: {rule: constant, default: negative, other_logprob: -3.0}}
    generation: {mode: score, calibration: contextual}
    knowledge: [short]
""".replace("DATASET", json.dumps(dataset_ref(root)))
    plan = plan_experiment(text, base_dir=tmp_path)
    store = Store(plan.workspace / "affectbench.sqlite")
    runner = Runner(store, plan.exec, progress=False)
    try:
        for spec in plan.runs:
            runner.run(spec)
    finally:
        runner.close()
    run = store.run(plan.names["gkp"][0])
    assert run.status == "done" and run.metrics["_knowledge"][run.run_spec.knowledge[0]]["coverage"] == 1.0
