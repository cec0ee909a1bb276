"""Phi-4-multimodal's shipped LoRA adapters (speech-lora / vision-lora), loaded and selected per input as its card
does, and a task adapter from our LoRA SFT trained on top of them and stacked on them at eval.

References not written here: peft's own `PeftModel.from_pretrained` / `load_adapter` of the card adapter's
subfolder and of the task adapter on a fresh model, with `base_model.set_adapter([card, task])` (peft's multi-
adapter API), and transformers' `labels=` loss. The rule "image -> vision, speech alone -> speech, text -> none"
is the released checkpoint's modeling_phi4mm.py (`Phi4MMForCausalLM.forward`)."""

from __future__ import annotations

from pathlib import Path

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
    assert g.meta["adapters"] == ([expected] if expected else [])
    (s,) = model.score([conv], ["happy", "sad"], GEN)
    assert s.meta["adapters"] == ([expected] if expected else [])
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
    assert model.card_adapters == {} and "adapters" not in g.meta
    enc = model.encode([conv], GEN)
    torch.testing.assert_close(_last_logits(model.model, enc), _last_logits(_card_reference(ckpt, None), enc))


def test_two_card_adapters_at_once_and_merging_beside_them_are_refused(ckpt, tmp_path):
    model = _hf(ckpt, tmp_path)
    model.load()
    with pytest.raises(ModelError, match="several LoRA adapters at once.*speech.*vision"):
        _card_adapters.activate(model.model, ["speech", "vision"])
    with pytest.raises(ModelError, match="several LoRA adapters at once"):
        _card_adapters.activate(model.model, ["speech", "vision"], _card_adapters.TASK)
    task = _lora(ckpt, tmp_path / "task", seed=3)  # trained elsewhere (no card of ours): stacked by default
    stacked = _hf(ckpt, tmp_path, adapter=task)
    assert stacked.card_adapters == {"speech": "speech-lora", "vision": "vision-lora"}
    with pytest.raises(ModelError, match="merging the task adapter while card adapters are loaded.*ms-swift #5811"):
        _hf(ckpt, tmp_path, adapter=task, merge_adapter=True).load()
    with pytest.raises(ModelError, match="card_adapters must be"):
        _hf(ckpt, tmp_path, card_adapters="speech+vision")


def test_the_adapter_card_decides_whether_card_adapters_are_stacked(ckpt, tmp_path):
    """Our card says what the task adapter was trained on top of; eval refuses a mismatch instead of guessing."""
    import json
    import shutil

    task = _lora(ckpt, tmp_path / "task", seed=3)
    on_top, bare = tmp_path / "on_top", tmp_path / "bare"
    for folder, base in ((on_top, {"card_adapters": {"speech": "speech-lora"}}), (bare, {})):
        shutil.copytree(task, folder)
        (folder / _card_adapters.CARD_FILE).write_text(json.dumps({"base": {"backend": "hf", **base}}))
    assert _hf(ckpt, tmp_path, adapter=on_top).card_adapters == {"speech": "speech-lora"}
    with pytest.raises(ModelError, match="trained on top of the card adapters.*card_adapters: false"):
        _hf(ckpt, tmp_path, adapter=on_top, card_adapters=False)
    assert _hf(ckpt, tmp_path, adapter=bare).card_adapters == {}  # trained on the bare base: evaluated so
    with pytest.raises(ModelError, match="trained on the bare base"):
        _hf(ckpt, tmp_path, adapter=bare, card_adapters=True)


def test_card_adapters_true_on_a_checkpoint_without_them_is_an_error(tmp_path):
    from tests._tiny_zoo import tiny_phi4_multimodal

    bare = tiny_phi4_multimodal(tmp_path / "bare")
    assert _hf(bare, tmp_path).card_adapters == {}
    with pytest.raises(ModelError, match="ships none"):
        _hf(bare, tmp_path, card_adapters=True)


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
        assert s.meta["adapters"] == ([expected] if expected else [])
        ref = refs.setdefault(expected, _card_reference(ckpt, expected))
        enc = model.encode([conv], GEN)
        torch.testing.assert_close(_last_logits(model.model, enc), _last_logits(ref, enc), atol=1e-5, rtol=1e-5)


