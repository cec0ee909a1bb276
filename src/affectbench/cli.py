"""The command line: the only code that knows the terminal (typer + rich)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from . import __version__
from .core.errors import AffectbenchError

app = typer.Typer(
    help="Benchmark and boost multimodal LLMs on affective computing (sentiment, emotion, sarcasm, humour).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Check datasets and write the demo dataset.", no_args_is_help=True)
app.add_typer(data_app, name="data")

WORKSPACE_HELP = "workspace folder holding affectbench.sqlite (env AFFECTBENCH_WORKSPACE; default ./workspace)"


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _workspace(path: Path | None) -> Path:
    return Path(path or os.environ.get("AFFECTBENCH_WORKSPACE", "workspace"))


def _store(workspace: Path | None, read_only: bool = False):
    """The workspace's store; read-only commands open it with `read_only` (works on a read-only copy)."""
    from .engine.store import Store

    ws = _workspace(workspace)
    db = ws / "affectbench.sqlite"
    if not db.exists():
        raise AffectbenchError(f"no store at {db}; run an experiment first or pass --workspace")
    return Store(db, read_only=read_only)


@app.callback(invoke_without_command=True)
def _main(version: bool = typer.Option(False, "--version", help="print the version and exit")) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


def _selected_runs(plan, only: list[str]):
    """The plan's runs, or only those named (and what they need)."""
    runs = plan.runs
    if not only:
        return runs
    wanted = {rid for name in only for rid in plan.names.get(name, [])}
    unknown = [n for n in only if n not in plan.names]
    if unknown:
        raise AffectbenchError(f"--only: no run named {', '.join(unknown)}; names: {', '.join(plan.names)}")
    needed = set(wanted)
    for spec in runs:
        if spec.run_id in wanted:
            needed.update(spec.knowledge)
            if spec.model.adapter:
                needed.add(spec.model.adapter)
    return [r for r in runs if r.run_id in needed]


def _preflights(plan, runs, tokens_per_s: float | None):
    from .engine.preflight import preflight

    name_of = {rid: name for name, ids in plan.names.items() for rid in ids}
    return [preflight(spec, plan.exec, name_of.get(spec.run_id, ""), tokens_per_s) for spec in runs]


@app.command("plan")
def plan_cmd(
    experiment: Path = typer.Argument(..., help="experiment YAML file"),
    set_: list[str] = typer.Option([], "--set", help="override a setting: key=value (repeatable)"),
    only: list[str] = typer.Option([], help="plan only these entry names (and what they need)"),
    tokens_per_s: float | None = typer.Option(
        None, "--tokens-per-s", help="measured throughput (prompt + new tokens per second) for the time estimate"
    ),
) -> None:
    """Before anything runs: samples, prompt tokens per modality, context overruns, weights and KV-cache
    memory, estimated time, per run. Exits 2 when a run's prompts cannot fit its model's context."""
    from .config import load_experiment
    from .engine.preflight import table

    plan = load_experiment(experiment, set_)
    pfs = _preflights(plan, _selected_runs(plan, only), tokens_per_s)
    typer.echo(table(pfs))
    refused = [pf for pf in pfs if pf.refused]
    if refused:
        for pf in refused:
            _console().print(f"[red]refused[/] {pf.reason()}", markup=True, highlight=False)
        raise typer.Exit(2)


