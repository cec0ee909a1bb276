"""hf media faults and time axis on a tiny random Qwen2.5-Omni thinker through its real processor."""

from __future__ import annotations

import pytest

from affectbench.core.specs import GenerationSpec, MediaSpec, ModelSpec
from affectbench.core.types import Message, Part, Sample
from affectbench.engine.execution import Call, Task, call_model, prepare_task
from affectbench.models.hf import HFModel
from tests._clips import make_clip

pytest.importorskip("transformers")
pytest.importorskip("torchvision")

GEN = GenerationSpec(max_new_tokens=2)


@pytest.fixture(scope="module")
def omni_dir(tmp_path_factory):
    from tests._tiny import tiny_qwen_omni

    return tiny_qwen_omni(tmp_path_factory.mktemp("omni"))


def conv(text, video=None, audio=None):
    parts = []
    if video:
        parts.append(Part(kind="video", path=str(video)))
    if audio:
        parts.append(Part(kind="audio", path=str(audio)))
    parts.append(Part.of_text(text))
    return [Message(role="user", parts=parts)]


def test_clip_the_processor_rejects_costs_only_its_sample(omni_dir, tmp_path):
    ok = make_clip(tmp_path / "ok.mp4", 1.0)
    thin = make_clip(tmp_path / "thin.mp4", 1.0, size=(3200, 14), audio=False)  # aspect ratio 228 > Qwen's 200
    model = HFModel(ModelSpec(backend="hf", name=str(omni_dir)), MediaSpec(), None)
    tasks = [Task(Sample(f"s{i}", "", None), conv("hi", video=thin if i == 1 else ok)) for i in range(3)]
    tasks = [prepare_task(model, t) for t in tasks]
    assert all(t.error is None for t in tasks)  # decoding is fine; the processor is what refuses
    out = call_model(model, tasks, Call(GEN))
    assert [t.error is None for t in out] == [True, False, True]
    assert "s1" in out[1].error and "aspect ratio" in out[1].error
    assert out[0].generation.text is not None and "V" in out[0].generation.modalities


@pytest.fixture(scope="module")
def omni(omni_dir, tmp_path_factory):
    model = HFModel(ModelSpec(backend="hf", name=str(omni_dir)), MediaSpec(fps=2, max_frames=32), None)
    model.load()
    return model


@pytest.fixture(scope="module")
def long_clips(tmp_path_factory):
    from tests._clips import ffmpeg_clip

    d = tmp_path_factory.mktemp("long")
    return {s: ffmpeg_clip(d / f"c{s}.mp4", s, size=(32, 32), fps=5) for s in (3, 20, 30, 31, 60)}


@pytest.mark.parametrize(("seconds", "second_per_grid"), [(3, 1.0), (20, 1.25), (30, 1.875)])
def test_each_video_gets_its_own_rate_on_the_time_axis(omni, long_clips, seconds, second_per_grid):
    # the values: 2 (temporal patch) / (32 frames / 20 s) = 1.25, / (32 / 30 s) = 1.875; 3 s at 2 fps = 1.0
    c = omni.prepare(conv("x", video=long_clips[seconds]))
    inputs, (meta,) = omni._encode_sent([c], GEN)
    assert float(inputs["video_second_per_grid"][0]) == pytest.approx(second_per_grid, rel=1e-6)
    assert meta["video"][0]["second_per_grid"] == pytest.approx(second_per_grid, rel=1e-6)


def test_batch_of_clips_of_different_lengths_keeps_each_rate(omni, long_clips):
    batch = [omni.prepare(conv("x", video=long_clips[s])) for s in (3, 20, 30)]
    inputs, _ = omni._encode_sent(batch, GEN)
    assert inputs["video_second_per_grid"].tolist() == pytest.approx([1.0, 1.25, 1.875], rel=1e-6)


def test_processor_grid_is_recorded_not_guessed(omni, long_clips):
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    c = omni.prepare(conv("x", video=long_clips[3]))
    (g,) = omni.generate([c], GEN)
    (video,) = g.meta["video"]
    size = type(omni._proc).videos_kwargs["size"]  # the Omni processor's own per-frame bounds: 128..768 tokens
    h, w = smart_resize(32, 32, factor=28, min_pixels=size["shortest_edge"], max_pixels=size["longest_edge"])
    assert (h, w) == (336, 336)  # a 32x32 source is enlarged to the 128-token minimum
    assert video["decoded_hw"] == [32, 32] and video["processed_hw"] == [h, w]
    assert video["grid_thw"] == [video["frames"] // 2, h // 14, w // 14]


def test_audio_beyond_the_feature_window_is_cut_and_recorded(omni, long_clips):
    window = omni._proc.feature_extractor.n_samples / 16000  # 30 s for the Whisper-style extractor
    counts = {}
    for s in (30, 31, 60):
        c = omni.prepare(conv("x", audio=long_clips[s]))
        (g,) = omni.generate([c], GEN)
        counts[s] = g.n_input_tokens
        cut = g.meta.get("audio_truncated")
        if s <= window:
            assert cut is None
        else:
            assert cut == [{"seconds": pytest.approx(s, abs=0.05), "seconds_sent": window, "by": "processor window"}]
    assert counts[31] == counts[60]  # both cut to the window: the same number of audio tokens


def test_audio_truncated_is_counted_in_the_run_metrics(omni_dir, long_clips, tmp_path):
    import csv

    from affectbench.core.specs import DatasetRef, RunSpec
    from affectbench.engine.runner import run_spec
    from affectbench.engine.store import Store

    root = tmp_path / "ds"
    root.mkdir()
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label", "transcript", "audio"])
        w.writerow(["long", "a", "x", str(long_clips[31])])
        w.writerow(["short", "b", "y", str(long_clips[3])])
    spec = RunSpec(
        dataset=DatasetRef(name="manifest", root=str(root)),
        model=ModelSpec(backend="hf", name=str(omni_dir)),
        media=MediaSpec(modalities="TA"),
        generation=GenerationSpec(max_new_tokens=2),
    )
    rec = run_spec(spec, Store(tmp_path / "ws.sqlite"))
    assert rec.metrics["_audio_truncated"] == 1


def test_qwen2_audio_recipe_cut_is_counted_as_audio_truncated(long_clips, tmp_path):
    """Qwen2-Audio's recipe decodes at most 30 s (its Whisper window): that cut is `audio_truncated`, not
    only a note, so the run's `_audio_truncated` counts it as it counts the extractor's own cut."""
    from tests._tiny import tiny_qwen2_audio

    model = HFModel(ModelSpec(backend="hf", name=str(tiny_qwen2_audio(tmp_path / "qa"))), MediaSpec(modalities="TA"))
    assert model.media.max_seconds == 30.0  # the family's recipe
    (g,) = model.generate([model.prepare(conv("x", audio=long_clips[60]))], GEN)
    assert g.meta["audio_truncated"] == [
        {"seconds": pytest.approx(60, abs=0.05), "seconds_sent": pytest.approx(30, abs=0.01), "by": "max_seconds"}
    ]  # once: the decoder's cut, in the one shape budgets.fit records every cut in
    assert any("max_seconds" in n for n in g.meta["notes"])
    (whole,) = model.generate([model.prepare(conv("x", audio=long_clips[20]))], GEN)
    assert "audio_truncated" not in whole.meta
