"""Errors a user is meant to read: each says what is wrong, where, and how to fix it."""

from __future__ import annotations


class AffectbenchError(Exception):
    """Base of every error that affectbench raises on purpose."""


class ConfigError(AffectbenchError):
    """An experiment file or setting is malformed."""


class DatasetError(AffectbenchError):
    """A dataset's files are missing, unreadable or not in the expected layout."""


class MediaError(AffectbenchError):
    """A media file cannot be decoded."""


class EmptyMedia(MediaError):
    """A media file opens (or is zero bytes) but holds no sample of the streams asked for: a header-only
    WAV, an audio part pointing at a file without an audio track. Backends treat it as a missing modality."""


class ModelError(AffectbenchError):
    """A backend failed: load error, server error, time-out."""


class StoreError(AffectbenchError):
    """The store refuses an operation (e.g. a run id reopened with another spec)."""


class MissingExtra(AffectbenchError):
    """An optional dependency is not installed."""

    def __init__(self, module: str, extra: str, what: str = "") -> None:
        self.module, self.extra = module, extra
        needs = f"{what} needs" if what else "this needs"
        super().__init__(
            f"{needs} the Python package {module!r}, which is not installed: pip install 'affectbench[{extra}]'"
        )


def require(module: str, extra: str, what: str = ""):
    """Import `module` or raise MissingExtra naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        if e.name and e.name.split(".")[0] != module.split(".")[0]:
            raise
        raise MissingExtra(module, extra, what) from e
