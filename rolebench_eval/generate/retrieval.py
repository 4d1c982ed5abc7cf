"""BM25 retrieval of a character's dialogue pairs for RoleGPT's few-shot dialogue engineering.

Each pair is indexed as its two turns together (what was said to the character and the
character's answer); the query is the instruction. Tokenisation and scoring are the
ground's (:mod:`rolebench_eval.retrieval`, which the tasks' prompting studies use too).
"""

from __future__ import annotations

from typing import Sequence

from rolebench_eval.retrieval import BM25Index, tokenize

from .profile import DialoguePair

__all__ = ["DialogueIndex", "tokenize"]


class DialogueIndex:
    """A BM25 index over dialogue pairs; :meth:`top_k` returns the most similar ones."""

    def __init__(self, pairs: Sequence[DialoguePair], lang: str):
        self.pairs = list(pairs)
        self._index = BM25Index([f"{p.user}\n{p.assistant}" for p in self.pairs], lang)

    def scores(self, query: str) -> list[float]:
        """The BM25 score of every pair for ``query``, in pair order."""
        return self._index.scores(query)

    def top_k(self, query: str, k: int) -> list[DialoguePair]:
        """The ``k`` highest-scoring pairs, best first; ties keep the profile's order."""
        return [self.pairs[i] for i in self._index.top_k(query, k)]
