"""What the generators drop, and the count of every drop.

The filter lists (``generate/prompts/filters.yaml``, or ``--filters FILE`` with the same
keys) are loaded, matched and counted here, and nowhere else:

- ``breaks_character``: an answer that says it is an AI (the role prompt forbids it): the
  package's character-break detector (:mod:`rolebench_eval.breaks`, the one the multi-turn
  tasks score with), plus any extra phrases of the list;
- ``refusal``: an answer that refuses instead of answering in character (also any answer
  whose API ``refusal`` field is set);
- ``question_mentions_source``: a Context-Instruct question that points at the script.

Every answer a generator receives ends in exactly one :class:`Tally`: kept, or dropped
for one named reason. :meth:`Tally.check` fails loudly when the two do not add up to what
was received, so an answer can never disappear from the record without a reason.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from rolebench_eval.breaks import breaks_character
from rolebench_eval.fileio import load_yaml

from .common import PROMPTS_DIR, GenerateError

FILTER_KEYS = ("breaks_character", "refusal", "question_mentions_source")
ANSWER_FILTERS = ("breaks_character", "refusal")
_NOT_WORD = re.compile(r"[\W_]+")


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


@dataclass(frozen=True)
class Filters:
    """The phrase lists, NFKC-normalised and case-folded; see :func:`load_filters`."""

    lists: dict[str, tuple[str, ...]]
    lang: str = "en"  # the character's language, for the character-break detector

    def matched(self, text: str, keys=FILTER_KEYS) -> str | None:
        """The first of ``keys`` whose list has a phrase occurring in ``text``, else None.

        Example:
            >>> Filters({"breaks_character": ("as an ai",)}).matched("As an AI language model, I...")
            'breaks_character'
        """
        folded = _fold(text)
        for key in keys:
            if any(phrase in folded for phrase in self.lists.get(key, ())):
                return key
        return None

    def answer_problem(self, text: str, api_refusal: str | None = None) -> str | None:
        """Why an answer cannot be used (``empty``, ``refusal``, ``breaks_character``), or None.

        Example:
            >>> f = Filters({"refusal": ("i cannot",), "breaks_character": ("as an ai",)})
            >>> [f.answer_problem(t) for t in ("", "  ", "I cannot.", "As an AI...", "Ahoy!")]
            ['empty', 'empty', 'refusal', 'breaks_character', None]
            >>> f.answer_problem("Ahoy!", api_refusal="I can't help with that.")
            'refusal'
        """
        if api_refusal:
            return "refusal"
        if not text.strip():
            return "empty"
        if breaks_character(text, self.lang):
            return "breaks_character"
        return self.matched(text, ANSWER_FILTERS)


def load_filters(path: str | os.PathLike | None = None, lang: str = "en") -> Filters:
    """The filter lists (``generate/prompts/filters.yaml`` unless ``path``), normalised, for a ``lang`` character."""
    path = Path(path) if path else PROMPTS_DIR / "filters.yaml"
    if not path.is_file():
        raise GenerateError(path, None, None, "filters file not found")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise GenerateError(path, None, None, f"invalid YAML ({err})") from None
    if not isinstance(data, dict):
        raise GenerateError(path, None, None, f"expected a mapping with keys {', '.join(FILTER_KEYS)}")
    unknown = sorted(set(data) - set(FILTER_KEYS))
    if unknown:
        raise GenerateError(path, None, unknown[0], f"unknown key; allowed: {', '.join(FILTER_KEYS)}")
    lists = {}
    for key in FILTER_KEYS:
        value = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise GenerateError(path, None, key, "expected a list of non-empty strings")
        lists[key] = tuple(_fold(v) for v in value)
    return Filters(lists, lang)


def normalize_question(question: str) -> str:
    """The duplicate key of a question: NFKC, case-folded, without spaces and punctuation.

    Example:
        >>> normalize_question(" What's your  ship called?") == normalize_question("whats your ship called")
        True
    """
    return _NOT_WORD.sub("", _fold(question))


@dataclass
class Tally:
    """What became of every received item of one kind: kept, or dropped for a named reason.

    ``reasons`` fixes the reasons (and their order in the record); dropping for any other
    is a programming error. ``received`` is counted where the answers arrive, ``kept`` and
    ``dropped`` where each is decided, so :meth:`check` catches an answer nobody decided on.

    Example:
        >>> t = Tally(("empty", "duplicate"))
        >>> t.receive(3); t.keep(); t.drop("empty"); t.drop("duplicate")
        >>> t.check("references").as_dict()
        {'received': 3, 'kept': 1, 'dropped': {'empty': 1, 'duplicate': 1}}
        >>> t.why()
        'empty 1, duplicate 1'
    """

    reasons: tuple[str, ...]
    received: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)

    def receive(self, n: int = 1) -> None:
        self.received += n

    def keep(self, n: int = 1) -> None:
        self.kept += n

    def drop(self, reason: str, n: int = 1) -> None:
        if reason not in self.reasons:
            raise ValueError(f"unknown drop reason {reason!r}; known: {', '.join(self.reasons)}")
        self.dropped[reason] += n

    def check(self, what: str) -> "Tally":
        """Self, after making sure kept + dropped == received (else RuntimeError: a bug, not bad input)."""
        decided = self.kept + sum(self.dropped.values())
        if decided != self.received:
            raise RuntimeError(f"{what}: {self.received} received but {decided} kept or dropped")
        return self

    def why(self) -> str:
        """The drops as ``reason n, ...`` (most frequent first), or ``none``."""
        return drops_text(self.dropped, self.reasons)

    def as_dict(self) -> dict:
        """``{"received", "kept", "dropped": {reason: n}}`` with every reason, in order."""
        return {"received": self.received, "kept": self.kept,
                "dropped": {reason: self.dropped[reason] for reason in self.reasons}}


def drops_text(dropped: dict[str, int], reasons: tuple[str, ...] | None = None) -> str:
    """``reason n, ...`` for the non-zero drops, most frequent first (ties in ``reasons`` order).

    Example:
        >>> drops_text({"empty": 1, "refusal": 4, "duplicate": 0})
        'refusal 4, empty 1'
    """
    order = list(reasons or dropped)
    ranked = sorted((r for r, n in dropped.items() if n), key=lambda r: (-dropped[r], order.index(r)))
    return ", ".join(f"{r} {dropped[r]}" for r in ranked) or "none"
