"""Adapters that are really active: before a run with a LoRA adapter the backend compares next-token logits
with and without it on one prompt and refuses an adapter that changes nothing (zero weights, or module
names that match no module of the loaded model: vllm #34186's silent base-model output); vLLM refuses
tower targets it would drop. The reference for "active" is peft itself on the same weights."""

from __future__ import annotations

import pytest

from affectbench.core.errors import ModelError
from affectbench.core.specs import MediaSpec, ModelSpec
from affectbench.models import _adapter
from affectbench.models.hf import HFModel
from affectbench.models.vllm import VLLMModel

pytest.importorskip("peft")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from tests._tiny import tiny_qwen2_audio

    return tiny_qwen2_audio(tmp_path_factory.mktemp("qa"))


def _adapter_folder(base, out, *, zero=False, rename=None):
    """A peft LoRA on q_proj/v_proj of `base` (LLM and audio tower), B random unless `zero`; `rename`
    rewrites its weight keys (old, new) as an adapter trained on another model class would have them."""
    import torch
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file, save_file
    from transformers import Qwen2AudioForConditionalGeneration

    model = Qwen2AudioForConditionalGeneration.from_pretrained(base)
    peft_model = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    if not zero:
        torch.manual_seed(0)
        with torch.no_grad():
            for name, p in peft_model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.5)
    peft_model.save_pretrained(out)
    if rename:
        f = out / "adapter_model.safetensors"
        save_file({k.replace(*rename): v for k, v in load_file(f).items()}, f)
    return out


def test_active_adapter_loads_and_its_probe_is_recorded(base, tmp_path):
    folder = _adapter_folder(base, tmp_path / "lora")
    model = HFModel(ModelSpec(backend="hf", name=str(base), adapter=str(folder)), MediaSpec(modalities="TA"))
    model.load()
    probe = model.info()["adapter_probe"]
    assert probe["prompt"] == _adapter.PROBE_TEXT and probe["max_logit_change"] > 1e-4


def test_zero_adapter_fails_the_load(base, tmp_path):
    folder = _adapter_folder(base, tmp_path / "zero", zero=True)  # peft's own init: B = 0, a no-op
    model = HFModel(ModelSpec(backend="hf", name=str(base), adapter=str(folder)), MediaSpec(modalities="TA"))
    with pytest.raises(ModelError, match="changes no logit"):
        model.load()


def test_adapter_whose_module_names_match_nothing_fails_the_load(base, tmp_path):
    """The kind of vllm #34186 / PR #39369: weights keyed under another class's prefix load without error."""
    folder = _adapter_folder(base, tmp_path / "moved", rename=("base_model.model.", "base_model.model.model.text."))
    model = HFModel(ModelSpec(backend="hf", name=str(base), adapter=str(folder)), MediaSpec(modalities="TA"))
    with pytest.raises(ModelError, match="changes no logit"):
        model.load()


def test_adapter_modules_and_towers_read_from_the_weight_file(base, tmp_path):
    folder = _adapter_folder(base, tmp_path / "lora")
    mods = _adapter.adapter_modules(folder)
    towers = _adapter.tower_modules(mods)
    assert towers and all("audio_tower" in m.split(".") for m in towers)  # its tower has q/v_proj too
    assert set(mods) - set(towers) and all("language_model" in m for m in set(mods) - set(towers))


def test_vllm_refuses_tower_targets_it_would_drop(base, tmp_path):
    folder = _adapter_folder(base, tmp_path / "lora")
    model = VLLMModel(ModelSpec(backend="vllm", name=str(base), adapter=str(folder)), MediaSpec(modalities="TA"))
    with pytest.raises(ModelError, match="tower modules that vLLM would ignore.*audio_tower"):
        model.adapter_towers()
    opts = {"engine_kwargs": {"enable_tower_connector_lora": True}}  # vision towers only: audio still refused
    with pytest.raises(ModelError, match="audio_tower"):
        VLLMModel(ModelSpec(backend="vllm", name=str(base), adapter=str(folder), options=opts)).adapter_towers()


class _Logprob:
    def __init__(self, logprob):
        self.logprob = logprob


class _FakeLLM:
    """Test double of vllm.LLM.generate for the probe: top log-probs without and with the LoRA."""

    def __init__(self, base, tuned):
        self.lps = {False: base, True: tuned}

    def generate(self, prompts, params, lora_request=None, use_tqdm=False):
        from types import SimpleNamespace

        lps = {t: _Logprob(v) for t, v in self.lps[lora_request is not None].items()}
        return [SimpleNamespace(outputs=[SimpleNamespace(logprobs=[lps])])]


def test_vllm_probe_compares_log_probs_with_and_without_the_lora(tmp_path, monkeypatch):
    import sys
    from types import ModuleType, SimpleNamespace

    fake = ModuleType("vllm")  # the probe imports SamplingParams and LoRARequest only
    fake.SamplingParams = lambda **kw: SimpleNamespace(**kw)
    lora = ModuleType("vllm.lora.request")
    lora.LoRARequest = lambda *a: SimpleNamespace(args=a)
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.setitem(sys.modules, "vllm.lora", ModuleType("vllm.lora"))
    monkeypatch.setitem(sys.modules, "vllm.lora.request", lora)
    model = VLLMModel(ModelSpec(backend="vllm", name="m", adapter=str(tmp_path)))
    model._llm = _FakeLLM({1: -0.1, 2: -2.5}, {1: -0.1, 2: -2.5})
    with pytest.raises(ModelError, match="changes no logit"):
        model._probe_adapter()
    model._llm = _FakeLLM({1: -0.1, 2: -2.5}, {1: -0.3, 3: -2.0})
    assert model._probe_adapter() > 0.1
