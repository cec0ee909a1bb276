"""An adapter trained from a full Omni checkpoint (affectbench trains its thinker) loads, outside
affectbench, both onto the thinker and onto the full Omni class, and changes the outputs in both."""

from __future__ import annotations

import pytest

from affectbench.core.specs import FinetuneSpec, RunSpec
from affectbench.engine.store import Store
from affectbench.finetune import run_finetune
from tests._tiny import tiny_qwen3_omni
from tests.finetune._fixtures import dataset_ref, write_corpus

pytest.importorskip("peft")


def test_adapter_of_a_full_checkpoint_loads_on_thinker_and_full_class(tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoTokenizer, Qwen3OmniMoeForConditionalGeneration

    path = tiny_qwen3_omni(tmp_path / "full", full=True)
    ds = dataset_ref(write_corpus(tmp_path / "data", {"train": 8, "valid": 0, "test": 0}))
    ft = FinetuneSpec(epochs=2, lr=5e-2, batch_size=4, rank=4, alpha=8, dropout=0.0, valid_split=None)
    spec = RunSpec(
        kind="finetune", dataset=ds, model={"backend": "hf", "name": str(path)}, media={"modalities": "T"}, finetune=ft
    )
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    rec = run_finetune(store, spec)
    adapter = store.artifact(rec.id, "adapter")
    assert (adapter / "full" / "adapter_config.json").is_file()

    ids = AutoTokenizer.from_pretrained(path)("This is great. positive", return_tensors="pt")["input_ids"]

    def load_full():
        return Qwen3OmniMoeForConditionalGeneration.from_pretrained(path, enable_audio_output=False).eval()

    with torch.no_grad():
        base = load_full().thinker(input_ids=ids).logits
        on_thinker = PeftModel.from_pretrained(load_full().thinker, str(adapter)).eval()
        thinker_out = on_thinker(input_ids=ids).logits
        on_full = PeftModel.from_pretrained(load_full(), str(adapter / "full")).eval()
        full_out = on_full.base_model.model.thinker(input_ids=ids).logits
        # the thinker-keyed adapter on the full class: what peft did before (keys missing -> base model)
        with pytest.warns(UserWarning, match="missing adapter keys"):
            stale = PeftModel.from_pretrained(load_full(), str(adapter)).eval()
        stale_out = stale.base_model.model.thinker(input_ids=ids).logits
    assert (thinker_out - base).abs().max() > 1e-3  # the adapter changes the thinker's outputs
    assert torch.allclose(full_out, thinker_out, atol=1e-5)  # and the full class gets the same change
    assert torch.allclose(stale_out, base, atol=1e-6)  # the failure mode the full/ copy avoids
