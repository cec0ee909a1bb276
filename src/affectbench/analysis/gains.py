"""Gains of runs over a baseline on the same samples and under the same policy as the headline
numbers (errors and unread answers count as wrong), with a paired (cluster) bootstrap interval,
a paired permutation test, and Holm's correction across the rows of a table."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..core.errors import AffectbenchError
from ..engine.store import Store
from ..metrics import primary_metric
from .corpus import corpus_of, require_same_corpus
from .model_cards import ModelCard
from .runs import aligned, higher_is_better, info_from_run, is_partial, label, partial_reason, readout_label


@dataclass
class GainRow:
    """One run compared with the baseline: `delta` = metric(run) − metric(baseline) on shared samples."""

    baseline: str
    run_id: str
    label: str
    dataset: str
    metric: str
    baseline_value: float
    value: float
    delta: float
    lo: float
    hi: float
    p_value: float | None  # paired permutation (approximate randomisation) test, two-sided
    n: int
    higher_is_better: bool
    factor: str = ""  # the one setting the run differs in from the baseline (GKP, SFT, GKP+SFT)
    p_holm: float | None = None  # Holm-adjusted p across the rows of its table (see `apply_holm`)
    alpha: float = 0.05
    undefined: float = 0.0  # share of bootstrap replicates where the delta was undefined (left out)

    @property
    def survives_holm(self) -> bool | None:
        """Whether the gain stays significant at `alpha` after Holm's correction; None before it."""
        return None if self.p_holm is None else self.p_holm <= self.alpha

    @property
    def improved(self) -> bool | None:
        """True/False when the interval excludes zero in the good/bad direction, None when it does not."""
        if self.lo > 0 or self.hi < 0:
            return (self.lo > 0) == self.higher_is_better
        return None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["improved"] = self.improved
        return d


def compare_runs(
    store: Store,
    baseline_run_id: str,
    other_run_ids: Sequence[str],
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    by: Sequence[str] = ("model", "setting"),
    cards: Iterable[ModelCard] | None = None,
    exclude: Collection[str] = (),
    n_perm: int = 9999,
    factors: dict[str, str] | None = None,
) -> list[GainRow]:
    """Delta of the primary metric of each run over the baseline on the samples both cover (errors
    and unread answers count as wrong, as in the headline numbers), with a paired (cluster)
    bootstrap CI and a paired permutation p-value (`metrics.paired_permutation`, `n_perm` draws).

    Samples in `exclude` (ids) are left out of both runs, e.g. those whose knowledge leaked the answer.
    `factors` (run id -> name) labels what each run changes relative to the baseline.

    Refused (AffectbenchError, one sentence saying what differs) when a run measured another corpus
    than the baseline (`corpus.require_same_corpus`: adapter, corpus name, task, split scheme, version,
    label files) or is partial (unfinished, failed or a `limit` subset: `runs.is_partial`).
    """
    from .. import metrics

    base = store.run(baseline_run_id)
    info = info_from_run(base)
    name, fn = primary_metric(info)
    cards = list(cards) if cards is not None else None
    others = [store.run(rid) for rid in other_run_ids]
    for run in [base, *others]:
        if is_partial(run):
            raise AffectbenchError(
                f"cannot compare run {run.id}: it is partial ({partial_reason(run)}); only complete runs are "
                "compared (rerun it without `limit`, or to the end)"
            )
    for other in others:
        require_same_corpus(base, other)
    corpus = corpus_of(base).title
    rows = []
    for other in others:
        rid = other.id
        al = aligned(store, [baseline_run_id, rid], exclude)
        if not al.sample_ids:
            left_out = f" outside the {len(exclude)} excluded ones" if exclude else ""
            raise AffectbenchError(
                f"runs {baseline_run_id} and {rid} share no answered samples{left_out}; nothing to compare"
            )
        groups = al.groups if any(al.groups) else None
        res = metrics.paired_bootstrap(
            fn, al.preds[baseline_run_id], al.preds[rid], al.targets, groups=groups, n=n_boot, alpha=alpha, seed=seed
        )
        perm = metrics.paired_permutation(
            fn, al.preds[baseline_run_id], al.preds[rid], al.targets, n_resamples=n_perm, seed=seed
        )
        rows.append(
            GainRow(
                baseline=baseline_run_id,
                run_id=rid,
                label=label(other, by, cards),
                dataset=corpus,
                metric=name,
                baseline_value=float(res.point_a),
                value=float(res.point_b),
                delta=float(res.delta),
                lo=float(res.lo),
                hi=float(res.hi),
                p_value=float(perm.p_value),
                n=len(al.sample_ids),
                higher_is_better=higher_is_better(name),
                factor=(factors or {}).get(rid, ""),
                alpha=alpha,
                undefined=float(res.undefined),
            )
        )
    return rows