# ---- a task adapter trained on top of the card adapters ---------------------------------------------------------

FT = FinetuneSpec(epochs=1, batch_size=2, rank=2, alpha=4, dropout=0.0, valid_split=None, lr=5e-2, max_length=4096)


@pytest.fixture(scope="module")
def trained(ckpt, clip, tmp_path_factory):
    """The task adapter folder of a runner finetune (one step, two audio pairs) on the card-adapter checkpoint."""
    from affectbench.engine.runner import Runner
    from affectbench.engine.store import Store
    from tests.finetune._fixtures import dataset_ref, write_corpus

    tmp = tmp_path_factory.mktemp("sft")
    root = write_corpus(tmp / "data", {"train": 2, "valid": 0, "test": 1}, media={"video": str(clip)})
    store = Store(tmp / "ws" / "affectbench.sqlite")
    runner = Runner(store, progress=False)
    base = {"backend": "hf", "name": str(ckpt)}
    spec = RunSpec(
        kind="finetune", dataset=dataset_ref(root), model=base, media={"modalities": "TA", "fps": 2}, finetune=FT
    )
    rec = runner.run(spec)
    assert rec.status == "done" and rec.metrics["steps"] == 1
    folder = runner_adapter(store, rec.id)
    runner.close()
    return Path(folder)


def _stacked_reference(path, card, task):
    """peft's own stacking on a fresh model: the card adapter's subfolder and the task adapter loaded by peft,
    both made active with `base_model.set_adapter([card, "task"])` (just the task adapter for card None)."""
    from peft import PeftModel
    from transformers import Phi4MultimodalForCausalLM

    model = Phi4MultimodalForCausalLM.from_pretrained(str(path))
    if card is None:
        return PeftModel.from_pretrained(model, str(task), adapter_name="task").eval()
    ref = PeftModel.from_pretrained(model, str(path / f"{card}-lora"), adapter_name=card)
    ref.load_adapter(str(task), adapter_name="task")
    ref.base_model.set_adapter([card, "task"])
    return ref.eval()


@pytest.mark.parametrize("case", ["audio", "frames", "text"])
def test_task_adapter_is_stacked_on_the_card_adapter_at_eval_as_peft_stacks_it(case, ckpt, clip, trained, tmp_path):
    kw, card = CASES[case]
    model = _hf(ckpt, tmp_path, adapter=trained)  # merge_adapter defaults to false beside card adapters
    assert model.card_adapters == {"speech": "speech-lora", "vision": "vision-lora"}
    conv = model.prepare(_conv("How does the speaker feel?", clip, **kw))
    (g,) = model.generate([conv], GEN)
    assert g.meta["adapters"] == [n for n in (card, _card_adapters.TASK) if n]
    (s,) = model.score([conv], ["happy", "sad"], GEN)
    assert s.meta["adapters"] == g.meta["adapters"]
    enc = model.encode([conv], GEN)
    ours = _last_logits(model.model, enc)  # the adapters left active by that forward
    torch.testing.assert_close(ours, _last_logits(_stacked_reference(ckpt, card, trained), enc), atol=1e-5, rtol=1e-5)
    # the task adapter is active (not the card adapter alone), and the card adapter under it (not the base)
    assert (ours - _last_logits(_card_reference(ckpt, card), enc)).abs().max() > 1e-4
    assert (ours - _last_logits(_card_reference(ckpt, None), enc)).abs().max() > 1e-4
    if card:
        assert (ours - _last_logits(_stacked_reference(ckpt, None, trained), enc)).abs().max() > 1e-4


