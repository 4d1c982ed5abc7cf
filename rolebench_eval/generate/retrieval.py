"""BM25 retrieval of a character's dialogue pairs for RoleGPT's few-shot dialogue engineering.

Each pair is indexed as its two turns together (what was said to the character and the
character's answer); the query is the instruction. Tokens are lowercased words for
English and single characters (letters and digits, no punctuation) for Chinese. Scores
come from ``rank_bm25.BM25Okapi`` with its default parameters (k1=1.5, b=0.75).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

from .profile import DialoguePair

_WORD = re.compile(r"\w+")


def tokenize(text: str, lang: str) -> list[str]:
    """Words (en) or characters (zh), lowercased, NFKC-normalised, without punctuation.

    Example:
        >>> tokenize("Where's the WRECK?", "en")
        ['where', 's', 'the', 'wreck']
        >>> tokenize("沉船在哪？", "zh")
        ['沉', '船', '在', '哪']
    """
    text = unicodedata.normalize("NFKC", text).lower()
    if lang == "zh":
        return [ch for ch in text if ch.isalnum()]
    return _WORD.findall(text)


class DialogueIndex:
    """A BM25 index over dialogue pairs; :meth:`top_k` returns the most similar ones."""

    def __init__(self, pairs: Sequence[DialoguePair], lang: str):
        self.pairs, self.lang = list(pairs), lang
        self._bm25 = None
        if self.pairs:
            from rank_bm25 import BM25Okapi

            # rank_bm25 divides by the corpus' average length: give empty documents a placeholder token.
            docs = [tokenize(f"{p.user}\n{p.assistant}", lang) or ["\x00"] for p in self.pairs]
            self._bm25 = BM25Okapi(docs)

    def scores(self, query: str) -> list[float]:
        """The BM25 score of every pair for ``query``, in pair order."""
        if self._bm25 is None:
            return []
        return [float(s) for s in self._bm25.get_scores(tokenize(query, self.lang))]

    def top_k(self, query: str, k: int) -> list[DialoguePair]:
        """The ``k`` highest-scoring pairs, best first; ties keep the profile's order."""
        scores = self.scores(query)
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return [self.pairs[i] for i in order[:max(0, k)]]
