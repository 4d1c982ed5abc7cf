"""The generated data folder: the train/test split rule, the files, the record of every run.

A folder written by ``rolebench-eval generate`` has RoleBench's layout, so the tasks
(``rolebench_custom_general`` / ``rolebench_custom_specific`` with ``--metadata
'{"data_dir": <folder>}'``) and the fine-tuning recipes read it like the real dataset::

    rolebench_custom.json          language, roles, and per role the full record of its last run
    profiles/desc.json             role -> the description of its role prompt
    general/{train,test,rolegpt_baseline}.jsonl
    role_specific/{train,test}.jsonl

One folder holds one language and any number of characters: writing a character replaces
its own rows and keeps the others'. Every file goes through :mod:`rolebench_eval.fileio`:
written atomically (a killed run never leaves half a file) with U+2028, U+2029 and U+0085
escaped (no reader can split a row), and read by bytes, so a folder written by an earlier
version, with those characters raw, still reads. :func:`write_role` is the only writer and
is called only when the run kept something (else the generators raise ``NothingUsable``).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from msgspec import UNSET

from rolebench_eval import __version__
from rolebench_eval.data import RoleBenchDataError, parse_row, read_descriptions
from rolebench_eval.errors import NothingUsable
from rolebench_eval.fileio import (ensure_writable, folder_lock, read_jsonl, sha256_file, write_json_atomic,
                                   write_jsonl)
from rolebench_eval.llm.client import BatchResult
from rolebench_eval.outputs import codec
from rolebench_eval.outputs.generated import CUSTOM_META, FORMAT_VERSION, FolderRecord, RoleEntry, read_folder_record

from .common import GenerationResult
from .filters import drops_text, normalize_question
from .profile import Profile, role_description

log = logging.getLogger(__name__)



# --------------------------------------------------------------------------- train/test split


def split_position(question: str) -> float:
    """Where a question falls in [0, 1): the first 8 bytes of sha256(normalised question)."""
    digest = hashlib.sha256(normalize_question(question).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_test(questions: Sequence[str], fraction: float) -> list[bool]:
    """True for the questions that go to ``test.jsonl``.

    A question is a test question when :func:`split_position` is below ``fraction``, so the
    split is deterministic, independent of order and of the other questions, and one
    instruction lands on the same side for every role. With two or more questions and one
    side empty, the question nearest the boundary moves over, so both files have rows.
    """
    where = [split_position(q) for q in questions]
    test = [w < fraction for w in where]
    if len(questions) >= 2 and not any(test):
        test[min(range(len(where)), key=where.__getitem__)] = True
    elif len(questions) >= 2 and all(test):
        test[max(range(len(where)), key=where.__getitem__)] = False
    return test


def split_rows(rows: list[dict], fraction: float) -> dict[str, list[dict]]:
    """``{"train": [...], "test": [...]}`` by :func:`assign_test` on the rows' questions."""
    test = assign_test([r["question"] for r in rows], fraction)
    return {"train": [r for r, t in zip(rows, test) if not t], "test": [r for r, t in zip(rows, test) if t]}


# --------------------------------------------------------------------------- the folder


def read_meta(out: Path) -> FolderRecord:
    """The folder's ``rolebench_custom.json`` (an empty record when the folder is new)."""
    path = out / CUSTOM_META
    return read_folder_record(path) if path.is_file() else FolderRecord()


def check_folder(out: Path, profile: Profile) -> None:
    """Refuse a folder the machine will not let us write, or one of another language (before any request is sent)."""
    ensure_writable(out, "the generated data folder", create=False)  # a run that keeps nothing leaves no folder
    lang = read_meta(out).lang
    if lang not in (None, profile.lang):
        raise RoleBenchDataError(out / CUSTOM_META, None, "lang",
                                 f"this folder holds {lang!r} data and {profile.path} is {profile.lang!r}; "
                                 "use one output folder per language")


def other_roles_rows(path: Path, role: str) -> list[dict]:
    """The rows of ``path`` that belong to other roles, as they are (each validated strictly)."""
    if not path.is_file():
        return []
    rows = []
    for line_no, row in read_jsonl(path, "data file"):
        parse_row(row, path, line_no)  # a malformed existing file is an error, not something to overwrite
        if row["role"] != role:
            rows.append(row)
    return rows


