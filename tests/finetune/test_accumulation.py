"""One update whatever the split of the global batch: (batch 4, accumulation 1), (batch 1, accumulation 4)
and two gloo ranks x (batch 2, accumulation 1) train the same adapter, on answers of very different
lengths; logged train and validation losses are token-weighted means (transformers #35204, #37766),
checked against the model's own `labels=` loss, and the best epoch is chosen on them."""

from __future__ import annotations

import pytest
import yaml

from affectbench.core.specs import FinetuneSpec, RunSpec
from affectbench.datasets import load_dataset
from affectbench.engine.store import Store
from affectbench.finetune import run_finetune
from affectbench.finetune.backends import trainable_for
from affectbench.finetune.pairs import pairs_for_spec
from tests._tiny import tiny_qwen_omni
from tests.finetune._fixtures import write_uneven_corpus
from tests.finetune.test_ddp import _launch

RECIPE = {"epochs": 2, "lr": 2e-2, "rank": 4, "alpha": 8, "dropout": 0.0, "warmup_steps": 0}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("accum")
    model = {"backend": "hf", "name": str(tiny_qwen_omni(tmp / "omni"))}
    ds = write_uneven_corpus(tmp / "data", {"train": 4, "valid": 4, "test": 0})
    return tmp, model, ds


def _spec(model, ds, **ft) -> RunSpec:
    return RunSpec(
        kind="finetune", dataset=ds, model=model, media={"modalities": "T"}, finetune=FinetuneSpec(**RECIPE, **ft)
    )


def _result(ws, rid):
    from safetensors.torch import load_file

    store = Store(ws / "affectbench.sqlite")
    final = ws / "artifacts" / rid / "final"
    losses = {s: [r["loss"] for r in store.train_logs(rid, s)] for s in ("train", "valid")}
    return losses, load_file(str(final / "adapter_model.safetensors")), final, store.run(rid)


def _reference_losses(model, ds, split, adapter=None):
    """Per-pair (summed loss, loss tokens) from the model's own `labels=` loss, one pair at a time."""
    import torch
    from peft import PeftModel

    spec = _spec(model, ds)
    dataset = load_dataset(ds["name"], ds["root"], **ds["options"])
    pairs = pairs_for_spec(spec, dataset, split, {}).pairs
    t = trainable_for(spec.model, spec.media, None, spec.generation)
    net = PeftModel.from_pretrained(t.module, str(adapter)) if adapter else t.module
    net.eval()
    out = []
    with torch.no_grad():
        for p in pairs:
            enc = {k: v for k, v in t.encode([t.prepare(p.conversation)], [p.answer]).items() if hasattr(v, "shape")}
            n = int((enc["labels"][:, 1:] != -100).sum())
            out.append((float(net(**enc).loss) * n, n))
    return out


def test_batch_accumulation_and_ranks_give_one_update_and_token_weighted_losses(tiny):
    import torch

    tmp, model, ds = tiny
    runs = {}
    for name, kw in {"b4a1": {"batch_size": 4}, "b1a4": {"batch_size": 1, "grad_accum": 4}}.items():
        spec = _spec(model, ds, **kw)
        run_finetune(Store(tmp / name / "affectbench.sqlite"), spec)
        runs[name] = _result(tmp / name, spec.run_id)
    exp = {
        "workspace": str(tmp / "ddp"),
        "defaults": {"dataset": ds, "model": model, "media": {"modalities": "T"}},
        "runs": [{"name": "sft", "kind": "finetune", "finetune": {**RECIPE, "batch_size": 4}}],
    }
    (tmp / "ddp.yaml").write_text(yaml.safe_dump(exp))
    _launch(2, tmp / "ddp.yaml", tmp / "spy")
    runs["2x b2a1"] = _result(tmp / "ddp", _spec(model, ds, batch_size=4).run_id)

    (ref_losses, ref_adapter, final, _) = runs["b4a1"]
    assert max(float(v.abs().max()) for k, v in ref_adapter.items() if "lora_B" in k) > 1e-3
    for name, (losses, adapter, _, rec) in runs.items():
        assert adapter.keys() == ref_adapter.keys()
        for k in ref_adapter:
            assert torch.allclose(adapter[k], ref_adapter[k], atol=1e-5), (name, k)
        assert losses["train"] == pytest.approx(ref_losses["train"], abs=1e-5), name
        assert losses["valid"] == pytest.approx(ref_losses["valid"], abs=1e-5), name
        assert rec.metrics["best_epoch"] == 1 + min(range(2), key=lambda e: losses["valid"][e]), name

    # step 1 trains from the base model (lora_B = 0): its logged loss is the base model's token-weighted loss
    base = _reference_losses(model, ds, "train")
    assert ref_losses["train"][0] == pytest.approx(sum(s for s, _ in base) / sum(n for _, n in base), rel=1e-5)
    # the last validation loss is the final adapter's token-weighted loss, not a mean of per-batch means
    valid = _reference_losses(model, ds, "valid", final)
    token_weighted = sum(s for s, _ in valid) / sum(n for _, n in valid)
    mean_of_means = sum(s / n for s, n in valid) / len(valid)  # what batch-1 evaluation averaged before
    assert abs(token_weighted - mean_of_means) > 1e-2
    assert ref_losses["valid"][-1] == pytest.approx(token_weighted, rel=1e-5)


def test_sequence_normalisation_weighs_each_pair_the_same(tiny):
    """loss_normalisation sequences: the logged losses are means of per-pair means, for any split of the batch."""
    import torch

    tmp, model, ds = tiny
    got = {}
    for name, kw in {"s4": {"batch_size": 4}, "s1": {"batch_size": 1, "grad_accum": 4}}.items():
        spec = _spec(model, ds, loss_normalisation="sequences", **kw)
        run_finetune(Store(tmp / name / "affectbench.sqlite"), spec)
        got[name] = _result(tmp / name, spec.run_id)
    (a, wa, final, _), (b, wb, _, _) = got["s4"], got["s1"]
    assert a["train"] == pytest.approx(b["train"], abs=1e-5) and a["valid"] == pytest.approx(b["valid"], abs=1e-5)
    assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)
    base = _reference_losses(model, ds, "train")
    assert a["train"][0] == pytest.approx(sum(s / n for s, n in base) / len(base), rel=1e-5)
    valid = _reference_losses(model, ds, "valid", final)
    assert a["valid"][-1] == pytest.approx(sum(s / n for s, n in valid) / len(valid), rel=1e-5)
