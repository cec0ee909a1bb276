"""Time affectbench.metrics against naive baselines computed in the same process.

Run: .venv/bin/python bench/bench_metrics.py
Prints the time to score 100k predictions (mosi, sims, classification suites) and the time
per 1000 bootstrap resamples on 5k samples, each next to a naive baseline (per-sample Python
loops, sklearn, or a per-replicate loop) and the speed ratio. Each baseline's numbers are checked
against ours (scores equal to 4 decimals; bootstrap endpoints within Monte Carlo error).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from affectbench.core.types import DatasetInfo, TaskType
from affectbench.metrics import (
    bootstrap_ci,
    classification_scores,
    mosi_scores,
    paired_permutation,
    primary_metric,
    sims_scores,
)

N_SCORE = 100_000
N_BOOT_SAMPLES = 5_000
N_RESAMPLES = 1_000
N_PERMUTATIONS = 9_999
N_PERMUTATIONS_NAIVE = 499
LABELS = ("neutral", "joy", "sadness", "anger", "surprise", "fear", "disgust")


def timed(fn: Callable[[], object], repeat: int = 3) -> tuple[float, Any]:
    """(best wall seconds of `repeat` calls, the last call's result)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def agree(ours: dict, naive: dict, tol: float = 1e-4) -> None:
    """The naive baseline computes the same numbers (ours are rounded to 4 decimals): a fast wrong
    answer would make any speed-up meaningless."""
    for key in naive.keys() & ours.keys():
        a, b = float(ours[key]), float(naive[key])
        assert (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol, (key, a, b)


def _wf1(t: list, p: list, labels: list) -> float:
    """Weighted F1 with plain loops (the naive baseline)."""
    total, acc = 0, 0.0
    for lab in labels:
        tp = sum(1 for a, b in zip(t, p, strict=True) if a == lab and b == lab)
        sup = sum(1 for a in t if a == lab)
        pred = sum(1 for b in p if b == lab)
        acc += sup * (2 * tp / (sup + pred) if sup + pred else 0.0)
        total += sup
    return acc / total if total else math.nan


def naive_mosi(p: list, t: list) -> dict:
    n = len(t)
    r7 = sum(round(min(max(a, -3), 3)) == round(min(max(b, -3), 3)) for a, b in zip(p, t, strict=True)) / n
    r5 = sum(round(min(max(a, -2), 2)) == round(min(max(b, -2), 2)) for a, b in zip(p, t, strict=True)) / n
    ht, hp = [b >= 0 for b in t], [a >= 0 for a in p]
    nt = [b > 0 for b in t if b != 0]
    npred = [a > 0 for a, b in zip(p, t, strict=True) if b != 0]
    mp, mt = sum(p) / n, sum(t) / n
    cov = sum((a - mp) * (b - mt) for a, b in zip(p, t, strict=True))
    corr = cov / math.sqrt(sum((a - mp) ** 2 for a in p) * sum((b - mt) ** 2 for b in t))
    return {
        "Has0_acc_2": sum(a == b for a, b in zip(hp, ht, strict=True)) / n,
        "Has0_F1_score": _wf1(ht, hp, [False, True]),
        "Non0_acc_2": sum(a == b for a, b in zip(npred, nt, strict=True)) / len(nt),
        "Non0_F1_score": _wf1(nt, npred, [False, True]),
        "Mult_acc_5": r5,
        "Mult_acc_7": r7,
        "MAE_answered": sum(abs(a - b) for a, b in zip(p, t, strict=True)) / n,
        "Corr_answered": corr,
    }


def _sims_cls(x: float, edges: list[float]) -> int:
    for i in range(len(edges) - 1):
        if edges[i] < x <= edges[i + 1]:
            return i
    return -1


def naive_sims(p: list, t: list) -> dict:
    p = [min(max(a, -1.0), 1.0) for a in p]
    t = [min(max(b, -1.0), 1.0) for b in t]
    n = len(t)
    out = {}
    for k, edges in ((2, [-1.01, 0, 1.01]), (3, [-1.01, -0.1, 0.1, 1.01]), (5, [-1.01, -0.7, -0.1, 0.1, 0.7, 1.01])):
        cp, ct = [_sims_cls(a, edges) for a in p], [_sims_cls(b, edges) for b in t]
        out[f"Mult_acc_{k}"] = sum(a == b for a, b in zip(cp, ct, strict=True)) / n
        if k == 2:
            out["F1_score"] = _wf1(ct, cp, [0, 1])
    out["MAE_answered"] = sum(abs(a - b) for a, b in zip(p, t, strict=True)) / n
    return out


def naive_classification(p: list, t: list, labels: list) -> dict:
    n = len(t)
    out = {"acc": sum(a == b for a, b in zip(p, t, strict=True)) / n, "f1_weighted": _wf1(t, p, labels)}
    for lab in labels:
        sup = sum(1 for b in t if b == lab)
        out[f"recall/{lab}"] = sum(1 for a, b in zip(p, t, strict=True) if a == b == lab) / sup if sup else math.nan
    return out


def line(what: str, ours: float, naive: float, naive_name: str) -> None:
    print(f"{what:<44} ours {ours * 1e3:9.2f} ms | {naive_name:<28} {naive * 1e3:10.1f} ms | x{naive / ours:,.0f}")


def main() -> None:
    rng = np.random.default_rng(0)
    t = np.round(rng.uniform(-3, 3, N_SCORE), 1)
    p = np.round(t + rng.normal(0, 1, N_SCORE), 2)
    pl, tl = p.tolist(), t.tolist()
    print(f"scoring {N_SCORE:,} predictions (inputs as Python lists); naive results checked equal")
    ours_t, ours = timed(lambda: mosi_scores(pl, tl))
    naive_t, naive = timed(lambda: naive_mosi(pl, tl), 1)
    agree(ours, naive)
    line("mosi suite (mosi_scores)", ours_t, naive_t, "per-sample Python loops")
    ts = np.round(rng.integers(-5, 6, N_SCORE) * 0.2, 1)
    ps = np.clip(np.round(ts + rng.normal(0, 0.4, N_SCORE), 1), -1, 1)
    psl, tsl = ps.tolist(), ts.tolist()
    ours_t, ours = timed(lambda: sims_scores(psl, tsl))
    naive_t, naive = timed(lambda: naive_sims(psl, tsl), 1)
    agree(ours, naive)
    line("sims suite (sims_scores)", ours_t, naive_t, "per-sample Python loops")
    tc = rng.choice(LABELS, N_SCORE).tolist()
    pc = [x if rng.random() < 0.6 else (None if rng.random() < 0.1 else str(rng.choice(LABELS))) for x in tc]
    ours_c, ours = timed(lambda: classification_scores(pc, tc, LABELS))
    naive_t, naive = timed(lambda: naive_classification(pc, tc, list(LABELS)), 1)
    agree(ours, naive)
    line("classification suite (7 labels, 4% None)", ours_c, naive_t, "per-sample Python loops")
    try:
        from sklearn.metrics import f1_score, recall_score

        pcs = [x if x is not None else "__unparsed__" for x in pc]

        def sk() -> dict:
            recall = recall_score(tc, pcs, labels=list(LABELS), average=None)
            return {
                "f1_weighted": f1_score(tc, pcs, labels=list(LABELS), average="weighted"),
                "f1_macro": f1_score(tc, pcs, labels=list(LABELS), average="macro"),
                **{f"recall/{lab}": r for lab, r in zip(LABELS, recall, strict=True)},
            }

        sk_t, naive = timed(sk, 1)
        agree(ours, naive)
        line("classification suite vs sklearn", ours_c, sk_t, "sklearn f1 x2 + recall")
    except ImportError:
        print("(sklearn not installed: skipping the sklearn baseline)")

    print(f"\nbootstrap: {N_RESAMPLES} resamples on {N_BOOT_SAMPLES:,} samples")
    mosi = DatasetInfo("mosi", TaskType.REGRESSION, score_range=(-3.0, 3.0), metric_suite="mosi")
    meld = DatasetInfo("meld", TaskType.CLASSIFICATION, labels=LABELS, metric_suite="classification")
    groups = (np.arange(N_BOOT_SAMPLES) // 8).tolist()
    bp, bt = pl[:N_BOOT_SAMPLES], tl[:N_BOOT_SAMPLES]
    bpc, btc = pc[:N_BOOT_SAMPLES], tc[:N_BOOT_SAMPLES]
    for info, bpred, btarg in ((mosi, bp, bt), (meld, bpc, btc)):
        name, fn = primary_metric(info)
        for g in (None, groups):
            label = f"{info.metric_suite} {name}{' grouped' if g else ''}"
            ours_t, a = timed(partial(bootstrap_ci, fn, bpred, btarg, groups=g, n=N_RESAMPLES), 2)
            naive_t, reps = timed(partial(naive_bootstrap, info, bpred, btarg, g), 1)
            line(label, ours_t, naive_t, "loop of 1000 metric calls")
            lo, hi = np.percentile(reps, [2.5, 97.5])
            print(f"{'':<44} CI {a.point:.4f} [{a.lo:.4f}, {a.hi:.4f}]; naive loop's [{lo:.4f}, {hi:.4f}]")
            # other draws, same distribution: the endpoints agree to Monte Carlo error (~1e-3 here)
            assert abs(lo - a.lo) < 0.01 and abs(hi - a.hi) < 0.01, (label, a, lo, hi)

    print(f"\npaired permutation: {N_PERMUTATIONS:,} resamples on {N_BOOT_SAMPLES:,} samples")
    rng2 = np.random.default_rng(1)
    for info, bpred, btarg in ((mosi, bp, bt), (meld, bpc, btc)):
        name, fn = primary_metric(info)
        other = list(bpred)
        for i in rng2.choice(len(other), len(other) // 10, replace=False):  # b differs from a on 10 %
            other[i] = btarg[i]
        ours_t, res = timed(partial(paired_permutation, fn, bpred, other, btarg, n_resamples=N_PERMUTATIONS), 2)
        naive_t, p_naive = timed(partial(naive_permutation, fn, bpred, other, btarg), 1)
        line(f"{info.metric_suite} {name} permutation", ours_t, naive_t, f"loop of {N_PERMUTATIONS_NAIVE} swaps")
        print(f"{'':<44} p {res.p_value:.4f}; naive loop's {p_naive:.4f} (fewer draws)")


def naive_bootstrap(info: DatasetInfo, preds: list, targets: list, groups: list | None) -> list[float]:
    """Per-replicate loop: draw indices, slice the lists, call a plain metric."""
    rng = np.random.default_rng(0)
    n = len(targets)
    members: dict = {}
    for i, g in enumerate(groups or range(n)):
        members.setdefault(g, []).append(i)
    keys = list(members)
    out = []
    for _ in range(N_RESAMPLES):
        idx = [i for k in rng.integers(0, len(keys), len(keys)) for i in members[keys[k]]]
        p, t = [preds[i] for i in idx], [targets[i] for i in idx]
        if info.metric_suite == "mosi":
            keep = [(a, b) for a, b in zip(p, t, strict=True) if b != 0]
            out.append(sum((a > 0) == (b > 0) for a, b in keep) / len(keep))
        else:
            out.append(_wf1(t, p, list(info.labels)))
    return out


def naive_permutation(fn: Callable[..., float], a: list, b: list, t: list) -> float:
    """Per-draw loop: swap each pair's answers with probability 1/2, call the metric twice."""
    rng = np.random.default_rng(0)
    observed = abs(fn(b, t) - fn(a, t))
    hits = 0
    for _ in range(N_PERMUTATIONS_NAIVE):
        swap = rng.random(len(t)) < 0.5
        pa = [y if s else x for x, y, s in zip(a, b, swap, strict=True)]
        pb = [x if s else y for x, y, s in zip(a, b, swap, strict=True)]
        hits += abs(fn(pb, t) - fn(pa, t)) >= observed - 1e-12
    return (1 + hits) / (1 + N_PERMUTATIONS_NAIVE)


if __name__ == "__main__":
    main()
