"""``rolebench-eval scenarios write``: a simulator model writes each character's scenarios, once.

One request per (character, kind, scenario number) through the package's LLM client (cached,
budgeted, concurrent; ``--dry-run`` prices it first). Own-story scenarios ask the character's own
RoleBench questions (its items in item-id order, ``turns`` per scenario), so the simulator only
invents the user's goal and persona; the other kinds get ``turns`` user messages from it too.
An answer that is not the JSON asked for drops its scenario, counted by reason. ``freeze`` turns
a live run into a scenario file: its simulator's turns, frozen, for every later model to replay.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field

from rolebench_eval.data import item_id
from rolebench_eval.llm.client import BatchResult
from rolebench_eval.outputs.conversation import Conversation
from rolebench_eval.outputs.scenario import OWN_STORY, Scenario, Source, UserTurn, sealed

from . import simulator
from .characters import Character, CharacterSet

_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


@dataclass(frozen=True)
class Plan:
    """One scenario to write: whose, which kind, which number, its own-story questions."""

    character: Character
    kind: str
    number: int
    turns: int
    items: tuple = ()

    @property
    def id(self) -> str:
        return f"{self.character.name}/{self.kind}/{self.number}"


@dataclass
class Written:
    scenarios: list[Scenario] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)


def plan(characters: CharacterSet, kinds: list[str], per_kind: int, turns: int) -> list[Plan]:
    """Every scenario to write; an own-story one takes the character's next ``turns`` items (none left: skipped)."""
    out = []
    for character in characters.characters.values():
        for kind in kinds:
            for n in range(per_kind):
                items = character.items[n * turns:(n + 1) * turns] if kind == OWN_STORY else ()
                if kind != OWN_STORY or items:
                    out.append(Plan(character, kind, n, turns, items))
    return out


def request(p: Plan):
    return simulator.scenario_request(p.character.name, p.character.description, p.kind, p.turns,
                                      [i.question.strip() for i in p.items])


def parse(text: str | None, p: Plan) -> tuple[dict | None, str | None]:
    """(goal, persona, turns) from the simulator's answer, or (None, the reason it is dropped)."""
    try:
        value = json.loads(_FENCE.sub("", (text or "").strip()))
    except ValueError:
        return None, "not JSON"
    if not isinstance(value, dict) or not all(isinstance(value.get(k), str) and value[k].strip()
                                              for k in ("goal", "persona")):
        return None, "no goal or persona"
    if p.kind == OWN_STORY:
        turns = [UserTurn(text=i.question.strip(), item_id=item_id(i.role, i.question)) for i in p.items]
    else:
        said = value.get("turns")
        if not (isinstance(said, list) and said and all(isinstance(t, str) and t.strip() for t in said)):
            return None, "no turns"
        turns = [UserTurn(text=t.strip()) for t in said[:p.turns]]
    return {"goal": value["goal"].strip(), "persona": value["persona"].strip(), "turns": turns}, None


def build(plans: list[Plan], batch: BatchResult, characters: CharacterSet, written_by: dict) -> Written:
    """The scenarios whose answers parse, sealed; the others counted by reason."""
    result = Written()
    source = Source(split=characters.split, sha256=characters.sha256, data=characters.data)
    for p, answer in zip(plans, batch.responses):
        if answer is None:
            result.dropped["not answered"] += 1
            continue
        fields, why = parse(answer.get("text"), p)
        if fields is None:
            result.dropped[why] += 1
            continue
        c = p.character
        result.scenarios.append(sealed(Scenario(id=p.id, character=c.name, lang=c.lang, description=c.description,
                                                kind=p.kind, source=source, written_by=written_by, **fields)))
    return result


def freeze(scenarios: list[Scenario], conversations: list[Conversation], run: dict) -> list[Scenario]:
    """The scenarios with the user turns a complete live run said (each turn's item kept where it was the
    scenario's); ``run`` (model, simulator, ...) is recorded as what wrote them; scenarios it lacks are left out."""
    said = {c.scenario_id: c for c in conversations}
    out = []
    for s in scenarios:
        c = said.get(s.id)
        if c is None:
            continue
        turns = [UserTurn(text=t.user, item_id=t.item_id) for t in c.turns]
        out.append(sealed(Scenario(**{**_fields(s), "turns": turns, "hash": "",
                                      "written_by": {"frozen_from": run, "was": s.written_by}})))
    return out


def _fields(s: Scenario) -> dict:
    return {name: getattr(s, name) for name in s.__struct_fields__}
