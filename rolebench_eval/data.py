"""RoleBench files: where they are, strict reading, and the joins the tasks need.

The data location is resolved in this order: an explicit ``data_dir`` (lm-eval's
``--metadata '{"data_dir": ...}'``), the environment variable ``ROLEBENCH_DATA_DIR``,
else the Hugging Face dataset ``ZenMoore/RoleBench`` (downloaded file by file).

Rows are ``{"role", "question", "generated": [refs...], "type"?}``. Text is kept
exactly as released (leading spaces included): scores and baseline matching use it raw.
Any malformed row raises :class:`RoleBenchDataError` naming the file, line and field.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolebench_eval.errors import InputError
from rolebench_eval.fileio import read_jsonl

HUB_REPO = "ZenMoore/RoleBench"
# The Hub revision used when no local copy is given. "main" until a commit of the
# dataset has been verified online; the commit actually used is recorded in results.
HUB_REVISION = "main"
ENV_VAR = "ROLEBENCH_DATA_DIR"
# What the rolegpt replay answers for an item the dataset has no RoleGPT answer for; the
# tasks leave such items out of every metric instead of scoring an empty answer.
NO_ROLEGPT_ANSWER = "<rolebench: no RoleGPT answer for this item>"

# References that carry no answer. The paper kept them; we keep them and count them.
_DEGENERATE = re.compile(
    r"^\s*(\(\s*no (response|dialogue|answer|reply)\b[^)]*\)\s*\.?)?\s*$", re.IGNORECASE
)


# A RoleBench file is missing or malformed: the one input error, under the name of its first version.
RoleBenchDataError = InputError


@dataclass(frozen=True)
class Item:
    """One RoleBench row: a question put to a role, with its reference answers."""

    role: str
    question: str
    references: tuple[str, ...]
    types: tuple[str, ...] = ()


def is_degenerate(reference: str) -> bool:
    """True for references that hold no answer, e.g. "(No response provided)" or blanks."""
    return bool(_DEGENERATE.match(reference))


# --------------------------------------------------------------------------- reading


def _require(cond: bool, path, line, field, problem) -> None:
    if not cond:
        raise RoleBenchDataError(path, line, field, problem)


def parse_row(row: Any, path: str | os.PathLike, line: int) -> Item:
    """Validate one decoded JSON row; ``type`` may be a string or a list of strings."""
    _require(isinstance(row, dict), path, line, None, f"expected a JSON object, got {type(row).__name__}")
    for key in ("role", "question"):
        _require(key in row, path, line, key, "missing")
        _require(isinstance(row[key], str), path, line, key, f"expected a string, got {type(row[key]).__name__}")
    _require(bool(row["role"].strip()), path, line, "role", "empty")
    _require(bool(row["question"].strip()), path, line, "question", "empty")
    refs = row.get("generated")
    _require("generated" in row, path, line, "generated", "missing")
    _require(isinstance(refs, list), path, line, "generated", f"expected a list of strings, got {type(refs).__name__}")
    _require(len(refs) > 0, path, line, "generated", "empty list: an item needs at least one reference")
    for i, ref in enumerate(refs):
        _require(isinstance(ref, str), path, line, f"generated[{i}]", f"expected a string, got {type(ref).__name__}")
    types = row.get("type")
    if types is None:
        types = []
    elif isinstance(types, str):
        types = [types]
    _require(
        isinstance(types, list) and all(isinstance(t, str) for t in types),
        path, line, "type", f"expected a string or a list of strings, got {types!r}",
    )
    return Item(role=row["role"], question=row["question"], references=tuple(refs), types=tuple(types))


def read_items(path: str | os.PathLike) -> list[Item]:
    """Read a RoleBench JSONL file strictly (blank lines are allowed, nothing else is skipped)."""
    return [parse_row(row, path, line_no) for line_no, row in read_jsonl(path)]


def read_baseline(path: str | os.PathLike) -> dict[tuple[str, str], str]:
    """RoleGPT answers keyed by the raw (role, question); the first answer of each row.

    The same key twice with different answers is an error (the match would be ambiguous).
    """
    answers: dict[tuple[str, str], str] = {}
    first_line: dict[tuple[str, str], int] = {}
    for line_no, item in enumerate(read_items(path), start=1):
        key = (item.role, item.question)
        if key in answers and answers[key] != item.references[0]:
            raise RoleBenchDataError(
                path, None, "generated",
                f"two different RoleGPT answers for role {item.role!r} and question {item.question[:60]!r} "
                f"(rows {first_line[key]} and {line_no})",
            )
        answers.setdefault(key, item.references[0])
        first_line.setdefault(key, line_no)
    return answers


def read_descriptions(path: str | os.PathLike) -> dict[str, str]:
    """Role descriptions from ``profiles-*/desc.json`` (a JSON object role -> text)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise RoleBenchDataError(path, err.lineno, None, f"invalid JSON ({err.msg})") from None
    _require(isinstance(data, dict), path, None, None, "expected a JSON object mapping role names to descriptions")
    for role, desc in data.items():
        _require(isinstance(desc, str), path, None, role, f"expected a string description, got {type(desc).__name__}")
    return data
