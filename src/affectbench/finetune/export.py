"""Export training pairs for teams that train elsewhere: LLaMA-Factory and ms-swift, in the audio mode
the eval used.

How a video's audio reached the model at eval (`audio_mode`): with the `qwen-omni-utils` media preset
the hf backend interleaves it with the frames by time (Qwen's `use_audio_in_video`), otherwise it is
a separate audio stream. A video gets its audio only when the eval fed it (the conversation has an
audio part for the same clip: modalities with A).

- separate streams: `<video><audio>` with the video's audio track extracted to a 16 kHz mono WAV;
  a clip without an audio track gets `<video>` alone (it reached the eval without audio too).
- interleaved: ms-swift with `USE_AUDIO_IN_VIDEO=1` loads the video's audio itself
  (swift/template/templates/qwen.py, `replace_tag`), so the row has `<video>` alone — an extra
  `<audio>` + WAV would feed the audio twice. LLaMA-Factory's qwen2_omni with `use_audio_in_video`
  pairs each `<video>` with its `<audio>` (the WAV) and interleaves them itself. A clip without an
  audio track cannot be sent this way (the flag is global): its row is skipped with a counted reason.

LLaMA-Factory (template `qwen2_omni`): sharegpt rows `{"messages": [...], "videos": [...], "audios": [...]}`
and a `dataset_info.json` entry; ms-swift: JSONL rows of the same shape. Media paths are absolute
(LLaMA-Factory resolves relative ones against its `media_dir`, ms-swift against the working
directory). Next to the data, `llamafactory_args.yaml` / `swift_args.json` give the settings a
training run needs: the audio mode's flag or environment variables, and a `cutoff_len` / `max_length`
that fits the longest exported row.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..core.errors import AffectbenchError, MediaError
from ..core.specs import MediaSpec
from ..core.types import Message
from .pairs import Pair

log = logging.getLogger(__name__)

TEMPLATE = "qwen2_omni"
INTERLEAVED, SEPARATE = "interleaved", "separate"
NO_TRACK_INTERLEAVED = "video without an audio track (audio-in-video needs one)"
SWIFT_ARGS = "swift_args.json"
LLAMAFACTORY_ARGS = "llamafactory_args.yaml"


def audio_mode(media: MediaSpec) -> str:
    """How the eval sent a video's audio: INTERLEAVED with the `qwen-omni-utils` preset (the hf backend's
    use_audio_in_video path), else SEPARATE streams."""
    return INTERLEAVED if media.preset == "qwen-omni-utils" else SEPARATE


class SkipRow(MediaError):
    """A pair that cannot be exported in the chosen audio mode (the reason is the message)."""


def _track_wav(path: str, span: tuple[float, float] | None, cache_dir: Path) -> str | None:
    """Absolute path of a 16 kHz mono WAV of the clip's audio track, or None when the clip has none."""
    from ..media import decode, extract_wav

    # one small frame with the audio: a clip without an audio track still decodes (its video stream)
    probe = MediaSpec(max_seconds=1e9, min_frames=1, max_frames=1, max_pixels=28 * 28)
    if not decode(path, probe, span).has_audio:
        return None
    return str(Path(extract_wav(path, span, 16000, cache_dir)).resolve())


def _abs(path: str | None) -> str:
    return str(Path(path).resolve()) if path else ""


