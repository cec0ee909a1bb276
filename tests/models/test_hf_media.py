"""hf media faults and time axis on a tiny random Qwen2.5-Omni thinker through its real processor."""

from __future__ import annotations

import pytest

from affectbench.execution import Call, Task, call_model, prepare_task
from affectbench.models.hf import HFModel
from affectbench.specs import GenerationSpec, MediaSpec, ModelSpec
from affectbench.types import Message, Part, Sample
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
