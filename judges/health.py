"""Judge health, the pure part: what identification asks, and the statistics of the three checks.

* **Identification.** Per role, up to ``items_per_role`` of its answers (a reference or RoleGPT
  answer), chosen by a hash of (choice_seed, role, question, occurrence); each is shown with k
  names: the speaker and k-1 other roles of the set, drawn and ordered by a generator seeded
  with the same hash, so a rerun (and the cache) sees the same prompts. Accuracy per role over
  its parsed replies, with the percentile bootstrap of :func:`..stats.bootstrap_ci`; a role at
  or below chance (1/k) is flagged.
* **Agreement with people.** Every pair of answers a label orders (a preference is one pair, a
  ranking of n answers n(n-1)/2 pairs) gives the person's A / B / tie and the judge's; accuracy is
  the share of equal labels, Cohen's kappa is sklearn's, and their intervals resample labels
  (the pairs of one ranking stay together).
* **Measured biases.** The position-flip rate and the length-controlled win rate as the judge
  summaries of that judge model report them; nothing is recomputed.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from pathlib import Path
from typing import Sequence

from rolebench_eval.data import Item as Row
from rolebench_eval.data import is_degenerate
from rolebench_eval.outputs import health as schema
from rolebench_eval.outputs.judge import JudgeSummary

from . import stats

AGREEMENT_METHOD = ("each pair of answers a label orders is one comparison (A better, B better, tie); "
                    "accuracy = share of parsed pairs where the judge's label is the person's; kappa = "
                    "sklearn.metrics.cohen_kappa_score over those pairs; 95% intervals: percentile bootstrap "
                    "over labels (10,000 resamples, a ranking's pairs resampled together)")


def _seed(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def answers_by_role(rows: Sequence[Row], which: str, baseline: dict | None) -> dict[str, list[tuple]]:
    """role -> [(row index, question, occurrence, answer)] of the rows that have an answer of kind
    ``which`` ("reference": the first reference that is not empty; "rolegpt": the RoleGPT answer)."""
    seen: Counter = Counter()
    found: dict[str, list[tuple]] = {}
    for index, row in enumerate(rows):
        occurrence = seen[row.role, row.question]
        seen[row.role, row.question] += 1
        if which == "reference":
            answer = next((r for r in row.references if not is_degenerate(r)), None)
        else:
            answer = (baseline or {}).get((row.role, row.question))
        if answer is not None and not is_degenerate(answer):
            found.setdefault(row.role, []).append((index, row.question, occurrence, answer))
    return found


def choose(found: dict[str, list[tuple]], per_role: int, seed: int) -> dict[str, list[tuple]]:
    """Up to ``per_role`` answers of each role, the same ones on every run with the same seed."""
    return {role: sorted(entries, key=lambda e: _seed(seed, role, e[1], e[2]))[:per_role]
            for role, entries in found.items()}


def names_shown(role: str, question: str, occurrence: int, roles: Sequence[str], k: int, seed: int) -> tuple:
    """The k names listed with one answer: ``role`` and k-1 other ``roles``, in a seeded order.

    Example:
        >>> names = names_shown("A", "q", 0, ["A", "B", "C", "D"], 3, seed=0)
        >>> "A" in names and len(set(names)) == 3 and names == names_shown("A", "q", 0, ["D", "C", "B", "A"], 3, 0)
        True
    """
    rng = random.Random(_seed(seed, role, question, occurrence))
    names = [role, *rng.sample(sorted(r for r in set(roles) if r != role), k - 1)]
    rng.shuffle(names)
    return tuple(names)


def role_accuracy(role: str, outcomes: Sequence[float | None], k: int) -> schema.RoleAccuracy:
    """One role's accuracy from its outcomes (1 named, 0 not, None a parse failure)."""
    parsed = [o for o in outcomes if o is not None]
    accuracy = stats.mean(parsed)
    return schema.RoleAccuracy(role=role, n=len(outcomes), n_parsed=len(parsed), n_correct=int(sum(parsed)),
                               accuracy=accuracy, ci95=stats.bootstrap_ci(parsed),
                               at_or_below_chance=accuracy is not None and accuracy <= 1 / k)


def identification(outcomes: dict[str, list[float | None]], pending: int, settings: dict) -> schema.Identification:
    """(a) from each role's outcomes; ``settings`` are the Identification fields that say what was asked."""
    k = settings["k"]
    roles = [role_accuracy(role, values, k) for role, values in sorted(outcomes.items())]
    parsed = [o for values in outcomes.values() for o in values if o is not None]
    n_total = sum(len(v) for v in outcomes.values()) + pending
    return schema.Identification(
        **settings, chance=1 / k, n_roles=len(roles), n_total=n_total, n_parsed=len(parsed),
        n_parse_failures=n_total - pending - len(parsed), n_pending=pending, accuracy=stats.mean(parsed),
        ci95=stats.bootstrap_ci(parsed), roles=roles,
        roles_at_or_below_chance=[r.role for r in roles if r.at_or_below_chance])


