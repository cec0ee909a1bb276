"""Plots as PNG bytes (matplotlib, Agg backend, imported lazily: `pip install 'affectbench[report]'`)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from ..analysis.ablation import AblationScore, MarginalRow
from ..analysis.correlate import PerfRow
from ..analysis.errors import Confusion
from ..analysis.gains import GainRow
from ..core.errors import require
from .tables import Table

PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


def _plt() -> Any:
    mpl = require("matplotlib", "report", "the HTML report's plots")
    mpl.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", facecolor="white")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def heatmap(t: Table) -> bytes:
    """Leaderboard heatmap; each column normalised to its own range (so MAE and accuracy share a scale)."""
    plt = _plt()
    import numpy as np

    raw = np.array([[math.nan if v is None else float(v) for v in row] for row in t.values], dtype=float)
    norm = np.full_like(raw, math.nan)
    for j in range(raw.shape[1]):
        col = raw[:, j]
        ok = np.isfinite(col)
        if not ok.any():
            continue
        lo, hi = col[ok].min(), col[ok].max()
        z = (col - lo) / (hi - lo) if hi > lo else np.where(ok, 0.5, math.nan)
        norm[:, j] = z if t.higher(j) else 1 - z
    w = max(4.0, 1.3 * len(t.columns) + 2.5)
    h = max(2.0, 0.45 * len(t.rows) + 1.2)
    fig, ax = plt.subplots(figsize=(w, h))
    ax.imshow(np.ma.masked_invalid(norm), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(t.columns)))
    ax.set_xticklabels(
        [f"{c}\n{m}{'' if t.higher(j) else ' ↓'}" for j, (c, m) in enumerate(zip(t.columns, t.metrics, strict=True))]
    )
    ax.set_yticks(range(len(t.rows)))
    ax.set_yticklabels(t.rows)
    for i in range(raw.shape[0]):
        for j in range(raw.shape[1]):
            if np.isfinite(raw[i, j]):
                dark = np.isfinite(norm[i, j]) and norm[i, j] < 0.6
                weight = "bold" if i in t.best(j) else "normal"
                ax.text(
                    j,
                    i,
                    f"{raw[i, j]:.3f}",
                    ha="center",
                    va="center",
                    color="white" if dark else "black",
                    fontsize=8,
                    fontweight=weight,
                )
    ax.set_title("Leaderboard (colour: rank within each dataset; bold: best)")
    for s in ax.spines.values():
        s.set_visible(False)
    return _png(fig)


def confusion_grid(confusions: Sequence[Confusion], ncols: int = 4) -> bytes:
    """Row-normalised confusion matrices with counts, one panel per run, in one figure."""
    plt = _plt()
    import numpy as np

    n = len(confusions)
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    k = max(len(c.cols) for c in confusions)
    side = max(2.6, 0.42 * k + 1.4)
    fig, axes = plt.subplots(nrows, ncols, figsize=(side * ncols, side * nrows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    for ax, c in zip(axes.ravel(), confusions, strict=False):
        m = np.asarray(c.counts, dtype=float)
        rows = m.sum(1, keepdims=True)
        frac = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
        ax.imshow(frac, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(c.cols)))
        ax.set_xticklabels(c.cols, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(c.rows)))
        ax.set_yticklabels(c.rows, fontsize=7)
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if m[i, j]:
                    color = "white" if frac[i, j] > 0.55 else "black"
                    ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=7, color=color)
        ax.set_title(f"{c.dataset}: {c.label}", fontsize=8)
    fig.supxlabel("predicted", fontsize=9)
    fig.supylabel("true", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def ablation_plot(scores: Sequence[AblationScore], marginals: Sequence[MarginalRow]) -> bytes:
    """Left: the metric per modality setting for each model; right: marginal contributions with CIs."""
    plt = _plt()
    import numpy as np

    models = list(dict.fromkeys(f"{s.dataset}: {s.model}" for s in scores))
    settings = [m for m in ("T", "A", "V", "TA", "TV", "AV", "TAV") if any(s.modalities == m for s in scores)]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, max(3.0, 0.5 * len(models) + 2.5)))
    width = 0.8 / max(1, len(models))
    for k, mdl in enumerate(models):
        vals = [
            next((s.value for s in scores if f"{s.dataset}: {s.model}" == mdl and s.modalities == st), np.nan)
            for st in settings
        ]
        ax1.bar(np.arange(len(settings)) + k * width, vals, width, label=mdl, color=PALETTE[k % len(PALETTE)])
    ax1.set_xticks(np.arange(len(settings)) + width * (len(models) - 1) / 2)
    ax1.set_xticklabels(settings)
    metric_names = sorted({s.metric for s in scores})
    ax1.set_ylabel(", ".join(metric_names))
    ax1.set_title("metric by input modalities")
    ax1.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    labels = [f"{r.dataset}: {r.model} +{r.modality}" for r in marginals]
    y = np.arange(len(labels))
    pts = np.array([r.contribution for r in marginals], dtype=float)
    err = np.array(
        [[r.contribution - r.lo for r in marginals], [r.hi - r.contribution for r in marginals]], dtype=float
    )
    colors = [PALETTE[["T", "A", "V"].index(r.modality)] for r in marginals]
    ax2.barh(y, pts, xerr=np.nan_to_num(err), color=colors, capsize=3)
    ax2.axvline(0, color="black", lw=0.8)
    ax2.set_yticks(y)
    ax2.set_yticklabels(labels, fontsize=8)
    ax2.invert_yaxis()
    ax2.set_title("marginal contribution (95% CI)")
    fig.tight_layout()
    return _png(fig)


def gains_plot(rows: Sequence[GainRow]) -> bytes:
    """Deltas over each baseline with paired-bootstrap intervals."""
    plt = _plt()
    import numpy as np

    labels = [f"{r.dataset}: {r.label}" for r in rows]
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(7.5, max(2.0, 0.4 * len(rows) + 1.2)))
    for i, r in enumerate(rows):
        good = (r.delta > 0) == r.higher_is_better
        sig = r.lo > 0 or r.hi < 0
        color = (PALETTE[2] if good else PALETTE[3]) if sig else PALETTE[7]
        ax.errorbar(r.delta, i, xerr=[[r.delta - r.lo], [r.hi - r.delta]], fmt="o", color=color, capsize=4)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("Δ primary metric vs baseline (95% paired bootstrap CI)")
    ax.set_title("Gains over baseline (green: better, red: worse, grey: interval includes 0)")
    return _png(fig)


def scatter_plot(rows: Sequence[PerfRow], attribute: str, target: str = "relative") -> bytes:
    """Performance against one attribute, one colour per dataset."""
    plt = _plt()

    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    datasets = list(dict.fromkeys(r.dataset for r in rows))
    for k, ds in enumerate(datasets):
        pts = [(r.attributes.get(attribute), getattr(r, target)) for r in rows if r.dataset == ds]
        pts = [(x, y) for x, y in pts if x is not None and y is not None]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], label=ds, color=PALETTE[k % len(PALETTE)], s=28)
    ax.set_xlabel(attribute)
    ax.set_ylabel(f"{target} score (higher is better)")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(f"performance vs {attribute}", fontsize=9)
    return _png(fig)
