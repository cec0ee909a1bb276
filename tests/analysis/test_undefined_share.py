"""The share of undefined bootstrap replicates stands next to every gain interval, flagged above 5 %."""

from affectbench.analysis import compare_runs, gains_markdown
from affectbench.engine.store import Prediction, Store
from tests.report._matrix import add_run


def _preds(values, targets):
    return [
        Prediction(f"s{i}", str(v), v, True, t, group=f"g{i}")
        for i, (v, t) in enumerate(zip(values, targets, strict=True))
    ]


def test_gain_rows_carry_the_undefined_share_and_a_warning(tmp_path):
    store = Store(tmp_path / "s.db")
    targets = [0.0] * 18 + [1.0, -1.0]  # two non-zero labels in 20: many draws hold neither
    base = add_run(store, "mosi", _preds([1.0] * 20, targets))
    other = add_run(store, "mosi", _preds([-1.0] * 20, targets), knowledge=["knowledge-x"])
    (row,) = compare_runs(store, base, [other], n_boot=400, n_perm=200)
    assert row.undefined > 0.05  # P(neither drawn) = (18/20)^20 ≈ 0.12
    md = gains_markdown([row])
    assert "undef." in md and f"{row.undefined:.1%} ⚠" in md
