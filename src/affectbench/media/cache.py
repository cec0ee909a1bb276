"""A disk cache of decoded media, so an M models x P prompts matrix decodes each clip once.

Key = sha256(file identity, media settings, span). File identity is the sha256 of the file's
bytes for files up to 8 MiB; larger files are identified by size + mtime + the first and last
1 MiB (fast; a same-size edit inside the middle of a large file that also keeps its mtime is
not detected). Entries are .npz files under the cache folder, written to a temporary file and
`os.replace`d so concurrent runs never read half a file; total size is bounded with
least-recently-used eviction (a hit refreshes the file's mtime).

Eviction keeps a running total of the folder's .npz bytes (one scan to start, then + each put), so a
miss costs O(1) amortised instead of a walk over every entry. The folder is walked again only
(a) when the total passes `max_bytes`: entries are then evicted oldest-first down to `LOW_WATER` of
the bound, so the next walk is that much data away, and (b) after `max(RESCAN_MIN_PUTS, entries / 8)`
puts, to pick up what other processes sharing the folder wrote or evicted. The tradeoff: with several
processes on one folder each counts only its own puts between walks, so the folder can overshoot the
bound by what the others wrote since the last walk (at most one rescan interval each) until the next
walk, which evicts it; entries deleted by others only make the total high, which triggers a walk sooner.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import MediaError
from ..core.specs import MediaSpec
from .decode import DecodedClip, decode
from .encode import wav_bytes

SMALL_FILE = 8 << 20
CHUNK = 1 << 20
DEFAULT_MAX_BYTES = 4 << 30
LOW_WATER = 0.9  # eviction frees space down to this fraction of max_bytes
RESCAN_MIN_PUTS = 64

_ID_LOCK = threading.Lock()
_ID_MEMO: dict[tuple[str, int, int], str] = {}


def file_identity(path: str | Path) -> str:
    """Content hash of a media file (see the module docstring for the large-file rule); memoised per mtime."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        raise MediaError(f"media file not found: {p}") from e
    memo_key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    with _ID_LOCK:
        hit = _ID_MEMO.get(memo_key)
    if hit:
        return hit
    h = hashlib.sha256()
    with open(p, "rb") as f:
        if st.st_size <= SMALL_FILE:
            h.update(f.read())
        else:
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
            h.update(f.read(CHUNK))
            f.seek(-CHUNK, os.SEEK_END)
            h.update(f.read(CHUNK))
    digest = h.hexdigest()
    with _ID_LOCK:
        _ID_MEMO[memo_key] = digest
    return digest


def media_settings(media: MediaSpec) -> dict:
    """The MediaSpec fields that change decoded output (modalities do not: one decode serves all)."""
    skip = {"modalities", *MediaSpec.BUDGET_FIELDS}  # budgets apply after decoding
    return {k: v for k, v in media.model_dump().items() if k not in skip}


DECODER_VERSION = 3  # bump when decode() output changes for the same file and settings
# (2: rotation, truncation; 3: truncation judged by each stream's own duration, audio_cut_from)


