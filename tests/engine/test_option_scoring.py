"""Score-mode runs end to end: the run's calibration and decision rule, the stored content-free prior,
and `rescore` switching the decision from stored scores (no model call). The model is the cascade
backend on a tiny random Gemma3 (real transformers forward passes); the expected values are computed
here from its scores with the formulas of Zhao et al. 2021, in probability space."""

import numpy as np
import pytest

from affectbench.core.errors import ConfigError
from affectbench.core.specs import GenerationSpec, ModelSpec
from affectbench.core.types import Sample
from affectbench.engine.runner import run_spec
from affectbench.engine.scoring import score_run
from affectbench.engine.store import Store
from affectbench.models import build_model
from affectbench.prompts import load_prompt
from tests.engine.test_runner import LABELS, manifest_spec, write_manifest

pytest.importorskip("transformers")

CORPUS = ["utterance sounds negative neutral positive Answer with one word N/A [MASK]"] * 5
GRID_CORPUS = ["utterance sounds negative neutral positive rate it -3.0 -2.0 -1.0 0.0 1.0 2.0 3.0"] * 5


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tests._tiny import tiny_gemma3_checkpoint

    return str(tiny_gemma3_checkpoint(tmp_path_factory.mktemp("gemma"), CORPUS))


def test_contextual_calibration_prior_and_rescore_switch(tiny, tmp_path):
    root = write_manifest(tmp_path / "data", 6)
    store = Store(tmp_path / "ws.sqlite")
    mspec = ModelSpec(backend="cascade", name=tiny, options={"experts": []})
    spec = manifest_spec(root, model=mspec, generation=GenerationSpec(mode="score", calibration="contextual"))
    rec = run_spec(spec, store)
    preds = store.predictions(rec.id)
    # the prior, recomputed here: the run's template on the content-free inputs, scored by the same model
    model = build_model(mspec, spec.media)
    info_prompt = load_prompt(spec.prompt, _info(rec))
    gen = spec.generation
    cf = []
    for text in ("N/A", "", "[MASK]"):
        conv = info_prompt.render(Sample(id="cf", transcript=text, target=None), _info(rec), modalities="T")
        (g,) = model.score([conv], LABELS, gen)
        cf.append(np.exp([g.scores[o] for o in LABELS]) / np.exp([g.scores[o] for o in LABELS]).sum())
    p_cf = np.mean(cf, axis=0)
    for p in preds:
        assert p.meta["calibration"] == "contextual" and p.meta["decision"] == "auto"
        assert [np.exp(p.meta["score_prior"][o]) for o in LABELS] == pytest.approx(list(p_cf), rel=1e-5)
        probs = np.exp([p.meta["scores"][o] for o in LABELS])
        q = probs / probs.sum() / p_cf
        assert p.raw == LABELS[int(np.argmax(q))]
    # the run records what it calibrated with: the content-free inputs and the prior
    cal = rec.metrics["_calibration"]
    assert cal["method"] == "contextual" and cal["inputs"]["transcripts"] == ["N/A", "", "[MASK]"]
    assert [np.exp(cal["prior"][o]) for o in LABELS] == pytest.approx(list(p_cf), rel=1e-5)
    # another rule computes from the stored scores without writing; writing it in place is refused
    m = score_run(store, rec.id, _info(rec), info_prompt, decision="argmax", write=False)
    assert m["_decision"] == "argmax"
    with pytest.raises(ConfigError, match="part of the run id"):
        score_run(store, rec.id, _info(rec), info_prompt, decision="argmax")
    assert store.run(rec.id).metrics["_decision"] == "auto"
    # the same spec with another decision rule is another run
    other = spec.model_copy(update={"generation": gen.model_copy(update={"decision": "expected"})})
    with pytest.raises(ConfigError, match="numeric"):  # expected over labels is refused, naming why
        run_spec(other, store)
    again = spec.model_copy(update={"generation": gen.model_copy(update={"decision": "argmax"})})
    rec2 = run_spec(again, store)
    assert rec2.id != rec.id and rec2.metrics["_decision"] == "argmax"


