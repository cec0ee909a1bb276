"""The architecture study on a scripted fixture matrix: several families × datasets with modality
ablations; per-attribute effects over models with intervals, a too-few-models message, and a
modality-ablation table per family in the report."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from affectbench.analysis.ablation import modality_ablation
from affectbench.analysis.architecture import ablation_by_family, architecture_study
from affectbench.analysis.correlate import performance_rows
from affectbench.analysis.runs import eval_runs, higher_is_better, info_from_run, label
from affectbench.engine.store import Store
from affectbench.metrics import primary_metric
from affectbench.report import build_report
from tests.report._matrix import add_run, synth_preds, targets

# hub ids (matched to the packaged model cards) → the modalities each takes
ZOO = {
    "Qwen/Qwen2.5-Omni-7B": "TAV",
    "Qwen/Qwen2.5-Omni-3B": "TAV",
    "Qwen/Qwen3-Omni-30B-A3B-Instruct": "TAV",
    "google/gemma-3n-E4B-it": "TAV",
    "google/gemma-3n-E2B-it": "TAV",
    "microsoft/Phi-4-multimodal-instruct": "TAV",
    "Qwen/Qwen2-Audio-7B-Instruct": "TA",
    "Qwen/Qwen2.5-VL-7B-Instruct": "TV",
}
TIME_INTERLEAVED = {"Qwen/Qwen2.5-Omni-7B", "Qwen/Qwen2.5-Omni-3B", "Qwen/Qwen3-Omni-30B-A3B-Instruct"}


def _p_correct(name: str, mods: str) -> float:
    """Scripted: time-interleaved models are better; each extra modality helps a little."""
    return 0.55 + (0.2 if name in TIME_INTERLEAVED else 0.0) + 0.04 * (len(mods) - 1)


def _subsets(mods: str) -> list[str]:
    return ["".join(c) for k in range(1, len(mods) + 1) for c in itertools.combinations(mods, k) if "T" in c]


@pytest.fixture(scope="module")
def zoo_store(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("zoo") / "affectbench.db")
    for d_i, ds in enumerate(("mosi", "meld")):
        tg = targets(ds, 40, seed=20 + d_i)
        for m_i, (name, mods) in enumerate(ZOO.items()):
            for s_i, sub in enumerate(_subsets(mods)):
                preds = synth_preds(ds, tg, _p_correct(name, sub), seed=1000 * d_i + 10 * m_i + s_i, p_unparsed=0.0)
                add_run(store, ds, preds, name=name, modalities=sub)
    return store


def _reference_model_scores(store) -> dict[str, float]:
    """Independent of the study: per dataset, each model's full-modality run metric (oriented) minus the
    dataset mean over those runs; then the mean over datasets."""
    by_ds: dict[str, dict[str, float]] = {}
    for run in eval_runs(store):
        if run.run_spec.media.modalities != ZOO[run.run_spec.model.name]:
            continue
        info = info_from_run(run)
        name, _ = primary_metric(info)
        v = run.metrics[name]
        by_ds.setdefault(info.corpus, {})[label(run, ("model",))] = v if higher_is_better(name) else -v
    out: dict[str, list[float]] = {}
    for scores in by_ds.values():
        mean = np.mean(list(scores.values()))
        for m, s in scores.items():
            out.setdefault(m, []).append(s - mean)
    return {m: float(np.mean(v)) for m, v in out.items()}


def test_per_attribute_effects_over_models_with_intervals(zoo_store):
    study = architecture_study(performance_rows(zoo_store), n_boot=300)
    assert study.too_few is None
    ref = _reference_model_scores(zoo_store)
    assert study.models == pytest.approx(ref)
    eff = {e.attribute: e for e in study.effects}
    ti = eff["time_interleaved"]
    with_ = [ref[label] for label in ref if any(label.startswith(c) for c in ("Qwen2.5-Omni", "Qwen3-Omni"))]
    without = [v for k, v in ref.items() if k not in {"Qwen2.5-Omni-7B", "Qwen2.5-Omni-3B", "Qwen3-Omni-30B-A3B"}]
    assert ti.kind == "difference" and ti.levels == "3 with / 5 without"
    assert ti.effect == pytest.approx(np.mean(with_) - np.mean(without))
    assert ti.lo <= ti.effect <= ti.hi and ti.lo > 0  # the scripted advantage is found
    assert eff["llm_params_b"].kind == "spearman" and eff["llm_params_b"].n_models == 6  # Gemma 3n: null
    assert "has_audio_encoder" in study.skipped  # only Qwen2.5-VL lacks one: a level needs two models


def test_too_few_models_is_said_not_estimated(tmp_path):
    store = Store(tmp_path / "affectbench.db")
    tg = targets("mosi", 20)
    for i, name in enumerate(("Qwen/Qwen2.5-Omni-7B", "google/gemma-3n-E4B-it")):
        add_run(store, "mosi", synth_preds("mosi", tg, 0.6 + 0.2 * i, seed=i), name=name)
    study = architecture_study(performance_rows(store), n_boot=50)
    assert study.too_few and "2 with scored zero-shot runs" in study.too_few and not study.effects
    html = build_report(store, tmp_path / "r", formats=["html"], n_boot=50)["html"].read_text()
    assert "too few models to estimate attribute effects" in html


def test_modality_ablation_table_per_family_in_the_report(zoo_store, tmp_path):
    marginals, _ = modality_ablation(zoo_store, n_boot=100)
    fams = ablation_by_family(marginals)
    assert set(fams) == {"Qwen2.5-Omni", "Qwen3-Omni", "Gemma 3n", "Phi-4-multimodal", "Qwen2-Audio", "Qwen2.5-VL"}
    assert {m.modality for m in fams["Qwen2-Audio"]} == {"A"}  # T→TA only
    assert {m.modality for m in fams["Gemma 3n"]} == {"A", "V"}
    html = build_report(zoo_store, tmp_path / "r", formats=["html"], n_boot=100)["html"].read_text()
    for fam in fams:
        assert f"family: {fam}" in html
    assert "architecture attributes (per model)" in html and "time_interleaved" in html
