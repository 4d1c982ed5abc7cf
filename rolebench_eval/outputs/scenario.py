"""Scenario files: the user side of live role-play conversations, as versioned, hashed data.

A scenario file is JSONL, one :class:`Scenario` a line, written by ``rolebench-eval scenarios
write`` (a simulator model wrote the user's goal, persona and turns) or ``scenarios freeze`` (the
user turns a live run's simulator said), and read by ``rolebench-eval converse``. In replay mode
every model meets exactly these user turns, so two models are compared on the same conversation.

Each line carries its own ``hash`` (sha256 of the rest of the line, canonical JSON): a scenario
edited by hand no longer matches it and is refused, naming the line; an edit made on purpose is
sealed again with ``scenarios seal``. The conversations record the file's sha256, as a run
records the sha256 of the RoleBench test file. Own-story scenarios name, per user turn, the
RoleBench item whose question it is (``item_id``, :func:`rolebench_eval.data.item_id`): its
references score the answer with the paper's metric; ``source`` says which split (and which
version of its test file) the ids come from.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal, Union

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from rolebench_eval.catalogue import languages
from rolebench_eval.errors import InputError

from . import codec

SCENARIO_VERSION = 1
READ_VERSIONS = (1,)
#: What the simulated user does: ask about the character's own story (RoleBench questions, scored
#: against their references), make small talk, press on the identity ("are you an AI?"), ask for
#: something outside the character's world that it should refuse in its own voice.
Kind = Literal["own-story", "small-talk", "identity-pressure", "out-of-world"]
KINDS: tuple[str, ...] = Kind.__args__
OWN_STORY = "own-story"

Text = Annotated[str, Meta(min_length=1)]


class UserTurn(Struct, kw_only=True, omit_defaults=True):
    """One thing the user says; ``item_id``: the RoleBench item it asks (own-story), else None."""

    text: Text
    item_id: Union[str, None] = None


class Source(Struct, kw_only=True, omit_defaults=True):
    """Where the character comes from: a catalogue split of a data folder, and its test file's sha256."""

    split: Text
    sha256: Text
    data: Union[str, UnsetType] = UNSET  # "local" or the Hub commit (never a path of the writer's machine)


class Scenario(Struct, kw_only=True, omit_defaults=True):
    """One conversation's user side: who the character is, who the user is and what they say."""

    version: int = SCENARIO_VERSION
    hash: str = ""
    id: Text  # unique in its file: character/kind/n
    character: Text
    lang: Text  # a catalogue language
    description: str = ""  # the character's description (its role prompt's clause); "" when it has none
    kind: Kind
    goal: Text
    persona: Text
    turns: Annotated[list[UserTurn], Meta(min_length=1)]
    source: Source
    written_by: dict[str, Any] = {}  # the simulator's model and decoding, or the live run it was frozen from


def scenario_hash(scenario: Scenario) -> str:
    """sha256 (16 hex digits) of the scenario without its ``hash``: canonical JSON, sorted keys."""
    body = msgspec.to_builtins(scenario)
    body.pop("hash", None)
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def sealed(scenario: Scenario) -> Scenario:
    """The scenario with its ``hash`` set."""
    return msgspec.structs.replace(scenario, hash=scenario_hash(scenario))


def _check(scenario: Scenario, path: str | os.PathLike, line: int, seen: set[str]) -> None:
    if scenario.version not in READ_VERSIONS:
        raise codec.refuse_version(path, "version", scenario.version, READ_VERSIONS, "not a scenario file")
    problems = [
        ("lang", scenario.lang not in languages(), f"expected one of {', '.join(languages())}, got {scenario.lang!r}"),
        ("id", scenario.id in seen, f"{scenario.id!r} is also an earlier line's id; ids are unique in a file"),
        ("turns", scenario.kind == OWN_STORY and not any(t.item_id for t in scenario.turns),
         "an own-story scenario names the RoleBench item of at least one turn (item_id)"),
        ("hash", scenario.hash != scenario_hash(scenario),
         f"is {scenario.hash!r}, the line hashes to {scenario_hash(scenario)!r}: edited by hand? Reseal it with "
         "`rolebench-eval scenarios seal` if the edit is meant"),
    ]
    for field, bad, problem in problems:
        if bad:
            raise InputError(path, line, field, problem)


def read_scenarios(path: str | os.PathLike) -> list[Scenario]:
    """Every scenario of a file, checked (version, language, unique ids, own-story items, hash)."""
    out, seen = [], set()
    for line, scenario in codec.read_lines(path, Scenario, "scenario file"):
        _check(scenario, path, line, seen)
        seen.add(scenario.id)
        out.append(scenario)
    if not out:
        raise InputError(path, None, None, "no scenarios in the file")
    return out


def write_scenarios(path: str | os.PathLike, scenarios: Iterable[Scenario]) -> Path:
    """The scenarios, sealed, one a line, atomically."""
    return codec.write_lines(path, (sealed(s) for s in scenarios))


def counts(scenarios: list[Scenario]) -> dict[str, Any]:
    """What a file holds: scenarios by kind and by character, user turns, turns with a reference."""
    return {"scenarios": len(scenarios), "characters": len({s.character for s in scenarios}),
            "by_kind": dict(sorted(Counter(s.kind for s in scenarios).items())),
            "user_turns": sum(len(s.turns) for s in scenarios),
            "turns_with_item": sum(bool(t.item_id) for s in scenarios for t in s.turns)}