def write_role(out: Path, profile: Profile, method: str, folder: str, files: dict[str, list[dict]],
               record: dict) -> dict[str, int]:
    """Replace the role's rows in ``<out>/<folder>/<name>.jsonl``, then record the run; rows written per file.

    Every existing file is read (and validated) before the first is replaced, so a bad
    file stops the run before anything changes. Each file is replaced atomically, and the
    folder record marks the role as being written until the last one is: a kill in between
    leaves a folder that ``run`` and ``data check`` refuse, naming the role, until the same
    command is run again. The folder's lock is held throughout: two commands writing one folder at
    once take turns (the second says it waits), and neither loses the other's rows.
    """
    with folder_lock(out, "the generated data folder"):
        return _write_role(out, profile, method, folder, files, record)


def _write_role(out: Path, profile: Profile, method: str, folder: str, files: dict[str, list[dict]],
                record: dict) -> dict[str, int]:
    paths = {name: out / folder / f"{name}.jsonl" for name in files}
    kept = {name: other_roles_rows(path, profile.name) for name, path in paths.items()}
    meta = read_meta(out)
    _role_entry(meta, profile).writing = method
    codec.write(out / CUSTOM_META, meta, indent=1)
    for name, rows in files.items():
        write_jsonl(paths[name], kept[name] + rows)
        if not kept[name] + rows:
            log.warning("%s has no rows (too few instructions kept to fill both train and test); lm-eval "
                        "refuses an empty split: generate more for this role", paths[name])
    written = {f"{folder}/{name}.jsonl": len(rows) for name, rows in files.items()}
    record_role(out, profile, method, record | {"written": written})
    return written


def _role_entry(meta: FolderRecord, profile: Profile) -> RoleEntry:
    """The folder record's entry of ``profile``'s role, the record stamped with this format and language."""
    meta.format_version, meta.lang = FORMAT_VERSION, profile.lang
    return meta.roles.setdefault(profile.name, RoleEntry())


def record_role(out: Path, profile: Profile, method: str, record: dict) -> None:
    """Update ``profiles/desc.json`` and the folder's ``rolebench_custom.json`` for this role."""
    desc_path = out / "profiles" / "desc.json"
    descriptions = read_descriptions(desc_path) if desc_path.is_file() else {}
    descriptions[profile.name] = role_description(profile)
    write_json_atomic(desc_path, descriptions, indent=1)
    meta = read_meta(out)
    entry = _role_entry(meta, profile)
    entry.writing = UNSET
    entry.profile = {"path": str(profile.path.resolve()), "sha256": sha256_file(profile.path),
                     "files": {field: {"path": str(path), "sha256": sha256_file(path)}
                               for field, path in profile.files.items()}}
    setattr(entry, method, record | {"created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                     "package_version": __version__})
    codec.write(out / CUSTOM_META, meta, indent=1)


# --------------------------------------------------------------------------- the end of a run


def batch_record(batch: BatchResult) -> dict:
    """What the requests did, for the run's record."""
    return {"answers_received": sum(r is not None for r in batch.responses), "requests_sent": batch.n_sent,
            "requests_cached": batch.n_cached, "stopped": batch.stopped,
            "decoding_sent": batch.decoding or None}  # after any adaptation to the endpoint; None: all cached


def nothing_written(report: dict, batch: BatchResult, out: Path, received: str) -> GenerationResult:
    """The end of a run that kept nothing: the folder is left as it was.

    A stopped run (budget, failed requests) returns, and a rerun finishes it; a finished one
    raises :class:`NothingUsable` saying what was received and why all of it was dropped.
    """
    report["written"] = {}
    if batch.stopped:
        return GenerationResult(report, batch=batch)
    why = "; ".join(f"{what}: {drops_text(t['dropped'])}" for what, t in report["tallies"].items())
    raise NothingUsable(f"{report['role']}: {received} and kept none ({why}); nothing written, "
                        f"{out} is unchanged")
