"""Where RoleBench comes from (a local copy or the Hub) and loading one split of it."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from rolebench_eval import hub
from rolebench_eval.audit import audit
from rolebench_eval.catalogue import Split, get_split, languages
from rolebench_eval.data import (
    ENV_VAR,
    HUB_REPO,
    HUB_REVISION,
    Item,
    RoleBenchDataError,
    normalise_question,
    read_baseline,
    read_descriptions,
    read_items,
    read_raw_answers,
)
from rolebench_eval.fileio import sha256_file
from rolebench_eval.outputs.generated import CUSTOM_META, read_folder_record

# The marker file of a folder written by `rolebench-eval generate`; its "lang" is the
# language of the folder's `lang: auto` splits (custom splits in rolebench_eval/splits.yaml).


@dataclass(frozen=True)
class DataSource:
    """A RoleBench root: a local folder in the dataset's layout, or the Hub dataset."""

    local_root: Path | None = None
    revision: str = HUB_REVISION

    @classmethod
    def resolve(cls, data_dir: str | os.PathLike | None = None, revision: str | None = None) -> DataSource:
        """``data_dir``, else ``$ROLEBENCH_DATA_DIR``, else the Hub at ``revision``."""
        chosen = data_dir or os.environ.get(ENV_VAR) or None
        if chosen is None:
            return cls(None, revision or HUB_REVISION)
        root = Path(chosen).expanduser().resolve()
        if not root.is_dir():
            origin = "data_dir" if data_dir else f"${ENV_VAR}"
            raise RoleBenchDataError(root, None, None, f"RoleBench data folder not found (from {origin})")
        return cls(root, revision or HUB_REVISION)

    def fetch(self, relpath: str) -> Path | None:
        """The local path of ``relpath`` inside the dataset, or None when it does not exist."""
        if self.local_root is not None:
            path = self.local_root / relpath
            return path if path.is_file() else None
        return hub.fetch(relpath, self.revision)

    def where(self, relpath: str) -> str:
        """``relpath`` as a user reads it: a local path, or ``repo@revision/relpath``."""
        return str(self.local_root / relpath) if self.local_root is not None else f"{HUB_REPO}@{self.revision}/{relpath}"

    def describe(self, fetched: Path) -> dict[str, str]:
        """Provenance for results files: where the data came from and which version."""
        if self.local_root is not None:
            return {"origin": "local", "data_dir": str(self.local_root)}
        parts = fetched.parts
        commit = parts[parts.index("snapshots") + 1] if "snapshots" in parts else self.revision
        return {"origin": "hub", "repo": HUB_REPO, "revision": self.revision, "commit": commit}


@dataclass
class SplitData:
    """Everything one task needs: items, RoleGPT answers, role descriptions, RAW answers, provenance."""

    split: Split
    items: list[Item]
    baseline: dict[tuple[str, str], str] | None  # None: no rolegpt_baseline.jsonl released
    descriptions: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)
    raw: list[str | None] | None = None  # general splits: each item's original answer (None: unmatched)
    raw_provenance: dict | None = None  # where RAW's answers came from, which field, coverage
    audit: dict = field(default_factory=dict)  # rolebench_eval.audit counts (kept rows, as released)


def _required(source: DataSource, relpath: str) -> Path:
    path = source.fetch(relpath)
    if path is None:
        raise RoleBenchDataError(source.where(relpath), None, None,
                                 "file not found; point ROLEBENCH_DATA_DIR or --metadata '{\"data_dir\": ...}' "
                                 "at a RoleBench copy that has it")
    return path


def _raw_answers(source: DataSource, split: Split, items: list[Item]) -> tuple[list | None, dict | None]:
    """Each general item's original answer, matched on whitespace-normalised question text."""
    if split.kind != "general" or not split.raw:
        return None, None
    path = source.fetch(split.raw)
    if path is None:
        return None, {"file": split.raw, "found": False}
    raw = read_raw_answers(path)
    answers = [raw.answers.get(normalise_question(i.question)) for i in items]
    covered = sum(a is not None for a in answers)
    return answers, {"file": split.raw, "found": True, "sha256": sha256_file(path), "fields": raw.fields,
                     "conflicts": raw.conflicts, "coverage": f"{covered} of {len(items)} items have a raw answer"}


def load_split(
    name: str,
    data_dir: str | os.PathLike | None = None,
    revision: str | None = None,
    file: str = "test",
) -> SplitData:
    """Load ``<split dir>/<file>.jsonl`` with its baseline, role descriptions and RAW answers.

    This is the one validator: ``run`` (through the tasks), ``finetune`` and ``data check``
    all read RoleBench through it, so they refuse exactly the same files.
    """
    split = get_split(name)
    source = DataSource.resolve(data_dir, revision)
    if split.lang == "auto":
        split = dataclasses.replace(split, lang=custom_lang(source, name))
    relpath = f"{split.dir}/{file}.jsonl"
    path = _required(source, relpath)
    items = read_items(path)
    if not items:
        raise RoleBenchDataError(source.where(relpath), None, None, "no rows: a split file needs at least one item")
    baseline_path = source.fetch(f"{split.dir}/rolegpt_baseline.jsonl")
    desc_path = source.fetch(f"{split.profiles}/desc.json")
    baseline = read_baseline(baseline_path) if baseline_path else None
    descriptions = read_descriptions(desc_path) if desc_path else {}
    raw, raw_provenance = _raw_answers(source, split, items) if file == "test" else (None, None)
    covered = None if raw is None else sum(a is not None for a in raw)
    return SplitData(
        split=split, items=items, baseline=baseline, descriptions=descriptions,
        provenance=source.describe(path) | {"file": relpath, "sha256": sha256_file(path)},
        raw=raw, raw_provenance=raw_provenance, audit=audit(items, descriptions, baseline, covered),
    )


def custom_lang(source: DataSource, split: str) -> str:
    """The language of a generated folder, from its ``rolebench_custom.json`` (which must say the
    folder is whole: no role left half-written by a killed ``generate``)."""
    meta = source.fetch(CUSTOM_META) if source.local_root is not None else None
    if meta is None:
        raise RoleBenchDataError(source.where(CUSTOM_META), None, None,
                                 f"split {split!r} reads a folder written by `rolebench-eval generate`; "
                                 "pass that folder as data_dir (--metadata '{\"data_dir\": ...}')")
    record = read_folder_record(meta)
    if record.lang not in languages():
        raise RoleBenchDataError(meta, None, "lang", f"expected one of {', '.join(languages())}, got {record.lang!r}")
    for role, entry in record.roles.items():  # a role a killed `generate` left half-written (folder.write_role)
        if entry.writing:
            raise RoleBenchDataError(meta, None, f"roles.{role}.writing",
                                     f"`generate {entry.writing}` was stopped while writing this role's rows "
                                     "(its files may not match); run the same command again to finish")
    return record.lang
