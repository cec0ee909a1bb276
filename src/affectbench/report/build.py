"""`affectbench report`: tables (md, csv, latex) and the static HTML page, from the store.

Sections appear only when the store holds their data: ablations need runs differing only in
modalities; gains need a zero-shot run next to knowledge/SFT runs of the same model and dataset.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ..analysis.ablation import modality_ablation
from ..analysis.architecture import ablation_by_family, architecture_study
from ..analysis.corpus import CORPUS_HEADER, CORPUS_NOTE, corpus_key, corpus_of, corpus_table, group_key
from ..analysis.correlate import correlations, performance_rows
from ..analysis.dataset_props import DatasetProperties
from ..analysis.errors import confusion, hardest_samples, parse_failures
from ..analysis.gains import (
    GAINS_NOTE,
    GainRow,
    apply_holm,
    compare_runs,
    gains_markdown,
    readout_comparisons,
    undefined_cell,
)
from ..analysis.model_cards import ModelCard, card_for, load_cards
from ..analysis.runs import analysed_runs, eval_runs, excluded_note
from ..core.errors import AffectbenchError
from ..engine.store import RunRecord, Store
from . import html as H
from .knowledge import COVERAGE_HEADER, coverage_markdown, coverage_rows
from .tables import (
    RUNS_HEADER,
    Table,
    dataset_tables,
    leaderboard,
    rows_markdown,
    runs_rows,
    to_csv,
    to_latex,
    to_markdown,
)

MIN_RUNS_FOR_DRIVERS = 8  # below this, a Spearman rho over runs says nothing (3 points give CIs like [0.87, 1])

FORMATS = ("md", "csv", "latex", "html")
COVERAGE_NOTE = (
    "Per knowledge source of each GKP run: the share of samples whose prompt got its text (coverage), "
    "the share of those cut at a sentence end to the source's fair share of the knowledge budget (trimmed), "
    "mean characters in the prompt, the source's empty / refusal / answer-stating / cue-naming rates, "
    "and the run's gain over zero-shot it fed (Δ, 95% paired bootstrap CI)."
)


def leaderboard_markdown(
    store: Store, by: Sequence[str] = ("model", "prompt"), cards: Iterable[ModelCard] | None = None
) -> str:
    """The leaderboard as markdown, for the terminal."""
    t = leaderboard(store, by, cards=list(cards) if cards is not None else load_cards())
    if not t.rows:
        return "No scored eval runs in this store yet: run an experiment first (affectbench run FILE).\n"
    return to_markdown(t)


# The settings a gain row may credit; runs compared must agree on everything else (prompt included).
GAIN_FACTORS = ("knowledge", "knowledge_policy", "model.adapter")


def gain_factor(run: RunRecord) -> str:
    """What a run adds over zero-shot: GKP, SFT or GKP+SFT (GKP masked when its knowledge is masked)."""
    spec = run.run_spec
    bits = []
    if spec.knowledge:
        bits.append("GKP (masked)" if spec.knowledge_policy == "mask" else "GKP")
    if spec.model.adapter:
        bits.append("SFT")
    return "+".join(bits)


def gain_groups(runs: Sequence[RunRecord]) -> list[tuple[RunRecord, list[RunRecord]]]:
    """(baseline, others): a zero-shot run and the knowledge/SFT runs that differ from it ONLY in
    knowledge and adapter (same corpus, model, prompt, dataset options, split, media, generation).
    `runs` should be complete runs (`analysis.runs.analysed_runs`): partial ones are never compared."""
    groups: dict[str, list[RunRecord]] = {}
    for r in runs:
        groups.setdefault(group_key(r, *GAIN_FACTORS), []).append(r)
    out = []
    for rs in groups.values():
        plain = [r for r in rs if not r.run_spec.knowledge and not r.run_spec.model.adapter]
        boosted = [r for r in rs if r.run_spec.knowledge or r.run_spec.model.adapter]
        if not plain or not boosted:
            continue
        base = next((r for r in plain if r.run_spec.knowledge_policy == "keep"), plain[0])
        out.append((base, boosted))
    return out


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def build_report(
    store: Store,
    out_dir: str | Path,
    by: Sequence[str] = ("model", "prompt"),
    formats: Sequence[str] = FORMATS,
    cards: Iterable[ModelCard] | None = None,
    props: Mapping[str, DatasetProperties] | None = None,
    n_boot: int = 1000,
    max_confusions: int = 12,
) -> dict[str, Path]:
    """Write the report files into `out_dir`; returns {kind: path} for what was written.

    Kinds: md (leaderboard + per-dataset tables + gains), csv (leaderboard), latex (booktabs tables),
    html (the static page). `props` (dataset name -> DatasetProperties) adds dataset-property analyses.
    """
    bad = set(formats) - set(FORMATS)
    if bad:
        raise AffectbenchError(f"unknown report format(s) {', '.join(sorted(bad))}; use {', '.join(FORMATS)}")
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    cards = list(cards) if cards is not None else load_cards()
    by = tuple(by)
    lb = leaderboard(store, by, cards=cards)
    details = dataset_tables(store, by, cards)
    runs = eval_runs(store)
    complete, excluded = analysed_runs(store)
    gains: list[GainRow] = []
    for base, others in gain_groups([r for r in complete if r.kind == "eval"]):  # readout runs: below
        factors = {r.id: gain_factor(r) for r in others}
        gains += compare_runs(store, base.id, [r.id for r in others], n_boot=n_boot, cards=cards, factors=factors)
    for base, others, factors in readout_comparisons(complete):  # readout vs zero-shot and vs generative SFT
        gains += compare_runs(store, base.id, [r.id for r in others], n_boot=n_boot, cards=cards, factors=factors)
    apply_holm(gains)  # one table: every gain row of the report
    written: dict[str, Path] = {}

    if "md" in formats:
        parts = ["# affectbench leaderboard\n", to_markdown(lb) if lb.rows else "No scored eval runs.\n"]
        if lb.rows:
            parts += [
                f"\n{lb.caption}\n\n## Corpora\n\n{CORPUS_NOTE}\n\n",
                rows_markdown(CORPUS_HEADER, corpus_table(runs)),
            ]
            parts += ["\n## Runs\n\n", rows_markdown(RUNS_HEADER, runs_rows(store, by, cards))]
        for t in details:
            parts += [f"\n## {t.title}\n\n", to_markdown(t)]
        if gains:
            parts += ["\n## Gains over zero-shot\n\n", gains_markdown(gains)]
        if excluded:
            parts += [f"\nAnalyses (gains, ablations, what drives performance): {excluded_note(excluded)}.\n"]
        cov = coverage_rows(store, runs, gains)
        if cov:
            parts += ["\n## Knowledge: what reached the prompt\n\n", COVERAGE_NOTE + "\n\n", coverage_markdown(cov)]
        written["md"] = _write(out / "leaderboard.md", "".join(parts))
    if "csv" in formats:
        written["csv"] = _write(out / "leaderboard.csv", to_csv(lb))
    if "latex" in formats:
        tex = [
            "% affectbench tables; needs \\usepackage{booktabs}\n",
            to_latex(lb, label_key="tab:leaderboard"),
        ]
        for t in details:
            tex += ["\n", to_latex(t, label_key=f"tab:{t.title}")]
        written["latex"] = _write(out / "leaderboard.tex", "".join(tex))
    if "html" in formats:
        page = _html(store, lb, details, gains, runs, by, cards, props, n_boot, max_confusions, excluded_note(excluded))
        written["html"] = _write(out / "report.html", page)
    return written


def _html(
    store: Store,
    lb: Table,
    details: list[Table],
    gains: list[GainRow],
    runs: list[RunRecord],
    by: tuple[str, ...],
    cards: list[ModelCard],
    props: Mapping[str, DatasetProperties] | None,
    n_boot: int,
    max_confusions: int,
    excluded: str = "",
) -> str:
    """The static HTML page: one section per analysis, in page order, each only when the store has its data;
    `excluded` says how many partial runs the analyses left out (`analysis.runs.excluded_note`)."""
    sections = [
        _leaderboard_section(store, lb, details, by, cards, runs),
        _models_section(runs, cards),
        _gains_section(gains, excluded),
        _coverage_section(store, runs, gains),
        _ablation_section(store, by, cards, n_boot, excluded),
        _performance_section(store, cards, props, n_boot, excluded),
        _datasets_section(props),
        _errors_section(store, runs, by, cards, max_confusions, excluded),
    ]
    subtitle = f"{len(runs)} scored eval runs · store {store.path} · generated {time.strftime('%Y-%m-%d %H:%M')}"
    return H.render_page("affectbench report", subtitle, [s for s in sections if s is not None])


def _leaderboard_section(
    store: Store, lb: Table, details: list[Table], by: tuple[str, ...], cards: list[ModelCard], runs: list[RunRecord]
) -> H.Section:
    """Leaderboard heatmap and table, the corpus of each column, the runs behind it and the per-corpus
    tables (or a line saying none)."""
    from . import plots

    s = H.Section("leaderboard", "Leaderboard", lb.caption)
    if lb.rows:
        s.add_img(plots.heatmap(lb), "leaderboard heatmap")
        s.add_table(lb)
        s.add_text(CORPUS_NOTE)
        s.add_rows(CORPUS_HEADER, corpus_table(runs), heading="Corpora: what each column measured", text=True)
        s.add_rows(RUNS_HEADER, runs_rows(store, by, cards), heading="Runs: n, split / fold and status", text=True)
        for t in details:
            s.add_table(t, heading=t.title)
    else:
        s.parts.append("<p>No scored eval runs in this store yet.</p>")
    return s


MODEL_CARD_HEADER = (
    "model",
    "LLM",
    "LLM params (B)",
    "vision encoder",
    "audio encoder",
    "fusion",
    "time-interleaved",
    "modalities",
)


def _models_section(runs: list[RunRecord], cards: list[ModelCard]) -> H.Section | None:
    """The model cards of the evaluated models; None when no run's model has a card."""
    used = {c.id for c in (card_for(r.run_spec.model, cards) for r in runs) if c is not None}
    used_cards = [c for c in cards if c.id in used]
    if not used_cards:
        return None
    s = H.Section("models", "Model cards", "Architecture of the evaluated models (– where unknown).")
    s.add_rows(
        list(MODEL_CARD_HEADER),
        [
            [c.id, c.llm, c.llm_params_b, c.vision_encoder, c.audio_encoder, c.fusion, c.time_interleaved, c.modalities]
            for c in used_cards
        ],
        text=True,
    )
    return s