def cache_key(path: str | Path, media: MediaSpec, span: tuple[float, float] | None, extra: str = "") -> str:
    """The entry's name: file identity, the decoding settings, span, and what else shapes the output."""
    raw = json.dumps(
        [file_identity(path), media_settings(media), list(span) if span else None, extra, DECODER_VERSION],
        sort_keys=True,
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    errors: int = 0
    scans: int = 0  # folder walks done for eviction (a miss costs one only now and then)


class MediaCache:
    """Decoded clips as .npz files under `root`, bounded to `max_bytes` with LRU eviction."""

    def __init__(self, root: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)
        self.stats = CacheStats()
        self.rescan_min_puts = RESCAN_MIN_PUTS
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._size_lock = threading.Lock()  # guards the running total and the walks
        self._total: int | None = None  # bytes of .npz entries; None until the first walk
        self._entries = 0  # entries seen at the last walk (+ puts since)
        self._puts = 0  # puts since the last walk

    def _key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def get(
        self,
        path: str | Path,
        media: MediaSpec | None = None,
        span: tuple[float, float] | None = None,
        *,
        video: bool = True,
        audio: bool = True,
    ) -> DecodedClip:
        """The decoded clip, from the cache or decoded once (threads asking for one key wait for one decode).

        `video`/`audio` choose the streams decoded (as in `decode`); each choice is its own entry.
        """
        media = media or MediaSpec()
        key = cache_key(path, media, span, extra="" if video and audio else f"streams:{int(video)}{int(audio)}")
        file = self.root / f"{key}.npz"
        with self._key_lock(key):
            clip = self._load(file)
            if clip is not None:
                with self._lock:
                    self.stats.hits += 1
                return clip
            with self._lock:
                self.stats.misses += 1
            clip = load_clip(path, media, span, video=video, audio=audio)
            added = self._store(file, clip)
        self._evict(added)
        return clip

    def _load(self, file: Path) -> DecodedClip | None:
        try:
            with np.load(file, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                frames = z["frames"] if meta["has_video"] else None
                audio = z["audio"] if meta["has_audio"] else None
                clip = DecodedClip(
                    frames=frames,
                    frame_times=z["frame_times"],
                    audio=audio,
                    sample_rate=meta["sample_rate"],
                    duration=meta["duration"],
                    has_video=meta["has_video"],
                    has_audio=meta["has_audio"],
                    notes=list(meta["notes"]),
                    rotation=int(meta.get("rotation", 0)),
                    fps=meta.get("fps"),
                    audio_cut_from=meta.get("audio_cut_from"),
                )
        except FileNotFoundError:
            return None
        except Exception:  # a corrupt entry (disk full, killed writer on a non-atomic fs): decode again
            with self._lock:
                self.stats.errors += 1
            return None
        try:
            os.utime(file)
        except OSError:
            pass
        return clip

    def _store(self, file: Path, clip: DecodedClip) -> int:
        """Write the entry atomically; returns how many bytes the folder grew by."""
        meta = {
            "sample_rate": clip.sample_rate,
            "duration": clip.duration,
            "has_video": clip.has_video,
            "has_audio": clip.has_audio,
            "notes": clip.notes,
            "rotation": clip.rotation,
            "fps": clip.fps,
            "audio_cut_from": clip.audio_cut_from,
        }
        empty = np.zeros(0, np.uint8)
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(
                    f,
                    frames=clip.frames if clip.frames is not None else empty,
                    frame_times=clip.frame_times,
                    audio=clip.audio if clip.audio is not None else np.zeros(0, np.float32),
                    meta=np.array(json.dumps(meta)),
                )
                written = f.tell()
            try:
                replaced = file.stat().st_size  # a corrupt entry being rewritten
            except FileNotFoundError:
                replaced = 0
            os.replace(tmp, file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return written - replaced

    def size(self) -> int:
        """Bytes of the cached entries on disk now (walks the folder)."""
        return sum(e[1] for e in self._scan())

    def _scan(self) -> list[tuple[int, int, Path]]:
        """(mtime_ns, size, file) of every entry on disk."""
        entries = []
        for f in self.root.glob("*.npz"):
            try:
                st = f.stat()
            except FileNotFoundError:
                continue
            entries.append((st.st_mtime_ns, st.st_size, f))
        return entries

    def _evict(self, added: int = 0) -> None:
        """Count a put of `added` bytes; walk and evict oldest-first only when needed (module docstring)."""
        with self._size_lock:
            entries = None
            if self._total is None or self._puts >= max(self.rescan_min_puts, self._entries // 8):
                entries = self._scan()
                self._walked(entries)
            else:
                self._total += added
                self._entries += 1
                self._puts += 1
            if self._total <= self.max_bytes:
                return
            if entries is None:  # over the bound by the count: take the true sizes and LRU order from disk
                entries = self._scan()
                self._walked(entries)
                if self._total <= self.max_bytes:
                    return
            low = int(self.max_bytes * LOW_WATER)
            for _, size, f in sorted(entries):
                if self._total <= low:
                    break
                try:
                    f.unlink()
                except FileNotFoundError:  # another process evicted it
                    pass
                else:
                    with self._lock:
                        self.stats.evictions += 1
                self._total -= size
                self._entries -= 1

    def _walked(self, entries: list[tuple[int, int, Path]]) -> None:
        """Reset the running total from a walk of the folder."""
        with self._lock:
            self.stats.scans += 1
        self._total = sum(e[1] for e in entries)
        self._entries = len(entries)
        self._puts = 0

    def _wav_path(self, path: str | Path, media: MediaSpec, span: tuple[float, float] | None) -> Path:
        return self.root / "wav" / f"{cache_key(path, media, span, extra='wav')}.wav"

    def wav(self, path: str | Path, span: tuple[float, float] | None = None, sample_rate: int = 16000) -> Path:
        """A cached 16-bit mono WAV of the clip's whole audio (segment), e.g. for SFT export."""
        media = MediaSpec(sample_rate=sample_rate, max_seconds=1e9)
        out = self._wav_path(path, media, span)
        if out.exists():
            return out
        clip = decode(path, media, span, video=False)
        if not clip.has_audio:
            raise MediaError(f"no audio track to extract in {path}")
        return write_wav(out, clip.audio, sample_rate)

    def clip_wav(self, path: str | Path, media: MediaSpec, span: tuple[float, float] | None, clip: DecodedClip) -> Path:
        """The audio of `clip` (already decoded from `path` under `media`) as a cached WAV: no second decode,
        and the same `max_seconds` budget as the audio sent inline (e.g. for HTTP backends given a file URL)."""
        if not clip.has_audio:
            raise MediaError(f"no audio track to extract in {path}")
        out = self._wav_path(path, media, span)
        return out if out.exists() else write_wav(out, clip.audio, clip.sample_rate)


def load_clip(
    path: str | Path,
    media: MediaSpec,
    span: tuple[float, float] | None = None,
    *,
    video: bool = True,
    audio: bool = True,
) -> DecodedClip:
    """Decode `path` under `media`: its `preset`'s pipeline when one is set, else `decode`."""
    if media.preset == "qwen-omni-utils":
        from .reference import decode_reference

        return decode_reference(path, media, span, video=video, audio=audio)
    return decode(path, media, span, video=video, audio=audio)


def write_wav(out: Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write float audio in [-1, 1] as 16-bit mono PCM, atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(wav_bytes(audio, sample_rate))
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


_CACHES: dict[str, MediaCache] = {}
_CACHES_LOCK = threading.Lock()


def get_cache(root: str | Path, max_bytes: int | None = None) -> MediaCache:
    """One shared MediaCache per folder in this process (so stats and in-flight locks are shared)."""
    key = str(Path(root).resolve())
    with _CACHES_LOCK:
        cache = _CACHES.get(key)
        if cache is None:
            env = os.environ.get("AFFECTBENCH_MEDIA_CACHE_BYTES")
            limit = max_bytes or (int(env) if env else DEFAULT_MAX_BYTES)
            cache = _CACHES[key] = MediaCache(root, limit)
        return cache


def extract_wav(
    path: str | Path,
    span: tuple[float, float] | None = None,
    sample_rate: int = 16000,
    cache_dir: str | Path | None = None,
) -> Path:
    """Write (once) and return a 16 kHz mono WAV of `path`'s audio track; cached under `cache_dir`."""
    root = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "affectbench-media"
    return get_cache(root).wav(path, span, sample_rate)
