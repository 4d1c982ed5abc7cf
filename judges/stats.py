"""Statistics over judged items. Pure functions on lists of numbers; None when undefined.

* win rate = (wins + 0.5 ties) / n over the parsed items (item scores 1 / 0.5 / 0);
* a percentile bootstrap 95% confidence interval of a mean (numpy, vectorised);
* Kendall's tau-b between the judge's item scores and ROUGE-L, as judge-vs-ROUGE agreement.
"""

from __future__ import annotations

from typing import Sequence

BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 20231004  # fixed: the same items give the same interval


def mean(values: Sequence[float]) -> float | None:
    """The mean, or None for no values.

    Example:
        >>> mean([1, 0.5, 0, 1])
        0.625
        >>> mean([]) is None
        True
    """
    return sum(values) / len(values) if values else None


def win_rate(scores: Sequence[float]) -> float | None:
    """(wins + 0.5 ties) / n for item scores 1 (win), 0.5 (tie), 0 (loss).

    Example:
        >>> win_rate([1, 1, 1, 0.5, 0.5, 0])
        0.6666666666666666
    """
    if any(s not in (0, 0.5, 1) for s in scores):
        raise ValueError("win-rate scores must be 0, 0.5 or 1")
    return mean(scores)


def bootstrap_ci(values: Sequence[float], n_boot: int = BOOTSTRAP_SAMPLES, level: float = 0.95,
                 seed: int = BOOTSTRAP_SEED) -> list[float] | None:
    """Percentile bootstrap interval of the mean: resample items with replacement.

    Resamples are drawn in chunks so memory stays small for large n.

    Example:
        >>> bootstrap_ci([1.0, 1.0, 1.0])
        [1.0, 1.0]
        >>> lo, hi = bootstrap_ci([0, 1] * 50); round(lo, 1), round(hi, 1)
        (0.4, 0.6)
    """
    import numpy as np

    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return None
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, 2_000_000 // data.size))
    means = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        idx = rng.integers(0, data.size, size=(size, data.size), dtype=np.int32)
        means[start:start + size] = data[idx].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return [float(lo), float(hi)]


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b (ties handled); None with fewer than 2 items or a constant side.

    Example:
        >>> kendall_tau([1, 2, 3], [10, 20, 30])
        1.0
        >>> kendall_tau([1, 1, 1], [1, 2, 3]) is None
        True
    """
    import math

    from scipy.stats import kendalltau

    if len(x) != len(y):
        raise ValueError("kendall_tau needs two sequences of the same length")
    if len(x) < 2 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    tau = kendalltau(x, y).statistic
    return None if math.isnan(tau) else float(tau)


def rate(flags: Sequence[bool]) -> float | None:
    """The share of True values, or None for none.

    Example:
        >>> rate([True, False, False, False])
        0.25
    """
    return sum(1 for f in flags if f) / len(flags) if flags else None
