import pytest

from affectbench.analysis.ablation import modality_ablation
from affectbench.engine.store import Store
from tests.report._matrix import add_run, correct_pattern_preds

# correct answers out of 20 per modality setting; MOSI's primary metric (Non0_acc_2) is then k/20
CORRECT = {"T": 10, "A": 6, "V": 4, "TA": 12, "TV": 14, "AV": 8, "TAV": 18}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store(tmp_path_factory.mktemp("abl") / "affectbench.db")
    for mods, k in CORRECT.items():
        add_run(s, "mosi", correct_pattern_preds(20, k), modalities=mods)
    # a second model with only T and TA: A's contribution is one pair
    for mods, k in {"T": 10, "TA": 15}.items():
        add_run(s, "mosi", correct_pattern_preds(20, k), name="Qwen/Qwen2.5-Omni-3B", modalities=mods)
    # a run of another model with a single setting forms no ablation group
    add_run(s, "mosi", correct_pattern_preds(20, 5), name="gemma-3-270m")
    return s


def test_marginal_contribution_known_answer(store):
    rows, scores = modality_ablation(store, n_boot=200, by=("model",))
    by = {(r.model, r.modality): r for r in rows}
    a7 = by[("Qwen2.5-Omni-7B", "A")]
    # A: (TA - T) + (AV - V) + (TAV - TV) = (12-10) + (8-4) + (18-14) = 10 -> mean 10/3 over 20 samples
    assert a7.contribution == pytest.approx(10 / 3 / 20)
    assert set(a7.pairs) == {"T→TA", "TV→TAV", "V→AV"}
    # T: (TA-A) + (TV-V) + (TAV-AV) = 6 + 10 + 10 = 26
    assert by[("Qwen2.5-Omni-7B", "T")].contribution == pytest.approx(26 / 3 / 20)
    # V: (TV-T) + (AV-A) + (TAV-TA) = 4 + 2 + 6 = 12
    assert by[("Qwen2.5-Omni-7B", "V")].contribution == pytest.approx(12 / 3 / 20)
    for r in rows:
        assert r.lo <= r.contribution <= r.hi and r.n == 20 and r.metric == "Non0_acc_2"
    a3 = by[("Qwen2.5-Omni-3B", "A")]
    assert a3.contribution == pytest.approx(0.25) and a3.pairs == ["T→TA"]
    assert ("Qwen2.5-Omni-3B", "V") not in by
    assert not any(r.model.startswith("Cascade") for r in rows)
    vals = {(s.model, s.modalities): s.value for s in scores}
    assert vals[("Qwen2.5-Omni-7B", "TAV")] == pytest.approx(0.9)
    assert len([s for s in scores if s.model == "Qwen2.5-Omni-7B"]) == 7
