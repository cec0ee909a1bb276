"""Phi-4-multimodal's shipped LoRA adapters (speech-lora / vision-lora), loaded and selected per input as its card
does, and a task adapter from our LoRA SFT that replaces them at eval.

References not written here: transformers' own `load_adapter(..., adapter_kwargs={"subfolder": ...})` +
`set_adapter(name)` on a fresh model (the usage on transformers' Phi4 Multimodal page), and peft's
`PeftModel.from_pretrained` for the task adapter. The rule "image -> vision, speech alone -> speech, text -> none"
is the released checkpoint's modeling_phi4mm.py (`Phi4MMForCausalLM.forward`)."""

from __future__ import annotations

import pytest
import torch

from affectbench.core.errors import ModelError
from affectbench.core.specs import FinetuneSpec, GenerationSpec, MediaSpec, ModelSpec, RunSpec
from affectbench.core.types import Message, Part
from affectbench.models import _card_adapters
from affectbench.models.hf import HFModel
from tests._clips import make_clip

pytest.importorskip("peft")

GEN = GenerationSpec(max_new_tokens=2)
LM_LINEAR = r"model\.layers\.\d+\.(self_attn\.(qkv_proj|o_proj)|mlp\.(gate_up_proj|down_proj))"


def _lora(base, out, seed):
    """A peft LoRA on the language model's linear layers of `base`, random non-zero A and B
    (init_lora_weights=False), saved to `out`."""
    from peft import LoraConfig, get_peft_model
    from transformers import Phi4MultimodalForCausalLM

    torch.manual_seed(seed)
    model = Phi4MultimodalForCausalLM.from_pretrained(base)
    cfg = LoraConfig(r=2, lora_alpha=8, target_modules=LM_LINEAR, init_lora_weights=False)
    get_peft_model(model, cfg).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """The tiny Phi-4 checkpoint with speech-lora/ and vision-lora/ beside its weights, as the release ships."""
    from tests._tiny_zoo import tiny_phi4_multimodal

    path = tiny_phi4_multimodal(tmp_path_factory.mktemp("phi4"))
    _lora(path, path / "speech-lora", seed=1)
    _lora(path, path / "vision-lora", seed=2)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clip") / "av.mp4", 1.0)


def _conv(text, clip=None, video=False, audio=False):
    parts = ([Part(kind="video", path=str(clip))] if video else []) + (
        [Part(kind="audio", path=str(clip))] if audio else []
    )
    return [Message(role="user", parts=[*parts, Part.of_text(text)])]


def _hf(path, tmp_path, adapter=None, **opts):
    spec = ModelSpec(backend="hf", name=str(path), adapter=str(adapter) if adapter else None, options=opts)
    return HFModel(spec, MediaSpec(modalities="TAV", fps=2), tmp_path)


def _last_logits(module, enc):
    with torch.inference_mode():
        return module(**enc).logits[0, -1].float()


def _card_reference(path, name):
    """A fresh model with the card adapter's folder applied by peft itself (None: the bare base). transformers'
    `load_adapter` + `set_adapter` (the docs' usage) needs peft >= 0.22 for `set_adapter`; peft's own load of the
    same subfolder is the same LoRA."""
    from peft import PeftModel
    from transformers import Phi4MultimodalForCausalLM

    model = Phi4MultimodalForCausalLM.from_pretrained(str(path)).eval()
    return PeftModel.from_pretrained(model, str(path / f"{name}-lora")).eval() if name else model


CASES = {  # input -> (conversation parts, the adapter the card's rule picks)
    "text": (dict(), None),
    "audio": (dict(audio=True), "speech"),
    "frames": (dict(video=True), "vision"),
    "frames+audio": (dict(video=True, audio=True), "vision"),  # InputMode.VISION_SPEECH -> vision
}


def test_card_adapters_are_found_loaded_and_recorded(ckpt, tmp_path):
    model = _hf(ckpt, tmp_path)
    assert model.card_adapters == {"speech": "speech-lora", "vision": "vision-lora"}
    model.load()
    assert model.info()["card_adapters"] == {"speech": "speech-lora", "vision": "vision-lora"}
    assert set(model.model.peft_config) == {"speech", "vision"}
    # the weights of both card adapters are in the model's identity; without them it is the base's
    assert model.fingerprint() != _hf(ckpt, tmp_path, card_adapters=False).fingerprint()


@pytest.mark.parametrize("case", list(CASES))
def test_card_adapter_is_selected_per_input_as_the_card_does(case, ckpt, clip, tmp_path):
    kw, expected = CASES[case]
    model = _hf(ckpt, tmp_path)
    conv = model.prepare(_conv("How does the speaker feel?", clip, **kw))
    (g,) = model.generate([conv], GEN)
    assert g.meta["adapter"] == expected
    (s,) = model.score([conv], ["happy", "sad"], GEN)
    assert s.meta["adapter"] == expected
    enc = model.encode([conv], GEN)
    ours = _last_logits(model.model, enc)  # the adapter left active by that forward
    ref = _last_logits(_card_reference(ckpt, expected), enc)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    bare = _last_logits(_card_reference(ckpt, None), enc)
    if expected is None:
        torch.testing.assert_close(ours, bare, atol=1e-6, rtol=1e-6)
    else:  # the matching card adapter moves the answer; the other one would give other logits
        assert (ours - bare).abs().max() > 1e-3
        other = "speech" if expected == "vision" else "vision"
        assert (ours - _last_logits(_card_reference(ckpt, other), enc)).abs().max() > 1e-3


