"""Fine-tuning speed and memory: optimizer steps/s and peak RSS of `affectbench.finetune.lora.train_lora`
on the same training pairs, for the tiny Qwen2.5-Omni thinker (`hf`) and the cascade's Gemma-3-270M;
and, with `--plain`, the same steps through a plain PyTorch loop (tests/finetune/_plain_loop.py: the
model's own loss, torch AdamW, clip_grad_norm_, LambdaLR) on the very batches the Trainer drew, with
the same seed, schedule and warm-up: s/step of each, their ratio, both loss curves and the largest
difference between the two adapters.

Each case runs in a fresh subprocess (its own peak RSS). Pairs: the fine-tuning test corpus
(`tests/finetune/_fixtures.py`, text only), rendered by the run's prompt exactly as `finetune` runs do.
The first optimizer step (warm-up: lazy init, allocator) is timed separately from the rest; CPU
seconds per step (all threads of the process) are printed too, as the steadier figure on a shared machine.

    .venv/bin/python bench/bench_finetune.py [--cases tiny,gemma] [--steps 8] [--threads 2] [--plain] [--lr 1e-3]

To compare with the hand-written loop this replaced, run the same script on commit 7fb672e
(`mkdir /tmp/old && git archive 7fb672e src | tar -x -C /tmp/old`, then
`PYTHONPATH=/tmp/old/src .venv/bin/python bench/bench_finetune.py`: the script and its pairs stay the same).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _synth import REPO, current_rss_mb, peak_rss_mb


def child(case: str, steps: int, threads: int, work: Path, plain: bool = False, lr: float = 1e-3) -> dict:
    import torch
    from tests.finetune._fixtures import dataset_ref, write_corpus

    from affectbench.core.specs import FinetuneSpec, RunSpec
    from affectbench.datasets import load_dataset
    from affectbench.finetune.backends import trainable_for
    from affectbench.finetune.lora import train_lora
    from affectbench.finetune.pairs import pairs_for_spec

    torch.set_num_threads(threads)
    batch = 4
    if case == "tiny":
        from tests._tiny import tiny_qwen_omni

        model = {"backend": "hf", "name": str(tiny_qwen_omni(work / "omni"))}
    else:
        model = {"backend": "cascade"}
    root = write_corpus(work / "data", {"train": batch * steps, "valid": 0, "test": 0})
    ft = FinetuneSpec(epochs=1, lr=lr, batch_size=batch, rank=8, alpha=16, dropout=0.0, valid_split=None)
    spec = RunSpec(kind="finetune", dataset=dataset_ref(root), model=model, media={"modalities": "T"}, finetune=ft)
    ds = load_dataset(spec.dataset.name, spec.dataset.root, **spec.dataset.options)
    pairs = pairs_for_spec(spec, ds, "train", {}).pairs
    trainable = trainable_for(spec.model, spec.media, None, spec.generation)
    rss0 = current_rss_mb()
    stamps: list[float] = []
    cpu: list[float] = []
    t0 = time.perf_counter()

    losses: list[float] = []

    def log_fn(step, split, loss, epoch, **meta):
        if split == "train":
            stamps.append(time.perf_counter())
            cpu.append(time.process_time())
            losses.append(round(loss, 5))

    from affectbench.finetune import lora

    drawn: list[list] = []  # the micro-batches the Trainer's sampler drew, in order
    real_call = lora.PairCollator.__call__
    lora.PairCollator.__call__ = lambda self, ps: (drawn.append(list(ps)), real_call(self, ps))[1]
    result = train_lora(trainable, pairs, [], ft, work / "out", seed=0, log_fn=log_fn)
    lora.PairCollator.__call__ = real_call
    first = stamps[0] - t0
    rest = (stamps[-1] - stamps[0]) / max(1, len(stamps) - 1)
    n_tok = [len(trainable.encode([p.conversation], [p.answer])["input_ids"][0]) for p in pairs[:batch]]
    return {
        "case": case,
        "steps": len(stamps),
        "first_step_s": round(first, 3),
        "steps_per_s": round(1 / rest, 3) if rest > 0 else None,
        "s_per_step": round(rest, 3),
        "cpu_s_per_step": round((cpu[-1] - cpu[0]) / max(1, len(cpu) - 1), 3),
        "rss_before_train_mb": round(rss0, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "tokens_per_pair": n_tok,
        "threads": threads,
        **({"plain": plain_loop(case, spec, ft, drawn, result, losses, (stamps[-1] - t0) / len(stamps))} if plain else {}),
    }


def plain_loop(case: str, spec, ft, drawn: list[list], result, trainer_losses: list[float], trainer_s: float) -> dict:
    """The same optimizer steps (the Trainer's batches, seed, warm-up and schedule) through the plain loop."""
    import torch
    from safetensors.torch import load_file
    from tests.finetune._plain_loop import plain_lora

    from affectbench.finetune.backends import trainable_for
    from affectbench.finetune.schedule import warmup_steps

    fresh = trainable_for(spec.model, spec.media, None, spec.generation)  # base weights again
    per_step = [sum(drawn[i : i + ft.grad_accum], []) for i in range(0, len(drawn), ft.grad_accum)]
    t0 = time.perf_counter()
    losses, _, state = plain_lora(fresh, per_step, ft, seed=0, warmup=warmup_steps(ft, len(per_step)))
    wall = time.perf_counter() - t0
    trained = load_file(str(result.adapter / "adapter_model.safetensors"))
    diff = max(float((trained[k] - state[k]).abs().max()) for k in state)
    s_step = wall / max(1, len(per_step))
    return {
        "plain_s_per_step_all_in": round(s_step, 3),  # from the peft wrap to the last step, / steps
        "trainer_s_per_step_all_in": round(trainer_s, 3),  # from train_lora's start (fit, wrap, Trainer) likewise
        "trainer_over_plain": round(trainer_s / s_step, 3) if s_step else None,
        "plain_losses": [round(x, 5) for x in losses],
        "trainer_losses": trainer_losses,
        "max_abs_adapter_diff": diff,
        "warmup_steps": warmup_steps(ft, len(per_step)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="tiny,gemma")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--plain", action="store_true", help="also run the plain PyTorch loop on the same batches")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.steps, a.threads, Path(a.work), a.plain, a.lr)))
        return
    for case in a.cases.split(","):
        with tempfile.TemporaryDirectory() as d:
            cmd = [sys.executable, __file__, "--child", case, "--work", d, "--steps", str(a.steps), "--lr", str(a.lr)]
            cmd += ["--plain"] if a.plain else []
            out = subprocess.run(cmd + ["--threads", str(a.threads)], capture_output=True, text=True, cwd=REPO)
            if out.returncode:
                print(out.stderr[-3000:], file=sys.stderr)
                raise SystemExit(out.returncode)
            print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