def test_task_adapter_reloads_and_records_what_it_was_trained_on(ckpt, clip, trained, tmp_path):
    import json

    from safetensors import safe_open

    card = json.loads((trained / _card_adapters.CARD_FILE).read_text())
    assert card["base"]["card_adapters"] == {"speech": "speech-lora", "vision": "vision-lora"}
    # the folder holds the task adapter alone, at its root (not the card adapters peft would save beside it)
    assert not (trained / "speech").exists() and not (trained / "vision").exists()
    with safe_open(str(trained / "adapter_model.safetensors"), framework="pt") as f:
        keys = list(f.keys())
    assert keys and not [k for k in keys if ".speech" in k or ".vision" in k]
    logits, prints = [], []
    for _ in range(2):
        model = _hf(ckpt, tmp_path, adapter=trained)
        c = model.prepare(_conv("Emotion?", clip, audio=True))
        model.generate([c], GEN)
        logits.append(_last_logits(model.model, model.encode([c], GEN)))
        prints.append(model.fingerprint())
        probe = model.info()["adapter_probe"]
        assert probe["max_logit_change"] > 0 and probe["on_top_of"] == [None, "speech", "vision"]
    torch.testing.assert_close(logits[1], logits[0], atol=0, rtol=0)  # reloadable: the same logits
    assert prints[0] == prints[1] != _hf(ckpt, tmp_path).fingerprint()  # card adapters + task adapter