GAINS_HEADER = (
    "dataset",
    "run",
    "factor",
    "metric",
    "baseline",
    "value",
    "Δ",
    "CI low",
    "CI high",
    "undef.",
    "p",
    "p (Holm)",
    "Holm ✓",
    "n",
)


def _gains_section(gains: list[GainRow], excluded: str = "") -> H.Section | None:
    """Gains over zero-shot (plot and table with paired-bootstrap CIs and Holm-corrected p); None without gains."""
    if not gains:
        return None
    from . import plots

    s = H.Section("gains", "Knowledge and fine-tuning gains", GAINS_NOTE)
    if excluded:
        s.add_text(f"Not compared: {excluded}.")
    s.add_img(plots.gains_plot(gains), "gains over baseline")
    s.add_rows(
        list(GAINS_HEADER),
        [
            [
                g.dataset,
                g.label,
                g.factor,
                g.metric,
                g.baseline_value,
                g.value,
                g.delta,
                g.lo,
                g.hi,
                undefined_cell(g.undefined),
                g.p_value,
                g.p_holm,
                "✓" if g.survives_holm else "",
                g.n,
            ]
            for g in gains
        ],
    )
    return s


def _coverage_section(store: Store, runs: list[RunRecord], gains: list[GainRow]) -> H.Section | None:
    """What knowledge reached the prompts (see COVERAGE_NOTE); None when no run used knowledge."""
    cov = coverage_rows(store, runs, gains)
    if not cov:
        return None
    s = H.Section("knowledge", "Knowledge: what reached the prompt", COVERAGE_NOTE)
    s.add_rows(list(COVERAGE_HEADER), cov)
    return s


