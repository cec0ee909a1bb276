import csv
import io
import re

import pytest

from affectbench.engine.store import Store
from affectbench.report import build_report, leaderboard, leaderboard_markdown, to_csv, to_latex, to_markdown
from affectbench.report.tables import dataset_tables
from tests.report._matrix import build_matrix


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    return build_matrix(tmp_path_factory.mktemp("m"))


PRIMARY = {"mosi": "Non0_acc_2", "sims": "Mult_acc_2", "meld": "f1_weighted"}


def test_leaderboard_numbers_equal_stored_metrics_and_best_is_marked(matrix):
    store, ids = matrix
    t = leaderboard(store)
    assert t.columns == ["mosi", "sims", "meld"] and t.metrics == [PRIMARY[d] for d in t.columns]
    assert "Qwen2.5-Omni-7B / default (zero-shot)" in t.rows and "Qwen2.5-Omni-7B / default (SFT)" in t.rows
    n_cells = 0
    for i in range(len(t.rows)):
        for j, ds in enumerate(t.columns):
            rid = t.run_ids[i][j]
            if rid is None:
                assert t.values[i][j] is None
                continue
            n_cells += 1
            assert t.values[i][j] == store.run(rid).metrics[PRIMARY[ds]]
    assert n_cells == 22
    for j in range(len(t.columns)):
        col = [v for v in (r[j] for r in t.values) if v is not None]
        assert {t.values[i][j] for i in t.best(j)} == {max(col)}
    md = to_markdown(t)
    sft = next(line for line in md.splitlines() if "(SFT)" in line)
    mosi_best = max(v[0] for v in t.values if v[0] is not None)
    assert f"**{mosi_best:.4f}**" in sft  # SFT is best on mosi in the synthetic matrix
    assert md.count("**") == 2 * sum(len(t.best(j)) for j in range(3))


def test_lower_is_better_marks_the_minimum(matrix):
    store, _ = matrix
    mosi = next(t for t in dataset_tables(store) if t.title == "mosi")
    j = mosi.metrics.index("MAE_answered")
    col = [r[j] for r in mosi.values]
    assert {mosi.values[i][j] for i in mosi.best(j)} == {min(col)}
    assert "MAE_answered ↓" in to_markdown(mosi)


def test_csv_has_full_precision(matrix):
    store, _ = matrix
    t = leaderboard(store)
    rows = list(csv.reader(io.StringIO(to_csv(t))))
    assert rows[0][0] == "model / prompt" and len(rows) == len(t.rows) + 1
    assert float(rows[1][1]) == t.values[0][0]


def _check_latex(tex: str) -> None:
    assert tex.count(r"\begin{table}") == tex.count(r"\end{table}") >= 1
    for block in re.findall(r"\\begin\{tabular\}\{([lr]+)\}(.*?)\\end\{tabular\}", tex, re.S):
        spec, body = block
        assert body.count(r"\toprule") == 1 and body.count(r"\midrule") == 1 and body.count(r"\bottomrule") == 1
        assert body.index(r"\toprule") < body.index(r"\midrule") < body.index(r"\bottomrule")
        rows = [r for r in body.split(r"\\") if "&" in r]
        assert rows, "tabular without rows"
        for r in rows:
            cells = re.split(r"(?<!\\)&", r)
            assert len(cells) == len(spec), r
        assert body.count("{") == body.count("}")
        assert not re.search(r"(?<!\\)[_%#]", body.replace(r"\_", "").replace(r"\%", "").replace(r"\#", ""))


def test_latex_is_structurally_sound(matrix):
    store, _ = matrix
    t = leaderboard(store)
    tex = to_latex(t, label_key="tab:x")
    _check_latex(tex)
    assert r"\textbf{" in tex and r"Non0\_acc\_2" in tex and r"\label{tab:x}" in tex
    for tb in dataset_tables(store):
        _check_latex(to_latex(tb))


def test_build_report_writes_every_format(matrix, tmp_path):
    store, _ = matrix
    out = build_report(store, tmp_path / "rep", n_boot=100)
    assert set(out) == {"md", "csv", "latex", "html"}
    md = out["md"].read_text()
    assert "## Gains over zero-shot" in md and "## sims" in md
    _check_latex(out["latex"].read_text())
    html = out["html"].read_text()
    for section in ("leaderboard", "gains", "drivers", "errors", "models"):
        assert f'id="{section}"' in html
    assert 'id="ablation"' not in html  # no runs differ only in modalities here
    assert "http://" not in html and "https://" not in html and "<script" not in html


def test_empty_store_reports_without_crashing(tmp_path):
    store = Store(tmp_path / "affectbench.db")
    assert "No scored eval runs" in leaderboard_markdown(store)
    out = build_report(store, tmp_path / "rep", formats=("md", "html"))
    assert set(out) == {"md", "html"} and "No scored eval runs" in out["html"].read_text()


def test_dataset_tables_show_unread_reasons_and_why_a_metric_is_undefined(tmp_path):
    from affectbench.engine.store import Prediction, Store
    from tests.report._matrix import add_run

    store = Store(tmp_path / "affectbench.db")
    preds = [Prediction(f"s{i}", "1.0", 1.0, True, t) for i, t in enumerate([-2.0, 0.5, 1.0, 2.5])]
    preds.append(Prediction("s9", "1 or 2", None, False, 1.5, reason="ambiguous"))
    add_run(store, "mosi", preds)
    (t,) = dataset_tables(store)
    assert "_unread/ambiguous" in t.metrics and "_unread_rate" in t.metrics
    assert t.values[0][t.metrics.index("_unread/ambiguous")] == 0.2
    assert not t.higher(t.metrics.index("_unread/ambiguous"))  # fewer unread is better
    md = to_markdown(t)
    assert "n/a (constant predictions" in md and "nan" not in md
    assert "Corr_answered" in t.metrics
