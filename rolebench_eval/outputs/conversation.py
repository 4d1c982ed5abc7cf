"""The files of ``rolebench-eval converse``: every conversation turn by turn, and the scores.

``<out>/conversations.jsonl`` holds one :class:`Conversation` a line (the user turns, the model's
replies, each turn's scores); ``<out>/summary.json`` a :class:`ConversationSummary`: the model, the
mode, the scenario file's sha256, and the scores overall, by scenario kind, by character and by
turn (the drift curve). Scores are keyed by the catalogue's metric names (``break``: the reply
breaks character, :mod:`rolebench_eval.breaks`; ``spe``: the paper's ROUGE-L recall against the
references of the RoleBench item a turn asks; ``unfinished_reasoning``). Replay and live runs
are told apart by ``mode`` and never share a score: the leaderboard reads them as their own columns.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal, Union

from msgspec import UNSET, Meta, Struct, UnsetType

from . import codec

KIND = "rolebench-conversations"
SCHEMA_VERSION = 1
READ_VERSIONS = (1,)
CONVERSATIONS = "conversations.jsonl"
SUMMARY = "summary.json"
Mode = Literal["replay", "live"]
MODES: tuple[str, ...] = Mode.__args__


class Turn(Struct, kw_only=True, omit_defaults=True):
    """One exchange: what the user said, what the model answered (its reasoning cut), the turn's scores."""

    user: str
    reply: str
    raw: Union[str, UnsetType] = UNSET  # the reply as sent, when the reasoning cut changed it
    item_id: Union[str, None] = None
    scores: dict[str, float] = {}


class Conversation(Struct, kw_only=True):
    """One scenario put to one model: its turns so far and whether all planned turns are there."""

    scenario_id: str
    scenario_hash: str
    character: str
    kind: str
    lang: str
    turns: list[Turn]
    description: str = ""  # the character's description, as its scenario gives it (what a judge is shown)
    planned_turns: Annotated[int, Meta(ge=1)]
    complete: bool = True
    break_rate: Union[float, None] = None  # the share of its replies that break character (None: no reply yet)


class Cell(Struct, kw_only=True):
    """Scores of a slice of turns (a kind, a character, a turn index, or all): means and counts."""

    n_turns: int
    n_conversations: int
    scores: dict[str, float]  # metric -> mean over the turns that have it
    n_scored: dict[str, int]  # metric -> turns that have it


class ConversationSummary(Struct, kw_only=True, omit_defaults=True):
    kind: Literal["rolebench-conversations"] = KIND
    schema_version: int = SCHEMA_VERSION
    model: str  # the model under test, as the endpoint names it
    mode: Mode
    scenarios: dict[str, str]  # {"file": name, "sha256": ...}
    settings: dict[str, Any]  # decoding of the model under test (and the simulator's, live)
    complete: bool
    overall: Cell
    by_kind: dict[str, Cell]
    by_character: dict[str, Cell]
    by_turn: list[Cell]  # turn 1, 2, ...: the drift curve
    requests: dict[str, int] = {}  # sent / cached, model and simulator
    simulator: Union[str, UnsetType] = UNSET


def read_conversations(path: str | os.PathLike) -> list[Conversation]:
    """Every conversation of a ``conversations.jsonl``."""
    return [c for _, c in codec.read_lines(path, Conversation, "conversations file")]


def read_conversation_samples(path: str | os.PathLike) -> dict[int, dict]:
    """doc_id -> samples line of a conversations task (``conversations/lmeval.py`` writes them; small files: one
    line per conversation, read whole). A line that is not a conversation names its line and field."""
    from rolebench_eval.catalogue import languages
    from rolebench_eval.errors import InputError
    from rolebench_eval.fileio import read_jsonl

    out = {}
    for line, row in read_jsonl(path, "samples file"):
        doc = row.get("doc") if isinstance(row, dict) else None
        turns = doc.get("user_turns") if isinstance(doc, dict) else None
        replies = row.get("filtered_resps") if isinstance(row, dict) else None
        if not (isinstance(row.get("doc_id"), int) and isinstance(turns, list) and isinstance(replies, list)
                and len(turns) == len(replies) and all(isinstance(t, str) for t in turns + replies)):
            raise InputError(path, line, "doc.user_turns", "expected a conversation: doc_id, doc.user_turns and "
                                                           "filtered_resps, as many replies as user turns")
        for field, ok in (("role", isinstance(doc.get("role"), str)), ("lang", doc.get("lang") in languages())):
            if not ok:
                raise InputError(path, line, f"doc.{field}", f"expected the conversation's {field}, "
                                                             f"got {doc.get(field)!r}")
        out[row["doc_id"]] = row
    return out


def read_summary(path: str | os.PathLike) -> ConversationSummary:
    """A ``summary.json``; a newer schema is refused."""
    summary = codec.read(path, ConversationSummary, "conversations summary")
    if summary.schema_version not in READ_VERSIONS:
        raise codec.refuse_version(path, "schema_version", summary.schema_version, READ_VERSIONS,
                                   "not written by rolebench-eval converse")
    return summary


def write_run(out: str | os.PathLike, conversations: Iterable[Conversation], summary: ConversationSummary) -> Path:
    """Both files into ``out`` (each atomically; the summary last, so its presence means both are there)."""
    out = Path(out)
    codec.write_lines(out / CONVERSATIONS, conversations)
    return codec.write(out / SUMMARY, summary, ensure_ascii=False)
