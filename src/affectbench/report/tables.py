"""Tables from the store in the paper's layout (systems × datasets, best per column marked),
rendered as markdown, CSV and LaTeX (booktabs)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..analysis.corpus import column_titles, corpus_key, corpus_of, group_key
from ..analysis.model_cards import ModelCard
from ..analysis.runs import (
    eval_runs,
    fold_of,
    higher_is_better,
    info_from_run,
    is_partial,
    label,
    metric_value,
    partial_reason,
    run_n,
    split_text,
)
from ..engine.store import RunRecord, Store
from ..metrics import primary_metric


@dataclass
class Table:
    """A grid of numbers: `values[i][j]` is row i, column j; `metrics[j]` names column j's metric."""

    title: str
    row_header: str
    columns: list[str]
    metrics: list[str]
    rows: list[str]
    values: list[list[float | None]]
    run_ids: list[list[str | None]] = field(default_factory=list)
    caption: str = ""
    unranked: set[tuple[int, int]] = field(default_factory=set)  # cells never marked best (partial runs)
    sd: list[list[float | None]] | None = None  # a "mean ± sd" cell where set (fold means)
    why: dict[tuple[int, int], str] = field(default_factory=dict)  # (i, j) -> why the value is undefined

    def higher(self, j: int) -> bool:
        return higher_is_better(self.metrics[j])

    def best(self, j: int) -> set[int]:
        """Rows holding the best value of column j (ties all count); empty when the column has no number."""
        col = [
            (i, v) for i, v in ((i, r[j]) for i, r in enumerate(self.values)) if _num(v) and (i, j) not in self.unranked
        ]
        if not col:
            return set()
        target = (max if self.higher(j) else min)(v for _, v in col)
        return {i for i, v in col if v == target}


def _num(v: float | None) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _clashes(runs: Sequence[RunRecord], labels: dict[str, str]) -> list[RunRecord]:
    """Runs whose label is shared with another run on some corpus (all runs with such a label)."""
    seen: dict[tuple[str, str], int] = {}
    for r in runs:
        key = (labels[r.id], corpus_key(r))
        seen[key] = seen.get(key, 0) + 1
    bad = {lab for (lab, _), k in seen.items() if k > 1}
    return [r for r in runs if labels[r.id] in bad]


def partial_note(run: RunRecord) -> str:
    """Why a run is not ranked, with its sample count: "partial: running, n=12" or "partial: limit 20"."""
    n = run_n(run)
    return f"partial: {partial_reason(run)}" + (f", n={n}" if n is not None else "")


def system_labels(runs: Sequence[RunRecord], by: Sequence[str], cards: Iterable[ModelCard] | None) -> dict[str, str]:
    """run id -> system label; a run with a `fold` option gets "[fold k]", a partial run (unfinished or
    a `limit` subset) "[partial: …]"; labels that would still share a cell get the setting, then the
    run id, appended."""
    cards = list(cards) if cards is not None else None
    labels = {r.id: label(r, by, cards) for r in runs}
    for r in runs:
        if fold_of(r) is not None:
            labels[r.id] += f" [fold {fold_of(r)}]"
        if is_partial(r):
            labels[r.id] += f" [{partial_note(r)}]"
    if "setting" not in by:
        clashing = _clashes(runs, labels)
        ablated = {labels[r.id] for r in clashing if r.run_spec.media.modalities != "TAV"}
        for r in clashing:
            setting = label(r, ("setting",), cards)
            if setting == "zero-shot" and labels[r.id] in ablated:
                setting = "TAV"  # among modality-ablation siblings, name the full setting
            labels[r.id] = f"{labels[r.id]} ({setting})"
    for r in runs:  # the parse view is part of what a number means: name it
        view = (r.metrics or {}).get("_parse_view", "rules")
        if view != "rules":
            labels[r.id] = f"{labels[r.id]} [{view}]"
    for r in _clashes(runs, labels):
        labels[r.id] = f"{labels[r.id]} [{r.id.rsplit('-', 1)[-1][:6]}]"
    return labels