def apply_holm(rows: Sequence[GainRow]) -> list[GainRow]:
    """Set each row's Holm-adjusted p-value across `rows` (one table); returns the rows."""
    from ..metrics import holm

    for r, adj in zip(rows, holm([r.p_value for r in rows]), strict=True):
        r.p_holm = adj
    return list(rows)


GAINS_NOTE = (
    "Each row compares two runs that differ only in the factor it names (same model, prompt, data, "
    "split, media and generation settings), on the same samples and policy as the headline numbers "
    "(errors and unread answers count as wrong). Δ = run − baseline; 95% CI: paired bootstrap over "
    "groups (video/dialogue/scene); undef.: share of bootstrap replicates where the metric was undefined "
    "and left out (⚠ above 5 %: the interval describes only the others); p: two-sided paired permutation "
    "test; ✓: significant at α = 0.05 after a Holm correction across this table's rows."
)


def undefined_cell(share: float) -> str:
    """The share of undefined replicates as shown next to an interval: "0.0%", "7.5% ⚠" above 5 %."""
    from ..metrics.bootstrap import UNDEFINED_WARN

    return f"{share:.1%}" + (" ⚠" if share > UNDEFINED_WARN else "")


def gains_markdown(rows: Sequence[GainRow], digits: int = 4) -> str:
    """A markdown table of gains: factor, Δ with its bootstrap CI, permutation p, Holm-adjusted p and ✓."""
    if not rows:
        return ""
    f = f"{{:.{digits}f}}"
    out = [
        GAINS_NOTE,
        "",
        "| run | factor | corpus | metric | baseline run | baseline | value | Δ | 95% CI | undef. | p | p (Holm) | n |",
        "|---|---|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        mark = " ✓" if r.survives_holm else ""
        p = "" if r.p_value is None else f.format(r.p_value)
        ph = "" if r.p_holm is None else f.format(r.p_holm)
        arrow = "" if r.higher_is_better else " ↓"
        out.append(
            f"| {r.label} | {r.factor or '–'} | {r.dataset} | {r.metric}{arrow} | `{r.baseline}` | "
            f"{f.format(r.baseline_value)} | {f.format(r.value)} | {r.delta:+.{digits}f}{mark} | "
            f"[{f.format(r.lo)}, {f.format(r.hi)}] | {undefined_cell(r.undefined)} | {p} | {ph} | {r.n} |"
        )
    return "\n".join(out) + "\n"


# What a readout run may differ in from the generative runs it is compared with: its kind and head, the
# fine-tune block, decoding and parsing (a head reads no text), and the knowledge / adapter the row names.
READOUT_FREE = ("kind", "readout", "finetune", "generation", "parse", "knowledge", "knowledge_policy", "model.adapter")


def readout_key(run: Any) -> str:
    """The identity shared by a readout run and the generative runs it is compared with: model (without
    adapter), prompt, dataset, split, media, limit, seed and the system prompt."""
    from ..core.specs import canonical_json

    ident = run.run_spec.identity()
    system = (ident.get("generation") or {}).get("system_prompt")
    for path in READOUT_FREE:
        node = ident
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.get(p, {})
        node.pop(leaf, None)
    ident["system_prompt"] = system
    return canonical_json(ident)


def readout_comparisons(runs: Sequence[Any]) -> list[tuple[Any, list[Any], dict[str, str]]]:
    """(baseline, readout runs, factors) rows of the gains table for readout runs (finished, not `limit`
    subsets): each against the zero-shot eval run of the same model, prompt, data and media (factor
    "readout:probe" or "GKP+readout:probe"), and against the generative SFT eval run with the same knowledge
    ("readout:probe vs SFT", "GKP+readout:probe vs GKP+SFT"), so the table reads readout vs generative SFT,
    each with and without GKP. Where several eval runs qualify, the first created is the baseline."""
    done = [r for r in runs if not is_partial(r)]
    readouts = [r for r in done if r.kind == "readout"]
    evals = [r for r in done if r.kind == "eval"]
    out: dict[str, tuple[Any, list[Any], dict[str, str]]] = {}
    for ro in readouts:
        key, spec = readout_key(ro), ro.run_spec
        gkp = "GKP+" if spec.knowledge else ""
        same = [e for e in evals if readout_key(e) == key]
        zero = next((e for e in same if not e.run_spec.knowledge and not e.run_spec.model.adapter), None)
        sft = next(
            (
                e
                for e in same
                if e.run_spec.model.adapter
                and list(e.run_spec.knowledge) == list(spec.knowledge)
                and e.run_spec.knowledge_policy == spec.knowledge_policy
            ),
            None,
        )
        for base, factor in ((zero, f"{gkp}{readout_label(ro)}"), (sft, f"{gkp}{readout_label(ro)} vs {gkp}SFT")):
            if base is None:
                continue
            row = out.setdefault(base.id, (base, [], {}))
            row[1].append(ro)
            row[2][ro.id] = factor
    return list(out.values())
