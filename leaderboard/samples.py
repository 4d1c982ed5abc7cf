"""Per-item scores of samples files, in the leaderboard's shared role codes.

Reading is the core's (``rolebench_eval.outputs.read_scores``: only ids, roles, item
types and the metric fields are decoded); this module maps each file's roles into one
:class:`DocIndex` so that the runs of a task line up role by role.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rolebench_eval.outputs import TYPE_BITS, read_scores

__all__ = ["TYPE_BITS", "DocIndex", "ItemScores", "read_samples"]


@dataclass
class DocIndex:
    """Role codes shared by every run of a board."""

    roles: list[str] = field(default_factory=list)
    role_codes: dict[str, int] = field(default_factory=dict)

    def code(self, role: str) -> int:
        """The code of ``role``, given a new one on first sight."""
        if role not in self.role_codes:
            self.role_codes[role] = len(self.roles)
            self.roles.append(role)
        return self.role_codes[role]


@dataclass
class ItemScores:
    """One run's per-item scores on one task, sorted by ``doc_id``.

    Attributes:
        doc_ids: int64 document ids.
        metrics: metric name -> float64 values; NaN where the item was not scored.
        roles: int32 role codes into :attr:`DocIndex.roles`.
        types: uint8 bit masks of :data:`TYPE_BITS`.
    """

    doc_ids: np.ndarray
    metrics: dict[str, np.ndarray]
    roles: np.ndarray
    types: np.ndarray


def read_samples(path: str | Path, metrics: tuple[str, ...], index: DocIndex) -> ItemScores:
    """Read one samples file; its roles are added to ``index``.

    Raises:
        InputError: naming the file, line and field of the first problem.
    """
    scores = read_scores(path, metrics)
    codes = np.array([index.code(r) for r in scores.role_names] or [0], dtype=np.int32)
    return ItemScores(scores.doc_ids, scores.metrics, codes[scores.roles] if scores.roles.size else scores.roles,
                      scores.types)
