"""The model zoo end to end: tiny random models of each family's real architecture, saved with the
family's real processor, driven from real mp4s through the runner (generate, score, LoRA step,
adapter reload), plus the per-family rules: capability discovery, video as frames, one BOS,
batched output = single-sample output, chat-template fallback, loud failure, remote-code opt-in."""

from __future__ import annotations

import json
import math

import pytest

# CI runs every family case: a missing dependency fails collection instead of skipping ("tested" in
# `affectbench ls models` means these cases ran; tests/models/test_tested_families.py checks the map)
import timm  # noqa: E402,F401  (Gemma 3n's vision tower)
import torchvision  # noqa: E402,F401
import transformers  # noqa: E402,F401

from affectbench.core.errors import ModelError
from affectbench.core.specs import FinetuneSpec, GenerationSpec, MediaSpec, ModelSpec, RunSpec
from affectbench.core.types import Message, Part
from affectbench.engine.runner import Runner
from affectbench.engine.store import Store
from affectbench.models import families
from affectbench.models._media import prepare_media
from affectbench.models.hf import HFModel
from tests._clips import make_clip
from tests._tiny_zoo import zoo_builders
from tests.finetune._fixtures import dataset_ref, write_corpus

GEN = GenerationSpec(max_new_tokens=3)
# family → the modalities it takes
FAMILY_MODALITIES = {
    "qwen2_5_omni": "TAV",
    "qwen3_omni_moe": "TAV",
    "gemma3n": "TAV",
    "phi4_multimodal": "TAV",
    "qwen2_vl": "TV",
    "qwen2_5_vl": "TV",
    "qwen2_audio": "TA",
}


def _build(key, out):
    return zoo_builders()[key](out)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("zoo_clips")
    return {"av": make_clip(d / "av.mp4", 1.5), "av2": make_clip(d / "av2.mp4", 1.0, freq=300, color=(40, 200, 90))}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    cache = {}

    def get(key):
        if key not in cache:
            cache[key] = _build(key, tmp_path_factory.mktemp(key))
        return cache[key]

    return get


def _model(path, mods, tmp_path, **opts):
    return HFModel(ModelSpec(backend="hf", name=str(path), options=opts), MediaSpec(modalities=mods, fps=2), tmp_path)


def conv(text, clip=None, audio=True):
    parts = []
    if clip:
        parts.append(Part(kind="video", path=str(clip)))
        if audio:
            parts.append(Part(kind="audio", path=str(clip)))
    parts.append(Part.of_text(text))
    return [Message(role="user", parts=parts)]


def _placeholder_counts(model, enc, row=0):
    """How many of the family's own image/video and audio placeholder tokens a row holds."""
    proc = model._proc
    tok = proc.tokenizer
    ids = enc["input_ids"][row].tolist()
    count = {}
    for attr in ("audio_token", "image_token", "video_token"):
        token = getattr(proc, attr, None) or getattr(tok, attr, None)
        if token:
            count[attr] = ids.count(tok.convert_tokens_to_ids(token))
    return count


@pytest.mark.parametrize("key", list(FAMILY_MODALITIES))
def test_family_end_to_end(key, built, clips, tmp_path):
    """Runner: generate, score, modalities from the family's placeholders, one LoRA step, adapter reload."""
    mods = FAMILY_MODALITIES[key]
    path = built(key)
    model = _model(path, mods, tmp_path)
    assert model.family.key == key
    c = model.prepare(conv("Sentiment?", clips["av"]))
    enc = model.encode([c], GEN)
    counts = _placeholder_counts(model, enc)
    if "A" in mods:
        assert counts["audio_token"] > 0
    if "V" in mods:
        assert counts.get("video_token", 0) + counts.get("image_token", 0) > 0
    # through the runner on a manifest of real mp4s
    root = write_corpus(tmp_path / "data", {"train": 2, "valid": 0, "test": 2}, media={"video": str(clips["av"])})
    ds = dataset_ref(root)
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    runner = Runner(store, progress=False)
    base = {"backend": "hf", "name": str(path)}
    media = {"modalities": mods, "fps": 2}
    gen = runner.run(RunSpec(dataset=ds, model=base, media=media, generation={"max_new_tokens": 2}))
    preds = store.predictions(gen.id)
    assert gen.status == "done" and len(preds) == 2
    assert all(p.error is None for p in preds), [p.error for p in preds]
    assert {tuple(p.modalities) for p in preds} == {tuple(mods)}
    assert gen.env["model"]["family"] == key and gen.env["model"]["recipe"]["video"] == model.recipe.video
    sc = runner.run(RunSpec(dataset=ds, model=base, media=media, generation={"mode": "score"}))
    spreds = store.predictions(sc.id)
    assert all(p.error is None and p.raw in ("negative", "positive") for p in spreds), [p.error for p in spreds]
    assert all(math.isfinite(v) for p in spreds for v in p.meta.get("scores", {"x": 0.0}).values())
    # video pairs reach ~2k tokens; a smaller max_length would have to cut media tokens, which is refused
    ft = FinetuneSpec(epochs=1, batch_size=2, rank=2, alpha=4, dropout=0.0, valid_split=None, lr=1e-2, max_length=4096)
    rec = runner.run(RunSpec(kind="finetune", dataset=ds, model=base, media=media, finetune=ft))
    assert rec.status == "done" and rec.metrics["steps"] == 1
    assert math.isfinite(rec.metrics["first_train_loss"])
    tuned = runner.run(
        RunSpec(dataset=ds, model={**base, "adapter": rec.id}, media=media, generation={"mode": "score"})
    )
    runner.close()
    assert tuned.status == "done" and tuned.env["fingerprint"] != sc.env["fingerprint"]
    assert all(p.error is None for p in store.predictions(tuned.id))


