"""``rolebench-eval data check``: what a RoleBench copy holds and what is wrong with it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rolebench_eval.catalogue import splits
from rolebench_eval.data import RoleBenchDataError, is_degenerate, read_baseline, read_items

FILES = ("test", "train", "rolegpt_baseline")


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


@dataclass
class DataReport:
    root: Path
    files: list[FileStats] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def file_stats(split: str, file: str, path: Path) -> FileStats:
    """Counts of one file: rows, roles, references per item, degenerate references, types."""
    items = read_items(path)
    refs = Counter(len(item.references) for item in items)
    types = Counter(t for item in items for t in item.types)
    return FileStats(
        split=split, file=file, rows=len(items), roles=len({i.role for i in items}),
        refs_per_item=dict(sorted(refs.items())),
        degenerate_refs=sum(is_degenerate(r) for item in items for r in item.references),
        types=dict(sorted(types.items())),
    )


def _coverage(test: Path, baseline: Path) -> str:
    answers = read_baseline(baseline)
    items = read_items(test)
    covered = sum((i.role, i.question) in answers for i in items)
    return f"{covered}/{len(items)}"


def check_data(root: str | Path) -> DataReport:
    """Read every known file under ``root``; problems are collected, not raised."""
    report = DataReport(root=Path(root))
    for name, split in splits().items():
        for file in FILES:
            path = report.root / split.dir / f"{file}.jsonl"
            if not path.is_file():
                report.missing.append(f"{split.dir}/{file}.jsonl")
                continue
            try:
                stats = file_stats(name, file, path)
                if file == "test" and (baseline := path.with_name("rolegpt_baseline.jsonl")).is_file():
                    stats.baseline_coverage = _coverage(path, baseline)
                report.files.append(stats)
            except RoleBenchDataError as err:
                report.problems.append(str(err))
    for profiles in sorted({s.profiles for s in splits().values()}):
        if not (report.root / profiles / "desc.json").is_file():
            report.missing.append(f"{profiles}/desc.json (role prompts fall back to the role name alone)")
    return report


def format_report(report: DataReport) -> str:
    """A plain-text table of the report, then what is missing and what is wrong."""
    from tabulate import tabulate

    rows = [
        [f.split, f.file, f.rows, f.roles, " ".join(f"{k}:{v}" for k, v in f.refs_per_item.items()),
         f.degenerate_refs, " ".join(f"{k}:{v}" for k, v in f.types.items()), f.baseline_coverage]
        for f in report.files
    ]
    headers = ["split", "file", "rows", "roles", "refs/item", "degenerate refs", "types", "RoleGPT answers"]
    out = [f"RoleBench data at {report.root}", tabulate(rows, headers=headers)]
    if report.missing:
        out.append("\nNot present:\n" + "\n".join(f"  - {m}" for m in report.missing))
    out.append("\nProblems:\n" + "\n".join(f"  - {p}" for p in report.problems) if report.problems else "\nNo problems found.")
    return "\n".join(out)
