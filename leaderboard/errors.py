"""The one error type of the leaderboard's input side: it names the file, line and field."""

from __future__ import annotations

from pathlib import Path


class LoadError(ValueError):
    """An input file is missing, corrupt, truncated or inconsistent.

    Attributes:
        path: The file at fault.
        line: 1-based line number inside it, when the fault is on one line.
        field: The JSON field at fault, when there is one.
        reason: What is wrong, in words.
    """

    def __init__(self, path: str | Path, line: int | None, field: str | None, reason: str):
        self.path, self.line, self.field, self.reason = str(path), line, field, reason
        where = self.path + (f", line {line}" if line is not None else "")
        where += f", field {field!r}" if field else ""
        super().__init__(f"{where}: {reason}")
