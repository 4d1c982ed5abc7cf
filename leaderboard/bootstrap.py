"""The one bootstrap of the leaderboard: resampling, intervals, paired tests, breakdowns.

Resampling convention (fixed seed): the items of a task are resampled within each role,
since every run answers the same fixed set of roles. For role ``r`` with ``n_r`` items,
resample ``b`` draws row ``b`` of ``generator(seed, f"{task}#{r}").integers(0, n_r,
size=(n_boot, n_r))``. A resample is stored as counts (how often each item was drawn), so
the resampled sums of many runs are one matrix product: :func:`task_bootstrap` puts a
task's items in role order once, into a float32 matrix ``K`` whose rows are the runs'
scores for each metric (0 where not scored), the masks of runs that skipped items, the
per-item differences of pairs whose runs skipped different items (for the others, the
difference of the two runs' sums is exact), and the paper-metric rows restricted to each
item type; ``K[:, block] @ C`` gives the resampled sums of every row at once, and the
per-role means (the role breakdown) come from the same counts. Sums accumulate in
float64; the float32 product keeps means to about 1e-7.

:func:`stratified_means_loop` computes the same bootstrap with a plain loop; it is the
reference the tests and the benchmark compare against.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rolebench_eval.fileio import write_atomic
from rolebench_eval.outputs import TYPE_BITS

from .model import PairedTest

DEFAULT_SEED = 20231001
DEFAULT_N_BOOT = 1000


@dataclass(frozen=True)
class Resampling:
    """How to bootstrap: resamples and seed; ``cache`` keeps the resample counts between builds.

    The counts depend only on the seed, the task, its roles' sizes and the number of
    resamples, not on any run, and drawing them is most of a rebuild's bootstrap; kept as
    uint8 (a count above 255 is not kept), they take about one byte per item and resample.
    """

    n_boot: int = DEFAULT_N_BOOT
    seed: int = DEFAULT_SEED
    cache: Path | None = None


def generator(seed: int, key: str) -> np.random.Generator:
    """The generator of one resampling unit (a task's role, or a named test)."""
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])


COUNT_CELLS = 1 << 16  # counts per bincount call (see resample_counts)


