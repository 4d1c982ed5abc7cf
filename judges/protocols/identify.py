"""``identify``: shown one answer of a character and k names of its set, name the speaker (judge health).

The first check of ``rolebench-eval judge check`` (:mod:`..health`, :mod:`..check`), not a judge
of ``rolebench-eval judge``. One request per answer; the prompt lists the k names numbered
(templates get ``answer``, ``names``, ``k`` and ``lang``) and the judge ends with ``[[n]]``
(the name itself in the brackets is read too). A reply naming no listed character, or two,
is a parse failure (None, counted), never a wrong answer. Score: 1 when the speaker is named.
Settings (config section ``identify``): ``k`` (names shown, at least 2), ``items_per_role`` and
``choice_seed`` (which answers, which other names and their order: stable hashes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolebench_eval.errors import InputError

from ..errors import JudgeConfigError
from ..parsing import ParseError
from .base import Job, Judgment, Protocol, check_keys

_CHOICE = re.compile(r"\[\[\s*([^\[\]]+?)\s*\]\]")
LOWEST = {"k": 2, "items_per_role": 1, "choice_seed": 0}  # the least each setting may be


@dataclass
class Choice(Job):
    """One identification question: its one member's ``candidate`` is the answer shown, ``names``
    the characters listed, in order (the speaker is the member's ``role``)."""

    names: tuple[str, ...] = ()


def parse_choice(text: str, names: tuple[str, ...]) -> str:
    """The name the judge chose, from ``[[n]]`` (1-based) or ``[[name]]``; else :class:`ParseError`.

    Example:
        >>> parse_choice("The sea talk gives it away.\\n[[2]]", ("Li Bai", "Captain Brine"))
        'Captain Brine'
        >>> parse_choice("[[3]]", ("Li Bai", "Captain Brine"))
        Traceback (most recent call last):
        ...
        rolebench_eval.judges.parsing.ParseError: [[3]] is not one of the 2 names listed
    """
    by_name = {name.strip().casefold(): name for name in names}
    chosen = set()
    for found in _CHOICE.findall(text or ""):
        if found.isdigit():
            if not 1 <= int(found) <= len(names):
                raise ParseError(f"[[{found}]] is not one of the {len(names)} names listed")
            chosen.add(names[int(found) - 1])
        elif found.casefold() in by_name:
            chosen.add(by_name[found.casefold()])
    if not chosen:
        raise ParseError("no choice [[n]] found")
    if len(chosen) > 1:
        raise ParseError(f"conflicting choices {sorted(chosen)}")
    return chosen.pop()


class Identify(Protocol):
    name = "identify"
    needs_baseline = False
    headline = "accuracy"

    def check_settings(self, where: Path, section: Any) -> dict:
        settings = check_keys(where, "identify", section, set(LOWEST))
        for key, low in LOWEST.items():
            value = settings.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise JudgeConfigError(where, None, f"identify.{key}", f"expected an integer >= {low}, got {value!r}")
        return settings

    def jobs(self, units, judge, options: dict) -> list[Job]:
        raise InputError("--judge", None, None, f"{judge.name} ({self.name}) is the judge-health check's protocol, "
                         "not a judge of runs: run `rolebench-eval judge check --split NAME` (judges/README.md)")

    def requests(self, judge, job: Choice) -> list:
        item = job.item
        return [judge.render(answer=item.candidate.strip(), names=list(job.names), k=len(job.names), lang=item.lang)]

    def parse(self, judge, job: Choice, texts: list[str]) -> list[Judgment]:
        try:
            named = parse_choice(texts[0], job.names)
        except ParseError as err:
            return [Judgment(error=str(err))]
        correct = named == job.item.role
        return [Judgment(value={"named": named, "correct": correct}, score=1.0 if correct else 0.0)]

    def statistics(self, parsed: list[dict], judge) -> dict:
        return {}  # judge check computes identification's statistics per role (..health)


PROTOCOL = Identify()
