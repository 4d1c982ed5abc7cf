"""Files of a generated data folder: the instructions read in, the RoleBench files written out.

A folder written by ``rolebench-eval generate`` has RoleBench's layout, so the tasks
(``rolebench_custom_general`` / ``rolebench_custom_specific`` with ``--metadata
'{"data_dir": <folder>}'``) and the fine-tuning recipes read it like the real dataset::

    rolebench_custom.json          language, roles, and per role what was generated (counts, settings)
    profiles/desc.json             role -> the description of its role prompt
    general/{train,test,rolegpt_baseline}.jsonl
    role_specific/{train,test}.jsonl

One folder holds one language and any number of characters: writing a character replaces
its own rows and keeps the others'. Every file is written to a temporary file and moved
into place (``os.replace``), so a killed run never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from rolebench_eval import __version__
from rolebench_eval.fileio import write_atomic
from rolebench_eval.data import RoleBenchDataError, read_descriptions, read_items
from rolebench_eval.fileio import read_jsonl, sha256_file
from .profile import Profile, role_description
from rolebench_eval.source import CUSTOM_META

FORMAT_VERSION = 1


def read_instructions(path: str | os.PathLike) -> tuple[list[str], int]:
    """Instructions from JSONL rows with ``instruction`` (or ``question``); returns them and the repeats dropped.

    Raises:
        RoleBenchDataError: naming the file, line and field of the first bad row.
    """
    found: dict[str, None] = {}
    repeats = 0
    for line_no, row in read_jsonl(path, "instructions file"):
        if not isinstance(row, dict):
            raise RoleBenchDataError(path, line_no, None, f"expected a JSON object, got {type(row).__name__}")
        key = "instruction" if "instruction" in row else "question"
        if key not in row:
            raise RoleBenchDataError(path, line_no, "instruction",
                                     'missing (each row needs "instruction" or "question")')
        text = row[key]
        if not isinstance(text, str) or not text.strip():
            raise RoleBenchDataError(path, line_no, key, f"expected a non-empty string, got {text!r}")
        repeats += text.strip() in found
        found[text.strip()] = None
    if not found:
        raise RoleBenchDataError(path, None, None, "no instructions in the file")
    return list(found), repeats


def read_meta(out: Path) -> dict:
    """The folder's ``rolebench_custom.json`` (an empty record when the folder is new)."""
    path = out / CUSTOM_META
    if not path.is_file():
        return {"format_version": FORMAT_VERSION, "lang": None, "roles": {}}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise RoleBenchDataError(path, err.lineno, None, f"invalid JSON ({err.msg})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("roles"), dict):
        raise RoleBenchDataError(path, None, "roles", "not a folder written by rolebench-eval generate")
    return meta


def check_folder(out: Path, profile: Profile) -> None:
    """Refuse to mix languages in one folder (before any request is sent)."""
    lang = read_meta(out).get("lang")
    if lang not in (None, profile.lang):
        raise RoleBenchDataError(out / CUSTOM_META, None, "lang",
                                 f"this folder holds {lang!r} data and {profile.path} is {profile.lang!r}; "
                                 "use one output folder per language")


def replace_role_rows(path: Path, role: str, rows: list[dict]) -> None:
    """Write ``path`` with ``role``'s rows replaced by ``rows`` (other roles' rows kept, in order)."""
    kept = []
    if path.is_file():
        read_items(path)  # a malformed existing file is an error, not something to overwrite
        kept = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        kept = [row for row in kept if row["role"] != role]
    lines = [json.dumps(row, ensure_ascii=False) for row in kept + rows]
    write_atomic(path, "".join(f"{line}\n" for line in lines))


def record_role(out: Path, profile: Profile, method: str, report: dict) -> None:
    """Update ``profiles/desc.json`` and the folder's ``rolebench_custom.json`` for this role."""
    desc_path = out / "profiles" / "desc.json"
    descriptions = read_descriptions(desc_path) if desc_path.is_file() else {}
    descriptions[profile.name] = role_description(profile)
    write_atomic(desc_path, json.dumps(descriptions, ensure_ascii=False, indent=1) + "\n")
    meta = read_meta(out)
    meta["lang"] = profile.lang
    entry = meta["roles"].setdefault(profile.name, {})
    entry["profile"] = {"path": str(profile.path.resolve()), "sha256": sha256_file(profile.path),
                        "script_sha256": sha256_file(profile.script_path) if profile.script_path else None}
    entry[method] = report | {"created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              "package_version": __version__}
    write_atomic(out / CUSTOM_META, json.dumps(meta, ensure_ascii=False, indent=1) + "\n")


def write_split(out: Path, folder: str, role: str, files: dict[str, list[dict]]) -> dict[str, int]:
    """Write ``<out>/<folder>/<name>.jsonl`` for each of ``files``; returns the rows written per file."""
    for name, rows in files.items():
        replace_role_rows(out / folder / f"{name}.jsonl", role, rows)
    return {f"{folder}/{name}.jsonl": len(rows) for name, rows in files.items()}


def finish(out: Path, profile: Profile, method: str, folder: str, files: dict[str, list[dict]],
           report: dict, batch) -> dict:
    """Record how the batch went, then write the rows (unless nothing is complete) and the role record."""
    report |= {"requests_sent": batch.n_sent, "requests_cached": batch.n_cached, "stopped": batch.stopped}
    if batch.stopped and not (files["train"] or files["test"]):
        report["written"] = {}  # nothing complete yet: the folder is left as it was
        return report
    report["written"] = write_split(out, folder, profile.name, files)
    record_role(out, profile, method, report)
    return report
