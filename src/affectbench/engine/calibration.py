"""Contextual calibration's prior: the run's own prompt scored on content-free inputs (Zhao et al. 2021,
"Calibrate Before Use", arXiv 2102.09690, §4: keep the prompt format, replace only the test input).

The content-free samples keep what the template sees of a real sample — the same template, wording,
modalities and context/speaker slots — and replace its content: the transcript by each of
`CONTENT_FREE` ("N/A", "", "[MASK]"), the video by a blank (black) frame sequence of the run's frame
size and clip length, the audio by silence of the clip's length. Size and length come from the run's
first samples with media (`probe_clips`: the median duration of up to `PROBE` clips, the first
video's frame size); the files are written once into the workspace (`calibration/`). So a video
template keeps "in this video clip" in its prior's prompt, and an audio- or video-only run scores
three different inputs instead of one. What was scored and the resulting prior are recorded with
every prediction (`calibration_inputs`, `score_prior`) and in the run's metrics (`_calibration`).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..core.errors import AffectbenchError, require
from ..core.specs import RunSpec
from ..core.types import DatasetInfo, Sample
from ..knowledge import SampleKnowledge
from ..media.encode import encode_mp4, wav_bytes
from ..models.options import CONTENT_FREE, check_prior, content_free_prior
from ..prompts.base import Prompt
from .execution import Call, Executor
from .render import renderer

PROBE = 8  # clips probed for the content-free media's length and frame size
SAMPLE_RATE = 16_000
BLANK_FPS = 2.0


def probe_clips(samples: Sequence[Sample]) -> dict:
    """{"seconds", "width", "height"} of the run's clips: the median duration (its span where set) of the
    first `PROBE` samples with media and the first video's frame size; {} when no sample has media."""
    av = require("av", "media", "content-free media for contextual calibration")
    seconds: list[float] = []
    size = None
    for s in samples:
        path = (s.media or {}).get("video") or (s.media or {}).get("audio")
        if not path:
            continue
        if s.span:
            seconds.append(max(0.1, s.span[1] - s.span[0]))
        try:
            with av.open(str(path)) as c:
                if not s.span and c.duration:
                    seconds.append(c.duration / 1_000_000)
                if size is None and c.streams.video:
                    v = c.streams.video[0]
                    size = (int(v.codec_context.width), int(v.codec_context.height))
        except Exception:  # an unreadable clip: its own sample fails later; the probe takes the next one
            continue
        if len(seconds) >= PROBE:
            break
    if not seconds:
        return {}
    out: dict = {"seconds": round(statistics.median(seconds), 3)}
    if size:
        out["width"], out["height"] = size
    return out


def content_free_media(samples: Sequence[Sample], folder: Path) -> tuple[dict[str, str], dict]:
    """({"video": path, "audio": path} of a blank clip and silence, the probe) written under `folder`;
    a kind is left out when no probed sample has it."""
    probe = probe_clips(samples)
    if not probe:
        return {}, {}
    folder.mkdir(parents=True, exist_ok=True)
    secs = probe["seconds"]
    media: dict[str, str] = {}
    tag = f"{secs:g}s"
    has_audio = any((s.media or {}).get("audio") or (s.media or {}).get("video") for s in samples[:PROBE])
    if has_audio:
        wav = folder / f"silence_{tag}.wav"
        if not wav.exists():
            wav.write_bytes(wav_bytes(np.zeros(int(secs * SAMPLE_RATE), np.float32), SAMPLE_RATE))
        media["audio"] = str(wav)
    if "width" in probe:
        w, h = probe["width"] - probe["width"] % 2, probe["height"] - probe["height"] % 2
        mp4 = folder / f"blank_{w}x{h}_{tag}.mp4"
        if not mp4.exists():
            n = max(2, int(round(secs * BLANK_FPS)))
            mp4.write_bytes(encode_mp4(np.zeros((n, h, w, 3), np.uint8), BLANK_FPS))
        media["video"] = str(mp4)
    return media, probe


def content_free_samples(samples: Sequence[Sample], folder: Path) -> tuple[list[Sample], dict]:
    """The content-free samples (one per `CONTENT_FREE` text) shaped like the run's first sample
    (its context turns' speakers with content-free text, its speaker), with content-free media, and a
    record of them."""
    media, probe = content_free_media(samples, folder) if samples else ({}, {})
    first = samples[0] if samples else None
    out = []
    for i, t in enumerate(CONTENT_FREE):
        context = [replace(turn, text=t) for turn in first.context] if first else []
        out.append(
            Sample(
                id=f"__content_free_{i}__",
                transcript=t,
                target=None,
                media=dict(media),
                context=context,
                speaker=first.speaker if first else None,
            )
        )
    record = {"transcripts": list(CONTENT_FREE), "media": {k: Path(v).name for k, v in media.items()}, **probe}
    return out, record


def contextual_prior(
    spec: RunSpec,
    info: DatasetInfo,
    prompt: Prompt,
    executor: Executor,
    call: Call,
    knowledge: bool,
    samples: Sequence[Sample] = (),
    folder: Path | None = None,
) -> tuple[dict, dict]:
    """(log p_cf per option, the inputs record): the run's template rendered for the content-free
    samples (`content_free_samples`; the knowledge slot, when the run uses knowledge, holds the same
    content-free text) and scored like a real sample. Raises AffectbenchError naming the content-free
    input whose scoring failed, and ConfigError naming an option whose prior is −inf or NaN."""
    cf, record = content_free_samples(samples, folder or Path(".affectbench-calibration"))
    texts = {s.id: SampleKnowledge(s.transcript or "N/A") for s in cf} if knowledge else {}
    render = renderer(spec, info, prompt, texts)
    runs = []
    for batch in executor.answer((render(s) for s in cf), call):
        for t in batch:
            g = t.generation
            if t.error or g is None or g.scores is None:
                why = t.error or (g.meta.get("scoring_error") if g else None) or "no output"
                raise AffectbenchError(
                    f"contextual calibration: scoring the content-free input {t.sample.transcript!r} failed: {why}"
                )
            runs.append(g.scores)
    prior = content_free_prior(runs)
    check_prior(prior, "contextual calibration")
    record["prior"] = prior
    return prior, record
