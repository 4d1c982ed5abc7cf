"""Statistics over judged items. Pure functions on lists of numbers; None when undefined.

* win rate = (wins + 0.5 ties) / n over the parsed items (item scores 1 / 0.5 / 0);
* a percentile bootstrap 95% confidence interval of a mean (numpy, vectorised);
* Kendall's tau-b between the judge's item scores and ROUGE-L, as judge-vs-ROUGE agreement;
* a length-controlled win rate (:func:`length_controlled_win_rate`, see :data:`LC_METHOD`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 20231004  # fixed: the same items give the same interval
LC_BOOTSTRAP_SAMPLES = 1_000  # each resample is a refit
LC_PENALTY = 0.01  # L2 weight on both coefficients (sklearn's C = 100, AlpacaEval's C)
# The fit stops when the Newton decrement squared (g' H^-1 g: twice the loss still to gain, to second
# order) falls below this; the intercept is then within sqrt(LC_NEWTON_TOL * (H^-1)_00) of its optimum.
LC_NEWTON_TOL = 1e-10
LC_METHOD = ("logistic regression of the candidate's outcome against the baseline (win 1, tie 0.5 as a half "
             "outcome, loss 0) on an intercept and tanh(d / sd(d)), d = candidate minus baseline answer length in "
             "characters, sd = its standard deviation over the parsed items; L2 penalty 0.01 on both coefficients "
             "(sklearn C = 100); lc_win_rate = the fitted probability at d = 0 (AlpacaEval 2's length control "
             "without its instruction-difficulty term); lc_ci95 = percentile bootstrap over items "
             "(1,000 resamples, each refitted)")


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


@dataclass
class LengthControlled:
    """A length-controlled win rate: ``value`` and ``ci95`` are None with a ``note`` saying why."""

    value: float | None = None
    ci95: list[float] | None = None
    note: str | None = None
    coefficients: dict | None = None


def _lc_fit(delta, outcome, weights, penalty: float = LC_PENALTY, max_iter: int = 100):
    """Penalised logistic fits of ``outcome`` on tanh(delta / sd), one per row of ``weights``.

    Hand-written damped Newton (two coefficients, Armijo backtracking) so that every
    bootstrap resample is fitted at once with numpy instead of one optimizer call each.
    Rows are case weights (resample counts). Returns (intercept, slope, sd) arrays; NaN
    where sd is 0 or the fit did not converge.
    """
    import numpy as np

    total = weights.sum(axis=1)
    centre = (weights * delta).sum(axis=1) / total
    sd = np.sqrt((weights * (delta - centre[:, None]) ** 2).sum(axis=1) / np.maximum(total - 1, 1))
    ok = sd > 0
    x = np.tanh(delta / np.where(ok, sd, 1.0)[:, None])
    beta, done = np.zeros((len(weights), 2)), ~ok

    def loss(b, rows):
        eta = b[:, :1] + b[:, 1:] * x[rows]
        return ((weights[rows] * (np.logaddexp(0, eta) - outcome * eta)).sum(axis=1)
                + penalty / 2 * (b ** 2).sum(axis=1))

    for _ in range(max_iter):
        rows = np.flatnonzero(~done)
        if rows.size == 0:
            break
        b, xr, w = beta[rows], x[rows], weights[rows]
        p = 1 / (1 + np.exp(-(b[:, :1] + b[:, 1:] * xr)))
        r, s = w * (p - outcome), w * p * (1 - p)
        g = np.stack([r.sum(axis=1), (r * xr).sum(axis=1)], axis=1) + penalty * b
        h00, h01, h11 = s.sum(axis=1) + penalty, (s * xr).sum(axis=1), (s * xr * xr).sum(axis=1) + penalty
        det = h00 * h11 - h01 ** 2
        step = np.stack([h11 * g[:, 0] - h01 * g[:, 1], h00 * g[:, 1] - h01 * g[:, 0]], axis=1) / det[:, None]
        decrement = (g * step).sum(axis=1)  # Newton decrement squared: how far the loss is from its minimum
        finished = decrement < LC_NEWTON_TOL
        done[rows[finished]] = True
        rows, b, step, decrement = rows[~finished], b[~finished], step[~finished], decrement[~finished]
        t, current = np.ones(len(rows)), loss(b, rows)
        for _ in range(50):
            worse = loss(b - t[:, None] * step, rows) > current - 0.25 * t * decrement
            if not worse.any():
                break
            t = np.where(worse, t / 2, t)
        beta[rows] = b - t[:, None] * step
    failed = ~done | ~ok
    beta[failed] = np.nan
    return beta[:, 0], beta[:, 1], np.where(ok, sd, np.nan)


def length_controlled_win_rate(length_deltas: Sequence[float], scores: Sequence[float],
                               n_boot: int = LC_BOOTSTRAP_SAMPLES, level: float = 0.95,
                               seed: int = BOOTSTRAP_SEED) -> LengthControlled:
    """The win rate a judge would give at equal answer lengths (:data:`LC_METHOD`).

    Args:
        length_deltas: per parsed item, candidate minus baseline answer length (characters).
        scores: per parsed item, 1 (win), 0.5 (tie) or 0 (loss).

    Example:
        >>> lc = length_controlled_win_rate([5, -5, 10, -10], [1, 0, 1, 0])  # longer always wins
        >>> round(lc.value, 2), win_rate([1, 0, 1, 0])
        (0.5, 0.5)
        >>> length_controlled_win_rate([3, 3, 3], [1, 1, 0]).note
        'every item has the same length difference, so length cannot be separated from quality'
    """
    import numpy as np

    if len(length_deltas) != len(scores):
        raise ValueError("length_controlled_win_rate needs one length difference per score")
    if len(scores) < 2:
        return LengthControlled(note="fewer than 2 parsed items")
    delta, outcome = np.asarray(length_deltas, dtype=float), np.asarray(scores, dtype=float)
    if np.all(delta == delta[0]):
        return LengthControlled(note="every item has the same length difference, so length cannot be "
                                     "separated from quality")
    theta, phi, sd = _lc_fit(delta, outcome, np.ones((1, delta.size)))
    if np.isnan(theta[0]):
        return LengthControlled(note="the logistic fit did not converge")
    value = float(1 / (1 + np.exp(-theta[0])))
    coefficients = {"intercept": float(theta[0]), "length": float(phi[0]), "length_sd_chars": float(sd[0])}
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, 1_000_000 // delta.size))
    fits = []
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, delta.size, size=(min(chunk, n_boot - start), delta.size))
        counts = np.zeros(idx.shape)
        np.add.at(counts, (np.arange(len(idx))[:, None], idx), 1.0)
        fits.append(_lc_fit(delta, outcome, counts)[0])
    thetas = np.concatenate(fits)
    finite = thetas[np.isfinite(thetas)]
    if finite.size < 0.95 * n_boot:
        return LengthControlled(value, None, f"{n_boot - finite.size} of {n_boot} bootstrap resamples could not "
                                             "be fitted (too few distinct length differences); no interval",
                                coefficients)
    tail = (1 - level) / 2 * 100
    lo, hi = 1 / (1 + np.exp(-np.percentile(finite, [tail, 100 - tail])))
    note = None if finite.size == n_boot else f"{n_boot - finite.size} of {n_boot} resamples unfittable, left out"
    return LengthControlled(value, [float(lo), float(hi)], note, coefficients)