@app.command()
def run(
    experiment: Path = typer.Argument(..., help="experiment YAML file"),
    set_: list[str] = typer.Option([], "--set", help="override a setting: key=value (repeatable)"),
    workspace: Path | None = typer.Option(None, help=WORKSPACE_HELP),
    only: list[str] = typer.Option([], help="run only these entry names (and what they need)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the planned runs and their preflight, and exit"),
    progress: bool = typer.Option(True, help="show progress bars"),
    fingerprints: bool = typer.Option(
        True, help="print a short fingerprint of each run's knowledge texts, adapter and predictions"
    ),
) -> None:
    """Expand an experiment file into runs and execute them; reruns resume."""
    from .config import load_experiment
    from .engine.runner import Runner
    from .engine.store import Store

    plan = load_experiment(experiment, set_)
    ws = workspace or plan.workspace
    runs = _selected_runs(plan, only)
    console = _console()
    name_of = {rid: name for name, ids in plan.names.items() for rid in ids}
    if dry_run:
        from .engine.preflight import table

        for spec in runs:
            cells = [spec.run_id, name_of.get(spec.run_id, ""), spec.kind, f"{spec.dataset.name}:{_split_of(spec)}"]
            typer.echo("\t".join([*cells, f"{spec.model.backend}:{spec.model.name}"]))
        typer.echo("")
        typer.echo(table(_preflights(plan, runs, None)))
        return
    store = Store(Path(ws) / "affectbench.sqlite")
    runner = Runner(store, plan.exec, progress=progress)
    try:
        for spec in runs:
            split = spec.finetune.train_split if spec.kind == "finetune" and spec.finetune else spec.split
            console.print(
                f"[bold]{name_of.get(spec.run_id, '')}[/] {spec.kind} {spec.dataset.name}:{split} → {spec.run_id}"
            )
            record = runner.run(spec)
            if fingerprints:
                from .engine.provenance import result_fingerprints

                fp = result_fingerprints(store, record.id)
                console.print("   fingerprint: " + "  ".join(f"{k}={v}" for k, v in fp.items()), markup=False)
            ro = (record.metrics or {}).get("_readout") if record.kind == "readout" else None
            if ro:
                where = f"layer {ro['layer']} of 0…{ro['layers'] - 1}, pool {ro['pool']}"
                if ro.get("alpha") is not None:
                    where += f", alpha {ro['alpha']:g}"
                console.print(f"   readout {ro['method']}: {where} (chosen on {ro.get('selected_on', 'fixed')})")
            if record.kind in ("eval", "readout") and record.metrics:
                from .engine.scoring import unread_summary

                shown = {k: v for k, v in record.metrics.items() if not k.startswith("_") and "/" not in k}
                undefined = record.metrics.get("_undefined") or {}
                console.print(
                    "   "
                    + "  ".join(f"{k}={v}" if v is not None else f"{k}=n/a ({undefined.get(k, 'undefined')})"
                                for k, v in shown.items())
                )  # fmt: skip
                console.print(f"   {unread_summary(record.metrics)}", markup=False)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: stored predictions are kept; rerun the same command to continue[/]")
        raise typer.Exit(130) from None
    finally:
        runner.close()
    console.print(f"store: {store.path}   next: affectbench report --workspace {ws}")


def _split_of(spec) -> str:
    """The split a run reads: a finetune run trains on its train split."""
    return spec.finetune.train_split if spec.kind == "finetune" and spec.finetune else spec.split


@app.command()
def report(
    workspace: Path | None = typer.Option(None, help=WORKSPACE_HELP),
    by: str = typer.Option("model,prompt", help="columns that name a system in the leaderboard"),
    out: Path | None = typer.Option(None, help="write tables and the HTML page here (default WORKSPACE/report)"),
    formats: str = typer.Option("md,csv,latex,html", "--format", help="comma-separated: md, csv, latex, html"),
    cards: list[Path] = typer.Option([], "--cards", help="YAML file of your own model cards (repeatable)"),
    props: bool = typer.Option(True, help="load the runs' datasets to analyse dataset properties"),
) -> None:
    """Tables (markdown, CSV, LaTeX) and a static HTML page with plots, from the store."""
    from .analysis.model_cards import load_cards
    from .report import build_report, leaderboard_markdown

    store = _store(workspace, read_only=True)
    keys = tuple(k.strip() for k in by.split(",") if k.strip())
    typer.echo(leaderboard_markdown(store, by=keys))
    out_dir = out or (_workspace(workspace) / "report")
    written = build_report(
        store,
        out_dir,
        by=keys,
        formats=tuple(f.strip() for f in formats.split(",")),
        cards=load_cards(cards),
        props=_dataset_properties(store) if props else None,
    )
    for kind, path in written.items():
        _console().print(f"{kind}: {path}")


def _dataset_properties(store) -> dict:
    """Properties of every corpus the store's scored eval runs used (keyed by `Corpus.key`), over the
    splits they used."""
    from .analysis.corpus import corpus_of
    from .analysis.dataset_props import dataset_properties
    from .analysis.runs import eval_runs
    from .datasets import load_dataset
    from .datasets.check import probe_media

    def duration(sample) -> float | None:
        path = sample.media.get("video") or sample.media.get("audio")
        return probe_media(path).duration if path else None

    splits: dict[str, set[str]] = {}
    refs: dict[str, dict] = {}
    for run in eval_runs(store):
        key = corpus_of(run).key
        refs.setdefault(key, run.spec["dataset"])
        splits.setdefault(key, set()).add(run.spec["split"])
    props = {}
    for key, ref in refs.items():
        name = ref["name"]
        try:
            dataset = load_dataset(name, ref.get("root"), **ref.get("options", {}))
            samples = [s for split in sorted(splits[key]) for s in dataset.load(split)]
        except AffectbenchError as e:
            _console().print(f"[yellow]dataset properties of {name} skipped:[/] {e}")
            continue
        props[key] = dataset_properties(dataset.info, samples, duration=duration)
    return props


