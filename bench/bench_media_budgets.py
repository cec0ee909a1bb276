"""Media budgets and faults: what issue 16's changes cost per clip.

- decode budget: the old default (max_pixels 256x256, min_frames 1) vs the new one (Qwen's per-frame cap
  768x28x28, min_frames 4) on a 720p clip: ms/clip, and the video tokens a Qwen2.5-Omni processor makes of
  the decoded frames (transformers' `smart_resize` with the Omni processor's 128..768 tokens per frame).
- stream selection: a `TV` run decodes only the video stream vs video + audio (before).
- the qwen-omni-utils preset (every frame decoded to index by position, torchvision resize) vs `decode`.
- `data check` probe: reads every packet now (truncation) vs opening + first frame only (before).

    PYTHONPATH=src .venv/bin/python bench/bench_media_budgets.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests._clips import ffmpeg_clip  # noqa: E402

from affectbench.core.specs import MediaSpec  # noqa: E402
from affectbench.datasets.check import packet_truncation, probe_media  # noqa: E402
from affectbench.media import decode  # noqa: E402
from affectbench.media.reference import decode_reference  # noqa: E402


def best_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * min(times)


def video_tokens(frames) -> int:
    """Video tokens Qwen2.5-Omni's processor makes of (T, H, W, 3) frames (its default 128..768 tokens/frame)."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    t, h, w = frames.shape[:3]
    rh, rw = smart_resize(h, w, factor=28, min_pixels=128 * 28 * 28, max_pixels=768 * 28 * 28)
    return (-(-t // 2)) * (rh // 14) * (rw // 14) // 4


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=6.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        hd = ffmpeg_clip(Path(d) / "hd.mp4", args.seconds, size=(1280, 720))
        sd = ffmpeg_clip(Path(d) / "sd.mp4", args.seconds, size=(320, 240))
        old = MediaSpec(max_pixels=256 * 256, min_frames=1)
        new = MediaSpec()
        for name, clip in (("720p", hd), ("320x240", sd)):
            for label, media in (("old default 256x256", old), ("new default 768x28x28", new)):
                c = decode(clip, media)
                ms = best_ms(lambda: decode(clip, media), args.repeat)  # noqa: B023
                print(
                    f"decode {name} {args.seconds:g}s, {label}: {ms:.1f} ms/clip, frames {c.frames.shape}, "
                    f"{video_tokens(c.frames)} video tokens"
                )
            ms_av = best_ms(lambda: decode(clip, new), args.repeat)  # noqa: B023
            ms_v = best_ms(lambda: decode(clip, new, audio=False), args.repeat)  # noqa: B023
            print(f"stream selection {name}: video+audio {ms_av:.1f} ms, video only (TV run) {ms_v:.1f} ms")
            r = decode_reference(clip, new)
            ms_ref = best_ms(lambda: decode_reference(clip, new), args.repeat)  # noqa: B023
            print(
                f"qwen-omni-utils preset {name}: {ms_ref:.1f} ms/clip (default decode {ms_av:.1f}), "
                f"frames {r.frames.shape}, {video_tokens(r.frames)} video tokens"
            )
            ms_probe = best_ms(lambda: probe_media(str(clip)), args.repeat)  # noqa: B023
            ms_trunc = best_ms(lambda: packet_truncation(clip, None), args.repeat)  # noqa: B023
            print(
                f"data check probe {name}: {ms_probe:.1f} ms/file, of which the packet scan {ms_trunc:.1f} ms "
                f"(before: {ms_probe - ms_trunc:.1f} ms)"
            )


if __name__ == "__main__":
    main()
