"""Character breaks: does an answer reveal that an AI or a language model is speaking?

A pure function over the answer text, with the English and Chinese patterns kept as data
in ``breaks.yaml``. English patterns apply to answers in every language (models fall back
to English disclaimers); a language's own list is added to it.

The patterns match claims about the speaker ("As an AI language model", "我是一个人工智能"),
not talk about AI: "artificial flowers", "the AI in that film" or "人工智能是未来" do not
count. Roles that are machines in their story (HAL 9000, Sonny) can say so in character and
are flagged all the same: the detector reads the text, not the role.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from rolebench_eval.catalogue import languages
from rolebench_eval.fileio import load_yaml

PATTERNS_FILE = Path(__file__).with_name("breaks.yaml")
LANGS = tuple(languages())


@lru_cache(maxsize=1)
def _patterns() -> dict[str, re.Pattern]:
    """One compiled alternation per language (the English list first in every language)."""
    raw = load_yaml(PATTERNS_FILE.read_text(encoding="utf-8"))
    compiled = {}
    for lang in LANGS:
        patterns = raw["en"] + ([] if lang == "en" else raw.get(lang, []))
        compiled[lang] = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
    return compiled


def patterns_version() -> int:
    """The ``version`` of ``breaks.yaml`` (recorded in results next to the break rates)."""
    return int(load_yaml(PATTERNS_FILE.read_text(encoding="utf-8"))["version"])


def break_match(text: str, lang: str) -> str | None:
    """The first stretch of ``text`` that breaks character, or None.

    Example:
        >>> break_match("Well, as an AI language model, I cannot say.", "en")
        'as an AI'
        >>> break_match("作为一个人工智能，我没有感情。", "zh")
        '作为一个人工智能'
        >>> break_match("She sells artificial flowers.", "en") is None
        True
    """
    if lang not in LANGS:
        raise ValueError(f"unsupported language {lang!r}; expected one of {', '.join(LANGS)}")
    found = _patterns()[lang].search(text or "")
    return found.group(0) if found else None


def breaks_character(text: str, lang: str) -> bool:
    """True when the answer reveals an AI or a language model (see :func:`break_match`)."""
    return break_match(text, lang) is not None
