"""Turning a judge's text into a label. Pure functions; a failure raises :class:`ParseError`.

A failed parse is never a score: the caller records ``None`` with the error and counts it.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")


class ParseError(ValueError):
    """The judge's answer does not have the required form."""


def parse_verdict(text: str) -> str:
    """The pairwise verdict: "A", "B" or "C" (tie), from ``[[A]]``-style markers.

    Example:
        >>> parse_verdict("Answer A keeps the pirate voice.\\n[[A]]")
        'A'
        >>> parse_verdict("[[C]]")
        'C'
        >>> parse_verdict("Both are fine.")
        Traceback (most recent call last):
        ...
        rolebench_eval.judges.parsing.ParseError: no verdict [[A]], [[B]] or [[C]] found
    """
    found = set(_VERDICT.findall(text or ""))
    if not found:
        raise ParseError("no verdict [[A]], [[B]] or [[C]] found")
    if len(found) > 1:
        raise ParseError(f"conflicting verdicts {sorted(found)}")
    return found.pop()


def _outer(text: str, open_ch: str, close_ch: str) -> Any:
    """Decode the span from the first ``open_ch`` to the last ``close_ch`` as JSON or a Python literal."""
    start, end = (text or "").find(open_ch), (text or "").rfind(close_ch)
    if start < 0 or end <= start:
        raise ParseError(f"no {open_ch}...{close_ch} found")
    span = text[start:end + 1]
    try:
        return json.loads(span)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(span)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ParseError(f"{open_ch}...{close_ch} is neither JSON nor a Python literal") from None


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise ParseError(f"{what}: expected an integer, got {value!r}")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise ParseError(f"{what}: expected an integer, got {value!r}")
    return value


def parse_ranking(text: str, labels: list[str]) -> dict[str, int]:
    """Ranks by model label from a list like ``[{"model": "model_1", "rank": 1}, ...]``.

    Every label must appear exactly once with a rank between 1 and ``len(labels)``;
    equal ranks (ties) are allowed.

    Example:
        >>> parse_ranking('[{"model": "model_2", "reason": "vivid", "rank": 1}, '
        ...               '{"model": "model_1", "reason": "flat", "rank": 2}]', ["model_1", "model_2"])
        {'model_2': 1, 'model_1': 2}
        >>> parse_ranking("[{'model': 'model_1', 'rank': 1}]", ["model_1", "model_2"])
        Traceback (most recent call last):
        ...
        rolebench_eval.judges.parsing.ParseError: ranking lacks model(s) ['model_2']
    """
    data = _outer(text, "[", "]")
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise ParseError("expected a list of dictionaries")
    ranks: dict[str, int] = {}
    for entry in data:
        label = entry.get("model")
        if label not in labels:
            raise ParseError(f"unknown model {label!r}; expected one of {labels}")
        if label in ranks:
            raise ParseError(f"model {label!r} ranked twice")
        rank = _as_int(entry.get("rank"), f"rank of {label}")
        if not 1 <= rank <= len(labels):
            raise ParseError(f"rank of {label} is {rank}; expected 1..{len(labels)}")
        ranks[label] = rank
    missing = [label for label in labels if label not in ranks]
    if missing:
        raise ParseError(f"ranking lacks model(s) {missing}")
    return ranks


def parse_rubric(text: str, criteria: list[str], scale: tuple[int, int], flag: str) -> dict[str, Any]:
    """Criterion scores and the boolean flag from a JSON object.

    Example:
        >>> parse_rubric('```json\\n{"style": 4, "knowledge": 3, "character_break": false}\\n```',
        ...              ["style", "knowledge"], (1, 5), "character_break")
        {'style': 4, 'knowledge': 3, 'character_break': False}
        >>> parse_rubric('{"style": 9, "knowledge": 3, "character_break": false}',
        ...              ["style", "knowledge"], (1, 5), "character_break")
        Traceback (most recent call last):
        ...
        rolebench_eval.judges.parsing.ParseError: style is 9; expected 1..5
    """
    data = _outer(text, "{", "}")
    if not isinstance(data, dict):
        raise ParseError("expected a JSON object")
    low, high = scale
    parsed: dict[str, Any] = {}
    for name in criteria:
        if name not in data:
            raise ParseError(f"missing criterion {name!r}")
        score = _as_int(data[name], name)
        if not low <= score <= high:
            raise ParseError(f"{name} is {score}; expected {low}..{high}")
        parsed[name] = score
    if not isinstance(data.get(flag), bool):
        raise ParseError(f"{flag}: expected true or false, got {data.get(flag)!r}")
    parsed[flag] = data[flag]
    return parsed


def parse_scored_reasons(text: str, criteria: list[str], scale: tuple[int, int]) -> dict[str, Any]:
    """Scores and reasons from a JSON object ``{"<criterion>": {"score": <int>, "reason": "<text>"}, ...}``.

    Strict: the span from the first ``{`` to the last ``}`` must be JSON (no Python literal), and every
    criterion needs a JSON integer score on the scale (not ``7.5``, not ``"7"``) and a non-empty reason.
    Other keys are ignored.

    Example:
        >>> parse_scored_reasons('{"voice": {"score": 8, "reason": "salty"}}', ["voice"], (1, 10))
        {'voice': 8, 'reasons': {'voice': 'salty'}}
        >>> parse_scored_reasons('{"voice": {"score": 8}}', ["voice"], (1, 10))
        Traceback (most recent call last):
        ...
        rolebench_eval.judges.parsing.ParseError: voice.reason: expected a non-empty string, got None
    """
    start, end = (text or "").find("{"), (text or "").rfind("}")
    if start < 0 or end <= start:
        raise ParseError("no {...} found")
    try:
        data = json.loads(text[start:end + 1])
    except json.JSONDecodeError as err:
        raise ParseError(f"{{...}} is not JSON ({err.msg})") from None
    if not isinstance(data, dict):
        raise ParseError("expected a JSON object")
    low, high = scale
    parsed: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    for name in criteria:
        entry = data.get(name)
        if not isinstance(entry, dict):
            raise ParseError(f"{name}: expected {{\"score\": ..., \"reason\": ...}}, got {entry!r}")
        score = entry.get("score")
        if not isinstance(score, int) or isinstance(score, bool):
            raise ParseError(f"{name}.score: expected a JSON integer, got {score!r}")
        if not low <= score <= high:
            raise ParseError(f"{name}.score is {score}; expected {low}..{high}")
        reason = entry.get("reason")
        if not (isinstance(reason, str) and reason.strip()):
            raise ParseError(f"{name}.reason: expected a non-empty string, got {reason!r}")
        parsed[name], reasons[name] = score, reason.strip()
    return {**parsed, "reasons": reasons}
