"""The simulated user's prompts: ``simulator.yaml`` rendered with jinja2 (pure, no I/O past the file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from rolebench_eval.fileio import load_yaml
from rolebench_eval.llm.config import Messages
from rolebench_eval.outputs.scenario import KINDS, Scenario

PROMPTS_FILE = Path(__file__).with_name("simulator.yaml")
# The simulator's decoding unless flags say otherwise: varied users (what it said is kept by the cache and the files).
DECODING = {"temperature": 0.7, "seed": None}


@lru_cache(maxsize=1)
def prompts() -> dict:
    """The file's prompts; its kinds must be the schema's (a kind with no prompt is a bug, not an input)."""
    raw = load_yaml(PROMPTS_FILE.read_text(encoding="utf-8"))
    if tuple(raw["kinds"]) != KINDS:
        raise AssertionError(f"{PROMPTS_FILE}: kinds {tuple(raw['kinds'])} differ from the schema's {KINDS}")
    return raw


def version() -> int:
    """The prompts' version (recorded with each scenario and live run)."""
    return int(prompts()["version"])


def _render(name: str, **values) -> str:
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    return env.from_string(prompts()[name]).render(**values).strip()


def scenario_request(character: str, description: str, kind: str, turns: int,
                     questions: list[str]) -> Messages:
    """The request that asks the simulator for a scenario's goal, persona (and, but for own-story, turns)."""
    user = _render("scenario_user", character=character, description=description, kind_text=prompts()["kinds"][kind],
                   turns=turns, questions=questions)
    return [{"role": "system", "content": prompts()["scenario_system"]}, {"role": "user", "content": user}]


def next_turn_request(scenario: Scenario, said: list[str], replies: list[str]) -> Messages:
    """The live simulator's request for the user's next message, the conversation seen from its side:
    the character's replies are its "user" turns, the user's own messages its "assistant" turns (after an
    opening user turn: chat templates that want a user turn first accept it)."""
    system = _render("live_system", character=scenario.character, persona=scenario.persona, goal=scenario.goal,
                     kind_text=prompts()["kinds"][scenario.kind])
    messages = [{"role": "system", "content": system}, {"role": "user", "content": prompts()["live_opening"]}]
    for mine, theirs in zip(said, replies):
        messages += [{"role": "assistant", "content": mine}, {"role": "user", "content": theirs}]
    return messages