def test_capabilities_come_from_the_processor_not_attribute_names(built, tmp_path):
    phi = _model(built("phi4_multimodal"), "TAV", tmp_path)
    phi.load()
    assert phi.caps == {"audio": "audio_processor", "image": "image_processor"}  # Phi-4 names it audio_processor
    gem = _model(built("gemma3n"), "TAV", tmp_path)
    gem.load()
    assert gem.caps == {"audio": "feature_extractor", "image": "image_processor"}
    omni = _model(built("qwen2_5_omni"), "TAV", tmp_path)
    omni.load()
    assert set(omni.caps) == {"audio", "image", "video"}


@pytest.mark.parametrize("key", ["gemma3n", "phi4_multimodal"])
def test_video_reaches_frame_families_as_images_and_audio_reaches_them(key, built, clips, tmp_path):
    model = _model(built(key), "TAV", tmp_path, recipe={"max_frames": 3})
    c = model.prepare(conv("Emotion?", clips["av"]))
    n_frames = len(c[0].parts[0].data.frames)
    assert n_frames == 3  # the recipe's frame count
    enc = model.encode([c], GEN)
    counts = _placeholder_counts(model, enc)
    assert counts["audio_token"] > 0
    if key == "gemma3n":  # a fixed 4 soft tokens per image in the tiny config
        assert counts["image_token"] == 4 * n_frames
    else:  # Phi-4 processor: one image block per image, image_sizes has one row per frame
        assert enc["image_sizes"].shape[0] == n_frames and counts["image_token"] > 0
    (g,) = model.generate([c], GEN)
    assert g.modalities == ("T", "A", "V")
    info = model.info()
    assert info["recipe"]["video"] == "frames" and info["recipe"]["max_frames"] == 3
    assert info["recipe"]["sources"]["max_frames"] == "ModelSpec.options.recipe"


@pytest.mark.parametrize("key", list(FAMILY_MODALITIES))
def test_every_family_input_has_at_most_one_bos(key, built, clips, tmp_path):
    model = _model(built(key), FAMILY_MODALITIES[key], tmp_path)
    a = model.prepare(conv("Short?", clips["av"]))
    b = model.prepare(conv("A much longer question about this clip and its emotion?", clips["av2"]))
    enc = model.encode([a, b], GEN)
    tok = model._proc.tokenizer
    for row in range(2):
        ids = enc["input_ids"][row][enc["attention_mask"][row].bool()].tolist()
        if tok.bos_token_id is not None and tok.bos_token_id != tok.pad_token_id:
            assert ids[1] != tok.bos_token_id, f"{key}: double BOS {ids[:4]}"
        if key == "gemma3n":
            assert ids[0] == tok.bos_token_id and ids[1] != tok.bos_token_id  # exactly one
        if key == "phi4_multimodal":
            assert ids[:2] != [tok.bos_token_id] * 2


@pytest.mark.parametrize("key", list(FAMILY_MODALITIES))
def test_batched_output_equals_single_sample_output(key, built, clips, tmp_path):
    mods = FAMILY_MODALITIES[key]
    model = _model(built(key), mods, tmp_path)
    a = model.prepare(conv("Short?", clips["av"]))
    b = model.prepare(conv("A much longer question about the emotion in this clip?", clips["av2"], audio=False))
    if mods == "TA":
        b = model.prepare(conv("A much longer question about the emotion in this clip?"))
    gen = GenerationSpec(max_new_tokens=4)
    batched = model.generate([a, b], gen)
    single = [model.generate([x], gen)[0] for x in (a, b)]
    assert [g.text for g in batched] == [g.text for g in single]
    assert [g.modalities for g in batched] == [g.modalities for g in single]


