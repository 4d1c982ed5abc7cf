"""The judges' two files, written by ``rolebench-eval judge`` and read by the leaderboard.

``<out>/<model>/<task>/<judge>/summary.json`` is a :class:`JudgeSummary`, ``annotations.jsonl``
one :class:`Annotation` per line. Unknown keys are ignored on reading (a newer writer may add
some). Summary schema versions: 1 (before the length-controlled win rate, the joint ranking's
``n_systems`` and the rubric) reads with those fields empty; 2 (before judge ensembles) reads
with the ensemble fields unset; 3 is the current one. A single judge model writes what version 2
wrote; an ensemble (several judge models) adds ``members`` (each model's headline), the
inter-judge agreement and its counts, and each annotation line its members' verdicts.

The statistics a protocol may fill are the fields marked :data:`STATISTIC`; :data:`STATISTICS`
lists them, read from this schema.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Iterator, Literal, Union

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from . import codec

KIND = "rolebench-judge-summary"
SCHEMA_VERSION = 3
READ_VERSIONS = (1, 2, 3)
#: Marks a summary field as a statistic a protocol computes (the rest are counts and provenance).
STATISTIC = Meta(extra={"statistic": True})

Name = Annotated[str, Meta(min_length=1)]
Count = Annotated[int, Meta(ge=0)]
Rate = Annotated[float, Meta(ge=0, le=1)]
Interval = Annotated[list[float], Meta(min_length=2, max_length=2)]  # [lo, hi]
Status = Literal["judged", "parse_error", "skipped_no_baseline", "skipped_no_answer", "skipped_not_common",
                 "pending"]


class Header(Struct):
    """What any JSON file under a judges folder is checked for first: is it a summary, which version."""

    kind: Any = None
    schema_version: Any = None


class JudgeMember(Struct, kw_only=True):
    """One judge model of an ensemble as its summary reports it: its own counts and headline."""

    judge_model: Name
    n_judged: Count = 0
    n_parsed: Count = 0
    n_parse_failures: Count = 0
    n_refusals: Count = 0
    n_pending: Count = 0
    win_rate: Union[Rate, None] = None
    ci95: Union[Interval, None] = None
    lc_win_rate: Union[Rate, None] = None
    mean_rank: Union[float, None] = None
    position_flip_rate: Union[Rate, None] = None
    rubric_means: Union[dict[str, Union[float, None]], None] = None
    character_break_rate: Union[Rate, None] = None
    decoding: Union[dict[str, Any], None] = None


class JudgeSummary(Struct, kw_only=True):
    """One (model, task, judge): counts, the protocol's statistics and how they were made."""

    kind: Literal["rolebench-judge-summary"] = KIND
    schema_version: int = SCHEMA_VERSION
    model: Name  # the judged run's name (outputs.run_name)
    system: Union[str, None, UnsetType] = UNSET  # its name in the prompts (a variant's name with across_variants)
    task: Name
    judge: Name
    judge_model: Union[str, None] = None
    baseline: Union[str, None] = None
    judge_config_hash: Union[str, None, UnsetType] = UNSET
    role_description: Union[str, None, UnsetType] = UNSET
    samples_file: Union[str, None, UnsetType] = UNSET
    stopped: Union[str, None, UnsetType] = UNSET
    protocol: Name
    systems: Union[list[str], None] = None
    n_systems: Union[Count, None] = None
    n_systems_min: Union[Count, None] = None
    n_systems_max: Union[Count, None] = None
    n_total: Count = 0
    n_judged: Count
    n_parsed: Count
    n_parse_failures: Count
    n_refusals: Count = 0
    n_skipped_no_baseline: Count = 0
    n_skipped_no_answer: Count = 0
    n_skipped_not_common: Count = 0  # rank --common-items: items another run lacks, not ranked
    n_pending: Count = 0
    n_unfinished_reasoning: Count = 0  # candidate answers whose reasoning never closed (judged as the empty answer)
    complete: bool = True
    win_rate: Annotated[Union[Rate, None], STATISTIC] = None
    ci95: Annotated[Union[Interval, None], STATISTIC] = None
    lc_win_rate: Annotated[Union[Rate, None], STATISTIC] = None
    lc_ci95: Annotated[Union[Interval, None], STATISTIC] = None
    mean_rank: Annotated[Union[float, None], STATISTIC] = None
    position_flip_rate: Annotated[Union[Rate, None], STATISTIC] = None
    rubric_means: Annotated[Union[dict[str, Union[float, None]], None], STATISTIC] = None
    rubric_ci95: Annotated[Union[dict[str, Union[Interval, None]], None], STATISTIC] = None
    character_break_rate: Annotated[Union[Rate, None], STATISTIC] = None
    lc_method: Union[str, UnsetType] = UNSET  # how lc_win_rate was computed (protocols against a baseline)
    lc_note: Union[str, None, UnsetType] = UNSET
    lc_coefficients: Union[dict[str, float], None, UnsetType] = UNSET
    rouge_agreement: Union[float, None] = None
    rouge_agreement_method: Union[str, None] = None
    # an ensemble (schema 3): each member's headline, how far the members agree, what the vote settled
    members: Union[list[JudgeMember], UnsetType] = UNSET
    agreement: Union[float, None, UnsetType] = UNSET  # Krippendorff's alpha between the members
    agreement_method: Union[str, UnsetType] = UNSET
    agreement_n_items: Union[Count, UnsetType] = UNSET  # items with a verdict from at least two members
    ensemble_rule: Union[str, UnsetType] = UNSET  # how the members' verdicts make the ensemble's
    n_ensemble_ties: Union[Count, UnsetType] = UNSET  # items the members split evenly on (the tie rule decided)
    n_ensemble_partial: Union[Count, UnsetType] = UNSET  # items decided without a member whose reply failed
    decoding: Union[dict[str, Any], None] = None
    decodings_seen: Union[list[dict[str, Any]], None] = None
    package_version: Union[str, None] = None
    created_at: Union[str, None] = None


