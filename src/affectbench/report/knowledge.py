"""Knowledge in reports: the coverage table and the "zero-shot vs each knowledge source" table.

`source_table` compares each eval entry of an experiment with the baseline entry's run that matches
it in everything but knowledge and adapter, via `affectbench.analysis.compare_runs` (paired
bootstrap intervals); `exclude_leaked` leaves out samples whose knowledge states the gold answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..core.errors import AffectbenchError
from ..engine.gather import leaked_samples, source_label
from ..engine.store import Store

COVERAGE_HEADER = (
    "dataset",
    "run",
    "modalities",
    "source",
    "coverage",
    "trimmed",
    "chars",
    "empty",
    "refusal",
    "states answer",
    "names cue",
    "Δ",
    "CI low",
    "CI high",
)


def coverage_rows(store: Store, runs: Sequence[Any], gains: Sequence[Any] = ()) -> list[list[Any]]:
    """One row per (eval run with knowledge, source): what reached the prompts next to the gain it fed.

    Columns (`COVERAGE_HEADER`): the run's modalities directly + through knowledge, the source's
    coverage and trimmed share in this run's prompts and mean characters, the knowledge run's own
    empty, refusal, answer-stating and cue-naming rates, and the run's gain over zero-shot (Δ and
    its 95% CI; blank when the report has no matching baseline). Runs scored before coverage was
    recorded show blanks for coverage.
    """
    from ..analysis.corpus import corpus_of
    from ..analysis.runs import label

    by_run = {g.run_id: g for g in gains}
    rows: list[list[Any]] = []
    for r in runs:
        spec = r.run_spec
        if not spec.knowledge:
            continue
        m = r.metrics or {}
        cov = m.get("_knowledge") or {}
        via = "".join(m.get("_knowledge_modalities") or [])
        mods = spec.media.modalities + (f" + {via} via knowledge" if via else "")
        g = by_run.get(r.id)
        for kid in spec.knowledge:
            c = cov.get(kid) or {}
            q = store.run(kid).metrics if store.has_run(kid) else {}
            q = q or {}
            rows.append(
                [
                    corpus_of(r).title,
                    label(r, ("model", "setting")),
                    mods,
                    f"{c.get('label') or (source_label(store, kid) if store.has_run(kid) else '?')} ({kid})",
                    c.get("coverage"),
                    c.get("trimmed_rate"),
                    c.get("mean_chars"),
                    q.get("empty_rate"),
                    q.get("refusal_rate"),
                    q.get("leak_rate"),
                    q.get("cue_rate"),
                    g.delta if g else None,
                    g.lo if g else None,
                    g.hi if g else None,
                ]
            )
    return rows


def coverage_markdown(rows: Sequence[Sequence[Any]]) -> str:
    """`coverage_rows` as a markdown table (rates as percentages)."""

    def cell(j: int, v: Any) -> str:
        if v is None:
            return "–"
        if isinstance(v, float) and COVERAGE_HEADER[j] in (
            "coverage",
            "trimmed",
            "empty",
            "refusal",
            "states answer",
            "names cue",
        ):
            return f"{v:.0%}"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(COVERAGE_HEADER) + " |", "|" + "---|" * len(COVERAGE_HEADER)]
    lines += ["| " + " | ".join(cell(j, v) for j, v in enumerate(row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _matching_baseline(store: Store, run_id: str, baseline_ids: Sequence[str]) -> str | None:
    """The baseline run that differs from `run_id` only in knowledge (and its leak policy) and adapter."""
    from ..analysis.runs import spec_without

    drop = ("knowledge", "knowledge_policy", "model.adapter")
    target = spec_without(store.run(run_id), *drop)
    for bid in baseline_ids:
        if store.has_run(bid) and spec_without(store.run(bid), *drop) == target:
            return bid
    return None


def source_table(
    store: Store,
    names: Mapping[str, Sequence[str]],
    baseline: str = "zeroshot",
    entries: Sequence[str] | None = None,
    n_boot: int = 1000,
    exclude_leaked: bool = False,
    by: Sequence[str] = ("model", "setting"),
):
    """Gain rows "baseline vs each entry" (e.g. zero-shot vs each knowledge source) with paired CIs.

    `names` maps experiment entry names to their run ids (`Plan.names`); every eval run of the
    listed `entries` (default: every eval entry but the baseline) is compared with the baseline
    run that matches it in everything but knowledge and adapter. Row labels get the entry name.
    With `exclude_leaked`, samples whose knowledge states the gold answer are left out of both runs.
    """
    from ..analysis.gains import compare_runs
    from ..analysis.runs import info_from_run

    if baseline not in names:
        raise AffectbenchError(f"no experiment entry named {baseline!r}; entries: {', '.join(names)}")
    base_ids = list(names[baseline])
    wanted = list(entries) if entries is not None else [n for n in names if n != baseline]
    rows = []
    for entry in wanted:
        if entry not in names:
            raise AffectbenchError(f"no experiment entry named {entry!r}; entries: {', '.join(names)}")
        for rid in names[entry]:
            if not store.has_run(rid) or store.run(rid).kind != "eval":
                continue
            bid = _matching_baseline(store, rid, base_ids)
            if bid is None:
                continue
            exclude: set[str] = set()
            if exclude_leaked:
                exclude = leaked_samples(store, store.run(rid).run_spec.knowledge, info_from_run(store.run(bid)))
            try:
                (row,) = compare_runs(store, bid, [rid], n_boot=n_boot, by=by, exclude=exclude)
            except AffectbenchError as e:
                if not exclude:
                    raise
                raise AffectbenchError(f"{e} (leaked knowledge is excluded)") from e
            row.label = f"{entry}: {row.label}" + (" (leaks excluded)" if exclude_leaked else "")
            rows.append(row)
    return rows


def source_markdown(rows, digits: int = 4) -> str:
    """The source table as markdown (see `affectbench.analysis.gains_markdown`)."""
    from ..analysis.gains import gains_markdown

    return gains_markdown(rows, digits)