def test_training_forward_stacks_the_card_adapter_and_leaves_it_frozen(ckpt, clip, tmp_path):
    """The finetune model holds the card adapters frozen; an audio batch's loss and gradients are those of peft's
    own [speech, task] model (not of the task adapter alone); one optimizer step leaves the card adapters' weights
    bit-identical; a batch mixing inputs that pick different card adapters is refused."""
    from peft import PeftModel
    from transformers import Phi4MultimodalForCausalLM

    from affectbench.datasets import load_dataset
    from affectbench.finetune.backends import trainable_for
    from affectbench.finetune.lora import answer_loss, peft_model, train_lora
    from affectbench.finetune.pairs import pairs_for_spec
    from tests.finetune._fixtures import dataset_ref, write_corpus

    media = MediaSpec(modalities="TA", fps=2)
    t = trainable_for(ModelSpec(backend="hf", name=str(ckpt)), media, None, GEN)
    assert t.base["card_adapters"] == {"speech": "speech-lora", "vision": "vision-lora"}
    model = peft_model(t.module, FT)
    torch.manual_seed(0)
    for name, p in model.named_parameters():
        if ".default." in name and "lora_B" in name:
            p.data.normal_(0, 0.5)  # a task adapter that moves the logits
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all(".default." in n for n in trained)
    audio = t.prepare(_conv("How does the speaker feel?", clip, audio=True))
    enc = t.encode([audio], ["happy"])
    enc = {k: v for k, v in enc.items() if hasattr(v, "shape")}
    loss = answer_loss(model, enc)
    loss.backward()
    grads = {n.replace(".default.", ".task."): p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    assert not [n for n, p in model.named_parameters() if p.grad is not None and ".default." not in n]
    saved = tmp_path / "task"
    model.save_pretrained(saved)
    assert not (saved / "speech").exists() and not (saved / "vision").exists()

    base = Phi4MultimodalForCausalLM.from_pretrained(str(ckpt))
    ref = PeftModel.from_pretrained(base, str(ckpt / "speech-lora"), adapter_name="speech")
    ref.load_adapter(str(saved), adapter_name="task", is_trainable=True)
    ref.base_model.set_adapter(["speech", "task"])
    ref_loss = answer_loss(ref, enc)
    ref_loss.backward()
    torch.testing.assert_close(loss, ref_loss, atol=1e-5, rtol=1e-5)
    ref_grads = {n: p.grad for n, p in ref.named_parameters() if ".task." in n}
    assert set(ref_grads) == set(grads)
    for n, g in grads.items():
        torch.testing.assert_close(g, ref_grads[n], atol=1e-5, rtol=1e-4)
    with torch.no_grad():
        ref.base_model.set_adapter(["task"])  # the task adapter alone gives another loss
        assert abs(float(answer_loss(ref, enc)) - float(loss)) > 1e-4

    text = t.prepare(_conv("How does the speaker feel?"))
    with pytest.raises(ModelError, match="different card adapters"), torch.no_grad():
        answer_loss(model, {k: v for k, v in t.encode([text, audio], ["a", "b"]).items() if hasattr(v, "shape")})

    # one real optimizer step (the runner's train_lora) on a fresh trainable: card weights bit-identical
    root = write_corpus(tmp_path / "data", {"train": 2, "valid": 0, "test": 0}, media={"video": str(clip)})
    spec = _finetune_spec(ckpt, root)
    ds = dataset_ref(root)
    pairs = pairs_for_spec(spec, load_dataset(ds["name"], ds["root"], **ds["options"]), "train", {}).pairs
    t2 = trainable_for(spec.model, spec.media, None, spec.generation)
    before = {n: p.detach().clone() for n, p in t2.module.named_parameters() if ".speech" in n or ".vision" in n}
    assert before and not [n for n, p in t2.module.named_parameters() if n in before and p.requires_grad]
    result = train_lora(t2, pairs, [], FT, tmp_path / "run")
    assert result.steps == 1
    after = dict(t2.module.named_parameters())
    for n, w in before.items():
        assert torch.equal(after[n].detach(), w) and not after[n].requires_grad, n


def test_training_on_top_of_card_adapters_resumes_from_its_checkpoint(ckpt, clip, tmp_path, monkeypatch):
    """Trainer checkpoints hold the task adapter alone and a killed run resumes to the adapter an unbroken run
    trains (same weights)."""
    from safetensors.torch import load_file

    from affectbench.engine.store import Store
    from affectbench.finetune import run_finetune
    from affectbench.finetune.lora import Interrupt
    from tests.finetune._fixtures import write_corpus

    monkeypatch.setenv("AFFECTBENCH_CHECKPOINT_STEPS", "1")
    root = write_corpus(tmp_path / "data", {"train": 6, "valid": 0, "test": 0}, media={"video": str(clip)})
    spec = _finetune_spec(ckpt, root)
    finals = []
    for name, stop in (("whole", None), ("killed", 2)):  # killed in step 2, before its checkpoint
        store = Store(tmp_path / name / "affectbench.sqlite")
        if stop:
            with pytest.raises(Interrupt):
                run_finetune(store, spec, stop_after_steps=stop)
            (ckpt_dir,) = (tmp_path / name / "artifacts" / spec.run_id / "checkpoints").iterdir()
            assert (ckpt_dir / "adapter_model.safetensors").is_file()
            assert not (ckpt_dir / "speech").exists() and not (ckpt_dir / "vision").exists()
        rec = run_finetune(store, spec)
        assert rec.status == "done" and rec.metrics["steps"] == 3
        assert rec.metrics["resumed_from_step"] == (1 if stop else 0)
        finals.append(
            load_file(str(tmp_path / name / "artifacts" / spec.run_id / "final" / "adapter_model.safetensors"))
        )
    assert finals[0].keys() == finals[1].keys()
    for k in finals[0]:
        torch.testing.assert_close(finals[1][k], finals[0][k], atol=1e-6, rtol=1e-5)


def test_vllm_refuses_what_it_would_silently_leave_out(ckpt, tmp_path):
    """vLLM does not apply card adapters here: a checkpoint that ships them is refused unless the bare backbone is
    asked for, and a task adapter trained on top of them is refused always (one LoRA per request in vLLM)."""
    from affectbench.models.vllm import VLLMModel

    def _vllm(adapter=None, **opts):
        spec = ModelSpec(backend="vllm", name=str(ckpt), adapter=str(adapter) if adapter else None, options=opts)
        return VLLMModel(spec, MediaSpec(modalities="TAV", fps=2), tmp_path)

    with pytest.raises(ModelError, match=r"ships the card adapters \['speech', 'vision'\].*hf backend"):
        _vllm()
    with pytest.raises(ModelError, match="not supported by this backend"):
        _vllm(card_adapters=True)
    assert _vllm(card_adapters=False).family.key == "phi4_multimodal"  # the bare backbone, asked for
    on_top = tmp_path / "on-top"
    on_top.mkdir()
    (on_top / _card_adapters.CARD_FILE).write_text('{"base": {"card_adapters": {"speech": "speech-lora"}}}')
    with pytest.raises(ModelError, match=r"trained on top of the card adapters \['speech'\]"):
        _vllm(adapter=on_top, card_adapters=False)


def _finetune_spec(ckpt, root):
    """A finetune run of the card-adapter checkpoint on the corpus at `root` (text + audio, recipe FT)."""
    from tests.finetune._fixtures import dataset_ref

    model = {"backend": "hf", "name": str(ckpt)}
    return RunSpec(
        kind="finetune", dataset=dataset_ref(root), model=model, media={"modalities": "TA", "fps": 2}, finetune=FT
    )
