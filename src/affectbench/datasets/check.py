"""`affectbench data check`: is a copy of a dataset complete, readable and correctly labelled?

Loads every split through the dataset's own adapter, then reports per split: counts, media files
that are missing or unreadable (each probed with PyAV: opens, has a duration, has the video/audio
streams a sample needs, first frame decodes), truncated (every packet is read, not decoded: a stream
whose packets stop before the duration its header promises, as in a byte-truncated mp4), empty (zero
bytes), duplicated ids and labels outside the label space. Clips with rotation metadata (a phone
clip's `rotate=90`) are listed for information: decoding turns them upright. Problems that an
adapter declares in `known_defects` (sample id -> note, e.g. MELD's missing and corrupt clips) are
reported as known, not as surprises. Nothing is cached: every run probes the files as they are now."""

from __future__ import annotations

import importlib.util
import math
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import AffectbenchError
from ..core.registry import DATASETS
from ..core.types import DatasetInfo, Sample, TaskType
from .published import split_size_warnings

SHOW = 5  # examples of each problem in render()


@dataclass(frozen=True)
class Problem:
    """One finding about one sample (or one media file)."""

    kind: str  # missing, unreadable, no_video, no_audio, duplicate, mislabeled
    split: str
    sample_id: str
    detail: str
    path: str | None = None


@dataclass
class Probe:
    """What PyAV saw in one media file."""

    path: str
    exists: bool
    ok: bool = False
    duration: float | None = None
    has_video: bool = False
    has_audio: bool = False
    error: str = ""
    truncated: str = ""  # which stream stops where, when the packets end before the header's duration
    rotation: int = 0  # display-matrix rotation of the video, counter-clockwise degrees


