"""Prompt budgets (`models.budgets`) through the hf backend: the video-token budget holds whatever form the
frames take (a Qwen frame stack, Gemma 3n frames as images), measured on the processor's own placeholder
tokens; total audio seconds; every cut recorded as video_truncated / audio_truncated whatever the family;
tokens per modality per prediction; a prompt over the context costs only its sample."""

from __future__ import annotations

import pytest

from affectbench.core.specs import GenerationSpec, MediaSpec, ModelSpec
from affectbench.core.types import Message, Part, Sample
from affectbench.engine.execution import Call, Task, call_model
from affectbench.models import budgets, tokens
from affectbench.models.hf import HFModel
from tests._clips import make_clip
from tests._tiny_zoo import built_once
from tests.models.test_zoo import _placeholder_counts

pytest.importorskip("transformers")
pytest.importorskip("torchvision")
GEN = GenerationSpec(max_new_tokens=1)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return built_once(tmp_path_factory)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("b-clips") / "c.mp4", 6.0, size=(96, 64))


def conv(path, audio=True, text="Emotion?"):
    parts = [Part(kind="video", path=str(path))]
    if audio:
        parts.append(Part(kind="audio", path=str(path)))
    return [Message(role="user", parts=[*parts, Part.of_text(text)])]


def model(path, tmp_path, mods="TAV", **media):
    return HFModel(ModelSpec(backend="hf", name=str(path)), MediaSpec(modalities=mods, fps=2, **media), tmp_path)


def video_placeholders(m, conversation):
    enc = m.encode([m.prepare(conversation)], GEN)
    n = _placeholder_counts(m, enc)
    return n.get("video_token", 0) + n.get("image_token", 0)


@pytest.mark.parametrize("key, mods", [("qwen2_5_omni", "TAV"), ("qwen2_5_vl", "TV"), ("gemma3n", "TAV")])
def test_video_token_budget_holds_for_every_form_of_frames(key, mods, built, clip, tmp_path):
    path = built(key)
    free = model(path, tmp_path, mods)
    full = video_placeholders(free, conv(clip, "A" in mods))
    budget = full // 3
    m = model(path, tmp_path, mods, max_video_tokens=budget)
    c = m.prepare(conv(clip, "A" in mods))
    (g,) = m.generate([c], GEN)
    sent = video_placeholders(m, budgets.fit(c, m.token_counter(), m.media)[0])
    assert 0 < sent <= budget < full
    (cut,) = g.meta["video_truncated"]
    assert cut["tokens"] == full and cut["tokens_sent"] == sent == g.meta["tokens"]["video"]
    assert cut["frames_sent"] < cut["frames"]
    if key == "gemma3n":  # frames as images: the budget counts each image
        assert sent == cut["frames_sent"] * m.token_counter().image_tokens


def test_frames_kept_are_spread_over_the_clip_and_the_rate_follows(built, clip, tmp_path):
    m = model(built("qwen2_5_omni"), tmp_path, max_video_tokens=100)
    c = m.prepare(conv(clip))
    fitted, meta = budgets.fit(c, m.token_counter(), m.media)
    before, after = c[0].parts[0].data, fitted[0].parts[0].data
    assert len(after.frames) % 2 == 0 and len(after.frames) < len(before.frames)
    assert after.frame_times[0] == before.frame_times[0] and after.frame_times[-1] == before.frame_times[-1]
    assert after.fps == pytest.approx(before.fps * len(after.frames) / len(before.frames))
    assert fitted[0].parts[1].data is after  # the audio part still shares the (cut) clip


def test_audio_seconds_budget_and_the_max_seconds_cut_are_audio_truncated(built, tmp_path):
    long = make_clip(tmp_path / "long.mp4", 40.0, size=(32, 32))
    # Qwen2-Audio's recipe stops decoding at 30 s: counted as audio_truncated, not only a note
    qa = model(built("qwen2_audio"), tmp_path, "TA")
    (g,) = qa.generate(
        [qa.prepare([Message(role="user", parts=[Part(kind="audio", path=str(long)), Part.of_text("x")])])], GEN
    )
    assert g.meta["audio_truncated"] == [
        {"seconds": pytest.approx(40.0, abs=0.1), "seconds_sent": pytest.approx(30.0, abs=0.05), "by": "max_seconds"}
    ]
    # a total audio budget
    m = model(built("qwen2_5_omni"), tmp_path, max_audio_seconds=2.0)
    (g,) = m.generate([m.prepare(conv(long))], GEN)
    (cut,) = [c for c in g.meta["audio_truncated"] if c["by"] == "max_audio_seconds"]
    assert cut["seconds_sent"] == 2.0
    counter = m.token_counter()
    assert g.meta["tokens"]["audio"] == counter.audio_clip(2 * 16000)


def test_tokens_per_modality_are_recorded(built, clip, tmp_path):
    m = model(built("qwen2_5_omni"), tmp_path)
    (g,) = m.generate([m.prepare(conv(clip))], GEN)
    t = g.meta["tokens"]
    assert t["text"] + t["audio"] + t["video"] == g.n_input_tokens and t["audio"] > 0 and t["video"] > 0
    assert "video_truncated" not in g.meta  # under the default budget


def test_a_prompt_over_the_context_costs_only_its_sample(built, clip, tmp_path):
    path = built("qwen2_5_omni")
    m = HFModel(ModelSpec(backend="hf", name=str(path), options={"max_model_len": 200}), MediaSpec(fps=2), tmp_path)
    tasks = [
        Task(Sample(id="text", transcript="", target=None), [Message(role="user", parts=[Part.of_text("hi")])]),
        Task(Sample(id="clip", transcript="", target=None), conv(clip)),
    ]
    call_model(m, [t for t in tasks], Call(GenerationSpec(max_new_tokens=2)))
    assert tasks[0].error is None
    assert "sample clip" in tasks[1].error and "exceeds the context of 200" in tasks[1].error


def test_fit_frames_meets_the_budget_with_whole_temporal_steps():
    c = tokens.released_counter("qwen2_5_omni")
    shapes = [(32, 360, 640), (8, 360, 640)]
    full = sum(c.video(*s) for s in shapes)
    keep = budgets.fit_frames(c, shapes, full // 4)
    assert sum(c.video(n, h, w) for n, (_, h, w) in zip(keep, shapes, strict=True)) <= full // 4
    assert all(n % 2 == 0 and n >= 2 for n in keep) and keep[0] > keep[1]
    assert budgets.fit_frames(c, shapes, full) == [32, 8]