def test_phi4_batch_composition_would_change_outputs_so_it_runs_one_by_one(built, clips, tmp_path):
    """The reason for Phi-4's policy: in one padded forward, an image-bearing batch-mate changes an audio row."""
    import torch

    model = _model(built("phi4_multimodal"), "TAV", tmp_path)
    assert model.family.batch == "single"
    audio_only = model.prepare(conv("Emotion?", clips["av2"]))
    audio_only[0].parts = [p for p in audio_only[0].parts if p.kind != "video"]
    with_image = model.prepare(conv("Another, longer question here?", clips["av"]))
    together = model.encode([audio_only, with_image], GEN)
    alone = model.encode([audio_only], GEN)
    with torch.inference_mode():
        lt = model._model(**together).logits[0, -1]
        la = model._model(**alone).logits[0, -1]
    assert not torch.allclose(lt, la, atol=1e-4)


def test_phi4_processor_loses_its_template_and_the_tokenizer_template_is_used(built, tmp_path):
    from transformers import AutoProcessor

    path = built("phi4_multimodal")
    assert not AutoProcessor.from_pretrained(path).chat_template  # the transformers reload bug
    model = _model(path, "TAV", tmp_path)
    model.load()
    assert model._proc.chat_template == model._proc.tokenizer.chat_template


def test_a_requested_modality_the_processor_cannot_take_fails_loudly(built, clips, tmp_path):
    audio_only = _model(built("qwen2_audio"), "TAV", tmp_path)
    with pytest.raises(ModelError, match="cannot take requested modalities V"):
        audio_only.load()
    vl = _model(built("qwen2_vl"), "TV", tmp_path)
    c = vl.prepare(conv("x", clips["av"]))
    # a decoded audio part that slipped past prepare (a TV run decodes no audio, so decode it with TAV)
    with_audio = prepare_media(conv("x", clips["av"]), MediaSpec(), None)[0].parts[0].data
    assert with_audio.audio is not None and len(with_audio.audio) > 0
    c[0].parts.append(Part(kind="audio", path=str(clips["av"]), data=with_audio))
    with pytest.raises(ModelError, match="audio part .*av.mp4.* cannot be sent"):
        vl.generate([c], GEN)


def test_recipe_defaults_overrides_and_identity(built, tmp_path):
    path = built("gemma3n")
    default = HFModel(ModelSpec(backend="hf", name=str(path)), MediaSpec(), tmp_path)
    assert default.media.max_frames == 8 and default.media.max_pixels == 768 * 768  # the family's recipe
    mine = HFModel(ModelSpec(backend="hf", name=str(path)), MediaSpec(max_frames=4), tmp_path)
    assert mine.media.max_frames == 4  # a MediaSpec field set away from the global default wins
    other = HFModel(ModelSpec(backend="hf", name=str(path), options={"recipe": {"max_frames": 2}}), MediaSpec())
    assert other.media.max_frames == 2 and other.fingerprint() != default.fingerprint()
    with pytest.raises(ModelError, match="unknown recipe option"):
        HFModel(ModelSpec(backend="hf", name=str(path), options={"recipe": {"frames": 2}}))


def test_remote_code_is_never_loaded_without_the_opt_in(tmp_path):
    """A folder whose config needs remote code: without trust_remote_code its code never runs."""
    folder = tmp_path / "remote"
    folder.mkdir()
    marker = tmp_path / "remote-code-ran"
    (folder / "configuration_evil.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "from transformers import PretrainedConfig\n"
        "class EvilConfig(PretrainedConfig):\n    model_type = 'evil'\n"
    )
    (folder / "config.json").write_text(
        json.dumps({"model_type": "evil", "auto_map": {"AutoConfig": "configuration_evil.EvilConfig"}})
    )
    model = HFModel(ModelSpec(backend="hf", name=str(folder)))
    with pytest.raises(ModelError):
        model.load()
    assert not marker.exists()
    assert all(f.remote_code == (f.runs_on != "hf") for f in families.FAMILIES)


def test_nan_lora_gradients_stop_training_loudly(clips, tmp_path):
    """A zero pad-embedding row (tiny Gemma 3n's random init) gives NaN LoRA gradients on a left-padded batch."""
    from affectbench.core.errors import AffectbenchError
    from tests._tiny_zoo import tiny_gemma3n

    path = tiny_gemma3n(tmp_path / "g3n0", zero_pad_row=True)
    root = write_corpus(tmp_path / "data", {"train": 2, "valid": 0, "test": 0})
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    ft = FinetuneSpec(epochs=1, batch_size=2, rank=2, alpha=4, dropout=0.0, valid_split=None)
    spec = RunSpec(
        kind="finetune",
        dataset=dataset_ref(root),
        model={"backend": "hf", "name": str(path)},
        media={"modalities": "T"},
        finetune=ft,
    )
    with pytest.raises(AffectbenchError, match="non-finite"):
        Runner(store, progress=False).run(spec)
    assert store.run(spec.run_id).status == "failed"
