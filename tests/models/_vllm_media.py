"""What tests/models/test_vllm_cpu_media.py and its driver in `.venv-vllm` share (no pytest: the driver
imports it in the vLLM venv)."""

from __future__ import annotations

import hashlib

import numpy as np

from affectbench.core.types import Message, Part

MEDIA = {"fps": 2}
GEN = {"max_new_tokens": 2}
# family → the modalities its run sends (its processor's sub-processors: omni, video-text, audio-text)
FAMILY_MODALITIES = {"qwen2_5_omni": "TAV", "qwen2_5_vl": "TV", "qwen2_audio": "TA"}


def conversations(paths: dict[str, str]) -> list[list[Message]]:
    """One sample per modality: video + its audio track, an image, an audio file, a clip without audio."""

    def user(*parts):
        return [Message(role="user", parts=[*parts, Part.of_text("How does the speaker feel?")])]

    clip, mute = paths["clip"], paths["mute"]
    return [
        user(Part(kind="video", path=clip), Part(kind="audio", path=clip)),
        user(Part(kind="image", path=paths["image"])),
        user(Part(kind="audio", path=paths["wav"])),
        user(Part(kind="video", path=mute), Part(kind="audio", path=mute)),
    ]


def sent_digest(requests) -> list[str]:
    """A hash of every array a request carries (frames, images, audio), in order."""
    out = []
    for req in requests:
        h = hashlib.sha256()
        for kind, items in sorted(req.get("multi_modal_data", {}).items()):
            for item in items if isinstance(items, list) else [items]:
                arr = item[0] if isinstance(item, tuple) else item  # (audio, rate) / (frames, metadata)
                h.update(kind.encode() + str(np.asarray(arr).shape).encode() + np.ascontiguousarray(arr).tobytes())
        out.append(h.hexdigest())
    return out
