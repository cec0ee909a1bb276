"""vllm backend: the media budgets, tokens per modality and the context check, up to the engine call (vLLM
itself runs in tests/models/test_vllm_cpu_media.py). The reference is the `hf` backend on the same
checkpoint: its processor's placeholder tokens count what it sent."""

from __future__ import annotations

import sys
import types

import pytest

from affectbench.core.specs import GenerationSpec, MediaSpec, ModelSpec
from affectbench.core.types import Message, Part
from affectbench.models.hf import HFModel
from affectbench.models.vllm import VLLMModel
from tests._clips import make_clip
from tests.models import test_budgets
from tests.models.test_budgets import conv, video_placeholders

pytest.importorskip("transformers")
pytest.importorskip("torchvision")
GEN = GenerationSpec(max_new_tokens=1)
built, clip = test_budgets.built, test_budgets.clip  # the tiny checkpoints and the 6 s clip (module fixtures)


def pair(path, tmp_path, mods, **media):
    spec = MediaSpec(modalities=mods, fps=2, **media)
    hf = HFModel(ModelSpec(backend="hf", name=str(path)), spec, tmp_path)
    vl = VLLMModel(ModelSpec(backend="vllm", name=str(path)), spec, tmp_path)
    return hf, vl


def frames_sent(request) -> int:
    """Frames in a vLLM request: a video's (frames, metadata) stack, or one image per frame (Gemma 3n)."""
    mm = request.get("multi_modal_data", {})
    if "video" in mm:
        video = mm["video"]
        return int(video[0].shape[0])
    images = mm.get("image", [])
    return len(images) if isinstance(images, list) else 1


@pytest.mark.parametrize("key, mods", [("qwen2_5_omni", "TAV"), ("qwen2_5_vl", "TV"), ("gemma3n", "TAV")])
def test_vllm_sends_the_frames_hf_sends_under_a_video_budget(key, mods, built, clip, tmp_path):
    path = built(key)
    free = HFModel(ModelSpec(backend="hf", name=str(path)), MediaSpec(modalities=mods, fps=2), tmp_path)
    full = video_placeholders(free, conv(clip, "A" in mods))
    hf, vl = pair(path, tmp_path, mods, max_video_tokens=full // 3)
    (g,) = hf.generate([hf.prepare(conv(clip, "A" in mods))], GEN)
    ((req, _, meta),) = vl.requests(vl.prepare(conv(clip, "A" in mods)), GEN)
    assert meta["video_truncated"] == g.meta["video_truncated"]  # the same cut, counted the same way
    (cut,) = meta["video_truncated"]
    assert cut["tokens"] == full > cut["tokens_sent"] == g.meta["tokens"]["video"]  # hf's processor placeholders
    assert frames_sent(req) == cut["frames_sent"] < cut["frames"]
    # without a budget cut nothing is recorded
    _, vl_free = pair(path, tmp_path, mods)
    ((req_free, _, meta_free),) = vl_free.requests(vl_free.prepare(conv(clip, "A" in mods)), GEN)
    assert "video_truncated" not in meta_free and frames_sent(req_free) == cut["frames"]


def test_audio_budget_and_window_cuts_are_both_recorded(built, tmp_path):
    long = make_clip(tmp_path / "long.mp4", 40.0, size=(32, 32))
    hf, vl = pair(built("qwen2_5_omni"), tmp_path, "TAV", max_audio_seconds=2.0)
    (g,) = hf.generate([hf.prepare(conv(long))], GEN)
    ((req, _, meta),) = vl.requests(vl.prepare(conv(long)), GEN)
    assert meta["audio_truncated"] == g.meta["audio_truncated"]
    assert [c["by"] for c in meta["audio_truncated"]][0] == "max_audio_seconds"
    audio, rate = req["multi_modal_data"]["audio"]
    assert len(audio) == 2 * rate == 32000


class _Out:
    """The two fields of a vLLM RequestOutput the backend reads."""

    def __init__(self, prompt_ids):
        self.prompt_token_ids = prompt_ids
        self.outputs = [types.SimpleNamespace(text="neutral", token_ids=[1], finish_reason="stop")]


class _ProcessorEngine:
    """TEST DOUBLE for vllm.LLM: answers each request with the prompt ids the hf processor expands it to (the
    parity test_vllm_cpu_media.py shows with the real engine), so only the backend's own bookkeeping is tested."""

    def __init__(self, hf: HFModel, convs):
        self.rows = [hf.encode([c], GEN)["input_ids"][0].tolist() for c in convs]

    def generate(self, reqs, params, lora_request=None, use_tqdm=False):
        assert len(reqs) == len(self.rows)
        return [_Out(r) for r in self.rows]


@pytest.fixture
def fake_vllm(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(SamplingParams=lambda **kw: kw))


def test_tokens_per_modality_and_the_context_check(built, clip, tmp_path, fake_vllm):
    path = built("qwen2_5_omni")
    hf, vl = pair(path, tmp_path, "TAV")
    text = [Message(role="user", parts=[Part.of_text("hi")])]
    convs = [hf.prepare(conv(clip)), hf.prepare(text)]
    ref = hf.generate(convs, GEN)
    vl._llm = _ProcessorEngine(hf, convs)
    got = vl.generate([vl.prepare(c) for c in (conv(clip), text)], GEN)
    assert [g.meta["tokens"] for g in got] == [r.meta["tokens"] for r in ref]
    assert got[0].meta["tokens"]["video"] > 0 and got[0].meta["tokens"]["audio"] > 0
    assert sum(got[0].meta["tokens"].values()) == got[0].n_input_tokens
    assert vl.context_length() == hf.context_length()  # the text config's max_position_embeddings
    # a context between the two prompts: the long one fails alone, naming its size, the short one is answered
    limit = (len(vl._llm.rows[0]) + len(vl._llm.rows[1])) // 2
    short = VLLMModel(ModelSpec(backend="vllm", name=str(path), options={"max_model_len": limit}), vl.media, tmp_path)
    short._llm = vl._llm
    long_g, text_g = short.generate([short.prepare(c) for c in (conv(clip), text)], GEN)
    assert short.context_length() == limit
    assert long_g.error and f"a prompt of {len(vl._llm.rows[0])} tokens" in long_g.error
    assert f"context of {limit}" in long_g.error and long_g.meta["tokens"] == got[0].meta["tokens"]
    assert text_g.error is None and text_g.text == "neutral"
