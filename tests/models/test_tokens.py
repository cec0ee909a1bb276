"""Media token counts (`models.tokens`) against the placeholder tokens the family's real processor writes
into input_ids for the same decoded clip (the hf backend's own encode path), for every counted family,
at the tiny test processors and at the released processor settings (bench/_zoo.py, full_scale)."""

from __future__ import annotations

import pytest

from affectbench.core.specs import GenerationSpec, MediaSpec, ModelSpec
from affectbench.models import hf as hf_module
from affectbench.models import tokens
from affectbench.models.hf import HFModel
from tests._clips import make_clip
from tests.models.test_zoo import _build, _placeholder_counts, conv

pytest.importorskip("transformers")
pytest.importorskip("torchvision")

GEN = GenerationSpec(max_new_tokens=1)
MODS = {"qwen2_5_omni": "TAV", "qwen3_omni_moe": "TAV", "gemma3n": "TAV", "phi4_multimodal": "TAV",
        "qwen2_5_vl": "TV", "qwen2_vl": "TV", "qwen2_audio": "TA"}  # fmt: skip


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("token_clips")
    return {
        "short": make_clip(d / "short.mp4", 1.5, size=(64, 48)),
        "wide": make_clip(d / "wide.mp4", 3.2, size=(160, 90), freq=300),
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    cache = {}

    def get(key, full_scale=False):
        if (key, full_scale) not in cache:
            out = tmp_path_factory.mktemp(f"{key}-{int(full_scale)}")
            if full_scale:
                import sys
                from pathlib import Path

                sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
                import _zoo

                cache[key, full_scale] = _zoo.build(key, out, full_scale=True)
            else:
                cache[key, full_scale] = _build(key, out)
        return cache[key, full_scale]

    return get


def expected(counter, model, conversation):
    """What the counter says for the clip the backend decoded (frames, size, audio kept)."""
    prepared = model.prepare(conversation)
    video = audio = 0
    for p in prepared[0].parts:
        if p.kind == "video" and p.data is not None and p.data.has_video:
            f = p.data.frames
            video += counter.video(int(f.shape[0]), int(f.shape[1]), int(f.shape[2]))
        if p.kind == "audio" and p.data is not None and p.data.has_audio:
            kept = counter.audio_seconds_kept(len(p.data.audio) / p.data.sample_rate)
            audio += counter.audio_clip(int(round(kept * p.data.sample_rate)))
    return prepared, video, audio


def measured(model, prepared):
    enc = model.encode([prepared], GEN)
    n = _placeholder_counts(model, enc)
    return n.get("image_token", 0) + n.get("video_token", 0), n.get("audio_token", 0)


@pytest.mark.parametrize("key", list(MODS))
@pytest.mark.parametrize("clip", ["short", "wide"])
def test_counts_equal_the_processor_placeholders(key, clip, built, clips, tmp_path):
    if key == "gemma3n":
        pytest.importorskip("timm")
    path = built(key)
    model = HFModel(ModelSpec(backend="hf", name=str(path)), MediaSpec(modalities=MODS[key], fps=2), tmp_path)
    model.load()
    counter = tokens.counter_of(model.processor, key, cap_pixels_per_frame=hf_module.CAP_PIXELS_PER_FRAME)
    prepared, video, audio = expected(counter, model, conv("Emotion?", clips[clip]))
    got = measured(model, prepared)
    assert got == (video, audio), (key, clip, got, (video, audio))
    assert ("V" not in MODS[key] or video > 0) and ("A" not in MODS[key] or audio > 0)


@pytest.mark.parametrize("key", ["qwen2_5_omni", "qwen2_5_vl", "qwen2_audio", "gemma3n", "phi4_multimodal"])
def test_released_settings_equal_the_released_processors(key, built, clips, tmp_path):
    """`released_counter` (no files) against the released-scale processors bench/_zoo.py saves."""
    if key == "gemma3n":
        pytest.importorskip("timm")
    path = built(key, full_scale=True)
    model = HFModel(ModelSpec(backend="hf", name=str(path)), MediaSpec(modalities=MODS[key], fps=2), tmp_path)
    model.load()
    counter = tokens.released_counter(key)
    if key == "qwen2_5_omni":  # bench/_zoo.py saves a 30 s Whisper window; the released config holds 300 s
        counter = tokens.counter_of(model.processor, key, cap_pixels_per_frame=True)
    prepared, video, audio = expected(counter, model, conv("Emotion?", clips["wide"]))
    assert measured(model, prepared) == (video, audio)


def test_whisper_window_and_qwen_reference_numbers():
    c = tokens.released_counter("qwen2_audio")
    assert c.audio_clip(16000 * 10) == 250  # 25 tokens/s (REFERENCE: Qwen2.5-Omni audio ≈ 25 tokens/s)
    assert c.audio_clip(16000 * 60) == c.audio_clip(16000 * 30) == 750  # the 30 s window
    assert c.audio_seconds_kept(60.0) == 30.0
    v = tokens.released_counter("qwen2_5_vl")
    # bench/README.md (measured with the processor): 20 frames of 640x360 at 2 fps -> 2990 video tokens
    assert v.video(20, 360, 640) == 2990
    g = tokens.released_counter("gemma3n")
    assert (g.video(8, 360, 640), g.audio_clip(16000 * 10)) == (2048, 188)