@app.command("ls")
def ls(
    what: str = typer.Argument(..., help="datasets | models | prompts | metrics | runs"),
    workspace: Path | None = typer.Option(None, help=WORKSPACE_HELP),
) -> None:
    """List what is available (or the runs in the store)."""
    from .core.registry import DATASETS, METRIC_SUITES, MODELS

    registries = {"datasets": DATASETS, "models": MODELS, "metrics": METRIC_SUITES}
    if what in registries:
        reg = registries[what]
        for name in reg.names():
            e = reg.entry(name)
            extra = f"  [needs affectbench[{e.extra}]]" if e.extra else ""
            typer.echo(f"{name:16s} {e.summary}{extra}")
        if what == "models":
            from .models.families import table

            typer.echo("\nmodel families (hf unless noted; tested = a tiny model of the real architecture runs in CI):")
            for row in table():
                typer.echo(f"  {row['family']:24s} video: {row['video']:6s} batch: {row['batch']:6s} {row['status']}")
                if row["runs_on"] != "hf" and row["notes"]:
                    typer.echo(f"    how: {row['notes']}")
    elif what == "prompts":
        from .prompts import list_prompts

        for name in list_prompts():
            typer.echo(name)
    elif what == "runs":
        from .engine.scoring import unread_summary

        store = _store(workspace, read_only=True)
        for r in store.runs():
            spec = r.spec
            n = store.count_predictions(r.id)
            cells = [r.id, r.kind, r.status, f"{spec['dataset']['name']}:{spec['split']}"]
            cells += [f"{spec['model']['backend']}:{spec['model']['name']}", f"{n} predictions"]
            if r.kind == "eval" and r.metrics and "_unread" in r.metrics:
                cells.append(unread_summary(r.metrics))
            elif r.kind == "eval" and n:  # not scored yet: the reasons stored so far
                counts = store.reason_counts(r.id)
                total = sum(counts.values())
                shown = ", ".join(f"{k} {v / n:.1%}" for k, v in sorted(counts.items()))
                cells.append(f"unread {total / n:.1%}" + (f": {shown}" if shown else ""))
            if r.status == "failed" and r.error:
                cells.append(f"error: {r.error[:200]}")
            typer.echo("\t".join(cells))
    else:
        raise AffectbenchError(f"ls: unknown kind {what!r}; choose datasets, models, prompts, metrics or runs")


@app.command()
def export(
    run_ids: list[str] = typer.Argument(None, help="runs to export (default: all)"),
    workspace: Path | None = typer.Option(None, help=WORKSPACE_HELP),
    out: Path = typer.Option(Path("export"), help="output folder"),
    fmt: str = typer.Option(
        "jsonl", "--format", help="jsonl or csv (predictions); llamafactory or swift (a finetune run's training pairs)"
    ),
) -> None:
    """Write predictions (one file per run) and runs.jsonl as flat files, or with --format llamafactory|swift
    the training pairs of finetune runs for LLaMA-Factory (qwen2_omni sharegpt) or ms-swift."""
    store = _store(workspace, read_only=True)
    if fmt in ("llamafactory", "swift"):
        from .finetune import export_run

        if not run_ids:
            raise AffectbenchError(f"export --format {fmt}: name the finetune run(s) to export")
        for rid in run_ids:
            for path in export_run(store, rid, fmt, out):
                typer.echo(str(path))
        return
    from .report.export import export_runs

    for path in export_runs(store, run_ids or [r.id for r in store.runs()], out, fmt):
        typer.echo(str(path))


@app.command()
def rm(
    run_ids: list[str] = typer.Argument(..., help="runs to delete with their predictions"),
    workspace: Path | None = typer.Option(None, help=WORKSPACE_HELP),
) -> None:
    """Delete runs from the store with their artefact folders (adapters, checkpoints)."""
    store = _store(workspace)
    for rid in run_ids:
        store.run(rid)  # an unknown id is an error before anything is deleted
    for rid in run_ids:
        store.delete_run(rid)
        typer.echo(f"deleted {rid}")


