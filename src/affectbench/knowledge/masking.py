"""Leak policies (`RunSpec.knowledge_policy`) applied to knowledge texts.

`keep`; `mask` (`mask_labels`) blanks, in every source and for every label — not only the gold one,
so the mask itself reveals nothing — each label name, each synonym the answer template declares for
it, on sentiment tasks each polarity word and synonym and the number of each lexicon polarity score,
and on a regression dataset every number asserted as the score on its scale ("Sentiment: 2.5");
`drop` leaves out a source's text for the samples where it states the gold answer (it reads the gold
label: an ablation, not a deployable setting).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from ..core.types import DatasetInfo
from .leaks import HOWNET_SCORE, LEXICON_SCORE, is_sentiment, label_vocabulary, leaks, plain_text, scale_scores

MASK = "[…]"


@functools.lru_cache(maxsize=64)
def _mask_pattern(words: tuple[str, ...]) -> re.Pattern[str] | None:
    if not words:
        return None
    alts = "|".join(
        r"[\s_\-]+".join(re.escape(part) for part in w.split(" "))
        for w in sorted(set(words), key=lambda w: (-len(w), w))
    )
    return re.compile(rf"(?<![0-9a-z])(?:{alts})(?![0-9a-z])", re.I)


def mask_labels(text: str, info: DatasetInfo, mask: str = MASK) -> str:
    """Blank every answer word of the dataset in `text`, label-blind (see the module doc for the guarantee).

    Blanks each label name and declared synonym (any case; `_`, `-` or spaces between words) of every
    label, and on sentiment tasks each polarity word, polarity synonym and the number of each lexicon
    polarity score ("vader +0.62" -> "vader […]"); on a regression dataset every number asserted as
    the score on the dataset's scale ("Sentiment: 2.5" -> "Sentiment: […]", `leaks.scale_scores`).
    Paraphrases outside those lists are kept.
    """
    out = text
    spans = scale_scores(out, info)
    if spans:  # offsets index the NFKC text with ASCII minus signs
        out = plain_text(out)
        for start, end, _ in reversed(spans):
            out = out[:start] + mask + out[end:]
    if is_sentiment(info):  # scores first: their names ("pos", "neg") are polarity synonyms too
        out = LEXICON_SCORE.sub(lambda m: m.group(0)[: m.start("x") - m.start()] + mask, out)
        out = HOWNET_SCORE.sub(lambda m: "HowNet " + mask, out)
    pattern = _mask_pattern(label_vocabulary(info))
    return pattern.sub(mask, out) if pattern else out


def apply_leak_policy(
    texts: Mapping[str, str], targets: Mapping[str, Any], info: DatasetInfo, policy: str = "keep"
) -> dict[str, str]:
    """Knowledge texts of one source under a leak policy: keep, mask answer words everywhere, or drop
    the texts that state the gold answer (raises ValueError for another policy)."""
    if policy == "keep":
        return dict(texts)
    if policy == "mask":
        return {sid: mask_labels(t, info) for sid, t in texts.items()}
    if policy == "drop":
        return {sid: t for sid, t in texts.items() if not leaks(t, targets.get(sid), info)}
    raise ValueError(f"knowledge leak policy must be keep, mask or drop; got {policy!r}")
