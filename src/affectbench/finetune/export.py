"""Export training pairs for teams that train elsewhere: LLaMA-Factory and ms-swift.

LLaMA-Factory (template `qwen2_omni`): sharegpt rows `{"messages": [...], "videos": [...],
"audios": [...]}`; the user text carries one `<video>` placeholder per video, each followed by
`<audio>` (the video's audio track, extracted to a 16 kHz mono WAV), plus `<audio>` for audio
parts without a video; as many audios as `<audio>` tags and videos as `<video>` tags. A
`dataset_info.json` entry names the file, the sharegpt formatting and the column/tag mapping.

ms-swift: JSONL rows `{"messages": [...], "videos": [...], "audios": [...]}` with `<video>` /
`<audio>` tags in the text, the same media lists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.errors import AffectbenchError
from ..core.types import Message
from .pairs import Pair

TEMPLATE = "qwen2_omni"


def _wav_for(path: str, span: tuple[float, float] | None, cache_dir: Path) -> str:
    from ..media import extract_wav

    return str(extract_wav(path, span, 16000, cache_dir))


def _user_content(messages: list[Message], cache_dir: Path, extract_audio: bool) -> tuple[list[dict], list, list]:
    """Chat messages with media tags in the text, and the ordered video / audio file lists."""
    out, videos, audios = [], [], []
    for m in messages:
        tags, text = [], []
        parts = list(m.parts)
        video_paths = {(p.path, p.span) for p in parts if p.kind == "video"}
        for p in parts:
            if p.kind == "text":
                text.append(p.text or "")
            elif p.kind == "video":
                tags.append("<video><audio>")
                videos.append(p.path)
                audios.append(_wav_for(p.path, p.span, cache_dir) if extract_audio else p.path)
            elif p.kind == "audio":
                if (p.path, p.span) in video_paths:
                    continue  # the video's own audio track: already paired with its <video>
                tags.append("<audio>")
                audios.append(_wav_for(p.path, p.span, cache_dir) if extract_audio and _is_video(p.path) else p.path)
            elif p.kind == "image":
                raise AffectbenchError("export: image parts are not supported by the qwen2_omni sharegpt export")
        out.append({"role": m.role, "content": "".join(tags) + "".join(text)})
    return out, videos, audios


def _is_video(path: str | None) -> bool:
    return bool(path) and Path(path).suffix.lower() in {".mp4", ".avi", ".mkv", ".mov", ".webm"}


def pair_row(pair: Pair, cache_dir: Path, extract_audio: bool = True) -> dict[str, Any]:
    """One sharegpt row: messages (user with tags, assistant answer), videos, audios."""
    messages, videos, audios = _user_content(pair.conversation, cache_dir, extract_audio)
    messages.append({"role": "assistant", "content": pair.answer})
    row: dict[str, Any] = {"messages": messages}
    if videos:
        row["videos"] = videos
    if audios:
        row["audios"] = audios
    return row


def export_llamafactory(
    pairs: list[Pair], out_dir: str | Path, name: str = "affectbench", extract_audio: bool = True
) -> Path:
    """Write `<name>.json` (sharegpt rows) and merge a `dataset_info.json` entry; returns the data file."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = [pair_row(p, out / "audio", extract_audio) for p in pairs]
    for r in rows:
        validate_llamafactory_row(r)
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
    return data


def export_swift(pairs: list[Pair], path: str | Path, extract_audio: bool = True) -> Path:
    """Write ms-swift JSONL (messages with <video>/<audio> tags, videos, audios)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for p in pairs:
            row = pair_row(p, path.parent / "audio", extract_audio)
            validate_swift_row(row)
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def _count(rows_text: list[str], tag: str) -> int:
    return sum(t.count(tag) for t in rows_text)


def validate_llamafactory_row(row: dict[str, Any]) -> None:
    """The rules LLaMA-Factory's qwen2_omni sharegpt loader enforces (raises AffectbenchError)."""
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
        if t.count("<video>") and t.count("<video><audio>") != t.count("<video>"):
            raise AffectbenchError("llamafactory row: every <video> must be followed by its <audio> for qwen2_omni")
    if len(audios) < len(videos):
        raise AffectbenchError("llamafactory row: qwen2_omni needs as many audios as videos")
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