@app.command()
def rescore(
    run_id: str = typer.Argument(...),
    workspace: Path | None = typer.Option(None, help=WORKSPACE_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the new metrics without storing them"),
    decision: str | None = typer.Option(
        None, help="score-mode runs: re-decide answers from the stored option scores (auto|argmax|expected)"
    ),
) -> None:
    """Re-parse and re-score a stored run without calling any model. Refused when the dataset's
    labels or samples changed since the predictions were made (stored targets would be stale)."""
    from .engine.scoring import info_from_record, json_safe, score_run
    from .models.options import DECISIONS, check_rule
    from .prompts import load_prompt

    store = _store(workspace, read_only=dry_run)
    record = store.run(run_id)
    if record.kind != "eval":
        raise AffectbenchError(f"rescore: {run_id} is a {record.kind} run; only eval runs are scored")
    if not record.metrics or "_info" not in record.metrics:
        raise AffectbenchError(f"rescore: run {run_id} was never scored (no dataset info stored); rerun it")
    info = info_from_record(record.metrics["_info"])
    _check_data_unchanged(store, record)
    spec = record.run_spec
    # refusals come before anything is written: a refused rescore leaves the store as it was
    score = spec.generation.mode == "score" and spec.kind == "eval"
    if decision is not None and not score:
        raise AffectbenchError(f"rescore: --decision applies to score-mode runs; {run_id} generated its answers")
    if decision is not None and decision not in DECISIONS:
        raise AffectbenchError(f"rescore: unknown --decision {decision!r}; use {', '.join(DECISIONS)}")
    prompt = load_prompt(spec.prompt, info, spec.prompt_language)
    if score:
        decision = decision or spec.generation.decision
        check_rule(decision, prompt.options(info))  # ConfigError naming why (expected over labels)
    target = run_id
    if score and decision != spec.generation.decision and not dry_run:
        # another decision rule is another run (the rule is in the run id): the stored option scores
        # are copied to it and re-decided there, no model call; the original run is left as it is
        new_spec = spec.model_copy(update={"generation": spec.generation.model_copy(update={"decision": decision})})
        env = dict(record.env or {}, rescored_from=run_id)
        env.pop("segments", None)
        target = store.open_run(new_spec, env=env).id
        if not store.count_predictions(target):
            store.add_predictions(target, store.predictions(run_id))
        _console().print(f"[cyan]rescore: decision {decision!r} is run {target} (scores copied from {run_id})[/]")
    try:
        metrics = score_run(store, target, info, prompt, write=not dry_run, decision=decision)
        if spec.knowledge:  # keep the run's knowledge coverage summary
            from .engine.gather import knowledge_metrics

            metrics = dict(metrics, **knowledge_metrics(store, target))
            if not dry_run:
                store.set_metrics(target, metrics)
        if target != run_id:
            store.set_status(target, "done")
    except AffectbenchError as e:
        if not dry_run:
            store.set_status(target, "failed", error=f"scoring: {e}")
        raise
    shown = json_safe({k: v for k, v in metrics.items() if k != "_info"})
    typer.echo(json.dumps(shown, indent=1, ensure_ascii=False, allow_nan=False))


def _check_data_unchanged(store, record) -> None:
    """Refuse to rescore when the run's dataset (label files, targets, media) changed on disk;
    when the dataset cannot be read, say that the stored targets are used unchecked."""
    from .datasets import load_dataset, select_samples
    from .engine.provenance import check_same_inputs, data_record

    spec = record.run_spec
    try:
        dataset = load_dataset(spec.dataset.name, spec.dataset.root, **spec.dataset.options)
        samples = select_samples(dataset.load(spec.split), spec.limit, spec.seed)
    except (AffectbenchError, OSError) as e:
        _console().print(f"[yellow]rescore: dataset not readable ({e}); scoring the stored targets unchecked[/]")
        return
    data = data_record(samples, dataset.label_files(spec.split), dataset.root)
    digests = data.pop("samples")
    check_same_inputs(record, {"data": data}, store, samples, digests, action="rescore")


@data_app.command("check")
def data_check(
    name: str = typer.Argument(..., help="dataset name (affectbench ls datasets)"),
    root: Path = typer.Option(..., help="the dataset's folder"),
    option: list[str] = typer.Option([], "--option", help="adapter option key=value (repeatable)"),
) -> None:
    """Report missing, unreadable, duplicated or mislabeled items; exit 1 if unusable."""
    from .config import parse_overrides
    from .datasets.check import check_dataset

    report_ = check_dataset(name, root, **dict(parse_overrides(option)))
    typer.echo(report_.render())
    raise typer.Exit(0 if report_.usable else 1)


@data_app.command("demo")
def data_demo(
    out: Path = typer.Argument(..., help="folder to write the demo dataset into"),
    n: int = typer.Option(120, help="number of clips"),
    seed: int = typer.Option(0),
) -> None:
    """Write the small synthetic demo dataset (MMSA layout) used by the quickstart."""
    from .datasets.demo import write_demo

    path = write_demo(out, n=n, seed=seed)
    typer.echo(f"demo dataset written to {path} (synthetic clips; see README)")


def _library_defaults() -> None:
    """Keep the terminal for our progress bars (no weight-loading bars or library advisories), and
    stop idle OpenMP threads from spinning: on a CPU shared by media decoding and torch, spinning
    waits made a tiny model's generate 5-14x slower (bench/bench_pipeline.py). User settings win."""
    import warnings

    for key, value in (
        ("TRANSFORMERS_VERBOSITY", "error"),
        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
        ("TF_CPP_MIN_LOG_LEVEL", "2"),
        ("OMP_WAIT_POLICY", "PASSIVE"),
    ):
        os.environ.setdefault(key, value)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def main() -> None:
    _library_defaults()
    try:
        app()
    except AffectbenchError as e:
        _console().print(f"[red]error:[/] {e}", markup=True, highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
