import numpy as np
import pytest

from affectbench.core.errors import MediaError
from affectbench.core.specs import MediaSpec
from affectbench.media import decode, decode_count
from tests._clips import make_clip, make_wav


@pytest.mark.parametrize("suffix", ["mp4", "avi", "mkv"])
def test_decode_video_containers(tmp_path, suffix):
    path = make_clip(tmp_path / f"c.{suffix}", 2.0, fps=10, size=(64, 48))
    clip = decode(path, MediaSpec(fps=2, sample_rate=16000))
    assert clip.has_video and clip.has_audio
    assert clip.frames.dtype == np.uint8 and clip.frames.shape == (4, 48, 64, 3)
    assert np.all(np.diff(clip.frame_times) > 0)
    assert clip.audio.dtype == np.float32
    assert abs(len(clip.audio) / 16000 - 2.0) < 0.15
    assert clip.notes == []


def test_decode_wav_and_resample(tmp_path):
    path = make_wav(tmp_path / "a.wav", 1.5, sample_rate=16000)
    clip = decode(path, MediaSpec(sample_rate=8000))
    assert not clip.has_video and clip.frames is None
    assert clip.sample_rate == 8000 and abs(len(clip.audio) - 12000) <= 10
    assert np.max(np.abs(clip.audio)) > 0.2


def test_span_cuts_segment(tmp_path):
    path = make_clip(tmp_path / "c.mp4", 3.0)
    clip = decode(path, MediaSpec(fps=4), span=(1.0, 2.0))
    assert clip.frames.shape[0] == 4
    assert clip.duration == pytest.approx(1.0)
    assert abs(len(clip.audio) - 16000) <= 200
    assert clip.frame_times.max() < 1.0


def test_max_pixels_downscales(tmp_path):
    path = make_clip(tmp_path / "c.mp4", 1.0, size=(128, 96))
    clip = decode(path, MediaSpec(max_pixels=64 * 48))
    assert clip.frames.shape[1] * clip.frames.shape[2] <= 64 * 48
    assert clip.frames.shape[2] % 2 == 0


def test_no_audio_stream_is_noted(tmp_path):
    clip = decode(make_clip(tmp_path / "v.mp4", 1.0, audio=False))
    assert clip.has_video and not clip.has_audio and clip.audio is None
    assert "no audio stream" in clip.notes


def test_silent_audio_kept_and_noted(tmp_path):
    clip = decode(make_clip(tmp_path / "s.mp4", 1.0, silent=True))
    assert clip.has_audio and "silent audio" in clip.notes


def test_corrupt_and_empty_files_raise(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 50)
    with pytest.raises(MediaError, match="bad.mp4"):
        decode(bad)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        decode(empty)
    with pytest.raises(MediaError, match="not found"):
        decode(tmp_path / "missing.mp4")


def test_span_outside_clip_raises(tmp_path):
    path = make_clip(tmp_path / "c.mp4", 1.0)
    with pytest.raises(MediaError, match="span"):
        decode(path, span=(5.0, 6.0))


def test_long_clip_budget(tmp_path):
    path = make_clip(tmp_path / "long.mp4", 6.0)
    clip = decode(path, MediaSpec(fps=2, max_frames=32, max_seconds=2.0))
    assert clip.frames.shape[0] == 4  # fps * max_seconds
    assert clip.frame_times.max() > 4.0  # spread over the whole clip, not just its start
    assert abs(len(clip.audio) - 32000) <= 10  # truncated at max_seconds
    assert any("max_seconds" in n for n in clip.notes)
    capped = decode(path, MediaSpec(fps=10, max_frames=5))
    assert capped.frames.shape[0] == 5


def test_decode_counter(tmp_path):
    path = make_wav(tmp_path / "a.wav", 0.5)
    before = decode_count()
    decode(path)
    assert decode_count() == before + 1