def _user_content(
    messages: list[Message], cache_dir: Path, extract_audio: bool, mode: str = SEPARATE, target: str = "llamafactory"
) -> tuple[list[dict], list, list]:
    """Chat messages with media tags in the text, and the ordered video / audio file lists (absolute), for
    `target` "llamafactory" or "swift". Raises SkipRow for a video without an audio track in interleaved mode."""
    out, videos, audios = [], [], []
    for m in messages:
        tags, text = [], []
        parts = list(m.parts)
        fed_audio = {(p.path, p.span) for p in parts if p.kind == "audio"}
        video_paths = {(p.path, p.span) for p in parts if p.kind == "video"}
        for p in parts:
            if p.kind == "text":
                text.append(p.text or "")
            elif p.kind == "video":
                videos.append(_abs(p.path))
                if (p.path, p.span) not in fed_audio:
                    tags.append("<video>")  # the eval sent the frames alone (no A in modalities)
                    continue
                wav = _track_wav(p.path, p.span, cache_dir) if extract_audio else _abs(p.path)
                if wav is None and mode == INTERLEAVED:
                    raise SkipRow(f"{p.path}: {NO_TRACK_INTERLEAVED}")
                if wav is None or (mode == INTERLEAVED and target == "swift"):
                    tags.append("<video>")  # silent clip; or ms-swift, which loads the video's audio itself
                else:
                    tags.append("<video><audio>")
                    audios.append(wav)
            elif p.kind == "audio":
                if (p.path, p.span) in video_paths:
                    continue  # the video's own audio track: handled with its <video>
                tags.append("<audio>")
                if extract_audio and _is_video(p.path):
                    wav = _track_wav(p.path, p.span, cache_dir)
                    if wav is None:
                        raise SkipRow(f"{p.path}: audio part of a clip without an audio track")
                    audios.append(wav)
                else:
                    audios.append(_abs(p.path))
            elif p.kind == "image":
                raise AffectbenchError("export: image parts are not supported by the qwen2_omni sharegpt export")
        out.append({"role": m.role, "content": "".join(tags) + "".join(text)})
    return out, videos, audios


def _is_video(path: str | None) -> bool:
    return bool(path) and Path(path).suffix.lower() in {".mp4", ".avi", ".mkv", ".mov", ".webm"}


def pair_row(
    pair: Pair,
    cache_dir: Path,
    extract_audio: bool = True,
    mode: str = SEPARATE,
    target: str = "llamafactory",
    system: str | None = None,
) -> dict[str, Any]:
    """One sharegpt row: messages (user with tags, assistant answer), videos, audios (see `_user_content`);
    `system` (the system prompt the eval's backend adds, e.g. Qwen2.5-Omni's) leads a conversation without one."""
    messages, videos, audios = _user_content(pair.conversation, cache_dir, extract_audio, mode, target)
    if system and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system})
    messages.append({"role": "assistant", "content": pair.answer})
    row: dict[str, Any] = {"messages": messages}
    if videos:
        row["videos"] = videos
    if audios:
        row["audios"] = audios
    return row


def _rows(pairs, cache_dir: Path, extract_audio: bool, mode: str, target: str, skipped: dict | None, system=None):
    """The rows of the pairs that can be exported; the others are counted in `skipped` (reason → ids)."""
    rows = []
    for p in pairs:
        try:
            rows.append(pair_row(p, cache_dir, extract_audio, mode, target, system))
        except SkipRow as e:
            reason = str(e).split(": ", 1)[-1]
            log.warning("export: skipping sample %s: %s", p.sample.id, e)
            if skipped is not None:
                skipped.setdefault(reason, []).append(p.sample.id)
    return rows


def _merge_json(path: Path, update: dict[str, Any]) -> None:
    data = json.loads(path.read_text()) if path.exists() else {}
    for key, value in update.items():
        if key == "dataset" and isinstance(value, list):
            data[key] = sorted({*data.get(key, []), *value})
        elif key in ("cutoff_len", "max_length") and value is not None:
            data[key] = max(int(value), int(data.get(key) or 0))
        else:
            data[key] = value
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2))


def export_llamafactory(
    pairs: list[Pair],
    out_dir: str | Path,
    name: str = "affectbench",
    extract_audio: bool = True,
    *,
    mode: str = SEPARATE,
    cutoff_len: int | None = None,
    skipped: dict[str, list[str]] | None = None,
    system: str | None = None,
) -> Path:
    """Write `<name>.json` (sharegpt rows), merge a `dataset_info.json` entry and `llamafactory_args.yaml`
    (template, dataset_dir, media_dir, use_audio_in_video for `mode`, cutoff_len when given: the larger of
    the exported splits'); returns the data file. Pairs that cannot be exported in `mode` are left out and
    counted in `skipped`."""
    import yaml

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    rows = _rows(pairs, out / "audio", extract_audio, mode, "llamafactory", skipped, system)
    for r in rows:
        validate_llamafactory_row(r, interleaved=mode == INTERLEAVED)
    data = out / f"{name}.json"
    data.write_text(json.dumps(rows, ensure_ascii=False, indent=1))
    info_path = out / "dataset_info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    info[name] = {
        "file_name": data.name,
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "videos": "videos", "audios": "audios"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
            "system_tag": "system",
        },
    }
    info_path.write_text(json.dumps(info, ensure_ascii=False, indent=2))
    args_path = out / LLAMAFACTORY_ARGS
    args = yaml.safe_load(args_path.read_text()) if args_path.exists() else {}
    args.update(template=TEMPLATE, dataset_dir=str(out), media_dir=str(out), use_audio_in_video=mode == INTERLEAVED)
    args["dataset"] = ",".join(sorted({*str(args.get("dataset") or "").split(","), name} - {""}))
    if cutoff_len is not None:
        args["cutoff_len"] = max(int(cutoff_len), int(args.get("cutoff_len") or 0))
    args_path.write_text(yaml.safe_dump(args, sort_keys=True))
    return data


