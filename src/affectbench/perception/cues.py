"""The output of perception: per-expert results and one short, stable, human-readable line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ORDER = ("face", "prosody", "asr", "lexicon")


@dataclass
class Cues:
    """Per-expert outputs for one clip. `notes` say why an expert gave nothing (missing package, no face...)."""

    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # compute time per expert (0 when cached)
    words_source: str | None = None  # what the lexicon read: "transcript" (the dataset's text) or "asr"
    given_transcript: str | None = None  # the dataset's transcript, written where ASR's would be (`said:`)

    def modalities(self) -> tuple[str, ...]:
        """The modalities these cues were computed from: V (face), A (prosody, speech), T (the transcript)."""
        got = set()
        if "face" in self.results:
            got.add("V")
        if {"asr", "prosody"} & set(self.results) or ("lexicon" in self.results and self.words_source == "asr"):
            got.add("A")
        if "lexicon" in self.results and self.words_source == "transcript":
            got.add("T")
        return tuple(m for m in ("T", "A", "V") if m in got)

    @property
    def transcript(self) -> str | None:
        asr = self.results.get("asr")
        return asr.get("text") if asr else None

    def text(self, transcript: bool = True) -> str:
        """e.g. "face: happy 0.71 over 8 frames; voice: pitch high and variable, loud, 3.1 syll/s; words: ...".

        `transcript=False` leaves out the recognised speech (for prompts that already carry it); with
        `given_transcript` set (the dataset gave the words, so no ASR ran) they appear as `said: "..."`.
        """
        from . import asr, face, lexicon, prosody

        writers = {"face": face.describe, "prosody": prosody.describe, "asr": asr.describe, "lexicon": lexicon.describe}
        pieces = []
        for name in ORDER:
            if name == "asr" and transcript and name not in self.results and self.given_transcript:
                pieces.append(f'said: "{self.given_transcript}"')  # the dataset's words, not speech recognition
            elif name in self.results and (transcript or name != "asr"):
                pieces.append(writers[name](self.results[name]))
        pieces = [p for p in pieces if p]
        return "; ".join(pieces) if pieces else "no cues"

    def to_dict(self) -> dict[str, Any]:
        return {
            "results": self.results,
            "notes": self.notes,
            "text": self.text(),
            "modalities": list(self.modalities()),
        }
