"""A small SYNTHETIC demo dataset in the MMSA layout, for trying the whole job offline in minutes.

`write_demo(dir)` writes `label.csv` + `Raw/<video>/<clip>.mp4`: ~2 s clips whose affect is carried
by the words (sentences of graded polarity), the voice (espeak-ng with pitch, rate and loudness set by
the voice's mood when `espeak-ng` is on PATH; otherwise a synthetic tone contour) and a face (a real
smiling photo, `skimage.data.astronaut()`, warped into a frown or a neutral mouth for the other moods;
a drawn face when scikit-image is missing). About a third of the clips have modalities that disagree
(e.g. positive words said in a sad voice with a frown); `label_T/A/V` record each modality's own score.
Task: sentiment regression in [-3, 3] scored with the MOSI suite. It is not real data: it shows that
the pipeline runs and that cues from each modality reach the model, nothing about real-world accuracy.
"""

from __future__ import annotations

import csv
import functools
import io
import shutil
import subprocess
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np

from .mmsa import MMSADataset, sentiment_info

SAMPLE_RATE = 16000
FPS = 10
SENTENCES: dict[int, tuple[str, ...]] = {
    3: (
        "This is absolutely the best movie I have ever seen",
        "I loved every single minute of it, wonderful",
        "What a brilliant and beautiful film",
        "Amazing acting, I am so happy I watched it",
    ),
    2: ("The story was really good and fun", "I enjoyed it a lot", "The actors did a great job"),
    1: ("It was pretty nice overall", "Some parts were good", "I kind of liked the ending"),
    0: ("The movie is about two hours long", "It was released last year", "I watched it on a Tuesday"),
    -1: ("It was a bit boring at times", "The plot was somewhat weak", "I did not really like the ending"),
    -2: ("The acting was bad and the story was dull", "I was disappointed by this film", "It was a waste of time"),
    -3: (
        "This is the worst movie I have ever seen",
        "Terrible, awful and painful to watch",
        "I hated every minute of it, horrible",
    ),
}
# espeak-ng settings per voice mood: pitch (0-99), words per minute, amplitude (0-200)
VOICE = {1: (75, 170, 170), 0: (45, 150, 110), -1: (12, 115, 60)}
MOOD_SCORE = {1: 2.0, 0: 0.0, -1: -2.0}


class Demo(MMSADataset):
    info = sentiment_info(
        "demo", "SYNTHETIC demo clips (espeak-ng voice, warped face photo, graded sentences), MOSI-style [-3, 3]"
    )


