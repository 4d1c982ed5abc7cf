"""RoleBench files: where they are, strict reading, and the joins the tasks need.

The data location is resolved in this order: an explicit ``data_dir`` (lm-eval's
``--metadata '{"data_dir": ...}'``), the environment variable ``ROLEBENCH_DATA_DIR``,
else the Hugging Face dataset ``ZenMoore/RoleBench`` (downloaded file by file).

Rows are ``{"role", "question", "generated": [refs...], "type"?}``. Text is kept
exactly as released (leading spaces included): scores and baseline matching use it raw.
Any malformed row raises :class:`RoleBenchDataError` naming the file, line and field.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any

from rolebench_eval.errors import InputError
from rolebench_eval.fileio import read_json, read_jsonl

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


#: The item types of role-specific questions (PAPER.md 1.4). ``type`` values are trimmed and
#: lower-cased on reading (``"SCRIPT_BASED "`` is ``script_based``) and empty ones dropped;
#: anything else is kept and counted as unknown by ``data check``.
KNOWN_TYPES = ("script_based", "script_agnostic")


@dataclass(frozen=True)
class Item:
    """One RoleBench row: a question put to a role, with its reference answers."""

    role: str
    question: str
    references: tuple[str, ...]
    types: tuple[str, ...] = ()
    line: int = field(default=0, compare=False)  # where it was read (0: not from a file)


def item_id(role: str, question: str) -> str:
    """Stable id of an item: the first 16 hex digits of sha256(role, newline, question)."""
    return hashlib.sha256(f"{role}\n{question}".encode("utf-8")).hexdigest()[:16]


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
    normalised = tuple(t.strip().lower() for t in types if t.strip())
    return Item(role=row["role"], question=row["question"], references=tuple(refs), types=normalised, line=line)


def read_items(path: str | os.PathLike) -> list[Item]:
    """Read a RoleBench JSONL file strictly (blank lines are allowed, nothing else is skipped)."""
    return [parse_row(row, path, line_no) for line_no, row in read_jsonl(path)]


def read_baseline(path: str | os.PathLike) -> dict[tuple[str, str], str]:
    """RoleGPT answers keyed by the raw (role, question); the first answer of each row.

    The same key twice with different answers is an error (the match would be ambiguous).
    """
    answers: dict[tuple[str, str], str] = {}
    first_line: dict[tuple[str, str], int] = {}
    for item in read_items(path):
        key, line_no = (item.role, item.question), item.line
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
    data = read_json(path, "role descriptions file")
    _require(isinstance(data, dict), path, None, None, "expected a JSON object mapping role names to descriptions")
    for role, desc in data.items():
        _require(isinstance(desc, str), path, None, role, f"expected a string description, got {type(desc).__name__}")
    return data


# --------------------------------------------------------------------------- RAW's references

#: Fields that hold a general instruction's original (non-role-play) answer, in order of preference.
RAW_ANSWER_FIELDS = ("target", "answer", "output")


def normalise_question(text: str) -> str:
    """How general instructions are matched to their raw answers: whitespace collapsed, ends trimmed."""
    return " ".join(text.split())


@dataclass
class RawAnswers:
    """The original answers of the general instructions (``instructions-*/instructions-general.jsonl``)."""

    answers: dict[str, str]  # normalised instruction -> answer
    fields: dict[str, int]  # answer field -> rows that used it (the README says which field was read)
    conflicts: int = 0  # instructions listed twice with different answers (the first is kept)


def read_raw_answers(path: str | os.PathLike) -> RawAnswers:
    """Rows ``{"instruction", "target"}`` (or ``answer`` / ``output``), strictly: file:line:field errors."""
    raw = RawAnswers({}, {})
    for line, row in read_jsonl(path, "instructions file"):
        _require(isinstance(row, dict), path, line, None, f"expected a JSON object, got {type(row).__name__}")
        question = row.get("instruction", row.get("question"))
        _require(isinstance(question, str) and bool(question.strip()), path, line, "instruction",
                 "missing, empty or not a string")
        name = next((f for f in RAW_ANSWER_FIELDS if f in row), None)
        _require(name is not None, path, line, RAW_ANSWER_FIELDS[0],
                 f"missing: a row needs the original answer in one of {', '.join(RAW_ANSWER_FIELDS)}")
        _require(isinstance(row[name], str), path, line, name, f"expected a string, got {type(row[name]).__name__}")
        raw.fields[name] = raw.fields.get(name, 0) + 1
        key = normalise_question(question)
        if key in raw.answers and raw.answers[key] != row[name]:
            raw.conflicts += 1
        raw.answers.setdefault(key, row[name])
    return raw
