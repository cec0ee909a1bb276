"""Every packaged experiment file plans: strict keys, references resolve, expected entries exist."""

from __future__ import annotations

from pathlib import Path

import pytest

import affectbench
from affectbench.config import load_experiment

EXP_DIR = Path(affectbench.__file__).parent / "experiments"
FILES = sorted(p for p in EXP_DIR.glob("*.yaml") if not p.stem.startswith("zoo-"))  # zoo: tests/models


def test_there_is_an_ablation_and_a_hybrid_per_family():
    names = {f.stem for f in FILES}
    for fam in ("mosi", "sims", "meld", "iemocap", "mustard", "urfunny"):
        assert f"gkp-{fam}" in names and f"hybrid-{fam}" in names
    assert "demo" in names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_experiment_plans(path):
    plan = load_experiment(path)
    assert "zeroshot" in plan.names
    kinds = {r.kind for r in plan.runs}
    assert "eval" in kinds and "knowledge" in kinds
    order = [r.run_id for r in plan.runs]
    for r in plan.runs:  # dependencies run first
        for dep in [*r.knowledge, *([r.model.adapter] if r.model.adapter else [])]:
            assert order.index(dep) < order.index(r.run_id)
    if path.stem.startswith("hybrid") or path.stem == "demo":
        ft = [r for r in plan.runs if r.kind == "finetune"]
        assert ft and all(r.model.adapter is None for r in ft)
        evals_with_adapter = [r for r in plan.runs if r.kind == "eval" and r.model.adapter]
        assert {r.model.adapter for r in evals_with_adapter} <= {r.run_id for r in ft}


@pytest.mark.parametrize("path", [f for f in FILES if f.stem.startswith("gkp-")], ids=lambda p: p.stem)
def test_gkp_ablations_use_modality_derivation_masking_and_plain_experts(path):
    plan = load_experiment(path)
    runs = {r.run_id: r for r in plan.runs}
    for rid in plan.names["gkp_experts"]:
        e = runs[rid]
        (kid,) = e.knowledge
        assert runs[kid].media.modalities == e.media.modalities  # T-only rows get T-only knowledge
        assert runs[kid].model.backend == "experts" and runs[kid].model.name == ""  # no default model leaks in
    assert {runs[r].media.modalities for r in plan.names["gkp_experts"]} == {"T", "TAV"}
    (masked,) = plan.names["gkp_all_masked"]
    assert runs[masked].knowledge_policy == "mask" and len(runs[masked].knowledge) == 3
    for rid in plan.names["self"]:  # the evaluated model describes with the eval's media budgets and system prompt
        parent = next(r for r in plan.runs if r.kind == "eval" and rid in r.knowledge)
        assert runs[rid].media == parent.media
        assert runs[rid].generation.system_prompt == parent.generation.system_prompt