def leaderboard(
    store: Store,
    by: Sequence[str] = ("model", "prompt"),
    metric: str | None = None,
    cards: Iterable[ModelCard] | None = None,
) -> Table:
    """Systems (rows) × corpora (columns) with each corpus's primary metric (or `metric`). A column is
    one corpus identity (`analysis.corpus`): two manifests, or MUStARD's folds and its speaker-independent
    split, never share one; its title is unique (see `corpus.column_titles`)."""
    runs = eval_runs(store)
    labels = system_labels(runs, by, cards)
    titles = column_titles(corpus_of(r) for r in runs)
    datasets: list[str] = []
    metrics: dict[str, str] = {}
    systems: list[str] = []
    cell: dict[tuple[str, str], RunRecord] = {}
    for r in runs:
        ds = corpus_key(r)
        name = metric or primary_metric(info_from_run(r))[0]
        if ds not in metrics:
            datasets.append(ds)
            metrics[ds] = name
        if labels[r.id] not in systems:
            systems.append(labels[r.id])
        cell[(labels[r.id], ds)] = r
    values = [[metric_value(cell[(s, d)], metrics[d]) if (s, d) in cell else None for d in datasets] for s in systems]
    ids = [[cell[(s, d)].id if (s, d) in cell else None for d in datasets] for s in systems]
    unranked = {
        (i, j)
        for i, s in enumerate(systems)
        for j, d in enumerate(datasets)
        if (s, d) in cell and is_partial(cell[(s, d)])
    }
    sd: list[list[float | None]] = [[None] * len(datasets) for _ in systems]
    for group in fold_groups(runs):
        ds = corpus_key(group[0])
        j = datasets.index(ds)
        vals = [metric_value(r, metrics[ds]) for r in group]
        if any(v is None for v in vals):
            continue
        folds = sorted(str(fold_of(r)) for r in group)
        row = labels[group[0].id].replace(f" [fold {fold_of(group[0])}]", f" [mean ± sd over folds {', '.join(folds)}]")
        if row not in systems:
            systems.append(row)
            values.append([None] * len(datasets))
            ids.append([None] * len(datasets))
            sd.append([None] * len(datasets))
        i = systems.index(row)
        values[i][j] = float(np.mean(vals))
        sd[i][j] = float(np.std(vals, ddof=1))
        unranked |= {(systems.index(labels[r.id]), j) for r in group}  # the fold mean is the ranked number
    why = {
        (i, j): _undefined(cell[(s, d)], metrics[d])
        for i, s in enumerate(systems)
        for j, d in enumerate(datasets)
        if (s, d) in cell and _undefined(cell[(s, d)], metrics[d])
    }
    return Table(
        title="Leaderboard",
        row_header=" / ".join(by),
        columns=[titles[d] for d in datasets],
        metrics=[metrics[d] for d in datasets],
        rows=systems,
        values=values,
        run_ids=ids,
        caption=(
            "Primary metric per dataset; best per column in bold (↓: lower is better). Partial runs "
            "(unfinished or a `limit` subset) are labelled and never ranked; where a run was made on "
            "several folds, the mean ± sd (sample sd) over them is its own row and is ranked instead of "
            "the single folds. A column is one corpus (adapter, corpus, task, split scheme, version, label "
            "files: see the corpora table). n, split/fold and status of every run: see the runs table."
        ),
        unranked=unranked,
        sd=sd if any(v is not None for row in sd for v in row) else None,
        why=why,
    )


def fold_groups(runs: Sequence[RunRecord]) -> list[list[RunRecord]]:
    """Complete runs on one corpus that differ only in their dataset's `fold` option (IEMOCAP LOSO
    sessions, MUStARD folds), two or more distinct folds per group, in fold order."""
    groups: dict[str, list[RunRecord]] = {}
    for r in runs:
        if fold_of(r) is not None and not is_partial(r):
            groups.setdefault(group_key(r, "dataset.options.fold"), []).append(r)
    out = []
    for rs in groups.values():
        if len({str(fold_of(r)) for r in rs}) == len(rs) >= 2:
            out.append(sorted(rs, key=lambda r: str(fold_of(r))))
    return out


