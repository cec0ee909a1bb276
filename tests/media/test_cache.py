import os
import threading
import wave

import numpy as np

from affectbench.media import MediaCache, decode_count, extract_wav, file_identity, get_cache
from affectbench.specs import MediaSpec
from tests._clips import make_clip, make_wav


def test_hit_miss_and_decode_count(tmp_path):
    clip_path = make_clip(tmp_path / "c.mp4", 1.0)
    cache = MediaCache(tmp_path / "cache")
    before = decode_count()
    a = cache.get(clip_path, MediaSpec())
    b = cache.get(clip_path, MediaSpec())
    assert decode_count() == before + 1
    assert (cache.stats.hits, cache.stats.misses) == (1, 1)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)
    assert b.has_video and b.has_audio and b.notes == a.notes
    # other settings or span -> another entry; modalities do not change the key
    cache.get(clip_path, MediaSpec(fps=1))
    cache.get(clip_path, MediaSpec(), span=(0.0, 0.5))
    cache.get(clip_path, MediaSpec(modalities="A"))
    assert cache.stats.misses == 3 and decode_count() == before + 3
    # a second cache object (another run) on the same folder reuses the files
    other = MediaCache(tmp_path / "cache")
    other.get(clip_path, MediaSpec())
    assert other.stats.hits == 1 and decode_count() == before + 3


def test_no_audio_roundtrip(tmp_path):
    clip_path = make_clip(tmp_path / "v.mp4", 1.0, audio=False)
    cache = MediaCache(tmp_path / "cache")
    cache.get(clip_path)
    hit = cache.get(clip_path)
    assert hit.audio is None and not hit.has_audio and "no audio stream" in hit.notes


def test_content_change_invalidates(tmp_path):
    p = make_wav(tmp_path / "a.wav", 0.5, freq=200)
    cache = MediaCache(tmp_path / "cache")
    first = cache.get(p)
    make_wav(p, 0.5, freq=300)
    second = cache.get(p)
    assert cache.stats.misses == 2
    assert not np.allclose(first.audio, second.audio)


def test_large_file_identity_is_fast_and_content_sensitive(tmp_path):
    p = tmp_path / "big.bin"
    p.write_bytes(os.urandom(9 << 20))
    a = file_identity(p)
    with open(p, "r+b") as f:
        f.write(b"x")
    assert file_identity(p) != a


def test_lru_eviction(tmp_path):
    paths = [make_clip(tmp_path / f"c{i}.mp4", 1.0, freq=200 + 50 * i) for i in range(3)]
    cache = MediaCache(tmp_path / "cache")
    cache.get(paths[0])
    one = cache.size()
    cache.max_bytes = int(one * 2.5)
    cache.get(paths[1])
    os.utime(next(iter(sorted((tmp_path / "cache").glob("*.npz"), key=os.path.getmtime))), (1, 1))
    cache.get(paths[2])
    assert cache.stats.evictions == 1
    assert cache.size() <= cache.max_bytes
    before = cache.stats.misses
    cache.get(paths[2])
    assert cache.stats.misses == before  # newest survives
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_concurrent_threads_decode_once(tmp_path):
    clip_path = make_clip(tmp_path / "c.mp4", 1.0)
    cache = get_cache(tmp_path / "cache")
    assert get_cache(tmp_path / "cache") is cache
    before = decode_count()
    results, errors = [], []

    def work():
        try:
            results.append(cache.get(clip_path))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 6
    assert decode_count() == before + 1
    assert all(np.array_equal(r.frames, results[0].frames) for r in results)


def test_extract_wav(tmp_path):
    clip_path = make_clip(tmp_path / "c.mp4", 2.0, sample_rate=22050)
    out = extract_wav(clip_path, span=(0.5, 1.5), sample_rate=16000, cache_dir=tmp_path / "cache")
    with wave.open(str(out)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (1, 16000, 2)
        assert abs(w.getnframes() - 16000) <= 200
    again = extract_wav(clip_path, span=(0.5, 1.5), sample_rate=16000, cache_dir=tmp_path / "cache")
    assert again == out