def _ablation_section(
    store: Store, by: tuple[str, ...], cards: list[ModelCard], n_boot: int, excluded: str = ""
) -> H.Section | None:
    """Marginal contribution of each modality (plot, one table per model family); None without ablation runs."""
    marginals, abl_scores = modality_ablation(store, n_boot=n_boot, by=by, cards=cards)
    if not abl_scores:
        return None
    from . import plots

    s = H.Section(
        "ablation",
        "Modality ablation",
        "Marginal contribution of a modality: mean over subsets S of metric(S+m) − metric(S), 95% CI.",
    )
    if excluded:
        s.add_text(f"Not used: {excluded}.")
    s.add_img(plots.ablation_plot(abl_scores, marginals), "modality ablation")
    for family, rows in ablation_by_family(marginals).items():
        s.add_rows(
            ["dataset", "model", "modality", "metric", "contribution", "CI low", "CI high", "undef.", "pairs", "n"],
            [
                [
                    m.dataset,
                    m.model,
                    m.modality,
                    m.metric,
                    m.contribution,
                    m.lo,
                    m.hi,
                    undefined_cell(m.undefined),
                    ", ".join(m.pairs),
                    m.n,
                ]
                for m in rows
            ],
            heading=f"family: {family}",
        )
    return s


def _performance_section(
    store: Store,
    cards: list[ModelCard],
    props: Mapping[str, DatasetProperties] | None,
    n_boot: int,
    excluded: str = "",
) -> H.Section | None:
    """'What drives performance' from the complete runs' attributes (see `_drivers_section`); None without
    runs. `excluded` names the partial runs left out."""
    perf = performance_rows(store, cards, props)
    corr = correlations(perf, n_boot=n_boot) if len(perf) >= MIN_RUNS_FOR_DRIVERS else []
    study = architecture_study(perf, n_boot=n_boot)
    if not perf and not excluded:
        return None
    s = _drivers_section(perf, corr, study)
    if excluded:
        s.add_text(f"Not used: {excluded} (they measured other samples than their siblings).")
    return s


