"""Contextual calibration's content-free inputs match what they correct (Zhao et al. 2021, §4): the
same template, wording and modalities as a real sample, with a blank frame sequence of the run's
frame size and silence of the clip's length in place of its media."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from affectbench.core.types import Sample, Turn
from affectbench.engine.calibration import content_free_samples
from affectbench.prompts import load_prompt
from tests._clips import make_clip
from tests.prompts._infos import MUSTARD

av = pytest.importorskip("av")


def _text(conv) -> str:
    return "\n".join(p.text or "" for m in conv for p in m.parts if p.kind == "text")


def test_content_free_media_has_the_runs_size_and_length(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", seconds=1.5, size=(64, 48))
    real = Sample("s1", "Oh great, another meeting.", "sarcastic", media={"video": str(clip)},
                  context=[Turn("Are you coming?", "Ann")], speaker="Bob")  # fmt: skip
    cf, record = content_free_samples([real], tmp_path / "cal")
    assert [s.transcript for s in cf] == ["N/A", "", "[MASK]"] and record["transcripts"] == ["N/A", "", "[MASK]"]
    assert record["width"] == 64 and record["height"] == 48 and record["seconds"] == pytest.approx(1.5, abs=0.15)
    s = cf[0]
    assert s.speaker == "Bob" and [t.speaker for t in s.context] == ["Ann"] and s.context[0].text == "N/A"
    with av.open(s.media["video"]) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert frames and frames[0].shape == (48, 64, 3) and max(int(f.max()) for f in frames) <= 20  # black
    with wave.open(s.media["audio"]) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        assert w.getnframes() / w.getframerate() == pytest.approx(record["seconds"]) and not pcm.any()
    # the template's wording and modalities are those of the real sample; only the content differs
    prompt = load_prompt("sarcasm", MUSTARD)
    conv_real = prompt.render(real, MUSTARD, modalities="TAV")
    conv_cf = prompt.render(s, MUSTARD, modalities="TAV")
    assert [p.kind for m in conv_cf for p in m.parts] == [p.kind for m in conv_real for p in m.parts]
    assert "in this video clip" in _text(conv_real) and "in this video clip" in _text(conv_cf)
    assert _text(conv_cf).replace("N/A", "") == _text(conv_real).replace("Oh great, another meeting.", "").replace(
        "Are you coming?", ""
    )


def test_an_audio_only_run_scores_silence_not_a_text_prompt(tmp_path):
    clip = make_clip(tmp_path / "a.mp4", seconds=1.0, video=False)
    real = Sample("s1", "hello", "sincere", media={"audio": str(clip)})
    cf, record = content_free_samples([real], tmp_path / "cal")
    assert "video" not in cf[0].media and cf[0].media["audio"]
    prompt = load_prompt("sarcasm", MUSTARD)
    kinds = [p.kind for m in prompt.render(cf[0], MUSTARD, modalities="A") for p in m.parts]
    assert "audio" in kinds  # the content-free input reaches the model through the run's own modality


def test_text_only_runs_get_no_media(tmp_path):
    cf, record = content_free_samples([Sample("s", "hi", "sincere")], tmp_path / "cal")
    assert all(not s.media for s in cf) and record["media"] == {}