def resample_counts(n: int, n_boot: int, rng: np.random.Generator, out: np.ndarray | None = None) -> np.ndarray:
    """n x n_boot float32 counts: column b counts the items drawn by ``integers(0, n, size=n)``.

    Returned as the transpose of an n_boot x n array (``out``, when given, is filled): each resample's
    counts are counted into one contiguous row, where counting into a column scattered them over the
    whole matrix (twice the time); matrix products take the transposed view as it is, without a copy.
    The rows are counted a few at a time, so that bincount's int64 counts stay in the CPU's cache on
    their way into ``out`` (a fifth less time than one count of the whole matrix).
    """
    idx = rng.integers(0, n, size=(n_boot, n))  # the same stream as n_boot draws of size n
    out = np.empty((n_boot, n), dtype=np.float32) if out is None else out
    rows = max(1, COUNT_CELLS // max(n, 1))
    offsets = np.arange(0, rows * n, n)[:, None]
    for at in range(0, n_boot, rows):
        block = idx[at:at + rows]
        block += offsets[:len(block)]
        out[at:at + len(block)] = np.bincount(block.ravel(), minlength=block.size).reshape(block.shape)
    return out.T


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
    """Percentile interval of each row of ``boot`` (NaN resamples ignored).

    ``np.percentile``'s default (linear) method, written out on one sort of the rows: a board
    asks for thousands of intervals, and the general function's overhead per call dominates.
    Float32 rows are sorted as they are and only the four values used are widened (the same
    values as sorting them widened: widening is exact and keeps the order; a quarter of the time).
    """
    tail = 100 * (1 - level) / 2
    boot = np.atleast_2d(boot)
    if boot.dtype != np.float32:
        boot = boot.astype(np.float64, copy=False)
    if np.isnan(boot).any():
        lo, hi = np.nanpercentile(boot.astype(np.float64), [tail, 100 - tail], axis=1)
        return lo, hi
    ordered = np.sort(boot, axis=1)
    n = ordered.shape[1]
    ends = []
    for q in (tail, 100 - tail):
        pos = q / 100 * (n - 1)
        below = int(np.floor(pos))
        above, t = min(below + 1, n - 1), pos - below
        a, b = ordered[:, below].astype(np.float64), ordered[:, above].astype(np.float64)
        ends.append(a + (b - a) * t if t < 0.5 else b - (b - a) * (1 - t))  # numpy's _lerp
    return ends[0], ends[1]


def paired_test(other: str, diff: float, boot: np.ndarray, n_items: int) -> PairedTest:
    """Summarise the bootstrap distribution ``boot`` (1-D) of a paired difference."""
    boot = boot[~np.isnan(boot)]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    p = min(1.0, 2 * min(float(np.mean(boot <= 0)), float(np.mean(boot >= 0))))
    return PairedTest(other, float(diff), float(lo), float(hi), p, int(n_items), bool(lo <= 0 <= hi))


BLOCK_ITEMS = 8192  # items per count block: 32 MB of float32 counts at 1,000 resamples


@dataclass
class TaskBoot:
    """Bootstrap distributions (n_boot columns) of one task.

    Attributes:
        means: metric -> runs x n_boot resampled means.
        roles: role name -> runs x n_boot means of the paper metric within the role (float32).
        types: type name -> runs x n_boot means of the paper metric within the item type.
        pairs: pairs x n_boot resampled mean differences on the items both runs scored.
    """

    means: dict[str, np.ndarray]
    roles: dict[str, np.ndarray]
    types: dict[str, np.ndarray]
    pairs: np.ndarray


@dataclass
class TaskItems:
    """One task's items: per-metric scores of the runs (runs x items), roles and item types."""

    values: dict[str, np.ndarray]
    role_codes: np.ndarray
    role_names: list[str]
    type_bits: np.ndarray


def role_groups(role_codes: np.ndarray, role_names: list[str]) -> dict[str, np.ndarray]:
    """role name -> positions of its items, sorted by name (items without a role under "")."""
    codes = np.unique(role_codes)
    groups = {role_names[c] if c >= 0 else "": np.flatnonzero(role_codes == c) for c in codes}
    return dict(sorted(groups.items()))


def _divide(num: np.ndarray, den) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


@dataclass
class _Layout:
    """Where things are in K: [scores | masks | pair rows | type rows | type indicators]."""

    runs: int
    metrics: list[str]
    paper: int
    partial: np.ndarray  # score rows with unscored items
    p_partial: np.ndarray  # runs (of the paper metric) with unscored items
    explicit: list[int]  # pairs with their own difference rows
    types: list[str]  # item types with rows


def _rows(values: list[np.ndarray], order: np.ndarray, layout: _Layout, pairs, type_bits) -> np.ndarray:
    runs, paper = layout.runs, layout.paper
    scores = np.empty((runs * len(values), order.size), dtype=np.float32)
    in_order = bool(np.array_equal(order, np.arange(order.size)))
    for i, block in enumerate(values):
        scores[i * runs:(i + 1) * runs] = block if in_order else block[:, order]
    missing = np.isnan(scores)
    layout.partial = np.flatnonzero(missing.any(axis=1))
    if layout.partial.size:
        np.copyto(scores, 0.0, where=missing)
    p_missing = missing[paper * runs:(paper + 1) * runs]
    layout.p_partial = np.flatnonzero(p_missing.any(axis=1))
    layout.explicit = [k for k, (a, b) in enumerate(pairs) if p_missing[a].any() or p_missing[b].any()]
    extra = [~missing[layout.partial]]
    for k in layout.explicit:
        a, b = (values[paper][r, order].astype(np.float64) for r in pairs[k])
        common = ~(np.isnan(a) | np.isnan(b))
        extra += [np.where(common, a - b, 0.0)[None], common[None]]
    paper_rows = np.concatenate([scores[paper * runs:(paper + 1) * runs], ~p_missing[layout.p_partial]])
    for name in layout.types:
        keep = (type_bits[order] & TYPE_BITS[name]) != 0
        extra += [paper_rows * keep, keep[None]]
    return np.concatenate([scores, *extra]).astype(np.float32, copy=False)


def _role_blocks(groups: dict[str, np.ndarray]):
    """Consecutive roles in blocks of about BLOCK_ITEMS items: [(start, stop, [(role, size)])]."""
    blocks, current, start, size = [], [], 0, 0
    for role, pos in groups.items():
        current.append((role, pos.size))
        size += pos.size
        if size >= BLOCK_ITEMS:
            blocks.append((start, start + size, current))
            current, start, size = [], start + size, 0
    if current:
        blocks.append((start, start + size, current))
    return blocks


def _means(num: np.ndarray, n: int, layout: _Layout, pairs) -> tuple[dict, np.ndarray, dict]:
    runs, n_rows = layout.runs, layout.runs * len(layout.metrics)
    den = np.full((n_rows, num.shape[1]), float(n))
    den[layout.partial] = num[n_rows:n_rows + layout.partial.size]
    means = _divide(num[:n_rows], den)
    per_metric = {m: means[i * runs:(i + 1) * runs] for i, m in enumerate(layout.metrics)}
    p_sum = num[layout.paper * runs:(layout.paper + 1) * runs]
    pair_means = np.empty((len(pairs), num.shape[1]))
    for k, (a, b) in enumerate(pairs):
        pair_means[k] = _divide(p_sum[a] - p_sum[b], n)
    at = n_rows + layout.partial.size
    for k in layout.explicit:
        pair_means[k] = _divide(num[at], num[at + 1])
        at += 2
    types, width = {}, runs + layout.p_partial.size
    for name in layout.types:
        t_num, t_den = num[at:at + runs], np.broadcast_to(num[at + width], (runs, num.shape[1])).copy()
        t_den[layout.p_partial] = num[at + runs:at + width]
        types[name] = _divide(t_num, t_den)
        at += width + 1
    return per_metric, pair_means, types


def _role_means(scores: np.ndarray, masks: np.ndarray, partial: np.ndarray,
                counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resampled sums and means of one role's items (``partial`` runs divide by their drawn scored items)."""
    total = scores @ counts
    den = np.full(total.shape, float(counts.shape[0]), dtype=np.float32)
    if partial.size:
        den[partial] = masks @ counts
    return total, _divide(total, den)


def block_counts(task: str, resampling: Resampling, members: list[tuple[str, int]]) -> np.ndarray:
    """The counts of a block of roles (items x resamples), from ``resampling.cache`` when kept there."""
    seed, n_boot, cache = resampling.seed, resampling.n_boot, resampling.cache
    path = None
    if cache is not None:
        key = "\0".join(["1", str(seed), str(n_boot), task, *(f"{role}\0{size}" for role, size in members)])
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        path = cache / "counts" / digest[:2] / f"{digest}.npy"
        try:
            kept = np.load(path, allow_pickle=False)
            if kept.shape == (sum(size for _, size in members), n_boot):
                return kept.astype(np.float32)
        except (OSError, ValueError, EOFError):
            pass  # not kept yet, or unreadable: draw them
    drawn, at = np.empty((n_boot, sum(size for _, size in members)), dtype=np.float32), 0
    for role, size in members:
        resample_counts(size, n_boot, generator(seed, f"{task}#{role}"), drawn[:, at:at + size])
        at += size
    counts = drawn.T
    if path is not None and counts.max(initial=0) <= 255:
        buffer = io.BytesIO()
        np.save(buffer, counts.astype(np.uint8))
        try:
            write_atomic(path, buffer.getvalue())
        except OSError:
            pass  # a cache that cannot be written only costs time
    return counts


def _block(task: str, resampling: Resampling, members: list[tuple[str, int]], cols: slice, k: np.ndarray,
           rest: np.ndarray | None, p_k: np.ndarray, mask_rows: np.ndarray, layout: _Layout, breakdowns: bool):
    """The resampled sums of one block of roles: ``(sums of every row of K, {role: means})``."""
    n_boot = resampling.n_boot
    counts = block_counts(task, resampling, members)
    num = np.zeros((k.shape[0], n_boot))
    roles = {}
    if breakdowns:  # the paper rows' sums come from the per-role products; the rest from one product
        num[rest] = k[rest, cols] @ counts
        at = cols.start
        for role, size in members:
            rows = slice(at - cols.start, at - cols.start + size)
            total, roles[role] = _role_means(p_k[:, at:at + size], mask_rows[:, at:at + size], layout.p_partial,
                                             counts[rows])
            num[layout.paper * layout.runs:(layout.paper + 1) * layout.runs] += total
            at += size
    else:
        num += k[:, cols] @ counts
    return num, roles


def task_bootstrap(task: str, items: TaskItems, paper_metric: str, pairs: list[tuple[int, int]],
                   resampling: Resampling, breakdowns: bool = True, pool=None) -> TaskBoot:
    """Bootstrap one task (see the module docstring).

    Args:
        task: Task name (part of the generator keys).
        items: The runs' scores (NaN = not scored; the same runs for every metric), roles and types.
        paper_metric: The metric whose role, type and pair distributions are wanted.
        pairs: (run, run) index pairs to test.
        resampling: Resamples and seed.
        breakdowns: Also compute the per-role and per-type distributions.
        pool: An executor that computes the blocks of roles in parallel (numpy releases the GIL);
            the blocks' sums are added in block order either way, so the result is the same.
    """
    values, type_bits, n_boot = items.values, items.type_bits, resampling.n_boot
    groups = role_groups(items.role_codes, items.role_names)
    order = np.concatenate(list(groups.values()))
    present = [n for n, bit in TYPE_BITS.items() if breakdowns and (type_bits & bit).any()]
    none = np.empty(0, dtype=np.int64)
    layout = _Layout(values[paper_metric].shape[0], list(values), list(values).index(paper_metric), none, none, [],
                     sorted(present))
    k = _rows([values[m] for m in layout.metrics], order, layout, pairs, type_bits)
    runs = layout.runs
    p_rows = slice(layout.paper * runs, (layout.paper + 1) * runs)
    mask_rows = k[runs * len(layout.metrics) + np.searchsorted(layout.partial, layout.paper * runs + layout.p_partial)]
    rest = np.concatenate([np.arange(p_rows.start), np.arange(p_rows.stop, k.shape[0])]) if breakdowns else None
    jobs = [(task, resampling, members, slice(start, stop), k, rest, k[p_rows], mask_rows, layout, breakdowns)
            for start, stop, members in _role_blocks(groups)]
    done = pool.map(lambda job: _block(*job), jobs) if pool is not None else (_block(*job) for job in jobs)
    num, roles = np.zeros((k.shape[0], n_boot)), {}
    for block_num, block_roles in done:
        num += block_num
        roles.update(block_roles)
    per_metric, pair_means, types = _means(num, order.size, layout, pairs)
    return TaskBoot(per_metric, roles, types, pair_means)
