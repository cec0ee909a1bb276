"""GPU smoke test of the zoo: every tested family's tiny real-architecture model on CUDA in bf16 with
SDPA attention — generate, score mode, one LoRA step through the runner — with time and peak memory.

    .venv/bin/python bench/gpu_smoke.py                 # needs CUDA; prints a message and exits 0 without it
    .venv/bin/python bench/gpu_smoke.py --device cpu    # the same path on CPU in float32 (a dry check)

Exit status 1 when any family fails (its error is printed); the table lists every family either way.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path

import _zoo


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--families", default=",".join(_zoo.ZOO))
    args = ap.parse_args()

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "gpu_smoke: no CUDA device here (torch.cuda.is_available() is False); nothing run. "
            "Run it on a GPU machine, or pass --device cpu for a float32 dry check."
        )
        return 0
    from tests.finetune._fixtures import dataset_ref, write_corpus

    from affectbench.core.specs import FinetuneSpec, RunSpec
    from affectbench.engine.runner import Runner
    from affectbench.engine.store import Store

    cuda = args.device.startswith("cuda")
    opts = {"device": args.device, "dtype": "bfloat16" if cuda else "float32", "attn_implementation": "sdpa"}
    tmp = Path(tempfile.mkdtemp(prefix="gpu_smoke_"))
    clip = _zoo.make_clip(tmp / "clip.mp4", 2.0, size=(320, 240), fps=10)
    root = write_corpus(tmp / "data", {"train": 2, "valid": 0, "test": 2}, media={"video": str(clip)})
    ds = dataset_ref(root)
    if cuda:
        print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    print("family | generate s | score s | LoRA step s | peak GiB | modalities | status")
    failed = 0
    for key in args.families.split(","):
        _, mods = _zoo.ZOO[key]
        times: dict[str, float] = {}
        status, reached = "ok", ""
        try:
            path = _zoo.build(key, tmp / key)
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            store = Store(tmp / key / "ws" / "affectbench.sqlite")
            runner = Runner(store, progress=False)
            model = {"backend": "hf", "name": str(path), "options": opts}
            media = {"modalities": mods, "fps": 2}
            for phase, extra in (
                ("generate", {"generation": {"max_new_tokens": 4}}),
                ("score", {"generation": {"mode": "score"}}),
                (
                    "lora",
                    {
                        "kind": "finetune",
                        "finetune": FinetuneSpec(epochs=1, batch_size=2, rank=4, alpha=8, valid_split=None),
                    },
                ),
            ):
                t0 = time.perf_counter()
                rec = runner.run(RunSpec(dataset=ds, model=model, media=media, **extra))
                if cuda:
                    torch.cuda.synchronize()
                times[phase] = time.perf_counter() - t0
                if rec.status != "done":
                    raise RuntimeError(f"{phase}: run {rec.id} ended {rec.status}: {rec.error}")
                if phase != "lora":
                    errors = [p.error for p in store.predictions(rec.id) if p.error]
                    if errors:
                        raise RuntimeError(f"{phase}: {errors[0]}")
                    reached = "".join(sorted({"".join(p.modalities) for p in store.predictions(rec.id)}))
            runner.close()
        except Exception as e:  # report and go on with the next family
            failed += 1
            status = f"FAILED: {type(e).__name__}: {e}"
            traceback.print_exc(file=sys.stderr)
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
        cells = [f"{times[p]:.2f}" if p in times else "-" for p in ("generate", "score", "lora")]
        print(" | ".join([key, *cells, f"{peak:.2f}", reached, status]), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
