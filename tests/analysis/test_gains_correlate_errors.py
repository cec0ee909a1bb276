import pytest

from affectbench.analysis import (
    compare_runs,
    confusion,
    correlations,
    gains_markdown,
    hardest_samples,
    parse_failures,
    performance_rows,
    stratified,
)
from affectbench.core.errors import AffectbenchError
from affectbench.metrics import primary_metric
from affectbench.report import info_from_run
from tests.report._matrix import build_matrix


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    return build_matrix(tmp_path_factory.mktemp("m"))


def test_info_from_run_rebuilds_dataset_info(matrix):
    store, ids = matrix
    info = info_from_run(store.run(ids[("meld", "Qwen/Qwen2.5-Omni-7B", "default")]))
    assert info.corpus == "meld" and len(info.labels) == 7 and info.metric_suite == "classification"
    info = info_from_run(store.run(ids[("sims", "gemma-3-270m", "cot")]))
    assert info.score_range == (-1.0, 1.0) and info.language == "zh"


def test_compare_runs_zero_shot_vs_gkp_and_sft(matrix):
    store, ids = matrix
    base = ids[("mosi", "Qwen/Qwen2.5-Omni-7B", "default")]
    others = [ids[("mosi", "Qwen/Qwen2.5-Omni-7B", "gkp")], ids[("mosi", "Qwen/Qwen2.5-Omni-7B", "sft")]]
    rows = compare_runs(store, base, others, n_boot=500)
    assert [r.label for r in rows] == ["Qwen2.5-Omni-7B / GKP", "Qwen2.5-Omni-7B / SFT"]
    for r, rid in zip(rows, others, strict=True):
        # all samples are shared, so the values equal the stored metrics
        assert r.baseline_value == pytest.approx(store.run(base).metrics["Non0_acc_2"], abs=1e-4)
        assert r.value == pytest.approx(store.run(rid).metrics["Non0_acc_2"], abs=1e-4)
        assert r.delta == pytest.approx(r.value - r.baseline_value)
        assert r.lo <= r.delta <= r.hi and r.n == 48
    assert rows[1].improved is True  # SFT's 0.96 vs 0.79 is clear
    md = gains_markdown(rows)
    assert "Non0_acc_2" in md and md.count("\n| Qwen2.5") == 2
    with pytest.raises(AffectbenchError, match="same corpus; the dataset adapter differs"):
        compare_runs(store, base, [ids[("meld", "Qwen/Qwen2.5-Omni-7B", "gkp")]])


def test_performance_rows_and_correlations(matrix):
    store, _ = matrix
    rows = performance_rows(store)
    assert len(rows) == 22
    for ds in ("mosi", "meld", "sims"):
        rel = [r.relative for r in rows if r.dataset == ds]
        assert sum(rel) == pytest.approx(0.0, abs=1e-9)
    corr = {c.attribute: c for c in correlations(rows, n_boot=300)}
    # the synthetic matrix makes bigger backbones better
    assert corr["llm_params_b"].rho > 0.5 and corr["llm_params_b"].lo > 0
    assert "n_modalities" not in corr  # constant over the matrix: undefined, skipped


def test_stratified_by_strata(matrix):
    store, ids = matrix
    rid = ids[("meld", "Qwen/Qwen2.5-Omni-7B", "default")]
    preds = store.predictions(rid)
    strata = {p.sample_id: ("short" if i < 20 else "long") for i, p in enumerate(preds)}
    rows = stratified(store, [rid], strata, n_boot=200)
    assert [r.stratum for r in rows] == ["long", "short"] and [r.n for r in rows] == [28, 20]
    _, fn = primary_metric(info_from_run(store.run(rid)))
    short = [p for p in preds if strata[p.sample_id] == "short"]
    want = fn([p.value if p.ok else None for p in short], [p.target for p in short])
    assert rows[1].value == pytest.approx(want)


def test_error_analysis(matrix):
    store, ids = matrix
    rid = ids[("meld", "Qwen/Qwen2.5-Omni-7B", "sft")]
    c = confusion(store, rid)
    assert c.cols[-1] == "(unparsed)" and len(c.rows) == 7
    total = sum(map(sum, c.counts))
    diag = sum(c.counts[i][i] for i in range(7))
    assert total == 48
    assert diag / total == pytest.approx(store.run(rid).metrics["acc"], abs=1e-4)
    reg = confusion(store, ids[("mosi", "gemma-3-270m", "cot")])
    assert reg.rows[:3] == ["negative", "neutral", "positive"]
    hard = hardest_samples(store, top=5)
    assert len(hard) == 5 and hard[0].wrong_rate >= hard[-1].wrong_rate
    assert all(h.n_runs >= 6 for h in hard)
    pf = {(p.model, p.dataset): p for p in parse_failures(store)}
    unparsed = sum(not p.ok for p in store.predictions(ids[("sims", "gemma-3-270m", "default")]))
    unparsed += sum(not p.ok for p in store.predictions(ids[("sims", "gemma-3-270m", "cot")]))
    assert pf[("Cascade-Gemma3-270M", "sims")].failures == unparsed
    assert pf[("Cascade-Gemma3-270M", "sims")].reasons == {"no_label": unparsed}  # one reason per unread answer