@dataclass
class CheckReport:
    """Everything `data check` found; `usable` says whether the dataset can be run at all."""

    name: str
    root: str
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # fatal: a split failed to load, no samples...
    warnings: list[str] = field(default_factory=list)  # adapter notes about the layout
    problems: list[Problem] = field(default_factory=list)
    known: list[Problem] = field(default_factory=list)
    info: list[Problem] = field(default_factory=list)  # not problems: e.g. rotated clips, turned upright on decode
    probed: int = 0  # media files probed
    probe_note: str = ""
    protocol: str = ""  # the adapter's named protocol ("" when it has none)
    kept: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> label -> samples kept
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> raw label -> rows dropped

    @property
    def usable(self) -> bool:
        return not self.errors and sum(self.counts.values()) > 0

    def of_kind(self, kind: str) -> list[Problem]:
        return [p for p in self.problems if p.kind == kind]

    @property
    def rotated(self) -> list[Problem]:
        return [p for p in self.info if p.kind == "rotated"]

    @property
    def truncated(self) -> list[Problem]:
        return self.of_kind("truncated")

    @property
    def missing(self) -> list[Problem]:
        return self.of_kind("missing")

    @property
    def unreadable(self) -> list[Problem]:
        return self.of_kind("unreadable")

    @property
    def duplicates(self) -> list[Problem]:
        return self.of_kind("duplicate")

    @property
    def mislabeled(self) -> list[Problem]:
        return self.of_kind("mislabeled")

    @property
    def n_warnings(self) -> int:
        return len(self.problems) + len(self.warnings)

    def render(self) -> str:
        """A human-readable report: counts per split, then the first few examples of each problem."""
        lines = [f"dataset {self.name} at {self.root}"]
        if self.counts:
            per_split: dict[str, Counter[str]] = {s: Counter() for s in self.counts}
            for p in self.problems:
                per_split.setdefault(p.split, Counter())[p.kind] += 1
            kinds = [k for k in KINDS if any(c[k] for c in per_split.values())]
            header = f"  {'split':<10}{'samples':>9}" + "".join(f"{k:>12}" for k in kinds)
            lines.append(header)
            for split, n in self.counts.items():
                c = per_split.get(split, Counter())
                lines.append(f"  {split:<10}{n:>9}" + "".join(f"{c[k]:>12}" for k in kinds))
            total = Counter(p.kind for p in self.problems)
            lines.append(f"  {'total':<10}{sum(self.counts.values()):>9}" + "".join(f"{total[k]:>12}" for k in kinds))
        if self.kept:
            lines.append(f"protocol {self.protocol}: kept and dropped per class" if self.protocol else "kept per class")
            for split, kept in self.kept.items():
                dropped = self.dropped.get(split) or {}
                line = f"  {split:<10}kept " + (", ".join(f"{k} {v}" for k, v in kept.items()) or "none")
                if dropped:
                    line += f"; dropped {sum(dropped.values())}: " + ", ".join(f"{k} {v}" for k, v in dropped.items())
                lines.append(line)
        if self.counts:
            lines.append(f"media: {self.probe_note}" if self.probe_note else f"media: {self.probed} files probed")
        for kind in KINDS:
            found = self.of_kind(kind)
            if not found:
                continue
            lines.append(f"{kind} ({len(found)}): {KIND_HELP[kind]}")
            for p in found[:SHOW]:
                lines.append(f"  [{p.split}] {p.sample_id}: {p.detail}")
            if len(found) > SHOW:
                lines.append(f"  ... and {len(found) - SHOW} more")
        if self.rotated:
            lines.append(f"rotated ({len(self.rotated)}): rotation metadata; frames are turned upright when decoded")
            for p in self.rotated[:SHOW]:
                lines.append(f"  [{p.split}] {p.sample_id}: {p.detail}")
            if len(self.rotated) > SHOW:
                lines.append(f"  ... and {len(self.rotated) - SHOW} more")
        if self.known:
            lines.append(f"known defects ({len(self.known)}): expected in the official release, not your copy's fault")
            for p in self.known:
                lines.append(f"  [{p.split}] {p.sample_id}: {p.detail}")
        for w in self.warnings[:SHOW]:
            lines.append(f"warning: {w}")
        if len(self.warnings) > SHOW:
            lines.append(f"warning: ... and {len(self.warnings) - SHOW} more")
        for e in self.errors:
            lines.append(f"error: {e}")
        if not self.usable:
            lines.append("NOT USABLE: see the error(s) above" if self.errors else "NOT USABLE: no samples in any split")
        elif self.n_warnings:
            lines.append(f"usable, with {self.n_warnings} warning(s): affected samples are scored as errors or skipped")
        else:
            lines.append("usable: no problems found")
        return "\n".join(lines)


KINDS = ("missing", "empty", "unreadable", "truncated", "no_video", "no_audio", "duplicate", "mislabeled")
KIND_HELP = {
    "missing": "media files that do not exist",
    "empty": "media files of zero bytes (sent as a missing modality, noted)",
    "unreadable": "media files PyAV cannot open or decode",
    "truncated": "packets end before the duration the header promises (a cut download?); the rest is decoded",
    "no_video": "files without a video stream where a video was expected",
    "no_audio": "clips without any audio (no audio stream, no separate audio file)",
    "duplicate": "the same sample id more than once",
    "mislabeled": "targets outside the label space or score range, or not a number",
}


def probe_media(path: str) -> Probe:
    """Open `path` with PyAV: duration, streams, rotation, whether its first frame decodes and whether
    its packets reach the duration its header promises (every packet is read, none decoded)."""
    import av

    from ..media.decode import frame_rotation

    p = Path(path)
    if not p.is_file():
        return Probe(path, exists=False, error="file not found")
    if p.stat().st_size == 0:
        return Probe(path, True, False, error="file is empty (zero bytes)")
    try:
        with av.open(str(p)) as container:
            has_video = any(s.type == "video" for s in container.streams)
            has_audio = any(s.type == "audio" for s in container.streams)
            duration = container.duration / 1_000_000 if container.duration else None
            if duration is None:
                for s in container.streams:
                    if s.duration and s.time_base:
                        duration = max(duration or 0.0, float(s.duration * s.time_base))
            if not (has_video or has_audio):
                return Probe(path, True, False, duration, error="no audio or video stream")
            stream = container.streams.video[0] if has_video else container.streams.audio[0]
            decoded = next(iter(container.decode(stream)), None)
            if decoded is None:
                return Probe(path, True, False, duration, has_video, has_audio, error="no frame could be decoded")
            rotation = frame_rotation(decoded) if has_video else 0
        truncated = packet_truncation(p, duration)
        return Probe(path, True, True, duration, has_video, has_audio, truncated=truncated, rotation=rotation)
    except Exception as e:  # PyAV raises many FFmpegError subclasses, OSError, ValueError...
        return Probe(path, True, False, error=f"{type(e).__name__}: {e}")


