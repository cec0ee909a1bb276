"""Corpus identity: every table, gain and analysis groups runs by what they measured, not by the
adapter's registry name; partial runs are left out of every analysis, with their count shown."""

import csv

import pytest

from affectbench.analysis import compare_runs, performance_rows
from affectbench.analysis.architecture import architecture_study
from affectbench.analysis.corpus import column_titles, corpus_of
from affectbench.core.errors import AffectbenchError, StoreError
from affectbench.core.specs import DatasetRef, ModelSpec, RunSpec
from affectbench.engine.runner import run_spec
from affectbench.engine.store import Store
from affectbench.report import build_report
from affectbench.report.tables import leaderboard
from tests.engine.test_runner import LABELS, manifest_spec
from tests.report._matrix import INFOS, add_run, build_matrix, synth_preds, targets

ORACLE = ModelSpec(
    backend="scripted",
    options={"rule": "table", "answers": {f"sounds {lab}": lab for lab in LABELS}},
)
CONSTANT = ModelSpec(backend="scripted", name="constant", options={"rule": "constant", "default": "positive"})


def write_corpus(root, n, shift=0):
    """A manifest corpus; `shift` rotates the labels, so two copies share ids but not labels."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "manifest.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "transcript", "label", "split", "group"])
        for i in range(n):
            lab = LABELS[(i + shift) % 3]
            w.writerow([f"s{i:04d}", f"utterance {i} sounds {lab}", lab, "test", f"g{i // 4}"])
    return root


def test_two_manifest_corpora_never_share_a_column_and_are_not_compared(tmp_path):
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    a = run_spec(manifest_spec(write_corpus(tmp_path / "a", 12), model=ORACLE), store)
    b = run_spec(manifest_spec(write_corpus(tmp_path / "b", 12, shift=1), model=CONSTANT), store)
    ca, cb = corpus_of(a), corpus_of(b)
    assert (ca.adapter, ca.name) == (cb.adapter, cb.name) == ("manifest", "manifest")
    assert ca.labels != cb.labels and ca.key != cb.key  # told apart by their label files
    lb = leaderboard(store)
    assert len(lb.columns) == 2 and len(set(lb.columns)) == 2
    assert all(f"labels {c.labels}" in t for c, t in zip((ca, cb), lb.columns, strict=True))
    with pytest.raises(AffectbenchError) as e:
        compare_runs(store, a.id, [b.id], n_boot=50, n_perm=50)
    msg = str(e.value)
    assert "not measured on the same corpus" in msg and f"fingerprint {ca.labels} vs {cb.labels}" in msg
    out = build_report(store, tmp_path / "r", formats=("md",), n_boot=50)
    md = out["md"].read_text()
    assert "## Corpora" in md and ca.labels in md and cb.labels in md


def test_a_second_copy_with_other_labels_is_refused_with_a_clear_sentence_then_coexists(tmp_path):
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    first = run_spec(manifest_spec(write_corpus(tmp_path / "v1", 9), model=ORACLE), store)
    copy = write_corpus(tmp_path / "v2", 9, shift=1)
    with pytest.raises(StoreError) as e:
        run_spec(manifest_spec(copy, model=ORACLE), store)
    assert "another copy or version of the corpus" in str(e.value) and "dataset.version" in str(e.value)
    spec = manifest_spec(copy, model=ORACLE)
    v2 = spec.model_copy(update={"dataset": spec.dataset.model_copy(update={"version": "2"})})
    second = run_spec(v2, store)
    assert second.id != first.id and store.run(first.id).status == "done"
    assert corpus_of(second).version == "2" and "v2" in corpus_of(second).title
    assert len(leaderboard(store).columns) == 2


def test_an_unset_version_keeps_old_run_ids():
    spec = RunSpec(dataset=DatasetRef(name="mosi", root="/x"), model=ModelSpec(backend="scripted"))
    assert "version" not in spec.identity()["dataset"]
    assert spec.run_id == RunSpec(dataset=DatasetRef(name="mosi", root="/elsewhere"), model=spec.model).run_id
    versioned = spec.model_copy(update={"dataset": spec.dataset.model_copy(update={"version": "2"})})
    assert versioned.run_id != spec.run_id


def _mustard_run(store, options, name="Qwen/Qwen2.5-Omni-7B", shift=0):
    from affectbench.core.types import DatasetInfo, TaskType
    from affectbench.engine.scoring import score_run
    from affectbench.engine.store import Prediction

    info = DatasetInfo("mustard", TaskType.CLASSIFICATION, labels=("sarcastic", "sincere"), task_name="sarcasm")
    spec = RunSpec(dataset=DatasetRef(name="mustard", options=options), model=ModelSpec(backend="scripted", name=name))
    rec = store.open_run(spec)
    preds = [
        Prediction(f"m{i}", "x", ("sarcastic", "sincere")[(i + (i < shift)) % 2], True, ("sarcastic", "sincere")[i % 2])
        for i in range(10)
    ]
    store.add_predictions(rec.id, preds)
    score_run(store, rec.id, info)
    store.set_status(rec.id, "done")
    return store.run(rec.id)


def test_mustard_folds_and_speaker_independent_split_are_two_corpora(tmp_path):
    store = Store(tmp_path / "s.db")
    f1 = _mustard_run(store, {"split_mode": "folds", "fold": 1})
    f2 = _mustard_run(store, {"split_mode": "folds", "fold": 2}, shift=3)
    si = _mustard_run(store, {"split_mode": "speaker_independent"})
    assert corpus_of(f1) == corpus_of(f2)  # the folds of one scheme are one corpus (their mean is a cell)
    assert corpus_of(f1) != corpus_of(si)
    lb = leaderboard(store)
    assert len(lb.columns) == 2
    assert any("speaker_independent" in c for c in lb.columns)
    assert any("mean ± sd over folds 1, 2" in r for r in lb.rows)
    with pytest.raises(AffectbenchError, match="the split scheme differs"):
        compare_runs(store, f1.id, [si.id], n_boot=20, n_perm=20)


def test_column_titles_are_unique_and_short_when_corpora_do_not_clash(tmp_path):
    store, ids = build_matrix(tmp_path, n=12)
    runs = [store.run(r) for r in ids.values()]
    titles = column_titles(corpus_of(r) for r in runs)
    assert sorted(set(titles.values())) == ["meld", "mosi", "sims"]


def _limit_run(store, tmp_path):
    """A limit=3 smoke run of the best model on mosi: its value is the best, it must not count."""
    spec = RunSpec(
        dataset=DatasetRef(name="mosi"), model=ModelSpec(backend="scripted", name="smoke/huge-model"), limit=3
    )
    rec = store.open_run(spec)
    tg = targets("mosi", 3, seed=10)
    store.add_predictions(rec.id, synth_preds("mosi", tg, 1.0, seed=3, p_unparsed=0.0))
    from affectbench.engine.scoring import score_run

    score_run(store, rec.id, INFOS["mosi"])
    store.set_status(rec.id, "done")
    failed = add_run(store, "meld", synth_preds("meld", targets("meld", 12), 0.9, seed=4), name="org/broken")
    store.set_status(failed, "failed", error="boom")
    return rec.id, failed


def test_partial_and_failed_runs_are_left_out_of_every_analysis_with_a_count(tmp_path):
    store, ids = build_matrix(tmp_path, n=24)
    smoke, failed = _limit_run(store, tmp_path)
    rows = performance_rows(store)
    assert smoke not in {r.run_id for r in rows} and failed not in {r.run_id for r in rows}
    assert len(rows) == 22
    study = architecture_study(rows, n_boot=50)
    assert not any("huge-model" in m or "broken" in m for m in study.models)
    with pytest.raises(AffectbenchError, match="partial \\(limit 3\\)"):
        compare_runs(store, ids[("mosi", "Qwen/Qwen2.5-Omni-7B", "default")], [smoke], n_boot=20, n_perm=20)
    out = build_report(store, tmp_path / "r", formats=("md", "html"), n_boot=50)
    note = "2 partial runs left out (failed 1, limit 3 1)"
    assert note in out["md"].read_text() and note in out["html"].read_text()
