"""Batch invariance as a property of every zoo family on `hf`: a sample's greedy text and option scores
alone equal those inside a batch of mixed lengths and mixed modalities (audio, silent audio, no audio
track, image, text only), with the default media pipeline and with `media.preset: qwen-omni-utils`.

The reference is the sample run alone (its own forward, nothing padded for a batch-mate). Where a family
cannot be made invariant in one padded forward, its batch policy (`families.BATCH_POLICIES`) splits the
batch; the negative controls show each policy is needed (the outputs do move when it is bypassed)."""

from __future__ import annotations

import numpy as np
import pytest

from affectbench.core.specs import GenerationSpec, MediaSpec, ModelSpec
from affectbench.core.types import Message, Part
from affectbench.models import families
from affectbench.models.hf import HFModel
from tests._clips import make_clip
from tests._tiny_zoo import built_once
from tests.models.test_zoo import FAMILY_MODALITIES as ZOO_MODALITIES

pytest.importorskip("transformers")
pytest.importorskip("torchvision")

GEN = GenerationSpec(max_new_tokens=3)
OPTIONS = ["positive", "negative", "neutral"]
LOGIT_TOL = 1e-5  # float32 left padding moves logits by ~1e-7; a batch-mate's audio padding by 1e-4 .. 1e-2


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    from PIL import Image

    d = tmp_path_factory.mktemp("mix")
    Image.fromarray((np.random.RandomState(0).rand(60, 80, 3) * 255).astype(np.uint8)).save(d / "img.png")
    return {
        "short": make_clip(d / "short.mp4", 1.5),
        "long": make_clip(d / "long.mp4", 4.0, freq=300, color=(40, 200, 90)),
        "silent": make_clip(d / "silent.mp4", 1.0, silent=True),
        "mute": make_clip(d / "mute.mp4", 2.0, audio=False),
        "image": d / "img.png",
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return built_once(tmp_path_factory)


def _conv(text, clip=None, image=None):
    parts = [Part(kind="video", path=str(clip)), Part(kind="audio", path=str(clip))] if clip else []
    if image:
        parts.append(Part(kind="image", path=str(image)))
    return [Message(role="user", parts=[*parts, Part.of_text(text)])]


def _mix(media, with_image=True):
    """Mixed lengths (1.5 s / 4 s clips, short and long questions) and modalities."""
    convs = [
        _conv("Short?", media["short"]),
        _conv("A much longer question about the emotion in this clip, with more words in it?", media["long"]),
        _conv("Silent one?", media["silent"]),
        _conv("No audio track?", media["mute"]),
        _conv("Text only, and rather long as well, so that it is padded differently?"),
    ]
    if with_image:
        convs.insert(4, _conv("Image?", image=media["image"]))
    return convs


def _model(path, key, preset=None):
    return HFModel(
        ModelSpec(backend="hf", name=str(path)), MediaSpec(modalities=ZOO_MODALITIES[key], fps=2, preset=preset), None
    )


def _last_logits(model, convs):
    import torch

    enc = model.encode(convs, GEN)
    with torch.inference_mode():
        return model.model(**enc).logits[:, -1].float()


def _check_invariant(model, convs):
    convs = [model.prepare(c) for c in convs]
    alone = [model.generate([c], GEN)[0] for c in convs]
    together = model.generate(convs, GEN)
    assert [g.text for g in together] == [g.text for g in alone]
    assert [g.modalities for g in together] == [g.modalities for g in alone]
    assert [g.n_input_tokens for g in together] == [g.n_input_tokens for g in alone]
    # greedy text on a random tiny model is a coarse witness: each forward generate() forms moves no logit
    groups = families.batches(model.family, convs, [model._carries_audio(c) for c in convs])
    assert sorted(i for g in groups for i in g) == list(range(len(convs)))
    for group in groups:
        batch = _last_logits(model, [convs[i] for i in group])
        for row, i in enumerate(group):
            ref = _last_logits(model, [convs[i]])[0]
            assert float((batch[row] - ref).abs().max()) < LOGIT_TOL, (model.family.key, i, group)
    scored_alone = [model.score([c], OPTIONS, GEN)[0].scores for c in convs]
    scored = [g.scores for g in model.score(convs, OPTIONS, GEN)]
    for a, b in zip(scored, scored_alone, strict=True):
        assert a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-5 for k in a)
    return convs, groups


