"""Bootstrap building blocks: the resampling convention, intervals, paired tests.

Resampling convention (fixed seed): the items of a task are resampled within each role,
since every run answers the same fixed set of roles. For role ``r`` with ``n_r`` items,
resample ``b`` draws row ``b`` of ``generator(seed, f"{task}#{r}").integers(0, n_r,
size=(n_boot, n_r))``. A resample is stored as counts (how often each item was drawn),
so the resampled sums of many runs are one matrix product (see ``engine``).
:func:`stratified_means_loop` computes the same bootstrap with a plain loop; it is the
reference the tests and the benchmark compare against.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

DEFAULT_SEED = 20231001
DEFAULT_N_BOOT = 1000


@dataclass(frozen=True)
class Resampling:
    """How to bootstrap: resamples and seed."""

    n_boot: int = DEFAULT_N_BOOT
    seed: int = DEFAULT_SEED


def generator(seed: int, key: str) -> np.random.Generator:
    """The generator of one resampling unit (a task's role, or a named test)."""
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])


def resample_counts(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """n x n_boot float32 counts: column b counts the items drawn by ``integers(0, n, size=n)``."""
    idx = rng.integers(0, n, size=(n_boot, n))  # the same stream as n_boot draws of size n
    idx *= n_boot
    idx += np.arange(n_boot)[:, None]
    return np.bincount(idx.ravel(), minlength=n * n_boot).reshape(n, n_boot).astype(np.float32)


def stratified_means_loop(values: np.ndarray, groups: dict[str, np.ndarray], n_boot: int, seed: int,
                          task: str) -> np.ndarray:
    """Reference bootstrap of one run's mean on one task: a loop over resamples.

    Args:
        values: The run's per-item scores (NaN = not scored), in item order.
        groups: role -> positions of its items.
        n_boot: Resamples.
        seed: Seed.
        task: Task name (part of each role's generator key).

    Returns:
        The n_boot resampled means (NaN where no scored item was drawn).
    """
    draws = {r: generator(seed, f"{task}#{r}").integers(0, len(pos), size=(n_boot, len(pos)))
             for r, pos in groups.items()}
    out = np.empty(n_boot)
    for b in range(n_boot):
        drawn = np.concatenate([values[pos[draws[r][b]]] for r, pos in groups.items()])
        drawn = drawn[~np.isnan(drawn)]
        out[b] = drawn.mean() if drawn.size else np.nan
    return out


def percentile_ci(boot: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of each row of ``boot`` (NaN resamples ignored)."""
    tail = 100 * (1 - level) / 2
    boot = np.atleast_2d(boot)
    pct = np.nanpercentile if np.isnan(boot).any() else np.percentile
    lo, hi = pct(boot, [tail, 100 - tail], axis=1)
    return lo, hi


@dataclass(frozen=True)
class PairedTest:
    """A paired bootstrap test of a row minus ``other`` on the items both scored.

    Attributes:
        other: The row compared against.
        diff: Observed difference of the Scores on the paired items.
        lo: Lower end of the 95% bootstrap interval of the difference.
        hi: Upper end.
        p: Two-sided bootstrap p-value, ``2 * min(P(d* <= 0), P(d* >= 0))``, capped at 1.
        n_items: Paired items, over all tasks.
        tie: True when the interval contains 0: the two rows are not told apart.
    """

    other: str
    diff: float
    lo: float
    hi: float
    p: float
    n_items: int
    tie: bool


def paired_test(other: str, diff: float, boot: np.ndarray, n_items: int) -> PairedTest:
    """Summarise the bootstrap distribution ``boot`` (1-D) of a paired difference."""
    boot = boot[~np.isnan(boot)]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    p = min(1.0, 2 * min(float(np.mean(boot <= 0)), float(np.mean(boot >= 0))))
    return PairedTest(other, float(diff), float(lo), float(hi), p, int(n_items), bool(lo <= 0 <= hi))
