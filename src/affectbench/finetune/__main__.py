"""`python -m affectbench.finetune`: train one finetune or readout run; the same entry runs under DDP.

    python -m affectbench.finetune --experiment exp.yaml --name sft          # single process
    accelerate launch -m affectbench.finetune --experiment exp.yaml --name sft
    torchrun --nproc_per_node 4 -m affectbench.finetune --workspace ws --run-id finetune-mosi-…
    accelerate launch -m affectbench.finetune --experiment exp.yaml --name head   # readout, lora_head

Runs of kind `finetune` (generative SFT) and `readout` (`finetune.readout`) are trained; without
--name, every one of the experiment's. A readout with method `probe` runs in one process only
(refused under torchrun / accelerate launch). With --experiment, the knowledge runs a run needs are
generated first when they are missing (single process only; under DDP run `affectbench run exp.yaml
--only <knowledge>` first).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

TRAINED = ("finetune", "readout")  # the run kinds this entry trains


def main(argv: list[str] | None = None) -> int:
    from ..core.errors import AffectbenchError
    from ..engine.runner import Runner
    from ..engine.store import Store
    from . import run_finetune
    from .lora import rank_world
    from .readout import run_readout

    def train(store: Store, spec, batch_size: int):
        if spec.kind == "readout":
            return run_readout(store, spec, batch_size=batch_size)
        return run_finetune(store, spec)

    ap = argparse.ArgumentParser(prog="python -m affectbench.finetune", description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", type=Path, help="workspace folder (default: the experiment's)")
    ap.add_argument("--run-id", help="a finetune or readout run already in the workspace's store")
    ap.add_argument("--experiment", type=Path, help="experiment YAML")
    ap.add_argument(
        "--name", help="the experiment's finetune or readout entry (or an entry that uses a finetune run as adapter)"
    )
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="override key=value")
    args = ap.parse_args(argv)
    rank, world = rank_world()
    try:
        if args.experiment:
            from ..config import load_experiment

            plan = load_experiment(args.experiment, args.overrides)
            ws = args.workspace or plan.workspace
            store = Store(Path(ws) / "affectbench.sqlite")
            runner = Runner(store, plan.exec, progress=False)
            ids = set(plan.names.get(args.name or "", [])) if args.name else set()
            if args.name and not ids:
                raise AffectbenchError(f"no entry {args.name!r} in {args.experiment}; entries: {', '.join(plan.names)}")
            specs = [s for s in plan.runs if s.kind in TRAINED and (not ids or s.run_id in ids)]
            if not specs:  # the name may be an eval entry that uses a finetune run as adapter
                adapters = {s.model.adapter for s in plan.runs if s.run_id in ids}
                specs = [s for s in plan.runs if s.kind == "finetune" and s.run_id in adapters]
            if not specs:
                raise AffectbenchError(
                    f"{args.experiment}: no finetune or readout run found for {args.name or 'the experiment'}"
                )
            probes = [
                s.run_id for s in specs if s.kind == "readout" and getattr(s.readout, "method", "probe") != "lora_head"
            ]
            if world > 1 and probes:  # refused before anything trains (run_readout refuses them too)
                raise AffectbenchError(
                    f"readout runs with method probe ({', '.join(probes)}) run in one process, not on {world} ranks; "
                    "run them with `affectbench run` and launch only finetune / lora_head entries (--name)"
                )
            for spec in specs:
                for kid in dict.fromkeys(spec.knowledge):
                    for k in [r for r in plan.runs if r.run_id == kid]:
                        done = store.has_run(kid) and store.run(kid).status == "done"
                        if world > 1 and not done:
                            raise AffectbenchError(
                                f"knowledge run {kid} is missing; run `affectbench run {args.experiment} --only "
                                "<knowledge entry>` before launching DDP training"
                            )
                        if world == 1:
                            runner.run(k)
                record = train(store, spec, plan.exec.batch_size)
                if rank == 0:
                    print(f"{record.id}: {record.status} {record.metrics}")
        else:
            if not (args.workspace and args.run_id):
                ap.error("give --experiment [--name] or --workspace and --run-id")
            store = Store(Path(args.workspace) / "affectbench.sqlite")
            spec = store.run(args.run_id).run_spec
            if spec.kind not in TRAINED:
                raise AffectbenchError(f"run {args.run_id} is a {spec.kind} run; give a finetune or readout run")
            record = train(store, spec, 8)
            if rank == 0:
                print(f"{record.id}: {record.status} {record.metrics}")
    except AffectbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
