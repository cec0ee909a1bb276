"""The hf backend on tiny random Qwen2.5-Omni thinker / Qwen2-Audio / Qwen2-VL through the real processors."""

import math

import pytest

from affectbench.core.errors import MediaError, ModelError
from affectbench.core.specs import GenerationSpec, MediaSpec, ModelSpec
from affectbench.core.types import Message, Part
from affectbench.models.hf import HFModel
from tests._clips import make_clip

pytest.importorskip("transformers")
pytest.importorskip("torchvision")

GEN = GenerationSpec(max_new_tokens=4)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    return {
        "av": make_clip(d / "av.mp4", 2.0),
        "av_long": make_clip(d / "av_long.mp4", 3.0, freq=300),
        "mute": make_clip(d / "mute.mp4", 1.0, audio=False),
    }


@pytest.fixture(scope="module")
def omni_dir(tmp_path_factory):
    from tests._tiny import tiny_qwen_omni

    return tiny_qwen_omni(tmp_path_factory.mktemp("omni"))


@pytest.fixture(scope="module")
def omni(omni_dir, tmp_path_factory):
    model = HFModel(ModelSpec(backend="hf", name=str(omni_dir)), MediaSpec(fps=2), tmp_path_factory.mktemp("ws"))
    model.load()
    return model


def conv(text, video=None, audio=None, span=None):
    parts = []
    if video:
        parts.append(Part(kind="video", path=str(video), span=span))
    if audio:
        parts.append(Part(kind="audio", path=str(audio), span=span))  # the audio of the video, as its own part
    parts.append(Part.of_text(text))
    return [Message(role="user", parts=parts)]


def test_omni_audio_and_video_tokens_reach_model(omni, clips):
    tok = omni.processor.tokenizer
    c = omni.prepare(conv("What is the sentiment?", clips["av"], clips["av"]))
    enc = omni.encode([c], GEN)
    ids = enc["input_ids"][0].tolist()
    assert ids.count(tok.audio_token_id) > 0 and ids.count(tok.video_token_id) > 0
    (g,) = omni.generate([c], GEN)
    assert g.modalities == ("T", "A", "V")
    assert g.n_input_tokens == len(ids) and 0 <= g.n_output_tokens <= 4
    assert isinstance(g.text, str)


def test_omni_no_audio_part_means_no_audio_tokens(omni, clips):
    tok = omni.processor.tokenizer
    c = omni.prepare(conv("Sentiment?", video=clips["av"]))
    ids = omni.encode([c], GEN)["input_ids"][0].tolist()
    assert tok.audio_token_id not in ids and tok.video_token_id in ids
    assert omni.generate([c], GEN)[0].modalities == ("T", "V")


def test_omni_batch_of_two_lengths_and_missing_audio(omni, clips):
    a = conv("Short?", clips["av"], clips["av"])
    b = conv("A much longer question about the emotion shown in this clip?", clips["mute"], clips["mute"])
    gens = omni.generate([omni.prepare(a), omni.prepare(b)], GEN)
    assert len(gens) == 2
    assert gens[0].modalities == ("T", "A", "V")
    assert gens[1].modalities == ("T", "V")  # the clip has no audio stream: recorded as missing, still runs
    assert any("no audio stream" in n for n in gens[1].meta["notes"])
    assert gens[0].n_input_tokens != gens[1].n_input_tokens
    # batched greedy output equals the single-sample output (left padding is right)
    (alone,) = omni.generate([omni.prepare(b)], GEN)
    assert alone.text == gens[1].text


def test_omni_media_settings_and_span(omni_dir, clips, tmp_path):
    model = HFModel(
        ModelSpec(backend="hf", name=str(omni_dir)), MediaSpec(modalities="TV", fps=1, min_frames=1), tmp_path
    )
    c = model.prepare(conv("x", clips["av_long"], clips["av_long"], span=(0.5, 2.5)))
    assert [p.kind for p in c[0].parts] == ["video", "text"]  # A excluded by modalities
    assert c[0].parts[0].data.frames.shape[0] == 2
    assert model.generate([c], GEN)[0].modalities == ("T", "V")


