"""Published split sizes, so a copy whose splits differ from the paper's is named, not silently scored.

Sizes (train / valid / test) as the datasets' papers and the MMSA toolkit give them (REFERENCE.md §1):
CMU-MOSI 1,284 / 229 / 686 and CMU-MOSEI 16,326 / 1,871 / 4,659 (MMSA's label.csv; Zadeh et al. 2016,
2018); CH-SIMS 1,368 / 456 / 457 (Yu et al. 2020, ACL); CH-SIMS v2 (supervised) 2,721 / 647 / 1,034 —
4,402 supervised clips (Liu et al. 2022, ICMI, "Make Acoustic and Visual Cues Matter"); MELD
9,989 / 1,109 / 2,610 utterances (Poria et al. 2019, ACL). A copy that differs is still read: the
warning names both counts so a reader knows the number is not on the published split.
"""

from __future__ import annotations

from collections.abc import Mapping

PUBLISHED_SPLITS: dict[str, dict[str, int]] = {
    "mosi": {"train": 1284, "valid": 229, "test": 686},
    "mosei": {"train": 16326, "valid": 1871, "test": 4659},
    "sims": {"train": 1368, "valid": 456, "test": 457},
    "simsv2": {"train": 2721, "valid": 647, "test": 1034},
    "meld": {"train": 9989, "valid": 1109, "test": 2610},
    "meld-sentiment": {"train": 9989, "valid": 1109, "test": 2610},
}


def split_size_warnings(corpus: str, counts: Mapping[str, int]) -> list[str]:
    """One sentence per split of `corpus` whose sample count differs from the published one, naming both."""
    published = PUBLISHED_SPLITS.get(corpus)
    if not published:
        return []
    out = []
    for split, n in counts.items():
        want = published.get(split)
        if want is not None and n != want:
            out.append(
                f"split {split} has {n:,} samples; the published {corpus} split has {want:,} "
                f"({n - want:+,}): numbers on this copy are not on the published split"
            )
    return out
