"""The `qwen-omni-utils` media preset against that package (0.0.9) on real mp4s made with ffmpeg:
same frames, video_grid_thw, video_second_per_grid, audio token count and input_ids from the real
Qwen tokenizer, with the audio of each video interleaved by time as Qwen2.5-Omni's TMRoPE expects."""

from __future__ import annotations

import numpy as np
import pytest

from affectbench.core.specs import GenerationSpec, MediaSpec, ModelSpec
from affectbench.core.types import Message, Part
from affectbench.models.hf import HFModel
from tests._clips import ffmpeg_clip

pytest.importorskip("transformers")
pytest.importorskip("torchvision")
qou = pytest.importorskip("qwen_omni_utils")
pytest.importorskip("decord")  # the package's video reader here (torchvision 0.29 has no read_video)

# (width, height, seconds): landscape, tiny, portrait, wide; 1 s gives the 4-frame minimum, 7.3 s an odd rate
CLIPS = [(320, 240, 1.0), (160, 120, 7.3), (200, 360, 20.0), (640, 360, 40.0)]
PROMPT = "How does the speaker feel?"
GEN = GenerationSpec(max_new_tokens=2)
# The system prompt of the Qwen/Qwen2.5-Omni-7B model card's examples (the family's default recipe sends it)
MODEL_CARD_SYSTEM = (
    "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving "
    "auditory and visual inputs, as well as generating text and speech."
)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from tests._tiny import qwen_omni_tokenizer, tiny_qwen_omni

    tok = qwen_omni_tokenizer(tmp_path_factory.mktemp("qwen_tok"))
    folder = tiny_qwen_omni(tmp_path_factory.mktemp("omni_real_tok"), real_tokenizer=tok)
    m = HFModel(ModelSpec(backend="hf", name=str(folder)), MediaSpec(preset="qwen-omni-utils"), None)
    m.load()
    return m


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref_clips")
    return {c: ffmpeg_clip(d / f"{c[0]}x{c[1]}_{c[2]}.mp4", c[2], size=c[:2]) for c in CLIPS}


def reference(proc, path):
    """What Qwen's model card does: process_mm_info, then the processor with the audio of the video
    (transformers 5.24 takes it as load_audio_from_video + audio_from_video_indices and one fps number)."""
    conv = [
        {"role": "system", "content": [{"type": "text", "text": MODEL_CARD_SYSTEM}]},
        {"role": "user", "content": [{"type": "video", "video": str(path)}, {"type": "text", "text": PROMPT}]},
    ]
    audios, images, videos, video_kwargs = qou.process_mm_info(conv, use_audio_in_video=True, return_video_kwargs=True)
    text = proc.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
    inputs = proc(
        text=[text],
        audio=audios,
        videos=videos,
        videos_kwargs={"fps": video_kwargs["fps"][0]},
        load_audio_from_video=True,
        audio_from_video_indices=[0],
        padding=True,
        return_tensors="pt",
    )
    return inputs, videos[0]


def ours(model, path):
    conv = [Message("user", [Part("video", path=str(path)), Part("audio", path=str(path)), Part.of_text(PROMPT)])]
    prepared = model.prepare(conv)
    inputs, (meta,) = model._encode_sent([prepared], GEN)
    return prepared, inputs, meta


@pytest.mark.parametrize("clip", CLIPS, ids=lambda c: f"{c[0]}x{c[1]}_{c[2]}s")
def test_preset_matches_qwen_omni_utils(model, clips, clip):
    path = clips[clip]
    ref, ref_frames = reference(model._proc, path)
    prepared, got, meta = ours(model, path)
    frames = prepared[0].parts[0].data.frames  # (T, H, W, 3) uint8
    assert frames.shape == tuple(ref_frames.permute(0, 2, 3, 1).shape)
    assert np.array_equal(frames.astype(np.float32), ref_frames.permute(0, 2, 3, 1).numpy())
    assert got["video_grid_thw"].tolist() == ref["video_grid_thw"].tolist()
    assert got["video_second_per_grid"].tolist() == pytest.approx(ref["video_second_per_grid"].tolist(), rel=1e-6)
    audio_id = model._proc.tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    n_audio = int((got["input_ids"] == audio_id).sum())
    assert n_audio > 0 and n_audio == int((ref["input_ids"] == audio_id).sum())
    assert got["input_ids"].tolist() == ref["input_ids"].tolist()
    assert np.allclose(got["pixel_values_videos"].numpy(), ref["pixel_values_videos"].numpy(), atol=1e-5)
    # audio samples agree to ~1e-5 (PyAV vs the ffmpeg CLI + soxr of librosa): log-mel features to a few 1e-3
    diff = np.abs(got["input_features"].numpy() - ref["input_features"].numpy())
    assert diff.max() < 5e-3 and diff.mean() < 1e-5
    assert got["feature_attention_mask"].tolist() == ref["feature_attention_mask"].tolist()
    assert meta["video"][0]["frames"] == len(ref_frames) and len(ref_frames) >= 4 and len(ref_frames) % 2 == 0


def test_interleaved_run_reports_audio_and_video_reached(model, clips):
    path = clips[CLIPS[0]]
    conv = [Message("user", [Part("video", path=str(path)), Part("audio", path=str(path)), Part.of_text(PROMPT)])]
    (g,) = model.generate([model.prepare(conv)], GEN)
    assert g.modalities == ("T", "A", "V")
    (scored,) = model.score([model.prepare(conv)], ["positive", "negative"], GEN)  # rows processed one by one
    assert scored.modalities == ("T", "A", "V") and all(np.isfinite(v) for v in scored.scores.values())
    assert model.info()["audio_in_video"] == "interleaved" and model.info()["cap_pixels_per_frame"] is True


def test_preset_is_part_of_the_run_id():
    from affectbench.core.specs import DatasetRef, RunSpec

    base = RunSpec(dataset=DatasetRef(name="x"), model=ModelSpec(backend="hf", name="m"))
    preset = base.model_copy(update={"media": MediaSpec(preset="qwen-omni-utils")})
    assert base.run_id != preset.run_id and preset.identity()["media"]["preset"] == "qwen-omni-utils"
