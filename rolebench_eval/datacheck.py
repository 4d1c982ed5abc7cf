"""``rolebench-eval data check``: what a RoleBench copy holds, and everything ``run`` would refuse.

It reads every split file through :func:`rolebench_eval.source.load_split`, the validator
the tasks and the fine-tuning use, so a copy that passes here loads there and a copy that
fails here fails there with the same message. Counts of what is kept as released
(duplicates, placeholder references, unknown item types, roles without a description)
are remarks, not problems: the paper scored those rows too.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rolebench_eval.audit import remarks
from rolebench_eval.catalogue import Split, custom_splits, splits
from rolebench_eval.errors import InputError
from rolebench_eval.source import CUSTOM_META, load_split

FILES = ("test", "train")


@dataclass
class FileStats:
    """Counts for one JSONL file of one split."""

    split: str
    file: str
    rows: int = 0
    roles: int = 0
    refs_per_item: dict[int, int] = field(default_factory=dict)
    degenerate_refs: int = 0
    types: dict[str, int] = field(default_factory=dict)
    baseline_coverage: str = ""
    raw_coverage: str = ""
    remarks: list[str] = field(default_factory=list)


@dataclass
class DataReport:
    root: Path
    files: list[FileStats] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _stats(name: str, file: str, root: Path) -> FileStats:
    data = load_split(name, root, file=file)
    items, audit = data.items, data.audit
    covered = "" if data.baseline is None else \
        f"{sum((i.role, i.question) in data.baseline for i in items)}/{len(items)}"
    raw = "" if data.raw is None else f"{sum(a is not None for a in data.raw)}/{len(items)}"
    return FileStats(
        split=name, file=file, rows=audit["rows"], roles=audit["roles"],
        refs_per_item=dict(sorted(Counter(len(i.references) for i in items).items())),
        degenerate_refs=audit["empty_references"],
        types=dict(sorted(Counter(t for i in items for t in i.types).items())),
        baseline_coverage=covered if file == "test" else "",
        raw_coverage=raw,
        remarks=remarks(audit),
    )


def _splits_of(root: Path) -> dict[str, Split]:
    """A generated folder (``rolebench_custom.json``) has the custom splits; a RoleBench copy the others."""
    return custom_splits() if (root / CUSTOM_META).is_file() else splits()


def check_data(root: str | Path) -> DataReport:
    """Read every known file under ``root``; problems are collected, not raised."""
    report = DataReport(root=Path(root))
    chosen = _splits_of(report.root)
    for name, split in chosen.items():
        for file in FILES:
            if not (report.root / split.dir / f"{file}.jsonl").is_file():
                report.missing.append(f"{split.dir}/{file}.jsonl")
                continue
            try:
                report.files.append(_stats(name, file, report.root))
            except InputError as err:
                report.problems.append(str(err))
        if split.raw and (report.root / split.dir / "test.jsonl").is_file() and not (report.root / split.raw).is_file():
            report.missing.append(f"{split.raw} (RAW is not measured without it)")
    for profiles in sorted({s.profiles for s in chosen.values()}):
        if not (report.root / profiles / "desc.json").is_file():
            report.missing.append(f"{profiles}/desc.json (role prompts fall back to the role name alone)")
    if not report.files and not report.problems:
        example = next(iter(chosen.values())).dir
        report.problems.append(f"{report.root}: no RoleBench split files in this folder (expected the layout "
                               f"of the Hub dataset, e.g. {example}/test.jsonl)")
    report.missing = sorted(set(report.missing), key=report.missing.index)
    return report


def format_report(report: DataReport) -> str:
    """A plain-text table of the report, then what is missing, the remarks and what is wrong."""
    from tabulate import tabulate

    rows = [
        [f.split, f.file, f.rows, f.roles, " ".join(f"{k}:{v}" for k, v in f.refs_per_item.items()),
         f.degenerate_refs, " ".join(f"{k}:{v}" for k, v in f.types.items()), f.baseline_coverage, f.raw_coverage]
        for f in report.files
    ]
    headers = ["split", "file", "rows", "roles", "refs/item", "empty refs", "types", "RoleGPT answers", "RAW answers"]
    out = [f"RoleBench data at {report.root}", tabulate(rows, headers=headers)]
    if report.missing:
        out.append("\nNot present:\n" + "\n".join(f"  - {m}" for m in report.missing))
    notes = [f"  - {f.split}/{f.file}: {r}" for f in report.files for r in f.remarks]
    if notes:
        out.append("\nKept as released (scored as the paper did):\n" + "\n".join(notes))
    out.append("\nProblems (run refuses these):\n" + "\n".join(f"  - {p}" for p in report.problems)
               if report.problems else "\nNo problems found.")
    return "\n".join(out)