RUNS_HEADER = ["system", "corpus", "split / fold", "n", "status", "ranked", "run id"]


def runs_rows(
    store: Store, by: Sequence[str] = ("model", "prompt"), cards: Iterable[ModelCard] | None = None
) -> list[list[object]]:
    """One row per scored eval run: system label, corpus (its leaderboard column), which split/fold it
    used, n, status, whether it is ranked, run id."""
    runs = eval_runs(store)
    labels = system_labels(runs, by, cards)
    titles = column_titles(corpus_of(r) for r in runs)
    return [
        [
            labels[r.id],
            titles[corpus_key(r)],
            split_text(r),
            run_n(r),
            r.status,
            "no" if is_partial(r) else "yes",
            r.id,
        ]
        for r in runs
    ]


def rows_markdown(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain markdown table of text cells."""
    esc = lambda v: "" if v is None else str(v).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(v) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def dataset_tables(
    store: Store, by: Sequence[str] = ("model", "prompt"), cards: Iterable[ModelCard] | None = None
) -> list[Table]:
    """One table per corpus: systems × every metric of the dataset's suite (plus parse-failure rate)."""
    runs = eval_runs(store)
    labels = system_labels(runs, by, cards)
    titles = column_titles(corpus_of(r) for r in runs)
    out = []
    for key in dict.fromkeys(corpus_key(r) for r in runs):
        ds = titles[key]
        rs = [r for r in runs if corpus_key(r) == key]
        names: list[str] = []
        for r in rs:
            for k, v in (r.metrics or {}).items():
                if not k.startswith("_") and isinstance(v, int | float) and k not in names:
                    names.append(k)
            for k, v in (r.metrics or {}).items():
                if not k.startswith("_") and v is None and k not in names:
                    names.append(k)  # undefined on this run: shown with its reason
        names.append("_parse_failure_rate")
        names += unread_columns(rs)
        out.append(
            Table(
                title=f"{ds}",
                row_header=" / ".join(by),
                columns=[n.lstrip("_") for n in names],
                metrics=names,
                rows=[labels[r.id] for r in rs],
                values=[[metric_value(r, n) for n in names] for r in rs],
                run_ids=[[r.id] * len(names) for r in rs],
                caption=f"All metrics on {ds}; best per column in bold; partial runs are never ranked. "
                "unread/<reason>: share of samples unread for that reason (types.UNREAD_REASONS); unread "
                "answers earn no credit in any metric.",
                unranked={(i, j) for i, r in enumerate(rs) if is_partial(r) for j in range(len(names))},
                why={(i, j): w for i, r in enumerate(rs) for j, n in enumerate(names) if (w := _undefined(r, n))},
            )
        )
    return out


def unread_columns(runs: Sequence[RunRecord]) -> list[str]:
    """`_unread_rate` and `_unread/<reason>` for every reason some run has (in UNREAD_REASONS order)."""
    from ..core.types import UNREAD_REASONS

    seen = {k for r in runs for k, v in ((r.metrics or {}).get("_unread") or {}).items() if v}
    return ["_unread_rate", *(f"_unread/{k}" for k in UNREAD_REASONS if k in seen)]


def _undefined(run: RunRecord, name: str) -> str | None:
    """Why `name` has no number on `run` (stored under `_undefined`, or NaN from an older scorer)."""
    metrics = run.metrics or {}
    why = (metrics.get("_undefined") or {}).get(name)
    if why:
        return str(why)
    v = metrics.get(name)
    if isinstance(v, float) and math.isnan(v):
        return "undefined (rescore the run for the reason)"
    return None


def cell(t: Table, i: int, j: int, digits: int = 4, pm: str = "±") -> str:
    """The text of cell (i, j): the number ("mean ± sd" where the table holds an sd for it),
    "n/a (why)" when undefined, "–" when absent."""
    why = t.why.get((i, j))
    if why:
        return f"n/a ({why})"
    s = fmt(t.values[i][j], digits)
    sd = t.sd[i][j] if t.sd else None
    return f"{s} {pm} {fmt(sd, digits)}" if sd is not None else s


def fmt(v: float | None, digits: int = 4) -> str:
    if not _num(v):
        return "–" if v is None else "nan"
    return f"{v:.{digits}f}"


def _header(t: Table, j: int) -> str:
    """Column title: the dataset (with its metric when they differ), ↓ when lower is better."""
    m = t.metrics[j].lstrip("_")
    h = t.columns[j] if t.columns[j] == m else f"{t.columns[j]} ({m})"
    return h if t.higher(j) else h + " ↓"


def to_markdown(t: Table, digits: int = 4) -> str:
    """GitHub markdown; best per column in **bold**."""
    md_esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    best = [t.best(j) for j in range(len(t.columns))]
    lines = [
        "| " + " | ".join([md_esc(t.row_header)] + [md_esc(_header(t, j)) for j in range(len(t.columns))]) + " |",
        "|" + "---|" + "---:|" * len(t.columns),
    ]
    for i, row in enumerate(t.rows):
        cells = [
            f"**{cell(t, i, j, digits)}**" if i in best[j] else md_esc(cell(t, i, j, digits))
            for j in range(len(t.columns))
        ]
        lines.append("| " + " | ".join([md_esc(row)] + cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(t: Table) -> str:
    """Long-free wide CSV with full-precision numbers and a best-marker column per dataset."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    sd_cols = [j for j in range(len(t.columns)) if t.sd and any(r[j] is not None for r in t.sd)]
    w.writerow(
        [t.row_header] + [_header(t, j) for j in range(len(t.columns))] + [f"{_header(t, j)} sd" for j in sd_cols]
    )
    for i, row in enumerate(t.rows):
        sds = [("" if t.sd[i][j] is None else repr(float(t.sd[i][j]))) for j in sd_cols] if t.sd else []
        w.writerow([row] + ["" if v is None else repr(float(v)) for v in t.values[i]] + sds)
    return buf.getvalue()


_LATEX_ESC = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "↓": r"$\downarrow$",
    "×": r"$\times$",
    "→": r"$\to$",
}


def latex_escape(s: str) -> str:
    return "".join(_LATEX_ESC.get(ch, ch) for ch in s)


def to_latex(t: Table, digits: int = 4, label_key: str = "") -> str:
    """A booktabs table (needs \\usepackage{booktabs}); best per column in \\textbf."""
    best = [t.best(j) for j in range(len(t.columns))]
    ncol = len(t.columns)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        r"\begin{tabular}{l" + "r" * ncol + "}",
        r"\toprule",
    ]
    down = r" $\downarrow$"
    if any(c != m.lstrip("_") for c, m in zip(t.columns, t.metrics, strict=True)):
        lines.append(" & ".join([latex_escape(t.row_header)] + [latex_escape(c) for c in t.columns]) + r" \\")
        subs = [latex_escape(m.lstrip("_")) + ("" if t.higher(j) else down) for j, m in enumerate(t.metrics)]
        lines.append(" & ".join([""] + subs) + r" \\")
    else:
        heads = [latex_escape(c) + ("" if t.higher(j) else down) for j, c in enumerate(t.columns)]
        lines.append(" & ".join([latex_escape(t.row_header)] + heads) + r" \\")
    lines.append(r"\midrule")
    for i, row in enumerate(t.rows):
        cells = []
        for j in range(len(t.columns)):
            s = latex_escape(cell(t, i, j, digits)).replace("–", "--").replace("±", r"$\pm$")
            cells.append(r"\textbf{" + s + "}" if i in best[j] else s)
        lines.append(" & ".join([latex_escape(row)] + cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if t.caption:
        lines.append(r"\caption{" + latex_escape(t.caption) + "}")
    if label_key:
        lines.append(r"\label{" + label_key + "}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"
