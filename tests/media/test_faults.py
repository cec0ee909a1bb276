"""Media faults made with ffmpeg at test time: truncated files, rotation metadata, very short clips,
missing audio of either kind, and decoding only the streams a run sends."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from affectbench.core.specs import MediaSpec
from affectbench.core.types import Message, Part
from affectbench.datasets.check import check_dataset, probe_media
from affectbench.media import decode
from affectbench.models import _media
from tests._clips import ffmpeg_clip, make_wav, truncate

pytest.importorskip("av")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("faults")
    whole = ffmpeg_clip(d / "whole.mp4", 4.0, size=(96, 64))
    return {
        "whole": whole,
        "cut": truncate(whole, 0.5, d / "cut.mp4"),
        "rot": ffmpeg_clip(d / "rot.mp4", 1.0, size=(294, 220), rotate=90),
        "short": ffmpeg_clip(d / "short.mp4", 0.32),
        "mute": ffmpeg_clip(d / "mute.mp4", 1.0, audio=False),
    }


def test_truncated_clip_keeps_what_decodes_and_says_so(clips):
    full = probe_media(str(clips["whole"]))
    assert full.ok and not full.truncated
    p = probe_media(str(clips["cut"]))
    assert p.ok and p.duration == pytest.approx(4.0, abs=0.1)  # the header still promises 4 s
    assert "video packets end at" in p.truncated and "4.00s" in p.truncated
    clip = decode(clips["cut"], MediaSpec(fps=2))
    assert clip.truncated and clip.has_video
    assert any(n.startswith("truncated video") for n in clip.notes)
    assert clip.frame_times.max() < 3.0  # nothing invented past the cut: later targets repeat the last frame


def test_video_only_run_never_decodes_a_broken_audio_track(clips):
    conv = [Message("user", [Part("video", path=str(clips["cut"])), Part("audio", path=str(clips["cut"]))])]
    out = _media.prepare_media(conv, MediaSpec(modalities="TV"), None)
    (video,) = out[0].parts
    assert video.kind == "video" and video.data.has_video
    assert not any("audio" in n for n in video.data.notes)  # the audio track was not touched
    assert video.data.audio is None


def test_rotation_metadata_is_applied_like_ffmpeg(clips):
    import subprocess

    p = probe_media(str(clips["rot"]))
    assert p.rotation == 90
    clip = decode(clips["rot"], MediaSpec(fps=2, max_pixels=10**6))
    assert clip.frames.shape[1:3] == (294, 220) and clip.rotation == 90  # upright: H x W of the displayed picture
    # the reference: ffmpeg's own autorotated first frame
    raw = subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-i",
            str(clips["rot"]),
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    ref = np.frombuffer(raw, np.uint8).reshape(294, 220, 3)
    first = decode(clips["rot"], MediaSpec(fps=2, max_pixels=10**6, min_frames=1, max_frames=1), span=(0.0, 0.04))
    assert np.abs(first.frames[0].astype(int) - ref).mean() < 2.0


def test_short_clip_gets_min_frames(clips):
    clip = decode(clips["short"], MediaSpec(fps=2))
    assert len(clip.frames) == 4  # 0.32 s at 2 fps would be 1 frame; the minimum (as Qwen's reference) is 4
    assert len(decode(clips["short"], MediaSpec(fps=2, min_frames=1)).frames) == 1


def test_empty_audio_file_and_missing_audio_stream_are_handled_alike(clips, tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    media = MediaSpec()
    a = _media.prepare_media(
        [Message("user", [Part("video", path=str(clips["whole"])), Part("audio", path=str(empty))])], media, None
    )
    b = _media.prepare_media(
        [Message("user", [Part("video", path=str(clips["mute"])), Part("audio", path=str(clips["mute"]))])], media, None
    )
    for conv in (a, b):
        video, audio = conv[0].parts
        assert _media.usable(video) and not _media.usable(audio)
        assert any("missing, not sent" in n and n.startswith("audio") for n in _media.part_notes(conv))
    assert any("empty file" in n for n in _media.part_notes(a))
    assert any("no audio stream" in n for n in _media.part_notes(b))


def test_data_check_lists_truncated_rotated_and_empty(clips, tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    rows = [("ok", clips["whole"], ""), ("cut", clips["cut"], ""), ("rot", clips["rot"], "")]
    wav = make_wav(root / "a.wav", 1.0)
    empty = root / "empty.wav"
    empty.write_bytes(b"")
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label", "transcript", "video", "audio"])
        for sid, video, _ in rows:
            w.writerow([sid, "a", "x", str(video), str(wav)])
        w.writerow(["noaudio", "a", "x", str(clips["whole"]), str(empty)])
    r = check_dataset("manifest", root)
    assert r.usable
    assert [p.sample_id for p in r.truncated] == ["cut"]
    assert [p.sample_id for p in r.rotated] == ["rot"] and "90 degrees" in r.rotated[0].detail
    assert [p.sample_id for p in r.of_kind("empty")] == ["noaudio"]
    text = r.render()
    assert "truncated (1)" in text and "rotated (1)" in text and "empty (1)" in text


def _header_only_wav(path):
    """What ffmpeg writes for an empty recording: RIFF/fmt/LIST headers and a zero-length data chunk."""
    import subprocess

    cmd = ["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "0", str(path)]
    subprocess.run(cmd, check=True)
    return path


def test_header_only_wav_beside_a_video_costs_the_audio_not_the_sample(clips, tmp_path):
    from affectbench.core.errors import EmptyMedia

    hdr = _header_only_wav(tmp_path / "hdr.wav")
    assert 0 < hdr.stat().st_size <= 100  # headers only (78 bytes with ffmpeg 5)
    with pytest.raises(EmptyMedia, match="hdr.wav"):
        decode(hdr, MediaSpec(), video=False)
    conv = [Message("user", [Part("video", path=str(clips["whole"])), Part("audio", path=str(hdr))])]
    video, audio = _media.prepare_media(conv, MediaSpec(), None)[0].parts
    assert _media.usable(video) and not _media.usable(audio)
    # alone it is a missing modality too, exactly as a zero-byte file is (it holds no sample either)
    alone = _media.prepare_media([Message("user", [Part("audio", path=str(hdr))])], MediaSpec(), None)
    notes = _media.part_notes(alone)
    assert "audio hdr.wav: missing, not sent" in notes and any("no samples" in n for n in notes)


def test_audio_part_on_a_file_without_audio_track_is_a_missing_modality(clips):
    conv = [Message("user", [Part("video", path=str(clips["whole"])), Part("audio", path=str(clips["mute"]))])]
    video, audio = _media.prepare_media(conv, MediaSpec(), None)[0].parts
    assert _media.usable(video) and not _media.usable(audio)
    assert any("no audio stream" in n for n in audio.data.notes)


def test_unreadable_audio_file_costs_the_audio_beside_a_video_and_the_sample_alone(clips, tmp_path):
    from affectbench.core.errors import MediaError

    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00garbage" * 20)
    conv = [Message("user", [Part("video", path=str(clips["whole"])), Part("audio", path=str(bad))])]
    out = _media.prepare_media(conv, MediaSpec(), None)
    video, audio = out[0].parts
    assert _media.usable(video) and not _media.usable(audio)
    assert any(n.startswith("audio bad.wav: unreadable") for n in _media.part_notes(out))
    with pytest.raises(MediaError, match="bad.wav"):  # nothing else to send: the sample fails, naming the file
        _media.prepare_media([Message("user", [Part("audio", path=str(bad)), Part.of_text("x")])], MediaSpec(), None)
    broken_video = [Message("user", [Part("video", path=str(bad))])]
    with pytest.raises(MediaError, match="bad.wav"):
        _media.prepare_media(broken_video, MediaSpec(), None)


def test_audio_track_shorter_than_the_container_is_not_truncated(tmp_path):
    """The container's duration is its longest stream's; an audio track that stops earlier, as its own
    header says, is whole. A byte-truncated file still is truncated (its streams promise more)."""
    import subprocess

    import av

    path = tmp_path / "short_audio.mp4"
    cmd = ["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25"]
    cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=1.5", "-t", "4"]
    enc = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart"]
    subprocess.run([*cmd, *enc, str(path)], check=True)
    with av.open(str(path)) as c:  # the reference: the container's and the audio stream's own durations
        aus = c.streams.audio[0]
        assert c.duration / 1e6 == pytest.approx(4.0, abs=0.05)
        assert float(aus.duration * aus.time_base) == pytest.approx(1.5, abs=0.05)
    clip = decode(path, MediaSpec())
    assert clip.has_audio and clip.audio_seconds == pytest.approx(1.5, abs=0.1)
    assert not clip.truncated and not any("truncated" in n for n in clip.notes)
    cut = decode(truncate(path, 0.6, tmp_path / "cut.mp4"), MediaSpec())
    assert cut.truncated


def test_max_seconds_cut_is_recorded_on_the_clip(tmp_path):
    from tests._clips import ffmpeg_clip

    path = ffmpeg_clip(tmp_path / "c.mp4", 5.0, size=(32, 32), fps=5)
    cut = decode(path, MediaSpec(max_seconds=2.0))
    assert cut.audio_seconds == pytest.approx(2.0, abs=0.01)
    assert cut.audio_cut_from == pytest.approx(5.0, abs=0.05)  # how long the audio was, as its header says
    assert decode(path, MediaSpec()).audio_cut_from is None
    _, record = _media.audio_sent(cut, None)
    assert record is None  # the window cut only; the decoder's cut is recorded once, by budgets.fit
    from affectbench.core.types import Message, Part
    from affectbench.models import budgets

    conv = [Message(role="user", parts=[Part(kind="audio", path=str(path), data=cut)])]
    _, meta = budgets.fit(conv, None, MediaSpec(max_seconds=2.0))
    assert meta["audio_truncated"] == [
        {"seconds": pytest.approx(5.0, abs=0.05), "seconds_sent": 2.0, "by": "max_seconds"}
    ]
