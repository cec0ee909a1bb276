"""vllm backend: import guard and request building (vLLM itself is not installable here)."""

import importlib.util

import numpy as np
import pytest

from affectbench.core.errors import MissingExtra
from affectbench.core.registry import MODELS
from affectbench.core.specs import GenerationSpec, MediaSpec, ModelSpec
from affectbench.core.types import Message, Part
from affectbench.models.vllm import VLLMModel, build_request
from tests._clips import make_clip

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def render(msgs):
    out = []
    for m in msgs:
        body = "".join(c["text"] if c["type"] == "text" else f"<{c['type'].upper()}>" for c in m["content"])
        out.append(f"[{m['role']}]{body}")
    return "".join(out) + "[assistant]"


@pytest.fixture
def prepared(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", 2.0)
    mute = make_clip(tmp_path / "m.mp4", 1.0, audio=False)
    model = VLLMModel(ModelSpec(backend="vllm", name="Qwen/Qwen2.5-Omni-7B"), MediaSpec(fps=2), tmp_path)
    conv = [
        Message(
            role="user",
            parts=[Part(kind="video", path=str(clip)), Part(kind="audio", path=str(clip)), Part.of_text("Emotion?")],
        )
    ]
    conv_mute = [Message(role="user", parts=[Part(kind="video", path=str(mute)), Part(kind="audio", path=str(mute))])]
    return model, model.prepare(conv), model.prepare(conv_mute)


def test_build_request_video_and_audio_parts(prepared):
    _, conv, _ = prepared
    req, mods, _ = build_request(conv, GenerationSpec(system_prompt="Sys"), render)
    assert req["prompt"] == "[system]Sys[user]<VIDEO><AUDIO>Emotion?[assistant]"
    mm = req["multi_modal_data"]
    frames, meta = mm["video"]
    assert frames.shape == (4, 48, 64, 3) and frames.dtype == np.uint8
    assert meta["total_num_frames"] == 4 and meta["fps"] == 2.0 and meta["do_sample_frames"] is False
    audio, sr = mm["audio"]
    assert sr == 16000 and audio.dtype == np.float32 and abs(len(audio) - 32000) < 400
    assert req["mm_processor_kwargs"] == {"use_audio_in_video": False, "fps": 2.0}  # 4 frames over 2 s
    assert mods == ("T", "A", "V")


def test_build_request_sends_each_clip_its_own_rate(tmp_path):
    clip = make_clip(tmp_path / "long.mp4", 20.0, size=(32, 32), fps=5, audio=False)
    model = VLLMModel(ModelSpec(backend="vllm", name="Qwen/Qwen2.5-Omni-7B"), MediaSpec(fps=2, max_frames=32), tmp_path)
    conv = model.prepare([Message(role="user", parts=[Part(kind="video", path=str(clip))])])
    req, _, _ = build_request(conv, GenerationSpec(), render)
    assert req["mm_processor_kwargs"]["fps"] == pytest.approx(32 / 20)  # 2 / 1.6 = 1.25 s per temporal grid


def test_build_request_drops_missing_and_unsupported(prepared):
    _, conv, conv_mute = prepared
    req, mods, _ = build_request(conv_mute, GenerationSpec(), render)
    assert "<AUDIO>" not in req["prompt"] and set(req["multi_modal_data"]) == {"video"} and mods == ("V",)
    req, mods, _ = build_request(conv, GenerationSpec(), render, accepts={"video"}, suffix="positive")
    assert "audio" not in req["multi_modal_data"] and req["prompt"].endswith("[assistant]positive")


def test_engine_kwargs(tmp_path):
    spec = ModelSpec(
        backend="vllm",
        name="m",
        adapter=str(tmp_path),
        options={"tensor_parallel_size": 2, "limit_mm_per_prompt": {"video": 2}, "max_model_len": 8192},
    )
    kw = VLLMModel(spec).engine_kwargs()
    assert kw["tensor_parallel_size"] == 2 and kw["limit_mm_per_prompt"] == {"video": 2}
    assert kw["max_model_len"] == 8192 and kw["enable_lora"] is True
    assert "revision" not in kw
    pinned = VLLMModel(spec.model_copy(update={"revision": "v1"})).engine_kwargs()
    assert pinned["revision"] == pinned["tokenizer_revision"] == "v1"  # vllm.LLM's own argument names


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed")
def test_import_guard_names_the_extra(prepared):
    model, conv, _ = prepared
    with pytest.raises(MissingExtra, match=r"affectbench\[vllm\]"):
        model.generate([conv], GenerationSpec())
    assert MODELS.load("vllm") is VLLMModel  # the module itself imports without vLLM


def _family_folder(tmp_path, model_type):
    import json

    d = tmp_path / model_type
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": model_type}))
    return str(d)


def test_family_batch_policy_reaches_the_engine(tmp_path):
    from affectbench.core.errors import ModelError

    phi = _family_folder(tmp_path, "phi4_multimodal")
    kw = VLLMModel(ModelSpec(backend="vllm", name=phi)).engine_kwargs()
    assert kw["max_num_seqs"] == 1  # batch policy "single": one request at a time in vLLM's scheduler too
    with pytest.raises(ModelError, match="one request at a time"):
        VLLMModel(ModelSpec(backend="vllm", name=phi, options={"max_num_seqs": 8})).engine_kwargs()
    gemma = _family_folder(tmp_path, "gemma3n")
    assert (
        VLLMModel(ModelSpec(backend="vllm", name=gemma), MediaSpec(modalities="TAV")).engine_kwargs()["max_num_seqs"]
        == 1
    )
    assert (
        "max_num_seqs"
        not in VLLMModel(ModelSpec(backend="vllm", name=gemma), MediaSpec(modalities="TV")).engine_kwargs()
    )
    omni = VLLMModel(ModelSpec(backend="vllm", name=_family_folder(tmp_path, "qwen2_5_omni")))
    assert "max_num_seqs" not in omni.engine_kwargs() and omni.info()["batch_policy"] == "any"
    # the family's recipe applies as in hf (same frames, pixels, system prompt)
    assert omni.media.max_pixels == 768 * 28 * 28 and omni.recipe.system_prompt


def test_prefix_caching_is_off_unless_asked_and_score_mode_refuses_it(tmp_path):
    from affectbench.core.errors import ModelError

    model = VLLMModel(ModelSpec(backend="vllm", name="m"))
    assert model.engine_kwargs()["enable_prefix_caching"] is False
    assert model.info()["engine"]["enable_prefix_caching"] is False  # recorded with the run
    on = VLLMModel(ModelSpec(backend="vllm", name="m", options={"enable_prefix_caching": True}))
    assert on.engine_kwargs()["enable_prefix_caching"] is True
    with pytest.raises(ModelError, match="vllm #42019"):  # before any engine starts
        on.score([[Message(role="user", parts=[Part.of_text("x")])]], ["a", "b"], GenerationSpec(mode="score"))