def swift_env(mode: str) -> dict[str, str]:
    """Environment variables ms-swift's Qwen-Omni template reads (`get_env_args`) for an audio mode."""
    return {"USE_AUDIO_IN_VIDEO": "1" if mode == INTERLEAVED else "0"}


def export_swift(
    pairs: list[Pair],
    path: str | Path,
    extract_audio: bool = True,
    *,
    mode: str = SEPARATE,
    cutoff_len: int | None = None,
    skipped: dict[str, list[str]] | None = None,
    system: str | None = None,
) -> Path:
    """Write ms-swift JSONL (messages with <video>/<audio> tags, videos, audios) and merge `swift_args.json`
    (the environment `swift sft` needs for `mode`, `max_length` when given, the dataset files); returns the
    data file. Pairs that cannot be exported in `mode` are left out and counted in `skipped`."""
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = _rows(pairs, path.parent / "audio", extract_audio, mode, "swift", skipped, system)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            validate_swift_row(row)
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    _merge_json(
        path.parent / SWIFT_ARGS,
        {"env": swift_env(mode), "audio_mode": mode, "dataset": [str(path)], "max_length": cutoff_len},
    )
    return path


def _count(rows_text: list[str], tag: str) -> int:
    return sum(t.count(tag) for t in rows_text)


def validate_llamafactory_row(row: dict[str, Any], interleaved: bool = False) -> None:
    """The rules LLaMA-Factory's qwen2_omni sharegpt loader enforces (raises AffectbenchError); with
    `interleaved` (use_audio_in_video) every video comes with its audio."""
    msgs = row.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise AffectbenchError("llamafactory row: `messages` must be a non-empty list")
    body = [m for m in msgs if m["role"] != "system"]
    roles = [m["role"] for m in body]
    if len(roles) % 2 or any(r != ("user" if i % 2 == 0 else "assistant") for i, r in enumerate(roles)):
        raise AffectbenchError(f"llamafactory row: turns must alternate user/assistant, got {roles}")
    texts = [m["content"] for m in msgs]
    n_video, n_audio = _count(texts, "<video>"), _count(texts, "<audio>")
    videos, audios = row.get("videos", []), row.get("audios", [])
    if n_video != len(videos) or n_audio != len(audios):
        raise AffectbenchError(
            f"llamafactory row: {n_video} <video> / {n_audio} <audio> tags, "
            f"but {len(videos)} videos / {len(audios)} audios"
        )
    for t in texts:
        if interleaved and t.count("<video>") and t.count("<video><audio>") != t.count("<video>"):
            raise AffectbenchError(
                "llamafactory row: with use_audio_in_video every <video> must be followed by its <audio>"
            )
    if any("<video>" in m["content"] or "<audio>" in m["content"] for m in msgs if m["role"] == "assistant"):
        raise AffectbenchError("llamafactory row: media tags belong in user turns")


def validate_swift_row(row: dict[str, Any]) -> None:
    """ms-swift's rules: messages with role/content; tag counts match the media lists."""
    msgs = row.get("messages")
    if not isinstance(msgs, list) or not msgs or any(set(m) != {"role", "content"} for m in msgs):
        raise AffectbenchError("swift row: `messages` must be a list of {role, content}")
    if msgs[-1]["role"] != "assistant":
        raise AffectbenchError("swift row: the last message must be the assistant's answer")
    texts = [m["content"] for m in msgs]
    for tag, key in (("<video>", "videos"), ("<audio>", "audios")):
        if _count(texts, tag) != len(row.get(key, [])):
            raise AffectbenchError(f"swift row: {tag} tags do not match the {key} list")