# --- faces ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _astronaut_faces(size: int) -> dict[int, np.ndarray] | None:
    """RGB face crops {1: smiling (the real photo), 0: neutral mouth, -1: frown + lowered brows}.

    Cached: every clip of a demo reuses the same three faces (building them costs as much as a third of a clip).
    """
    try:
        import cv2
        from skimage import data
    except ImportError:
        return None
    img = np.ascontiguousarray(data.astronaut())  # RGB 512x512; the face box is about (177, 66, 95, 95)
    x, y, w, h = 177, 66, 95, 95

    def mouth_out(a: np.ndarray) -> np.ndarray:
        mask = np.zeros(a.shape[:2], np.uint8)
        cx, cy = x + w // 2, y + int(h * 0.805)
        cv2.ellipse(mask, (cx, cy), (int(w * 0.28), int(h * 0.145)), 0, 0, 360, 255, -1)
        return cv2.inpaint(a, mask, 7, cv2.INPAINT_TELEA)

    def brows_down(a: np.ndarray) -> np.ndarray:
        hh, ww = a.shape[:2]
        yy, xx = np.mgrid[0:hh, 0:ww].astype(np.float32)
        by, bx = y + h * 0.30, x + w / 2
        d = np.exp(-((yy - by) ** 2) / (2 * (h * 0.08) ** 2)) * np.exp(-((xx - bx) ** 2) / (2 * (w * 0.15) ** 2))
        return cv2.remap(a, xx, (yy - d * h * 0.06).astype(np.float32), cv2.INTER_LINEAR)

    lip = (120, 60, 70)  # RGB
    neutral = mouth_out(img)
    cv2.line(neutral, (x + int(w * 0.33), y + int(h * 0.81)), (x + int(w * 0.67), y + int(h * 0.81)), lip, 3)
    frown = mouth_out(img)
    cv2.ellipse(frown, (x + w // 2, y + int(h * 0.88)), (int(w * 0.2), int(h * 0.08)), 0, 200, 340, lip, 3)
    frown = brows_down(frown)
    x0, y0, side = x - 50, y - 45, w + 100

    def crop(a: np.ndarray) -> np.ndarray:
        return cv2.resize(a[y0 : y0 + side, x0 : x0 + side], (size, size), interpolation=cv2.INTER_AREA)

    return {1: crop(img), 0: crop(neutral), -1: crop(frown)}


@functools.lru_cache(maxsize=4)
def _drawn_faces(size: int) -> dict[int, np.ndarray]:
    """Fallback cartoon faces (the FER network reads these poorly; used only without scikit-image)."""
    import cv2

    out = {}
    for mood in (1, 0, -1):
        img = np.full((size, size, 3), 235, np.uint8)
        c, r = size // 2, size // 3
        cv2.ellipse(img, (c, c), (r, int(r * 1.25)), 0, 0, 360, (225, 180, 150), -1)
        for dx in (-r // 2.5, r // 2.5):
            cv2.circle(img, (int(c + dx), c - r // 4), max(2, r // 10), (40, 30, 20), -1)
        mouth_y = c + r // 2
        if mood == 1:
            cv2.ellipse(img, (c, mouth_y), (r // 2, r // 4), 0, 0, 180, (160, 60, 60), 3)
        elif mood == -1:
            cv2.ellipse(img, (c, mouth_y + r // 4), (r // 2, r // 4), 0, 180, 360, (160, 60, 60), 3)
        else:
            cv2.line(img, (c - r // 3, mouth_y), (c + r // 3, mouth_y), (160, 60, 60), 3)
        out[mood] = img
    return out


# --- voice ---------------------------------------------------------------------------------------


def _espeak(text: str, mood: int) -> np.ndarray | None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    pitch, speed, amp = VOICE[mood]
    cmd = [exe, "-v", "en-us", "-p", str(pitch), "-s", str(speed), "-a", str(amp), "--stdout"]
    try:
        wav = subprocess.run([*cmd, text], capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    if len(wav) <= 44:
        return None
    with wave.open(io.BytesIO(wav)) as w:
        sr, pcm = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2")
    x = pcm.astype(np.float32) / 32768.0
    n = int(len(x) * SAMPLE_RATE / sr)
    return np.interp(np.arange(n) * sr / SAMPLE_RATE, np.arange(len(x)), x).astype(np.float32)


def _tone(text: str, mood: int) -> np.ndarray:
    """Fallback voice: a syllable-like pulsed tone whose pitch, contour, rate and level follow the mood."""
    syll = max(3, len(text.split()) * 3 // 2)
    rate = {1: 5.0, 0: 4.0, -1: 2.8}[mood]
    seconds = syll / rate
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    base, swing, level = {1: (230.0, 60.0, 0.5), 0: (160.0, 15.0, 0.3), -1: (105.0, 5.0, 0.12)}[mood]
    f0 = base + swing * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    env = np.clip(np.sin(np.pi * rate * t), 0, None) ** 2
    return (level * env * (np.sin(phase) + 0.3 * np.sin(2 * phase))).astype(np.float32)


# --- clips ---------------------------------------------------------------------------------------


def synth_clip(path: str | Path, text: str, voice: int, face: int, *, size: int = 192) -> dict[str, str]:
    """Write one clip (H.264 + AAC mp4) saying `text` in a voice of mood `voice` with a face of mood `face`.

    Moods are 1 (positive), 0 (neutral), -1 (negative). Returns how each modality was made.
    """
    faces = _astronaut_faces(size)
    face_kind = "astronaut-photo" if faces is not None else "drawn"
    faces = faces if faces is not None else _drawn_faces(size)
    audio = _espeak(text, voice)
    voice_kind = "espeak-ng" if audio is not None else "tone"
    if audio is None:
        audio = _tone(text, voice)
    pad = np.zeros(int(0.15 * SAMPLE_RATE), np.float32)
    audio = np.concatenate([pad, audio, pad])
    _write_mp4(Path(path), faces[face], audio)
    return {"face_kind": face_kind, "voice_kind": voice_kind}


def _write_mp4(path: Path, face: np.ndarray, audio: np.ndarray) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    seconds = len(audio) / SAMPLE_RATE
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=FPS)
        vs.height, vs.width = face.shape[:2]
        vs.pix_fmt = "yuv420p"
        vs.options = {"threads": "1"}
        aus = out.add_stream("aac", rate=SAMPLE_RATE)
        aus.layout = "mono"
        for i in range(max(1, int(np.ceil(seconds * FPS)))):
            shift = int(round(2 * np.sin(i / 3.0)))  # a little head motion
            img = np.ascontiguousarray(np.roll(face, shift, axis=1))
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        for start in range(0, len(audio), 1024):
            frame = av.AudioFrame.from_ndarray(audio[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = start
            frame.time_base = Fraction(1, SAMPLE_RATE)
            for pkt in aus.encode(frame):
                out.mux(pkt)
        for pkt in aus.encode():
            out.mux(pkt)


def _plan(n: int, seed: int) -> list[dict[str, object]]:
    """Which sentence, voice mood and face mood each clip gets; a third disagree across modalities."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        t_score = int(rng.choice([-3, -2, -1, 0, 1, 2, 3]))
        sentence = SENTENCES[t_score][int(rng.integers(len(SENTENCES[t_score])))]
        sign = int(np.sign(t_score))
        if rng.random() < 0.67:
            voice = face = sign
        else:  # disagreeing clip: voice and face share a mood that is not the words'
            voice = face = int(rng.choice([m for m in (1, 0, -1) if m != sign]))
            if rng.random() < 0.3:
                face = int(rng.choice([1, 0, -1]))
        rows.append({"i": i, "text": sentence, "t": t_score, "voice": voice, "face": face})
    return rows


def write_demo(root: str | Path, n: int = 120, seed: int = 0) -> Path:
    """Write the synthetic demo dataset (MMSA layout) under `root`; same (n, seed) gives the same files."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    per_video = 3
    n_videos = (n + per_video - 1) // per_video
    order = np.random.default_rng(seed + 1).permutation(n_videos)
    n_train, n_valid = round(n_videos * 0.6), round(n_videos * 0.2)
    mode_of = {}
    for rank, v in enumerate(order):
        mode_of[int(v)] = "train" if rank < n_train else "valid" if rank < n_train + n_valid else "test"
    rows = []
    for p in _plan(n, seed):
        i = int(p["i"])  # type: ignore[arg-type]
        video_id, clip_id = f"demo{i // per_video:03d}", f"{i % per_video + 1:02d}"
        synth_clip(root / "Raw" / video_id / f"{clip_id}.mp4", str(p["text"]), int(p["voice"]), int(p["face"]))  # type: ignore[arg-type]
        t, a, v = float(p["t"]), MOOD_SCORE[int(p["voice"])], MOOD_SCORE[int(p["face"])]  # type: ignore[arg-type]
        label = float(np.clip(round(0.5 * t + 0.25 * a + 0.25 * v, 1), -3.0, 3.0)) + 0.0
        annotation = "Positive" if label > 0 else "Negative" if label < 0 else "Neutral"
        rows.append([video_id, clip_id, p["text"], label, t, a, v, annotation, mode_of[i // per_video]])
    with (root / "label.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video_id", "clip_id", "text", "label", "label_T", "label_A", "label_V", "annotation", "mode"])
        w.writerows(rows)
    return root