def test_calibration_and_decision_are_in_the_run_id_only_in_score_mode(tmp_path):
    root = tmp_path
    a = manifest_spec(root, generation=GenerationSpec(mode="score", calibration="none"))
    b = manifest_spec(root, generation=GenerationSpec(mode="score", calibration="contextual"))
    c = manifest_spec(root, generation=GenerationSpec(mode="score", calibration="none", decision="argmax"))
    d = manifest_spec(root, generation=GenerationSpec(mode="score", calibration="batch"))
    assert len({a.run_id, b.run_id, c.run_id, d.run_id}) == 4
    # the default rule leaves the hashed identity as it was before the rule was hashed: old ids stay
    assert "decision" not in a.identity()["generation"]
    assert c.identity()["generation"]["decision"] == "argmax"
    g1 = manifest_spec(root, generation=GenerationSpec(calibration="none"))
    g2 = manifest_spec(root, generation=GenerationSpec(calibration="length", decision="expected"))
    assert g1.run_id == g2.run_id  # generate mode reads neither


def _info(rec):
    from affectbench.engine.scoring import info_from_record

    return info_from_record(rec.metrics["_info"])


@pytest.fixture(scope="module")
def tiny_grid(tmp_path_factory):
    from tests._tiny import tiny_gemma3_checkpoint

    return str(tiny_gemma3_checkpoint(tmp_path_factory.mktemp("gemma-grid"), GRID_CORPUS))


