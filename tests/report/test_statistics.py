"""The report's statistics (issue 14): gains on the headline samples and policy, one-factor gain rows,
permutation p-values with Holm marks, partial runs never ranked, fold mean ± sd rows, and no
"what drives performance" from a handful of runs."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from affectbench.analysis import compare_runs
from affectbench.core.specs import DatasetRef, ModelSpec, RunSpec
from affectbench.core.types import DatasetInfo, TaskType
from affectbench.engine.scoring import score_run
from affectbench.engine.store import Prediction, Store
from affectbench.metrics import paired_permutation, primary_metric
from affectbench.report import build_report
from affectbench.report.build import gain_groups
from affectbench.report.tables import leaderboard, runs_rows, to_markdown

LABELS = ("neutral", "happy", "sad", "angry")
INFO = DatasetInfo("iemocap4", TaskType.CLASSIFICATION, labels=LABELS, task_name="emotion")


def _preds(n, p_right, seed, errors=()):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        t = LABELS[i % 4]
        v = t if rng.random() < p_right else LABELS[(i + 1) % 4]
        if i in errors:
            out.append(Prediction(f"s{i:03d}", None, None, False, t, f"dlg{i // 5}", None, "media: unreadable clip"))
        else:
            out.append(Prediction(f"s{i:03d}", v, v, True, t, f"dlg{i // 5}"))
    return out


def _run(
    store,
    preds,
    *,
    name="Qwen/Qwen2.5-Omni-7B",
    prompt="default",
    knowledge=(),
    adapter=None,
    fold=None,
    limit=None,
    status="done",
):
    opts = {"fold": fold} if fold is not None else {}
    spec = RunSpec(
        dataset=DatasetRef(name="iemocap4", options=opts),
        model=ModelSpec(backend="hf", name=name, adapter=adapter),
        prompt=prompt,
        knowledge=list(knowledge),
        limit=limit,
    )
    rid = store.open_run(spec).id
    store.add_predictions(rid, preds)
    score_run(store, rid, INFO)
    store.set_status(rid, status)
    return rid


@pytest.fixture()
def store(tmp_path):
    return Store(tmp_path / "affectbench.sqlite")


def test_gains_use_the_headline_samples_and_policy(store):
    # the baseline failed on 6 samples: the headline counts them wrong, and so must the gain
    base = _run(store, _preds(40, 0.8, 1, errors=range(6)))
    gkp = _run(store, _preds(40, 0.8, 2), knowledge=["knowledge-a"])
    (row,) = compare_runs(store, base, [gkp], n_boot=200, n_perm=999)
    name, fn = primary_metric(INFO)
    assert row.n == 40
    assert row.baseline_value == pytest.approx(store.run(base).metrics[name], abs=1e-4)
    assert row.value == pytest.approx(store.run(gkp).metrics[name], abs=1e-4)
    # its p-value is the paired permutation test on those same answers (checked against scipy in tests/metrics)
    a = [None if p.error else p.value for p in store.predictions(base)]
    b = [p.value for p in store.predictions(gkp)]
    t = [p.target for p in store.predictions(base)]
    assert row.p_value == paired_permutation(fn, a, b, t, n_resamples=999).p_value


def test_gain_rows_only_compare_runs_differing_in_the_named_factor(store):
    base = _run(store, _preds(20, 0.6, 1))
    gkp_same_prompt = _run(store, _preds(20, 0.7, 2), knowledge=["knowledge-a"])
    gkp_other_prompt = _run(store, _preds(20, 0.9, 3), knowledge=["knowledge-a"], prompt="gkp_emotion")
    sft = _run(store, _preds(20, 0.9, 4), adapter="finetune-x")
    smoke = _run(store, _preds(20, 0.9, 5), knowledge=["knowledge-b"], limit=20)
    groups = {b.id: sorted(r.id for r in rs) for b, rs in gain_groups(store.runs("eval"))}
    assert groups == {base: sorted([gkp_same_prompt, sft])}
    assert gkp_other_prompt not in str(groups) and smoke not in str(groups)
    md = build_report(store, store.workspace / "rep", formats=("md",), n_boot=100)["md"].read_text()
    assert "differ only in the factor it names" in md
    assert "| GKP |" in md and "| SFT |" in md


def test_holm_marks_match_statsmodels(store):
    base = _run(store, _preds(60, 0.5, 1))
    others = [_run(store, _preds(60, p, 10 + i), knowledge=[f"knowledge-{i}"]) for i, p in enumerate((0.9, 0.55, 0.8))]
    md = build_report(store, store.workspace / "rep", formats=("md",), n_boot=100)["md"].read_text()
    rows = compare_runs(store, base, others, n_boot=100)
    reject, adjusted, _, _ = multipletests([r.p_value for r in rows], alpha=0.05, method="holm")
    for r, adj, rej in zip(rows, adjusted, reject, strict=True):
        line = next(ln for ln in md.splitlines() if f"| {r.delta:+.4f}" in ln)
        assert f"| {adj:.4f} |" in line
        assert ("✓" in line) == bool(rej)
    assert any(reject) and not all(reject)  # the 0.55 run must not survive


def test_leaderboard_never_ranks_a_partial_run_and_shows_n_fold_status(store):
    full = _run(store, _preds(40, 0.6, 1))
    smoke = _run(store, _preds(8, 1.0, 2), name="Qwen/Qwen2.5-Omni-3B", limit=8)
    running = _run(store, _preds(12, 1.0, 3), name="gemma-3-270m", status="running")
    t = leaderboard(store)
    labels = dict(zip([r[0] for r in t.run_ids], t.rows, strict=True))
    assert labels[smoke].endswith("[partial: limit 8, n=8]") and "[partial: running, n=12]" in labels[running]
    assert t.best(0) == {t.rows.index(labels[full])}  # the partial runs score 1.0 but are not best
    md = to_markdown(t)
    assert "**" in md.splitlines()[2 + t.rows.index(labels[full])]
    runs = {r[-1]: r for r in runs_rows(store)}
    assert runs[smoke][3:6] == [8, "done", "no"] and runs[running][3:6] == [12, "running", "no"]
    assert runs[full][3:6] == [40, "done", "yes"]


def test_fold_matrix_gets_a_mean_sd_row_and_keeps_each_fold(store):
    ids = {k: _run(store, _preds(40, 0.4 + 0.1 * k, k), fold=k) for k in range(1, 6)}
    t = leaderboard(store)
    name, _ = primary_metric(INFO)
    per_fold = [store.run(ids[k]).metrics[name] for k in range(1, 6)]
    mean_row = next(i for i, r in enumerate(t.rows) if "mean ± sd over folds 1, 2, 3, 4, 5" in r)
    assert t.values[mean_row][0] == pytest.approx(statistics.mean(per_fold))
    assert t.sd[mean_row][0] == pytest.approx(statistics.stdev(per_fold))
    for k in range(1, 6):  # every fold kept, labelled, not ranked against the mean
        i = next(i for i, r in enumerate(t.rows) if r.endswith(f"[fold {k}]"))
        assert t.values[i][0] == per_fold[k - 1] and (i, 0) in t.unranked
    assert t.best(0) == {mean_row}
    md = build_report(store, store.workspace / "rep", formats=("md", "csv", "latex"), n_boot=50)
    text = md["md"].read_text()
    assert f"{statistics.mean(per_fold):.4f} ± {statistics.stdev(per_fold):.4f}" in text
    assert r"$\pm$" in md["latex"].read_text() and " sd" in md["csv"].read_text().splitlines()[0]
    html = build_report(store, store.workspace / "rep", formats=("html",), n_boot=50)["html"].read_text()
    assert "Runs: n, split / fold and status" in html and "mean ± sd over folds" in html


def test_few_runs_say_so_instead_of_a_spearman_rho(store):
    for i, name in enumerate(("Qwen/Qwen2.5-Omni-7B", "Qwen/Qwen2.5-Omni-3B", "gemma-3-270m")):
        _run(store, _preds(20, 0.5 + 0.1 * i, i), name=name)
    html = build_report(store, store.workspace / "rep", formats=("html",), n_boot=50)["html"].read_text()
    assert "Only 3 scored run(s)" in html and "ρ" not in html
