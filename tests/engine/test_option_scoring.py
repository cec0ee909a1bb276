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
    # rescore with another rule works from the stored scores; unknown rules are refused
    m = score_run(store, rec.id, _info(rec), info_prompt, decision="argmax")
    assert m["_decision"] == "argmax"
    # the same run asked for with another decision rule is rescored from the store, not rerun
    other = spec.model_copy(update={"generation": gen.model_copy(update={"decision": "expected"})})
    with pytest.raises(ConfigError, match="numeric"):  # expected over labels is refused, naming why
        run_spec(other, store)
    again = spec.model_copy(update={"generation": gen.model_copy(update={"decision": "argmax"})})
    rec2 = run_spec(again, store)
    assert rec2.id == rec.id and rec2.metrics["_decision"] == "argmax"


def test_calibration_is_in_the_run_id_only_in_score_mode_and_decision_never(tmp_path):
    root = tmp_path
    a = manifest_spec(root, generation=GenerationSpec(mode="score", calibration="none"))
    b = manifest_spec(root, generation=GenerationSpec(mode="score", calibration="contextual"))
    c = manifest_spec(root, generation=GenerationSpec(mode="score", calibration="none", decision="argmax"))
    assert a.run_id != b.run_id and a.run_id == c.run_id
    g1 = manifest_spec(root, generation=GenerationSpec(calibration="none"))
    g2 = manifest_spec(root, generation=GenerationSpec(calibration="length"))
    assert g1.run_id == g2.run_id


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
    for p in preds.values():  # expected value over the grid, 2 decimals, parsed as the score
        assert p.value == pytest.approx(float(decide(p.meta["scores"], "expected")[0]))
    cli = CliRunner()
    r = cli.invoke(app, ["rescore", rec.id, "--workspace", str(tmp_path / "ws"), "--decision", "argmax"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.replace("NaN", "null"))["_decision"] == "argmax"
    for p in store.predictions(rec.id):
        best = max(p.meta["scores"].values())
        top = [o for o, v in p.meta["scores"].items() if v == best]
        assert p.value == (float(top[0]) if len(top) == 1 else None)  # a tie is a scoring failure, not a pick
    assert sum(p.value is not None for p in store.predictions(rec.id)) >= 3
    r = cli.invoke(app, ["rescore", rec.id, "--workspace", str(tmp_path / "ws"), "--decision", "median"])
    assert r.exit_code != 0 and "median" in str(r.exception or r.output)