def packet_truncation(path: Path, duration: float | None) -> str:
    """Read every packet (no decoding): '' when each stream reaches its promised end, else where it stops."""
    import av

    with av.open(str(path)) as container:
        streams = [s for s in (container.streams.video[:1] + container.streams.audio[:1])]
        ends: dict[int, float] = {}
        error = ""
        try:
            for pkt in container.demux(*streams):
                if pkt.pts is None or pkt.time_base is None:
                    continue
                t = float((pkt.pts + (pkt.duration or 0)) * pkt.time_base)
                ends[pkt.stream_index] = max(ends.get(pkt.stream_index, 0.0), t)
        except Exception as e:  # the demuxer ran into the cut
            error = f" ({type(e).__name__})"
        out = []
        for s in streams:
            start = float(s.start_time * s.time_base) if s.start_time is not None and s.time_base else 0.0
            promised = float(s.duration * s.time_base) + start if s.duration and s.time_base else duration
            if promised is None:
                continue
            rate = s.average_rate if s.type == "video" else None
            step = 1.0 / float(rate) if rate else 0.1
            got = ends.get(s.index, start)
            if got < promised - max(0.25, 3 * step):
                out.append(f"{s.type} packets end at {got:.2f}s of the {promised:.2f}s the header promises{error}")
        return "; ".join(out)


def _label_problem(info: DatasetInfo, target: str | float | None) -> str | None:
    if target is None:
        return "no label"
    if info.task is TaskType.CLASSIFICATION:
        return None if target in info.labels else f"label {target!r} is not one of {', '.join(info.labels)}"
    if isinstance(target, str):
        return f"score {target!r} is not a number"
    if math.isnan(target):
        return "score is not a number"
    lo, hi = info.score_range or (-math.inf, math.inf)
    return None if lo <= target <= hi else f"score {target} outside [{lo}, {hi}]"


def _media_problems(split: str, s: Sample, probes: dict[str, Probe]) -> list[Problem]:
    out = []
    for kind, path in s.media.items():
        pr = probes.get(path)
        if pr is None:
            continue
        if not pr.exists:
            out.append(Problem("missing", split, s.id, f"{kind} file {path} not found", path))
        elif pr.error.startswith("file is empty"):
            out.append(Problem("empty", split, s.id, f"{kind} file {path} is empty (zero bytes)", path))
        elif not pr.ok:
            out.append(Problem("unreadable", split, s.id, f"{kind} file {path}: {pr.error}", path))
        elif kind == "video" and not pr.has_video:
            out.append(Problem("no_video", split, s.id, f"{path} has no video stream", path))
        elif kind == "video" and s.span and pr.duration is not None and s.span[0] >= pr.duration:
            out.append(
                Problem("unreadable", split, s.id, f"span starts at {s.span[0]}s, after the end of {path}", path)
            )
        elif pr.truncated:
            out.append(Problem("truncated", split, s.id, f"{kind} file {path}: {pr.truncated}", path))
    video = probes.get(s.media.get("video", ""))
    audio = probes.get(s.media.get("audio", ""))
    if video is not None and video.ok and video.has_video and not video.has_audio and audio is None:
        out.append(Problem("no_audio", split, s.id, f"{video.path} has no audio stream", video.path))
    return out


