"""Shared pieces of the benchmarks: a synthetic dataset, bench-only backends, clip writing, RSS, timing.

Registered under names that start with `bench-` so they never clash with real adapters:
- dataset `bench-synth`: options n (samples), clips (how many distinct media files under root/clips,
  cycled over the samples; 0 = text only), labels.
- model `bench-decode`: the scripted double whose `prepare` decodes every media part through the
  media cache (like a real multimodal backend would); option cache=false decodes without it.
- model `bench-burn`: the scripted double that burns `work` CPU-seconds per batch (a CPU-bound model).
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
for p in (str(REPO), str(BENCH)):
    if p not in sys.path:
        sys.path.insert(0, p)
os.environ["PYTHONPATH"] = os.pathsep.join([str(BENCH), str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(
    os.pathsep
)  # so Ray workers can import this module
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from affectbench.core.registry import DATASETS, MODELS  # noqa: E402
from affectbench.core.types import DatasetInfo, Sample, TaskType  # noqa: E402
from affectbench.datasets.base import Dataset  # noqa: E402
from affectbench.models.scripted import ScriptedModel  # noqa: E402

LABELS = ("positive", "negative", "neutral")


class Synthetic(Dataset):
    info = DatasetInfo(corpus="bench-synth", task=TaskType.CLASSIFICATION, labels=LABELS, splits=("test",))

    def load(self, split: str) -> list[Sample]:
        self._check_split(split)
        n, k = int(self.options.get("n", 1000)), int(self.options.get("clips", 0))
        clips = sorted((self.root / "clips").glob("*.mp4"))[:k] if k else []
        return [
            Sample(
                id=f"x{i:06d}",
                transcript=f"utterance {i}: the speaker talks about thing {i % 97}",
                target=LABELS[i % 3],
                media={"video": str(clips[i % len(clips)])} if clips else {},
                group=f"g{i // 10}",
            )
            for i in range(n)
        ]


class DecodingModel(ScriptedModel):
    """The scripted double with the real media `prepare` of the hf/vllm backends (`models._media`).

    Options: cache (default true) decodes through the shared disk cache under cache_dir (default
    workspace/cache/media, as the real backends do); cache=false decodes every part afresh.
    """

    def prepare(self, conversation):
        from affectbench.media import get_cache
        from affectbench.models._media import prepare_media

        cache = None
        if self.spec.options.get("cache", True):
            root = self.spec.options.get("cache_dir") or Path(self.workspace or "/tmp") / "cache" / "media"
            cache = get_cache(root)
        return prepare_media(conversation, self.media, cache)


class BurnModel(ScriptedModel):
    """Spins the CPU for `work` seconds per batch (pure Python, holds the GIL: a stand-in for compute)."""

    def generate(self, batch, gen):
        end = time.process_time() + float(self.spec.options.get("work", 0.05))
        x = 0
        while time.process_time() < end:
            for i in range(1000):
                x ^= i * i
        return super().generate(batch, gen)


def register() -> None:
    DATASETS.register("bench-synth", "_synth:Synthetic", summary="benchmark: synthetic samples")
    MODELS.register("bench-decode", "_synth:DecodingModel", summary="benchmark: scripted + media decoding")
    MODELS.register("bench-burn", "_synth:BurnModel", summary="benchmark: scripted + CPU burn")


def make_clips(folder: Path, n: int, seconds: float = 4.0, size: tuple[int, int] = (320, 240)) -> list[Path]:
    """n distinct mp4 clips (video + audio) under folder/clips, written once."""
    from tests._clips import make_clip

    out = []
    for i in range(n):
        p = folder / "clips" / f"c{i:04d}.mp4"
        if not p.exists():
            make_clip(p, seconds, fps=25, size=size, freq=200 + 20 * i, color=(40 * i % 255, 90, 200))
        out.append(p)
    return out


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class timer:
    """Wall seconds (`s`) and this process's CPU seconds, all threads (`cpu`), of a block."""

    def __enter__(self) -> timer:
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.s, self.cpu = time.perf_counter() - self.t0, time.process_time() - self.c0


def row(label: str, value: float, unit: str, extra: str = "") -> None:
    print(f"  {label:<52} {value:>10.3f} {unit:<10} {extra}")