@pytest.mark.parametrize("key", list(ZOO_MODALITIES))
def test_sample_alone_equals_sample_in_a_mixed_batch(key, built, media):
    model = _model(built(key), key)
    convs, groups = _check_invariant(model, _mix(media))
    policy = model.family.batch
    assert policy in families.BATCH_POLICIES and model.info()["batch_policy"] == policy
    if policy == "any":
        assert groups == [list(range(len(convs)))]  # nothing is split without a reason


@pytest.mark.parametrize("key", ["qwen2_5_omni", "qwen3_omni_moe"])
def test_interleaved_preset_batch_of_clips_with_and_without_audio(key, built, media):
    """With qwen-omni-utils' interleaving a clip with audio and a clip without one used to crash the batch
    (KeyError in collate, then get_rope_index under one use_audio_in_video flag); each now gets its own flag."""
    model = _model(built(key), key, preset="qwen-omni-utils")
    convs, groups = _check_invariant(model, _mix(media, with_image=False))
    mute = 3
    assert [mute] in groups  # the mute clip's video is not interleaved: its own forward
    enc = model.encode([convs[mute]], GEN)
    assert not enc.get("use_audio_in_video")  # alone, too, a video without audio is a plain video
    assert model.encode([convs[0]], GEN)["use_audio_in_video"] is True


def test_gemma3n_audio_rows_of_different_lengths_would_move_so_they_never_share_a_forward(built, media):
    """Negative control for `one_audio_length`: in one padded forward a longer batch-mate moves a clip's logits."""
    model = _model(built("gemma3n"), "gemma3n")
    assert model.family.batch == "one_audio_length"
    mix = _mix(media)
    silent, long = model.prepare(mix[2]), model.prepare(mix[1])  # a 1 s and a 4 s clip
    assert families.batches(model.family, [silent, long]) == [[0], [1]]
    forced = _last_logits(model, [silent, long])  # bypassing the policy: one forward, audio padded to 4 s
    moved = max(
        float((forced[0] - _last_logits(model, [silent])[0]).abs().max()),
        float((forced[1] - _last_logits(model, [long])[0]).abs().max()),
    )
    assert moved > 1e-4


def test_batch_policy_groups():
    gemma = families.family_of({"model_type": "gemma3n"})

    def clip_conv(n):
        from affectbench.media import DecodedClip

        clip = DecodedClip(None, np.zeros(0, np.float32), np.zeros(n, np.float32), 16000, n / 16000, False, True)
        return [Message(role="user", parts=[Part(kind="audio", path=f"{n}.wav", data=clip), Part.of_text("x")])]

    text = [Message(role="user", parts=[Part.of_text("x")])]
    convs = [clip_conv(100), text, clip_conv(200), clip_conv(100), text]
    assert families.batches(gemma, convs) == [[0, 1, 3, 4], [2]]
    both = [Message(role="user", parts=[*clip_conv(100)[0].parts, *clip_conv(200)[0].parts])]
    assert families.batches(gemma, [clip_conv(100), both]) == [[0], [1]]  # two lengths in one row: alone
    qwen = families.family_of({"model_type": "qwen2_5_omni"})
    assert families.batches(qwen, convs) == [[0, 1, 2, 3, 4]]
    assert families.batches(qwen, convs, [True, None, False, True, None]) == [[0, 1, 3, 4], [2]]
    phi = families.family_of({"model_type": "phi4_multimodal"})
    assert families.batches(phi, convs[:3]) == [[0], [1], [2]]
    assert families.serial(phi, "T") and families.serial(gemma, "TAV") and not families.serial(gemma, "TV")
    assert not families.serial(qwen, "TAV")