def test_cli_rescore_switches_the_decision_on_a_score_grid(tiny_grid, tmp_path):
    """A MOSI-scale regression run in score mode: `rescore --decision argmax` turns the stored expected
    values into grid points, from the stored scores, and back with `--decision expected`."""
    import csv
    import json

    from typer.testing import CliRunner

    from affectbench.cli import app
    from affectbench.core.specs import DatasetRef, RunSpec
    from affectbench.models.options import decide

    root = tmp_path / "reg"
    root.mkdir()
    with (root / "manifest.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "transcript", "label", "split"])
        for i in range(6):
            w.writerow([f"r{i}", f"utterance {i} sounds {LABELS[i % 3]}", (i % 7) - 3.0, "test"])
    spec = RunSpec(
        dataset=DatasetRef(name="manifest", root=str(root), options={"score_range": [-3, 3], "task_name": "sentiment"}),
        model=ModelSpec(backend="cascade", name=tiny_grid, options={"experts": []}),
        media={"modalities": "T"},
        generation=GenerationSpec(mode="score", calibration="none"),
    )
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    rec = run_spec(spec, store)
    preds = {p.sample_id: p for p in store.predictions(rec.id)}
    for p in preds.values():  # the expected value itself, not a 2-decimal text read back
        probs = np.exp(list(p.meta["scores"].values()))
        want = float(np.dot(probs / probs.sum(), [float(o) for o in p.meta["scores"]]))
        assert p.value == pytest.approx(want, rel=1e-12, abs=1e-12)
        assert p.value == decide(p.meta["scores"], "expected")[1]["value"]
    before = {p.sample_id: p.value for p in store.predictions(rec.id)}
    cli = CliRunner()
    r = cli.invoke(app, ["rescore", rec.id, "--workspace", str(tmp_path / "ws"), "--decision", "argmax"])
    assert r.exit_code == 0, r.output
    shown = json.loads(r.output[r.output.index("{") :].replace("NaN", "null"))
    assert shown["_decision"] == "argmax"
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    argmax_spec = spec.model_copy(update={"generation": spec.generation.model_copy(update={"decision": "argmax"})})
    new = store.run(argmax_spec.run_id)  # another rule is another run; the original is untouched
    assert new.id != rec.id and new.status == "done" and new.env["rescored_from"] == rec.id
    assert {p.sample_id: p.value for p in store.predictions(rec.id)} == before
    assert store.run(rec.id).metrics["_decision"] == "auto"
    for p in store.predictions(new.id):
        best = max(p.meta["scores"].values())
        top = [o for o, v in p.meta["scores"].items() if v == best]
        assert p.value == (float(top[0]) if len(top) == 1 else None)  # a tie is a scoring failure, not a pick
    assert sum(p.value is not None for p in store.predictions(new.id)) >= 3
    r = cli.invoke(app, ["rescore", rec.id, "--workspace", str(tmp_path / "ws"), "--decision", "median"])
    assert r.exit_code != 0 and "median" in str(r.exception or r.output)


def test_a_refused_rescore_changes_nothing(tiny, tmp_path):
    """`rescore --decision expected` on a label run is refused before anything is written: the run
    stays done, with its metrics and predictions as they were."""
    from typer.testing import CliRunner

    from affectbench.cli import app

    root = write_manifest(tmp_path / "data", 4)
    ws = tmp_path / "ws"
    store = Store(ws / "affectbench.sqlite")
    mspec = ModelSpec(backend="cascade", name=tiny, options={"experts": []})
    rec = run_spec(manifest_spec(root, model=mspec, generation=GenerationSpec(mode="score", calibration="none")), store)
    before = (store.run(rec.id).status, store.run(rec.id).metrics, [p.value for p in store.predictions(rec.id)])
    r = CliRunner().invoke(app, ["rescore", rec.id, "--workspace", str(ws), "--decision", "expected"])
    assert r.exit_code != 0 and "numeric" in str(r.exception)
    after = Store(ws / "affectbench.sqlite")
    assert (after.run(rec.id).status, after.run(rec.id).metrics, [p.value for p in after.predictions(rec.id)]) == before
    assert [r.id for r in after.runs()] == [rec.id]


def test_batch_calibration_divides_out_the_mean_option_probability(tmp_path):
    """Zhou et al. 2024: the prior is the mean over the evaluated samples of their option
    probabilities (here one-hot scripted answers: the answer frequencies), recorded with the run."""
    root = write_manifest(tmp_path / "data", 6)
    store = Store(tmp_path / "ws.sqlite")
    table = {
        "utterance 0 ": "neutral",
        "sounds negative": "negative",
        "sounds neutral": "negative",
        "sounds positive": "positive",
    }
    mspec = ModelSpec(backend="scripted", options={"rule": "table", "answers": table, "default": "positive"})
    rec = run_spec(
        manifest_spec(root, model=mspec, generation=GenerationSpec(mode="score", calibration="batch")), store
    )
    cal = rec.metrics["_calibration"]
    assert cal["method"] == "batch" and cal["n"] == 6
    assert [np.exp(cal["prior"][o]) for o in LABELS] == pytest.approx([3 / 6, 1 / 6, 2 / 6])
    # one-hot scores: dividing out the prior cannot change an answer
    assert [p.value for p in store.predictions(rec.id)] == ["neutral", "negative", "positive"] + [
        "negative",
        "negative",
        "positive",
    ]


def test_batch_calibration_refuses_a_prior_without_an_option(tmp_path):
    root = write_manifest(tmp_path / "data", 6)
    store = Store(tmp_path / "ws.sqlite")
    mspec = ModelSpec(backend="scripted", options={"rule": "table", "answers": {"sounds": "negative"}})
    spec = manifest_spec(root, model=mspec, generation=GenerationSpec(mode="score", calibration="batch"))
    with pytest.raises(ConfigError, match="'neutral'"):
        run_spec(spec, store)
    assert store.run(spec.run_id).status == "failed" and "neutral" in store.run(spec.run_id).error


def test_a_prior_without_an_option_refuses_naming_it():
    from affectbench.models.options import check_prior, content_free_prior

    prior = content_free_prior([{"negative": -np.inf, "positive": -0.1}, {"negative": -np.inf, "positive": -2.0}])
    with pytest.raises(ConfigError, match="'negative'"):
        check_prior(prior, "contextual calibration")
    with pytest.raises(ConfigError, match="'positive'"):
        check_prior({"positive": float("nan"), "negative": -0.5}, "batch calibration")
