"""Judge health: the human-labels file ``judge check`` reads, and the summary it writes.

``<out>/health/<judge model>/<set>/health.json`` is a :class:`JudgeHealth` (written by
``rolebench-eval judge check``, read by the leaderboard's judge-health panel). A human-labels
file is JSONL, one :class:`HumanLabel` per line (judges/README.md, "Judge health"): a question put
to a role, two or more answers, and either the person's ``preference`` between two answers
("A", "B" or "tie") or their ``ranking`` of all of them (1 = best, ties allowed).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal, Union

from msgspec import Meta, Struct, field

from rolebench_eval.catalogue import languages
from rolebench_eval.errors import InputError

from . import codec

KIND = "rolebench-judge-health"
SCHEMA_VERSION = 1
READ_VERSIONS = (1,)
HEALTH_FILE = "health.json"
PREFERENCES = ("A", "B", "tie")
_UNKNOWN = re.compile(r"unknown field (\S+)")

Name = Annotated[str, Meta(min_length=1)]
Count = Annotated[int, Meta(ge=0)]
Rate = Annotated[float, Meta(ge=0, le=1)]
Interval = Annotated[list[float], Meta(min_length=2, max_length=2)]  # [lo, hi]


class HumanLabel(Struct, kw_only=True, forbid_unknown_fields=True):
    """One line of a human-labels file."""

    id: Union[str, None] = None  # the labeller's own id, kept in errors and nothing else
    role: Name
    lang: Name  # one of the catalogue's languages
    question: Name
    answers: Annotated[list[str], Meta(min_length=2)]
    reference: Union[str, None] = None  # shown to the judge as on role-specific items
    description: Union[str, None] = None  # the role's profile (else its name, as the judges do)
    preference: Union[Literal["A", "B", "tie"], None] = None  # two answers: which is better
    ranking: Union[list[Annotated[int, Meta(ge=1)]], None] = None  # rank of each answer, 1 = best


def check_label(label: HumanLabel, path: str | os.PathLike, line: int) -> HumanLabel:
    """What msgspec cannot say: a known language, one kind of label, and a label that fits the answers."""
    if label.lang not in languages():
        raise InputError(path, line, "lang", f"expected one of {', '.join(languages())}, got {label.lang!r}")
    if (label.preference is None) == (label.ranking is None):
        raise InputError(path, line, "preference", "give exactly one of preference (two answers) or ranking")
    if label.preference is not None and len(label.answers) != 2:
        raise InputError(path, line, "preference", f"compares two answers; this line has {len(label.answers)} "
                                                   "(give a ranking instead)")
    if label.ranking is not None:
        if len(label.ranking) != len(label.answers):
            raise InputError(path, line, "ranking", f"{len(label.ranking)} ranks for {len(label.answers)} answers")
        if max(label.ranking) > len(label.answers):
            raise InputError(path, line, "ranking", f"ranks run from 1 to {len(label.answers)}, got "
                                                    f"{max(label.ranking)}")
    for n, answer in enumerate(label.answers):
        if not answer.strip():
            raise InputError(path, line, f"answers[{n}]", "empty")
    return label


def read_labels(path: str | os.PathLike) -> list[tuple[int, HumanLabel]]:
    """``(line, label)`` of every line of a human-labels file; the first bad line is an :class:`InputError`
    (a key the format does not have is named as the field: a misspelt ``refrence`` is not dropped unseen)."""
    try:
        labels = [(line, check_label(label, path, line))
                  for line, label in codec.read_lines(path, HumanLabel, "human-labels file")]
    except InputError as err:
        unknown = _UNKNOWN.search(err.problem or "") if err.field is None else None
        if unknown is None:
            raise
        raise InputError(err.path, err.line, unknown.group(1), "unknown field: a label has "
                         f"{', '.join(HumanLabel.__struct_fields__)}") from None
    if not labels:
        raise InputError(path, None, None, "no labels: the file has no lines")
    return labels


class RoleAccuracy(Struct, kw_only=True):
    """Identification of one role: how often the judge named it as the speaker of its own answers."""

    role: Name
    n: Count  # items asked
    n_parsed: Count
    n_correct: Count
    accuracy: Union[Rate, None] = None  # n_correct / n_parsed
    ci95: Union[Interval, None] = None
    at_or_below_chance: bool = False  # accuracy <= 1/k: the judge cannot tell this role's voice


class Identification(Struct, kw_only=True):
    """(a) shown one answer and k names of the set, does the judge name the speaker."""

    split: Name
    answers: Literal["reference", "rolegpt"]
    k: Annotated[int, Meta(ge=2)]
    chance: Rate  # 1/k
    choice_seed: int
    items_per_role: Annotated[int, Meta(ge=1)]
    n_roles: Count
    n_total: Count
    n_parsed: Count
    n_parse_failures: Count
    n_pending: Count = 0
    accuracy: Union[Rate, None] = None
    ci95: Union[Interval, None] = None
    roles: list[RoleAccuracy] = field(default_factory=list)
    roles_at_or_below_chance: list[str] = field(default_factory=list)
    data: dict[str, str] = field(default_factory=dict)  # where the set came from (local folder or Hub)


class Agreement(Struct, kw_only=True):
    """(b) the judge's verdicts against people's, over every pair of answers a label orders."""

    labels_file: Name
    judge: Name  # the judge folder whose verdicts were compared (pairwise or rank)
    protocol: Name
    n_labels: Count
    n_pairs: Count
    n_parsed: Count
    n_parse_failures: Count
    n_pending: Count = 0
    accuracy: Union[Rate, None] = None  # share of pairs where the judge's A / B / tie is the person's
    accuracy_ci95: Union[Interval, None] = None
    kappa: Union[float, None] = None  # Cohen's kappa (sklearn.metrics.cohen_kappa_score)
    kappa_ci95: Union[Interval, None] = None
    position_flip_rate: Union[Rate, None] = None  # pairwise: the verdict changed with the order
    method: str = ""


class MeasuredBias(Struct, kw_only=True):
    """(c) one judge summary of this judge model: the position flips and length bias it measured."""

    summary: Name
    model: Name  # the judged run
    task: Name
    judge: Name
    protocol: Name
    n_parsed: Count
    position_flip_rate: Union[Rate, None] = None
    win_rate: Union[Rate, None] = None
    lc_win_rate: Union[Rate, None] = None
    length_coefficient: Union[float, None] = None  # the length term of the length-controlled fit


class Biases(Struct, kw_only=True):
    """(c) as the judge runs measured them, with the flip rate over all their pairwise items."""

    position_flip_rate: Union[Rate, None] = None
    n_flip_items: Count = 0
    summaries: list[MeasuredBias] = field(default_factory=list)


class JudgeHealth(Struct, kw_only=True):
    """One judge model's health on one character set."""

    kind: Literal["rolebench-judge-health"] = KIND
    schema_version: int = SCHEMA_VERSION
    judge_model: Name
    endpoint: Union[str, None] = None
    identification: Union[Identification, None] = None
    agreement: Union[Agreement, None] = None
    biases: Union[Biases, None] = None
    complete: bool = True
    decoding: Union[dict, None] = None
    package_version: Union[str, None] = None
    created_at: Union[str, None] = None


def write(path: str | os.PathLike, health: JudgeHealth) -> Path:
    """``health.json``, atomically."""
    return codec.write(path, health)


def decode(raw: bytes, path: str | os.PathLike) -> JudgeHealth:
    """A health file's bytes; another schema version is refused, saying which."""
    header = codec.decode(raw, dict, path)
    version = header.get("schema_version")
    if version not in READ_VERSIONS or isinstance(version, bool):
        raise codec.refuse_version(path, "schema_version", version, READ_VERSIONS,
                                   "rerun `rolebench-eval judge check` to rewrite it")
    return codec.decode(raw, JudgeHealth, path)


def is_health(raw: bytes) -> bool:
    """True for the bytes of a JSON object whose ``kind`` is a judge health summary."""
    from .judge import summary_header

    header = summary_header(raw)
    return header is not None and header.kind == KIND

