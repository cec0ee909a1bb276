"""Media decoding and caching: clips -> sampled frames + 16 kHz mono audio (PyAV), cached on disk."""

from __future__ import annotations

from .cache import CacheStats, MediaCache, cache_key, extract_wav, file_identity, get_cache, load_clip, write_wav
from .decode import DecodedClip, decode, decode_count
from .encode import encode_mp4, wav_bytes

__all__ = [
    "CacheStats",
    "DecodedClip",
    "MediaCache",
    "cache_key",
    "decode",
    "decode_count",
    "encode_mp4",
    "extract_wav",
    "file_identity",
    "get_cache",
    "load_clip",
    "wav_bytes",
    "write_wav",
]
