"""The leaderboard as data: rows of cells, plus what was left out and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import LoadError
from .schema import Column
from .stats import PairedTest

MEASURED, REPORTED = "measured", "reported"


@dataclass
class Cell:
    """One value with its 95% bootstrap interval (None for reported values and plain aggregates)."""

    value: float | None
    lo: float | None = None
    hi: float | None = None
    n: int | None = None
    note: str | None = None


@dataclass(eq=False)
class Row:
    """One model: ``measured`` (from lm-eval runs) or ``reported`` (from the paper)."""

    name: str
    source: str
    cells: dict[str, Cell] = field(default_factory=dict)
    comparable: bool = True
    reasons: list[str] = field(default_factory=list)
    rank: int | None = None
    vs_above: PairedTest | None = None
    vs_baseline: PairedTest | None = None
    files: list[str] = field(default_factory=list)
    run_names: set[str] = field(default_factory=set)  # the runs behind a measured row (outputs.run_name)
    citation: str | None = None

    def value(self, key: str) -> float | None:
        """The value of column ``key`` (None when the row has none)."""
        cell = self.cells.get(key)
        return None if cell is None else cell.value


@dataclass
class Leaderboard:
    """Everything the renderers need; built by :func:`rolebench_eval.leaderboard.build_leaderboard`.

    Attributes:
        columns: Static schema columns followed by one pair per (task, judge).
        rows: Ranked measured rows, then unranked measured rows, then reported rows.
        excluded: Measured rows left out as not comparable (shown with ``--include-incomparable``).
        errors: Inputs that could not be read; their rows are missing.
        notes: Other things a reader should know (duplicates, unmatched judge summaries).
        score_tasks: The tasks the Score averages over.
        breakdowns: kind ("language", "type", "role") -> row name -> group -> Cell.
        roles_by_task: For the heatmap: role -> tasks it was scored on.
        baseline: The row every measured row is tested against, when chosen.
        settings: Seed, number of resamples, test used, package version, time.
        citation: The paper, for the reported rows.
        outputs: What :func:`write_outputs` wrote, by kind.
    """

    columns: list[Column]
    rows: list[Row]
    excluded: list[Row] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    score_tasks: list[str] = field(default_factory=list)
    breakdowns: dict[str, dict[str, dict[str, Cell]]] = field(default_factory=dict)
    roles_by_task: dict[str, list[str]] = field(default_factory=dict)
    baseline: str | None = None
    settings: dict = field(default_factory=dict)
    citation: str = ""
    outputs: dict[str, Path] = field(default_factory=dict)

    def row(self, name: str) -> Row:
        """The shown row called ``name`` (measured first)."""
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)