def test_omni_score_finite(omni, clips):
    c = omni.prepare(conv("Sentiment?", clips["av"], clips["av"]))
    (g,) = omni.score([c], ["positive", "negative", "neutral"], GEN)
    assert set(g.scores) == {"positive", "negative", "neutral"}
    assert all(math.isfinite(v) and v < 0 for v in g.scores.values())
    assert g.text == max(g.scores, key=g.scores.get)
    assert g.modalities == ("T", "A", "V")


def test_corrupt_media_raises_media_error(omni, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"xx" * 100)
    with pytest.raises(MediaError, match="bad.mp4"):
        omni.prepare(conv("x", bad, bad))


def test_info_and_fingerprint(omni, omni_dir):
    info = omni.info()
    assert info["model_class"] == "Qwen2_5OmniThinkerForConditionalGeneration"
    assert info["device"] == "cpu" and info["dtype"] == "float32" and "transformers" in info
    other = HFModel(ModelSpec(backend="hf", name=str(omni_dir), options={"dtype": "bfloat16"}))
    assert other.fingerprint() != omni.fingerprint()


def test_lora_adapter_loads_and_changes_fingerprint(omni, omni_dir, clips, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    base = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(omni_dir)
    peft_model = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 1.0)
    peft_model.save_pretrained(tmp_path / "adapter")
    tuned = HFModel(ModelSpec(backend="hf", name=str(omni_dir), adapter=str(tmp_path / "adapter")), MediaSpec(fps=2))
    assert tuned.fingerprint() != omni.fingerprint()
    c = omni.prepare(conv("Sentiment?", clips["av"], clips["av"]))
    s0 = omni.score([c], ["positive"], GEN)[0].scores["positive"]
    s1 = tuned.score([c], ["positive"], GEN)[0].scores["positive"]
    assert s0 != pytest.approx(s1)
    # editing the adapter weights changes the fingerprint again
    (tmp_path / "adapter" / "adapter_model.safetensors").write_bytes(b"changed")
    assert HFModel(tuned.spec).fingerprint() != tuned.fingerprint()


def test_missing_adapter_and_model_errors(omni_dir, tmp_path):
    with pytest.raises(ModelError, match="adapter"):
        HFModel(ModelSpec(backend="hf", name=str(omni_dir), adapter=str(tmp_path / "nope")))
    with pytest.raises(ModelError, match="cannot load"):
        HFModel(ModelSpec(backend="hf", name=str(tmp_path / "no-model"))).load()


def test_qwen2_audio_takes_audio(tmp_path, clips):
    """An audio-text model runs with modalities TA (asking it for V fails loudly: tests/models/test_zoo.py)."""
    from tests._tiny import tiny_qwen2_audio

    path = tiny_qwen2_audio(tmp_path / "qa")
    model = HFModel(ModelSpec(backend="hf", name=str(path)), MediaSpec(modalities="TA"), tmp_path)
    a = model.prepare(conv("Emotion?", clips["av"], clips["av"]))
    b = model.prepare(conv("Emotion of this longer utterance?", None, clips["av_long"]))
    gens = model.generate([a, b], GEN)
    assert [g.modalities for g in gens] == [("T", "A"), ("T", "A")]
    assert model.info()["model_class"] == "Qwen2AudioForConditionalGeneration"
    (g,) = model.score([a], ["happy", "sad"], GEN)
    assert all(math.isfinite(v) for v in g.scores.values())


def test_qwen2_vl_takes_video(tmp_path, clips):
    from tests._tiny import tiny_qwen2_vl

    path = tiny_qwen2_vl(tmp_path / "vl")
    model = HFModel(ModelSpec(backend="hf", name=str(path)), MediaSpec(modalities="TV"), tmp_path)
    a = model.prepare(conv("Emotion?", clips["av"], clips["av"]))
    b = model.prepare(conv("Text only, a bit longer than the other one"))
    gens = model.generate([a, b], GEN)
    assert [g.modalities for g in gens] == [("T", "V"), ("T",)]
    (g,) = model.score([a], ["happy", "sad"], GEN)
    assert all(math.isfinite(v) for v in g.scores.values())
