"""The hf backend on a tiny random Qwen3-Omni-MoE thinker through the real Qwen3OmniMoeProcessor."""

import math

import pytest

from affectbench.core.specs import GenerationSpec, MediaSpec, ModelSpec
from affectbench.core.types import Message, Part
from affectbench.models.hf import HFModel
from tests._clips import make_clip

transformers = pytest.importorskip("transformers")
pytest.importorskip("torchvision")
if not hasattr(transformers, "Qwen3OmniMoeThinkerForConditionalGeneration"):
    pytest.skip("this transformers has no Qwen3-Omni-MoE classes", allow_module_level=True)

GEN = GenerationSpec(max_new_tokens=4)
OPTIONS = ["positive", "negative", "neutral"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    return {"av": make_clip(d / "av.mp4", 2.0), "mute": make_clip(d / "mute.mp4", 1.0, audio=False)}


@pytest.fixture(scope="module")
def omni_dir(tmp_path_factory):
    from tests._tiny import tiny_qwen3_omni

    return tiny_qwen3_omni(tmp_path_factory.mktemp("qwen3omni"))


@pytest.fixture(scope="module")
def omni(omni_dir, tmp_path_factory):
    model = HFModel(ModelSpec(backend="hf", name=str(omni_dir)), MediaSpec(fps=2), tmp_path_factory.mktemp("ws"))
    model.load()
    return model


def conv(text, video=None, audio=None):
    parts = []
    if video:
        parts.append(Part(kind="video", path=str(video)))
    if audio:
        parts.append(Part(kind="audio", path=str(audio)))  # the audio of the video, as its own part
    parts.append(Part.of_text(text))
    return [Message(role="user", parts=parts)]


def test_loads_thinker_with_its_processor(omni):
    info = omni.info()
    assert info["model_class"] == "Qwen3OmniMoeThinkerForConditionalGeneration"
    assert info["processor_class"] == "Qwen3OmniMoeProcessor"
    assert omni._ids["A"] == {omni.processor.tokenizer.audio_token_id}
    assert {"audio", "video"} <= omni.accepts


def test_audio_part_puts_audio_tokens_in_input_ids(omni, clips):
    tok = omni.processor.tokenizer
    c = omni.prepare(conv("What is the sentiment?", clips["av"], clips["av"]))
    enc = omni.encode([c], GEN)
    ids = enc["input_ids"][0].tolist()
    assert ids.count(tok.audio_token_id) > 0 and ids.count(tok.video_token_id) > 0
    assert "input_features" in enc and "pixel_values_videos" in enc
    (g,) = omni.generate([c], GEN)
    assert g.modalities == ("T", "A", "V")
    assert g.n_input_tokens == len(ids) and 0 <= g.n_output_tokens <= 4


def test_no_audio_part_means_no_audio_tokens(omni, clips):
    tok = omni.processor.tokenizer
    c = omni.prepare(conv("Sentiment?", video=clips["av"]))
    enc = omni.encode([c], GEN)
    ids = enc["input_ids"][0].tolist()
    assert tok.audio_token_id not in ids and tok.video_token_id in ids
    assert "input_features" not in enc
    assert omni.generate([c], GEN)[0].modalities == ("T", "V")


def test_batch_of_two_matches_single(omni, clips):
    a = omni.prepare(conv("Short?", clips["av"], clips["av"]))
    b = omni.prepare(conv("A much longer question about the emotion shown in this clip?", clips["mute"], clips["mute"]))
    gens = omni.generate([a, b], GEN)
    assert [g.modalities for g in gens] == [("T", "A", "V"), ("T", "V")]
    assert any("no audio stream" in n for n in gens[1].meta["notes"])
    assert gens[0].n_input_tokens != gens[1].n_input_tokens
    # left padding and the per-row rope positions are right: batched greedy output equals the single-sample one
    assert [omni.generate([x], GEN)[0].text for x in (a, b)] == [g.text for g in gens]


def test_score_gives_finite_log_probs_per_option(omni, clips):
    c = omni.prepare(conv("Sentiment?", clips["av"], clips["av"]))
    (g,) = omni.score([c], OPTIONS, GEN)
    assert set(g.scores) == set(OPTIONS)
    assert all(math.isfinite(v) and v < 0 for v in g.scores.values())
    assert g.text == max(g.scores, key=g.scores.get)
    assert g.modalities == ("T", "A", "V")


def test_full_checkpoint_loads_only_its_thinker(omni, clips, tmp_path):
    from tests._tiny import tiny_qwen3_omni

    path = tiny_qwen3_omni(tmp_path / "full", full=True)
    assert '"enable_audio_output": true' in (path / "config.json").read_text()  # claims a talker it lacks
    full = HFModel(ModelSpec(backend="hf", name=str(path)), MediaSpec(fps=2), tmp_path)
    full.load()
    assert full.info()["model_class"] == "Qwen3OmniMoeThinkerForConditionalGeneration"
    assert not hasattr(full.model, "talker")
    c = omni.prepare(conv("Sentiment?", clips["av"], clips["av"]))
    # the thinker weights came from the checkpoint (same seed as `omni`), not a fresh random init
    mine, theirs = full.score([c], OPTIONS, GEN)[0].scores, omni.score([c], OPTIONS, GEN)[0].scores
    assert all(mine[o] == pytest.approx(theirs[o], abs=1e-4) for o in OPTIONS)
