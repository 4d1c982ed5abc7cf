"""Parsing Context-Instruct replies: question / confidence / answer triplets, never crashing.

The templates ask for blocks of ``Question:`` / ``Confidence:`` / ``Answer:`` lines
(Chinese ``问题：`` / ``置信度：`` / ``回答：``). Tolerated: either colon, list numbering,
Markdown bold, ``Q1:``-style numbers, answers over several lines, text before the first
block, and a JSON list of ``{"question", "confidence", "answer"}`` objects instead.
A block is malformed, counted and dropped, when a field is missing, empty or repeated, or
the confidence is not a number from 1 to 10 (``8``, ``8/10``, ``8.5`` and ``8分`` are read).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_KIND = {"question": "question", "q": "question", "问题": "question", "提问": "question",
         "confidence": "confidence", "置信度": "confidence", "信心": "confidence",
         "answer": "answer", "a": "answer", "回答": "answer", "答案": "answer"}
_LABEL = re.compile(
    r"^\s*(?:[-*>#]+\s*)?(?:\(?\d+[.)、]\s*)?(?:\*\*|__)?\s*"
    r"(?P<label>question|q|问题|提问|confidence|置信度|信心|answer|a|回答|答案)\s*\d*\s*(?:\*\*|__)?\s*[:：]"
    r"\s*(?:\*\*|__)?\s*(?P<rest>.*?)\s*$", re.IGNORECASE)
_RULE = re.compile(r"^\s*[-=*_#]{3,}\s*$")
_CONFIDENCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*10)?\s*分?\s*[.。]?\s*$")
_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$")
# Lines end at \n (or \r\n, \r) only: str.splitlines() would also cut at U+2028, U+2029,
# U+0085 and form feeds, which an answer may hold.
_NEWLINE = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Triplet:
    """One generated item: a question to the role, the generator's confidence, the role's answer."""

    question: str
    confidence: float
    answer: str


def parse_confidence(value) -> float | None:
    """A confidence from 1 to 10, or None when it is not one.

    Example:
        >>> [parse_confidence(v) for v in ("8", "9/10", "7.5", "8分", 10, "high", "0.9", "11")]
        [8.0, 9.0, 7.5, 8.0, 10.0, None, None, None]
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        match = _CONFIDENCE.match(str(value))
        if not match:
            return None
        number = float(match.group(1))
    return number if 1 <= number <= 10 else None


def _triplet(fields: dict) -> Triplet | None:
    question, answer = (str(fields.get(k) or "").strip() for k in ("question", "answer"))
    confidence = parse_confidence(fields.get("confidence"))
    if not question or not answer or confidence is None:
        return None
    return Triplet(question, confidence, answer)


def _from_json(text: str) -> tuple[list[Triplet], int] | None:
    body = _FENCE.sub("", text.strip())
    if not body.startswith("["):
        return None
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, list):
        return None
    found, malformed = [], 0
    for entry in data:
        fields = {_KIND.get(str(k).strip().lower()): v for k, v in entry.items()} if isinstance(entry, dict) else {}
        triplet = _triplet(fields)
        found += [triplet] if triplet else []
        malformed += triplet is None
    return found, malformed


def _blocks(text: str) -> list[dict]:
    """Label blocks: each starts at a question line; a field repeated in a block marks it bad."""
    blocks, current, field = [], None, None
    for line in _NEWLINE.split(text):
        match = _LABEL.match(line)
        if match:
            kind, rest = _KIND[match.group("label").lower()], match.group("rest")
            if kind == "question" or current is None:
                current = {"_bad": kind != "question"}
                blocks.append(current)
            if kind in current:
                current["_bad"] = True
            current[kind], field = [rest] if rest else [], kind
        elif current is not None and field and line.strip() and not _RULE.match(line):
            current[field].append(line.strip())
    return blocks


def parse_triplets(text: str) -> tuple[list[Triplet], int]:
    """The well-formed triplets of a reply and the number of malformed ones.

    Example:
        >>> parse_triplets("Question: Your ship?\\nConfidence: 9\\nAnswer: The Mild Regret.\\nQuestion: Why?")
        ([Triplet(question='Your ship?', confidence=9.0, answer='The Mild Regret.')], 1)
    """
    from_json = _from_json(text)
    if from_json is not None:
        return from_json
    found, malformed = [], 0
    for block in _blocks(text):
        fields = {k: " ".join(v) if isinstance(v, list) else v for k, v in block.items()}
        triplet = None if block["_bad"] else _triplet(fields)
        found += [triplet] if triplet else []
        malformed += triplet is None
    return found, malformed