def check_dataset(name: str, root: Any, *, probe: bool = True, workers: int = 4, **options: Any) -> CheckReport:
    """Load every split of dataset `name` at `root` and report what is missing, unreadable, duplicated or mislabeled.

    `probe=False` skips opening media files (existence is still checked).
    """
    report = CheckReport(name=name, root=str(root))
    try:
        dataset = DATASETS.load(name)(root, **options)
    except AffectbenchError as e:
        report.errors.append(str(e))
        return report
    info: DatasetInfo = dataset.info
    samples: dict[str, list[Sample]] = {}
    for split in dataset.splits():
        try:
            samples[split] = dataset.load(split)
        except AffectbenchError as e:
            report.errors.append(f"split {split}: {e}")
            continue
        report.counts[split] = len(samples[split])
    report.warnings.extend(dict.fromkeys(getattr(dataset, "warnings", [])))  # de-duplicated, in order
    report.warnings.extend(split_size_warnings(info.corpus, report.counts))
    for split, items in samples.items():  # the protocol: what each class kept, what it dropped
        proto = dataset.protocol(split)
        report.protocol = proto.get("name") or report.protocol
        if info.labels:  # classes: a regression target has none
            report.kept[split] = dict(sorted(Counter(str(s.target) for s in items).items()))
            report.dropped[split] = dict(proto.get("dropped") or {})
    for split in report.counts:
        if report.counts[split] == 0:
            report.warnings.append(f"split {split} has no samples")
    if report.counts and sum(report.counts.values()) == 0:
        report.errors.append("no samples in any split: is the root right and the label file complete?")

    # Labels and ids.
    seen: Counter[str] = Counter()
    first_split: dict[str, str] = {}
    for split, items in samples.items():
        for s in items:
            seen[s.id] += 1
            if seen[s.id] == 2:
                report.problems.append(
                    Problem("duplicate", split, s.id, f"id also in split {first_split[s.id]}; ids must be unique")
                )
            first_split.setdefault(s.id, split)
            why = _label_problem(info, s.target)
            if why:
                report.problems.append(Problem("mislabeled", split, s.id, why))

    # Media.
    paths = list(dict.fromkeys(p for items in samples.values() for s in items for p in s.media.values()))
    have_av = importlib.util.find_spec("av") is not None
    if probe and have_av:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            probes = dict(zip(paths, pool.map(probe_media, paths), strict=True))
        report.probed = len(paths)
        report.probe_note = f"{len(paths)} files probed with PyAV"
    else:
        probes = {p: Probe(p, exists=Path(p).is_file(), ok=True, has_video=True, has_audio=True) for p in paths}
        why = "PyAV is not installed (pip install 'affectbench[media]')" if probe else "probing was turned off"
        report.probe_note = f"{len(paths)} files checked for existence only; not opened because {why}"
    for split, items in samples.items():
        for s in items:
            report.problems.extend(_media_problems(split, s, probes))
            for kind, path in s.media.items():
                pr = probes.get(path)
                if pr is not None and pr.rotation:
                    detail = f"{kind} file {path}: rotated {pr.rotation} degrees"
                    report.info.append(Problem("rotated", split, s.id, detail, path))
    if paths and all(not (pr.exists and pr.ok) for pr in probes.values()):
        report.errors.append(
            f"none of the {len(paths)} media files can be read (e.g. {paths[0]}): is the root right "
            "and are the clips unpacked in the expected folders?"
        )

    # Known defects are not surprises.
    known_defects: dict[str, str] = getattr(dataset, "known_defects", {}) or {}
    if known_defects:
        surprising = []
        for p in report.problems:
            if p.sample_id in known_defects and p.kind in {
                "missing",
                "empty",
                "unreadable",
                "truncated",
                "no_video",
                "no_audio",
            }:
                report.known.append(Problem(p.kind, p.split, p.sample_id, f"{known_defects[p.sample_id]} ({p.detail})"))
            else:
                surprising.append(p)
        report.problems = surprising
    return report
