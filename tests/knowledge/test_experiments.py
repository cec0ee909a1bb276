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