def order_pairs(ranks: Sequence[float]) -> list[str]:
    """A / B / tie for each pair i < j of answers ranked ``ranks`` (lower is better).

    Example:
        >>> order_pairs([2, 1, 2])
        ['B', 'tie', 'A']
    """
    return ["A" if ranks[i] < ranks[j] else "B" if ranks[i] > ranks[j] else "tie"
            for i in range(len(ranks)) for j in range(i + 1, len(ranks))]


def human_pairs(label: schema.HumanLabel) -> list[str]:
    """The person's A / B / tie for every pair of the label's answers (i < j)."""
    return [label.preference] if label.preference is not None else order_pairs(label.ranking)


def agreement_numbers(labels: Sequence[list[tuple[str, str | None]]]) -> dict:
    """Accuracy and Cohen's kappa with intervals from, per label, its pairs' (person, judge) labels
    (judge None: not parsed, left out)."""
    import numpy as np
    from sklearn.metrics import cohen_kappa_score

    pairs = [(h, j) for label in labels for h, j in label if j is not None]
    if not pairs:
        return {"accuracy": None, "accuracy_ci95": None, "kappa": None, "kappa_ci95": None}
    human, judged = zip(*pairs)
    kappa = float(cohen_kappa_score(human, judged)) if len(set(human) | set(judged)) > 1 else None
    kappa = None if kappa is not None and np.isnan(kappa) else kappa
    per = np.array([[sum(h == j for h, j in label if j is not None), sum(j is not None for _, j in label)]
                    + [sum(h == c for h, j in label if j is not None) for c in schema.PREFERENCES]
                    + [sum(j == c for _, j in label) for c in schema.PREFERENCES] for label in labels], float)
    accuracy_b, kappa_b = _resampled(per)
    return {"accuracy": sum(h == j for h, j in pairs) / len(pairs), "accuracy_ci95": _interval(accuracy_b),
            "kappa": kappa, "kappa_ci95": _interval(kappa_b) if kappa is not None else None}


def _resampled(per):
    """Resampled accuracy and kappa: rows of ``per`` are labels (agreeing pairs, parsed pairs, the
    person's and the judge's counts per class); a resample is a count of each label."""
    import numpy as np

    rng = np.random.default_rng(stats.BOOTSTRAP_SEED)
    n, n_boot = len(per), stats.BOOTSTRAP_SAMPLES
    chunk = max(1, min(n_boot, 2_000_000 // n))
    sums = np.empty((n_boot, per.shape[1]))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(size, n)) + n * np.arange(size)[:, None]
        counts = np.bincount(idx.ravel(), minlength=size * n).reshape(size, n)
        sums[start:start + size] = counts @ per
    with np.errstate(invalid="ignore", divide="ignore"):
        parsed = sums[:, 1]
        accuracy = sums[:, 0] / parsed
        chance = (sums[:, 2:5] * sums[:, 5:8]).sum(axis=1) / parsed ** 2
        kappa = (accuracy - chance) / (1 - chance)
    return accuracy, kappa


def _interval(values) -> list[float] | None:
    import numpy as np

    finite = values[np.isfinite(values)]
    if finite.size < 0.95 * values.size:
        return None
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return [float(min(max(lo, -1.0), 1.0)), float(min(max(hi, -1.0), 1.0))]


def biases(summaries: Sequence[tuple[Path, JudgeSummary]]) -> schema.Biases:
    """(c) the flip rates and length terms the judge summaries report, and the flip rate over all
    their items (each summary's rate times its parsed items, summed, over the items)."""
    measured = [schema.MeasuredBias(
        summary=str(path), model=s.model, task=s.task, judge=s.judge, protocol=s.protocol, n_parsed=s.n_parsed,
        position_flip_rate=s.position_flip_rate, win_rate=s.win_rate, lc_win_rate=s.lc_win_rate,
        length_coefficient=(s.lc_coefficients or {}).get("length") if isinstance(s.lc_coefficients, dict) else None)
        for path, s in summaries]
    flips = [(m.position_flip_rate, m.n_parsed) for m in measured if m.position_flip_rate is not None]
    n = sum(count for _, count in flips)
    return schema.Biases(position_flip_rate=sum(r * c for r, c in flips) / n if n else None, n_flip_items=n,
                         summaries=measured)