DATASET_HEADER = (
    "dataset",
    "language",
    "samples",
    "classes",
    "entropy (norm.)",
    "imbalance",
    "duration mean (s)",
    "transcript mean",
    "speakers",
    "unimodal agreement",
)


def _datasets_section(props: Mapping[str, DatasetProperties] | None) -> H.Section | None:
    """One row of properties per dataset; None when no properties were given."""
    if not props:
        return None
    s = H.Section("datasets", "Dataset properties")
    s.add_rows(
        list(DATASET_HEADER),
        [
            [
                p.name,
                p.language,
                p.n_samples,
                p.n_classes,
                p.label_entropy_norm,
                p.imbalance_ratio,
                p.duration.mean,
                p.transcript_length.mean,
                p.n_speakers,
                (p.unimodal_agreement or {}).get("all"),
            ]
            for p in props.values()
        ],
    )
    return s


def _errors_section(
    store: Store,
    runs: list[RunRecord],
    by: tuple[str, ...],
    cards: list[ModelCard],
    max_confusions: int,
    excluded: str = "",
) -> H.Section | None:
    """Confusion matrices (at most `max_confusions` runs per corpus), hardest samples and unread answers
    of the complete runs; None without runs."""
    if not runs:
        return None
    from . import plots

    s = H.Section("errors", "Error analysis", "Confusions (rows: true class), hardest samples, parse failures.")
    if excluded:
        s.add_text(f"Hardest samples and unread answers: {excluded}.")
    for ds in dict.fromkeys(corpus_key(r) for r in runs):
        chosen = [r for r in runs if corpus_key(r) == ds][:max_confusions]
        conf = [confusion(store, r.id, by, cards) for r in chosen]
        s.add_img(plots.confusion_grid(conf), f"confusion matrices {corpus_of(chosen[0]).title}")
    hard = hardest_samples(store, top=15, by=by, cards=cards)
    s.add_rows(
        ["dataset", "sample", "target", "runs", "wrong", "wrong rate"],
        [[h.dataset, h.sample_id, h.target, h.n_runs, h.n_wrong, h.wrong_rate] for h in hard],
        heading="Hardest samples",
    )
    pf = parse_failures(store, cards)
    s.add_rows(
        ["model", "dataset", "answers", "unread", "rate", "reasons"],
        [
            [p.model, p.dataset, p.n, p.failures, p.rate, ", ".join(f"{k} {v}" for k, v in sorted(p.reasons.items()))]
            for p in pf
        ],
        heading="Unread answers (model errors excluded)",
    )
    return s


def _drivers_section(perf, corr, study) -> H.Section:
    """ "What drives performance": per-model architecture effects (or why there are none) and, from
    MIN_RUNS_FOR_DRIVERS scored runs on, Spearman ρ of each run attribute (or why there is none)."""
    s = H.Section("drivers", "What drives performance")
    if study.too_few:
        s.add_text(f"Architecture: {study.too_few}.")
    else:
        s.add_text(
            "Architecture (model cards), one unit per model: each model's mean within-dataset relative score over "
            "its zero-shot full-modality runs; 0/1 attributes as the difference with − without, numeric ones as "
            "Spearman ρ over models; 95% bootstrap intervals resampling models."
        )
        s.add_rows(
            ["attribute", "effect", "kind", "CI low", "CI high", "undef.", "models", "levels"],
            [
                [e.attribute, e.effect, e.kind, e.lo, e.hi, undefined_cell(e.undefined), e.n_models, e.levels]
                for e in study.effects
            ],
            heading="architecture attributes (per model)",
        )
        if study.skipped:
            s.add_rows(["attribute", "not estimated because"], sorted(study.skipped.items()), text=True)
    if study.models:
        s.add_rows(["model", "mean relative score"], sorted(study.models.items(), key=lambda kv: -kv[1]))
    if len(perf) < MIN_RUNS_FOR_DRIVERS:
        s.add_text(
            f"Only {len(perf)} scored run(s); a rank correlation over fewer than {MIN_RUNS_FOR_DRIVERS} runs says "
            "nothing about what drives performance, so none is shown. Add models or settings."
        )
    elif corr:
        from . import plots

        s.add_text("Spearman ρ of every run attribute with the run's relative score; 95% bootstrap intervals.")
        s.add_rows(
            ["attribute", "ρ", "CI low", "CI high", "undef.", "runs"],
            [[c.attribute, c.rho, c.lo, c.hi, undefined_cell(c.undefined), c.n] for c in corr],
            heading="run attributes (per run)",
        )
        s.add_grid([(plots.scatter_plot(perf, c.attribute), f"scatter {c.attribute}") for c in corr[:6]])
    return s