def test_without_card_adapters_the_native_port_answers_as_the_base(ckpt, clip, tmp_path):
    model = _hf(ckpt, tmp_path, card_adapters=False)
    conv = model.prepare(_conv("Emotion?", clip, audio=True))
    (g,) = model.generate([conv], GEN)
    assert model.card_adapters == {} and "adapter" not in g.meta
    enc = model.encode([conv], GEN)
    torch.testing.assert_close(_last_logits(model.model, enc), _last_logits(_card_reference(ckpt, None), enc))


def test_several_adapters_at_once_are_refused(ckpt, tmp_path):
    model = _hf(ckpt, tmp_path)
    model.load()
    with pytest.raises(ModelError, match="several LoRA adapters at once.*speech.*vision"):
        _card_adapters.activate(model.model, ["speech", "vision"])
    task = _lora(ckpt, tmp_path / "task", seed=3)
    with pytest.raises(ModelError, match="several LoRA adapters at once.*ms-swift #5811"):
        _hf(ckpt, tmp_path, adapter=task, card_adapters=True)
    with pytest.raises(ModelError, match="card_adapters must be"):
        _hf(ckpt, tmp_path, card_adapters="speech+vision")


def test_card_adapters_true_on_a_checkpoint_without_them_is_an_error(tmp_path):
    from tests._tiny_zoo import tiny_phi4_multimodal

    bare = tiny_phi4_multimodal(tmp_path / "bare")
    assert _hf(bare, tmp_path).card_adapters == {}
    with pytest.raises(ModelError, match="ships none"):
        _hf(bare, tmp_path, card_adapters=True)


def test_task_adapter_from_our_sft_is_active_at_eval_and_reloads(ckpt, clip, tmp_path):
    """A LoRA trained by the runner's finetune on the card-adapter checkpoint: at eval it replaces the card
    adapters (it was trained without them), moves the logits, is recorded, and reloads to the same logits."""
    from peft import PeftModel
    from transformers import Phi4MultimodalForCausalLM

    from affectbench.engine.runner import Runner
    from affectbench.engine.store import Store
    from tests.finetune._fixtures import dataset_ref, write_corpus

    root = write_corpus(tmp_path / "data", {"train": 2, "valid": 0, "test": 1}, media={"video": str(clip)})
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    runner = Runner(store, progress=False)
    base = {"backend": "hf", "name": str(ckpt)}
    media = {"modalities": "TA", "fps": 2}
    ft = FinetuneSpec(epochs=1, batch_size=2, rank=2, alpha=4, dropout=0.0, valid_split=None, lr=5e-2, max_length=4096)
    rec = runner.run(RunSpec(kind="finetune", dataset=dataset_ref(root), model=base, media=media, finetune=ft))
    assert rec.status == "done" and rec.metrics["steps"] == 1
    folder = runner_adapter(store, rec.id)
    runner.close()

    conv = _conv("How does the speaker feel?", clip, audio=True)
    loads = []
    for merge in (True, False, True):  # merged (default), unmerged, and a second load of the folder
        model = _hf(ckpt, tmp_path, adapter=folder, merge_adapter=merge)
        assert model.card_adapters == {}  # replaced by the task adapter
        c = model.prepare(conv)
        (g,) = model.generate([c], GEN)
        assert g.meta["adapter"] == _card_adapters.TASK
        assert model.info()["adapter_probe"]["max_logit_change"] > 0
        loads.append(_last_logits(model.model, model.encode([c], GEN)))
        enc = model.encode([c], GEN)
    ref = PeftModel.from_pretrained(Phi4MultimodalForCausalLM.from_pretrained(str(ckpt)), str(folder)).eval()
    torch.testing.assert_close(loads[0], _last_logits(ref, enc), atol=1e-5, rtol=1e-5)  # peft's own load
    torch.testing.assert_close(loads[1], loads[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loads[2], loads[0], atol=0, rtol=0)  # reloadable: the same logits
    assert (loads[0] - _last_logits(_card_reference(ckpt, None), enc)).abs().max() > 1e-4  # not the base


def runner_adapter(store, run_id):
    """The adapter folder of a finetune run, as the runner resolves `model.adapter: <run id>`."""
    from affectbench.engine.runner import resolve_adapter

    return resolve_adapter(ModelSpec(backend="hf", name="x", adapter=run_id), store).adapter


def test_one_model_switches_adapter_forward_by_forward(ckpt, clip, tmp_path):
    """The adapter a forward leaves active never carries over: each input gets its own, the text-only one none."""
    model = _hf(ckpt, tmp_path)
    refs = {}
    for case in ("audio", "text", "frames", "audio", "text"):
        kw, expected = CASES[case]
        conv = model.prepare(_conv("Emotion?", clip, **kw))
        (s,) = model.score([conv], ["happy", "sad"], GEN)
        assert s.meta["adapter"] == expected
        ref = refs.setdefault(expected, _card_reference(ckpt, expected))
        enc = model.encode([conv], GEN)
        torch.testing.assert_close(_last_logits(model.model, enc), _last_logits(ref, enc), atol=1e-5, rtol=1e-5)


def test_the_task_adapter_trains_on_the_bare_base(ckpt):
    """finetune's model holds no card adapter: the LoRA it trains is the one that replaces them at eval."""
    from affectbench.finetune.backends import trainable_for

    t = trainable_for(ModelSpec(backend="hf", name=str(ckpt)), MediaSpec(modalities="TA"), None, GEN)
    assert not getattr(t.module, "peft_config", None)
    assert not [n for n, _ in t.module.named_modules() if "lora_" in n]
