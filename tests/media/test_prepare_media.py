"""models._media.prepare_media decodes each (file, span) of a conversation once, with or without a cache."""

import numpy as np

from affectbench.core.specs import MediaSpec
from affectbench.core.types import Message, Part
from affectbench.media import MediaCache, decode, decode_count
from affectbench.models._media import part_notes, prepare_media
from tests._clips import make_clip


def _conv(video, other=None, span=None):
    parts = [Part(kind="video", path=str(video), span=span), Part(kind="audio", path=str(video), span=span)]
    if other is not None:
        parts.append(Part(kind="audio", path=str(other)))
    return [Message(role="user", parts=[Part.of_text("how does the speaker feel?"), *parts])]


def test_video_and_its_audio_track_decode_once_without_cache(tmp_path):
    path = make_clip(tmp_path / "c.mp4", 1.0)
    other = make_clip(tmp_path / "o.mp4", 1.0, freq=300)
    before = decode_count()
    out = prepare_media(_conv(path, other), MediaSpec(), None)
    assert decode_count() == before + 2  # c.mp4 once (video + audio parts), o.mp4 once
    video, audio, third = out[0].parts[1:]
    assert video.data is audio.data and third.data is not video.data
    # same content as decoding each part on its own (the result is unchanged)
    ref = decode(path, MediaSpec())
    assert np.array_equal(video.data.frames, ref.frames) and np.array_equal(audio.data.audio, ref.audio)
    assert audio.data.has_audio and video.data.has_video


def test_spans_are_separate_decodes_and_modalities_still_filter(tmp_path):
    path = make_clip(tmp_path / "c.mp4", 2.0)
    conv = _conv(path, span=(0.0, 1.0)) + _conv(path, span=(1.0, 2.0))
    before = decode_count()
    out = prepare_media(conv, MediaSpec(), None)
    assert decode_count() == before + 2
    assert out[0].parts[1].data is not out[1].parts[1].data
    before = decode_count()
    audio_only = prepare_media(_conv(path), MediaSpec(modalities="TA"), None)
    assert [p.kind for p in audio_only[0].parts] == ["text", "audio"] and decode_count() == before + 1


def test_with_cache_one_lookup_per_file(tmp_path):
    path = make_clip(tmp_path / "c.mp4", 1.0, audio=False)
    cache = MediaCache(tmp_path / "cache")
    before = decode_count()
    out = prepare_media(_conv(path), MediaSpec(), cache)
    assert decode_count() == before + 1
    assert (cache.stats.misses, cache.stats.hits) == (1, 0)
    # notes are per part, as before: the audio part of a silent-track video says it is missing
    notes = part_notes(out)
    assert "audio c.mp4: missing, not sent" in notes and "video c.mp4: missing, not sent" not in notes
