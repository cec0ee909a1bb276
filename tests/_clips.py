"""Tiny real media files for tests, written with PyAV at test time (no committed blobs)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def make_clip(
    path: str | Path,
    seconds: float = 1.0,
    *,
    video: bool = True,
    audio: bool = True,
    fps: int = 10,
    size: tuple[int, int] = (64, 48),
    freq: float = 440.0,
    color: tuple[int, int, int] = (200, 60, 60),
    silent: bool = False,
    sample_rate: int = 16000,
) -> Path:
    """Write an mp4 (or mkv/avi by suffix) with a coloured moving square and a sine tone."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        vs = aus = None
        if video:
            vs = out.add_stream("mpeg4" if path.suffix == ".avi" else "libx264", rate=fps)
            vs.width, vs.height = size
            vs.pix_fmt = "yuv420p"
        if audio:
            aus = out.add_stream("aac" if path.suffix != ".avi" else "mp3", rate=sample_rate)
            aus.layout = "mono"
        if vs is not None:
            w, h = size
            for i in range(max(1, int(seconds * fps))):
                img = np.zeros((h, w, 3), np.uint8)
                img[:] = (20, 20, 20)
                x = (i * 3) % max(1, w - 16)
                img[h // 4 : h // 4 + 16, x : x + 16] = color
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                for pkt in vs.encode(frame):
                    out.mux(pkt)
            for pkt in vs.encode():
                out.mux(pkt)
        if aus is not None:
            n = int(seconds * sample_rate)
            t = np.arange(n) / sample_rate
            wave = np.zeros(n) if silent else 0.3 * np.sin(2 * np.pi * freq * t)
            mux_audio(out, aus, wave, sample_rate, 1024)
    return path


def make_wav(path: str | Path, seconds: float = 1.0, freq: float = 220.0, sample_rate: int = 16000) -> Path:
    """Write a 16-bit mono WAV sine tone with the standard library."""
    import wave

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    pcm = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return path


def espeak(text: str, voice: str = "en-us", sample_rate: int = 16000) -> np.ndarray | None:
    """`text` spoken by espeak-ng in `voice` ("cmn" is Mandarin) as float32 mono at `sample_rate`, or None
    when espeak-ng is not on PATH."""
    import io
    import shutil
    import subprocess
    import wave

    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    wav = subprocess.run([exe, "-v", voice, "--stdout", text], capture_output=True, check=True, timeout=60).stdout
    with wave.open(io.BytesIO(wav)) as w:
        sr, pcm = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2")
    x = pcm.astype(np.float32) / 32768.0
    n = int(len(x) * sample_rate / sr)
    return np.interp(np.arange(n) * sr / sample_rate, np.arange(len(x)), x).astype(np.float32)


def make_speech_clip(
    path: str | Path, wave_: np.ndarray, *, fps: int = 10, size: tuple[int, int] = (64, 48), sample_rate: int = 16000
) -> Path:
    """Write an mp4 with a moving square and `wave_` (float32 mono at `sample_rate`) as its audio track."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    seconds = len(wave_) / sample_rate
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height = size
        vs.pix_fmt = "yuv420p"
        aus = out.add_stream("aac", rate=sample_rate)
        aus.layout = "mono"
        w, h = size
        for i in range(max(1, int(np.ceil(seconds * fps)))):
            img = np.full((h, w, 3), 20, np.uint8)
            x = (i * 3) % max(1, w - 16)
            img[h // 4 : h // 4 + 16, x : x + 16] = (200, 60, 60)
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        mux_audio(out, aus, wave_, sample_rate, 1024)
    return path


def ffmpeg_clip(
    path: str | Path,
    seconds: float = 2.0,
    *,
    size: tuple[int, int] = (64, 48),
    fps: int = 25,
    audio: bool = True,
    rotate: int | None = None,
    faststart: bool = True,
) -> Path:
    """Write an mp4 with the ffmpeg CLI (testsrc picture + 440 Hz tone, h264/aac, moov first with
    `faststart`); `rotate` sets the container's rotation metadata as a phone would."""
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is not installed (scripts/setup.sh installs it with apt)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    cmd = ["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", f"testsrc=size={w}x{h}:rate={fps}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
    cmd += ["-t", str(seconds), "-c:v", "libx264", "-pix_fmt", "yuv420p"]
    if audio:
        cmd += ["-c:a", "aac"]
    if faststart:
        cmd += ["-movflags", "+faststart"]
    if rotate is None:
        subprocess.run([*cmd, str(path)], check=True)
        return path
    plain = path.with_name(path.stem + ".plain.mp4")
    subprocess.run([*cmd, str(plain)], check=True)
    # ffmpeg 5 keeps `rotate` as a display matrix only when stream-copying
    tag = ["-c", "copy", "-metadata:s:v:0", f"rotate={rotate}"] + (["-movflags", "+faststart"] if faststart else [])
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(plain), *tag, str(path)], check=True)
    plain.unlink()
    return path


def truncate(path: str | Path, keep: float, out: str | Path | None = None) -> Path:
    """Copy the first `keep` fraction of a file's bytes (a cut download: a faststart mp4 keeps its
    header, which still promises the whole duration)."""
    data = Path(path).read_bytes()
    out = Path(out) if out is not None else Path(path)
    out.write_bytes(data[: int(len(data) * keep)])
    return out


def mux_audio(out, stream, wave: np.ndarray, sample_rate: int, chunk: int) -> None:
    """Encode mono float `wave` (n,) into PyAV audio `stream` of container `out`, `chunk` samples a frame."""
    import av

    for start in range(0, len(wave), chunk):
        data = wave[start : start + chunk].astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(data, format="fltp", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, sample_rate)
        for pkt in stream.encode(frame):
            out.mux(pkt)
    for pkt in stream.encode():
        out.mux(pkt)
