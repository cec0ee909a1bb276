import os
import threading
import wave

import numpy as np

from affectbench.core.specs import MediaSpec
from affectbench.media import MediaCache, decode_count, extract_wav, file_identity, get_cache
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


def _wavs(tmp_path, n):
    return [make_wav(tmp_path / f"w{i:02d}.wav", 0.1, freq=150 + 10 * i) for i in range(n)]


def test_running_total_walks_rarely_and_keeps_the_bound(tmp_path):
    wavs = _wavs(tmp_path, 24)
    roomy = MediaCache(tmp_path / "roomy")
    for w in wavs:
        roomy.get(w)
    assert roomy.stats.misses == 24 and roomy.stats.scans == 1  # one walk to start, then counted
    assert roomy.stats.evictions == 0

    cache = MediaCache(tmp_path / "cache")
    cache.get(wavs[0])
    one = cache.size()
    cache.max_bytes = int(one * 5.5)  # room for 5; eviction frees down to 0.9 * 5.5 -> 4 entries
    for i, w in enumerate(wavs[1:], 1):
        cache.get(w)
        assert cache.size() <= cache.max_bytes, f"bound broken after put {i}"
        assert cache._total == cache.size()  # the running total matches the disk
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 4  # the last put evicted down to the low mark
    assert cache.stats.evictions == 24 - 4
    assert cache.stats.scans <= 24 // 2 + 1  # a walk per eviction round, not per miss


def test_lru_order_with_running_total(tmp_path):
    wavs = _wavs(tmp_path, 6)
    root = tmp_path / "cache"
    cache = MediaCache(root)
    for i, w in enumerate(wavs[:4]):
        before = set(root.glob("*.npz"))
        cache.get(w)
        (new,) = set(root.glob("*.npz")) - before
        os.utime(new, ns=(10**9 * (i + 1), 10**9 * (i + 1)))  # w0 oldest ... w3 newest
    cache.max_bytes = int(cache.size() * 4.5 / 4)
    cache.get(wavs[0])  # a hit refreshes w0: now the newest
    assert cache.stats.hits == 1
    cache.get(wavs[4])  # 5 entries > 4.5: evict oldest-first down to 0.9 * 4.5 -> w1 goes
    assert cache.stats.evictions == 1
    misses = cache.stats.misses
    for w in (wavs[0], wavs[2], wavs[3], wavs[4]):
        cache.get(w)
    assert cache.stats.misses == misses  # all still cached
    cache.get(wavs[1])
    assert cache.stats.misses == misses + 1  # w1 was the one evicted


def test_other_process_writes_are_picked_up_by_the_rescan(tmp_path):
    wavs = _wavs(tmp_path, 12)
    root = tmp_path / "cache"
    mine = MediaCache(root)
    mine.rescan_min_puts = 2
    mine.get(wavs[0])
    one = mine.size()
    mine.max_bytes = int(one * 4.5)
    other = MediaCache(root, max_bytes=10**12)  # another process, with its own running total
    for w in wavs[1:9]:
        other.get(w)
    assert mine.size() > mine.max_bytes  # mine does not know yet
    for w in wavs[9:12]:
        mine.get(w)
    assert mine.size() <= mine.max_bytes
