"""The run's seed reaches sampling: per-sample seeds from (run seed, sample id), so batch size never
changes a sampled answer and another run seed draws another one. Real tiny models (Qwen2.5-Omni
thinker for hf, Gemma3 for cascade) through the engine's `call_model`; the reference for each sample
is transformers' own sampling of that conversation alone after torch.manual_seed(its seed)."""

import hashlib

import pytest

from affectbench.core.specs import GenerationSpec, MediaSpec, ModelSpec
from affectbench.core.types import Message, Part, Sample
from affectbench.engine.execution import Call, Task, call_model
from affectbench.models import build_model
from affectbench.models.base import sample_seed

pytest.importorskip("transformers")

SAMPLING = GenerationSpec(max_new_tokens=8, temperature=1.5, top_p=1.0)
TEXTS = ["How does the speaker feel?", "The speaker sounds happy and smiles.", "Answer with one word.", "What now?"]


def tasks():
    return [
        Task(Sample(id=f"s{i}", transcript=t, target=None), [Message(role="user", parts=[Part.of_text(t)])])
        for i, t in enumerate(TEXTS)
    ]


def answers(model, run_seed, batch_size):
    out = {}
    ts = tasks()
    for i in range(0, len(ts), batch_size):
        for t in call_model(model, ts[i : i + batch_size], Call(SAMPLING, seed=run_seed)):
            assert t.error is None, t.error
            out[t.sample.id] = t.generation.text
    return out


def test_sample_seed_is_sha256_of_run_seed_and_id():
    want = int.from_bytes(hashlib.sha256(b"7:clip_0001").digest()[:4], "big")
    assert sample_seed(7, "clip_0001") == want and sample_seed(8, "clip_0001") != want


@pytest.fixture(scope="module")
def hf_model(tmp_path_factory):
    from tests._tiny import tiny_qwen_omni

    d = tiny_qwen_omni(tmp_path_factory.mktemp("omni"))
    return build_model(ModelSpec(backend="hf", name=str(d)), MediaSpec(modalities="T"), tmp_path_factory.mktemp("ws"))


@pytest.fixture(scope="module")
def cascade_model(tmp_path_factory):
    from tests._tiny import tiny_gemma3_checkpoint

    d = tiny_gemma3_checkpoint(tmp_path_factory.mktemp("gemma"), TEXTS * 3)
    return build_model(ModelSpec(backend="cascade", name=str(d), options={"experts": []}), MediaSpec(modalities="T"))


def reference_hf(model, conv, seed):
    import torch

    model.load()
    inputs = model.encode([conv], SAMPLING)
    tok = model._proc.tokenizer
    torch.manual_seed(seed)
    out = model._model.generate(
        **inputs,
        max_new_tokens=8,
        do_sample=True,
        temperature=1.5,
        top_p=1.0,
        pad_token_id=tok.pad_token_id,
        eos_token_id=model.end_ids,
    )
    new = out[0, inputs["input_ids"].shape[1] :].tolist()
    cut = next((i for i, t in enumerate(new) if t in model.end_ids), len(new))
    return tok.decode(new[:cut], skip_special_tokens=True).strip()


@pytest.mark.parametrize("which", ["hf", "cascade"])
def test_batch_size_does_not_change_sampled_answers_and_seed_does(which, hf_model, cascade_model):
    model = hf_model if which == "hf" else cascade_model
    one, four = answers(model, 3, 1), answers(model, 3, 4)
    assert one == four
    other = answers(model, 4, 4)
    assert other != four  # another run seed, another draw (8 tokens at temperature 1.5 from a random model)
    if which == "hf":
        for t in tasks():
            assert one[t.sample.id] == reference_hf(model, t.conversation, sample_seed(3, t.sample.id))