def _statistics() -> tuple[str, ...]:
    info = msgspec.inspect.type_info(JudgeSummary)
    return tuple(f.name for f in info.fields
                 if isinstance(f.type, msgspec.inspect.Metadata) and (f.type.extra or {}).get("statistic"))


#: Every statistic of the current schema; a protocol fills those that apply, the rest stay null.
STATISTICS = _statistics()


class MemberVerdict(Struct, kw_only=True):
    """One ensemble member's verdict on an item (``value`` None when its reply failed)."""

    judge_model: Name
    status: Status
    value: Any = None
    score: Union[float, None] = None
    parse_error: Union[str, None] = None
    judge_texts: Union[list[str], None] = None
    refused: bool = False
    decoding: Union[dict[str, Any], None] = None
    flip: Union[bool, None, UnsetType] = UNSET
    rank: Union[int, None, UnsetType] = UNSET
    character_break: Union[bool, None, UnsetType] = UNSET


class Annotation(Struct, kw_only=True):
    """One item's line of ``annotations.jsonl``: what was judged, the judge's words, the verdict.

    The protocol fields at the end are written only by the protocol that has them.
    """

    doc_id: int
    role: Union[str, None] = None
    question: Union[str, None] = None
    lang: Union[str, None] = None
    kind: Union[str, None] = None
    status: Status
    candidate: Union[str, None] = None
    baseline: Union[str, None] = None
    unfinished_reasoning: bool = False  # the candidate never closed its reasoning: ``candidate`` is empty
    judge_texts: Union[list[str], None] = None
    judge_refusals: Union[list[Union[str, None]], None] = None
    refused: bool = False
    value: Any = None  # the parsed verdict: {"outcome": ...}, ranks, rubric scores
    score: Union[float, None] = None
    parse_error: Union[str, None] = None
    judge_model: Union[str, None] = None
    decoding: Union[dict[str, Any], None] = None
    prompt_hash: Union[str, None] = None
    timestamp: Union[str, None] = None
    package_version: Union[str, None] = None
    finish_reasons: Union[list[Union[str, None]], UnsetType] = UNSET
    rouge_candidate: Union[float, None, UnsetType] = UNSET
    rouge_baseline: Union[float, None, UnsetType] = UNSET
    flip: Union[bool, None, UnsetType] = UNSET  # pairwise: the verdict changed with the order
    rank: Union[int, float, None, UnsetType] = UNSET  # rank: the candidate's place (an ensemble's: the mean)
    n_systems: Union[int, UnsetType] = UNSET  # rank: systems in its prompt
    character_break: Union[bool, None, UnsetType] = UNSET  # rubric: the judge's out-of-character flag
    members: Union[list[MemberVerdict], UnsetType] = UNSET  # an ensemble: each judge model's own verdict


class _Written(JudgeSummary, forbid_unknown_fields=True):
    """What the judges write: a field the schema lacks is a bug here, not a key readers skip."""


class _WrittenAnnotation(Annotation, forbid_unknown_fields=True):
    """What the judges write: a protocol field the schema lacks is a bug, not a key to lose."""


def make_summary(fields: dict[str, Any]) -> JudgeSummary:
    """The summary of these fields, checked (names and types) as readers will check it."""
    return JudgeSummary(**msgspec.structs.asdict(msgspec.convert(fields, _Written)))


_HEADER = msgspec.json.Decoder(Header)


def summary_header(raw: bytes) -> Header | None:
    """The kind and version of a JSON file, or None when it is not a JSON object."""
    try:
        return codec.lenient_decode(_HEADER.decode)(raw)
    except msgspec.DecodeError:  # ValidationError too: not an object
        return None


def decode_summary(raw: bytes, path: str | os.PathLike, header: Header | None = None) -> JudgeSummary:
    """A summary file's bytes as a :class:`JudgeSummary`; another version is refused, saying which."""
    header = header or summary_header(raw) or Header()
    if header.schema_version not in READ_VERSIONS or isinstance(header.schema_version, bool):
        raise codec.refuse_version(path, "schema_version", header.schema_version, READ_VERSIONS,
                                   "rerun `rolebench-eval judge` to rewrite it")
    return codec.decode(raw, JudgeSummary, path)


def write(folder: Path, records: list[dict], summary: JudgeSummary) -> None:
    """``annotations.jsonl`` then ``summary.json`` into ``folder``, each checked against its schema."""
    codec.write_lines(folder / "annotations.jsonl", (msgspec.convert(r, _WrittenAnnotation) for r in records))
    codec.write(folder / "summary.json", summary)


def read_annotations(path: str | os.PathLike) -> Iterator[tuple[int, Annotation]]:
    """``(line, annotation)`` of an ``annotations.jsonl``."""
    return codec.read_lines(path, Annotation, "judge annotations")
