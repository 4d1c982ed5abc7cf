"""What a split's rows hold that a user should know, without changing how they are scored.

The paper kept every released row, so the tasks do too (a duplicate question is scored
twice, an item whose references are all placeholders scores 0 for every model). These
counts say how often that happens; they go into the results metadata of every run
(``configs.<task>.metadata.data_audit``) and into ``rolebench-eval data check``.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

from rolebench_eval.data import KNOWN_TYPES, Item, is_degenerate


def duplicates(items: Iterable[Item]) -> tuple[int, str | None]:
    """Rows whose (role, question) an earlier row already had, and the lines of the first such pair."""
    first: dict[tuple[str, str], int] = {}
    extra, example = 0, None
    for item in items:
        key = (item.role, item.question)
        if key in first:
            extra += 1
            example = example or f"lines {first[key]} and {item.line}"
        else:
            first[key] = item.line
    return extra, example


def audit(items: list[Item], descriptions: dict[str, str], baseline: dict | None = None,
          raw_covered: int | None = None) -> dict:
    """Counts of one split file (see the module docstring); pure."""
    roles = {i.role for i in items}
    dup, example = duplicates(items)
    report = {
        "rows": len(items),
        "roles": len(roles),
        "duplicate_rows": dup,
        "duplicate_example": example,
        "empty_references": sum(is_degenerate(r) for i in items for r in i.references),
        "items_without_usable_reference": sum(all(is_degenerate(r) for r in i.references) for i in items),
        "unknown_types": dict(sorted(Counter(t for i in items for t in i.types if t not in KNOWN_TYPES).items())),
        "roles_without_description": len(roles - set(descriptions)),
        "descriptions_read": bool(descriptions),
    }
    if baseline is not None:
        covered = sum((i.role, i.question) in baseline for i in items)
        report["rolegpt_answers"] = f"{covered} of {len(items)} items"
    if raw_covered is not None:
        report["raw_answers"] = f"{raw_covered} of {len(items)} items"
    return report


def remarks(report: dict) -> list[str]:
    """The counts worth a line in ``data check`` (what is kept, and scored, as released)."""
    out = []
    if report["duplicate_rows"]:
        out.append(f"{report['duplicate_rows']} duplicate (role, question) rows, e.g. {report['duplicate_example']}")
    if report["items_without_usable_reference"]:
        out.append(f"{report['items_without_usable_reference']} items whose references are all empty or "
                   "placeholders (every model scores 0 on them)")
    if report["unknown_types"]:
        out.append("unknown item types (after trimming and lower-casing): "
                   + ", ".join(f"{t!r} x{n}" for t, n in report["unknown_types"].items()))
    if report["roles_without_description"] and report.get("descriptions_read"):  # else: the file is missing
        out.append(f"{report['roles_without_description']} of {report['roles']} roles have no description "
                   "(their role prompt has the name only)")
    return out
