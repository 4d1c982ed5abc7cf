"""BM25 retrieval over short texts, for any part that needs "the most similar examples".

The tasks' prompting studies retrieve demonstrations from a role's train split with it;
data generation retrieves a character's dialogue pairs (``generate/retrieval.py``, whose
tokenisation this module shares). Tokens are lowercased words for English and single
characters (letters and digits, no punctuation) for Chinese, after NFKC normalisation.
Scores come from ``rank_bm25.BM25Okapi`` with its default parameters (k1=1.5, b=0.75).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable, Sequence

from rolebench_eval.catalogue import token_unit

_WORD = re.compile(r"\w+")


def tokenize(text: str, lang: str) -> list[str]:
    """Words (en) or characters (zh: the catalogue's ``tokens``), lowercased, NFKC-normalised, without punctuation.

    Example:
        >>> tokenize("Where's the WRECK?", "en")
        ['where', 's', 'the', 'wreck']
        >>> tokenize("沉船在哪？", "zh")
        ['沉', '船', '在', '哪']
    """
    text = unicodedata.normalize("NFKC", text).lower()
    if token_unit(lang) == "characters":
        return [ch for ch in text if ch.isalnum()]
    return _WORD.findall(text)


class BM25Index:
    """A BM25 index over ``texts``; :meth:`top_k` returns the indices of the most similar ones.

    ``rank_bm25`` computes the statistics (idf, lengths); the scores use its formula over an
    inverted index, because its own ``get_scores`` loops in Python over every text for every
    query token (a minute for the Chinese general split's demonstrations). The arithmetic is
    the same, operation for operation, so the scores are identical to ``get_scores``.
    """

    def __init__(self, texts: Sequence[str], lang: str):
        self.size, self.lang = len(texts), lang
        self._bm25 = None
        if texts:
            import numpy as np
            from rank_bm25 import BM25Okapi

            # rank_bm25 divides by the corpus' average length: give empty documents a placeholder token.
            bm25 = self._bm25 = BM25Okapi([tokenize(text, lang) or ["\x00"] for text in texts])
            postings: dict[str, tuple[list[int], list[int]]] = {}
            for i, freqs in enumerate(bm25.doc_freqs):
                for term, count in freqs.items():
                    where, counts = postings.setdefault(term, ([], []))
                    where.append(i)
                    counts.append(count)
            self._postings = {t: (np.array(w), np.array(c)) for t, (w, c) in postings.items()}
            self._norm = 1 - bm25.b + bm25.b * np.array(bm25.doc_len) / bm25.avgdl

    def scores(self, query: str) -> list[float]:
        """The BM25 score of every text for ``query``, in corpus order."""
        return [] if self._bm25 is None else [float(s) for s in self._score_array(query)]

    def _score_array(self, query: str):
        import numpy as np

        bm25 = self._bm25
        score = np.zeros(bm25.corpus_size)
        for term in tokenize(query, self.lang):
            q_freq = np.zeros(bm25.corpus_size)
            if term in self._postings:
                where, counts = self._postings[term]
                q_freq[where] = counts
            score += (bm25.idf.get(term) or 0) * (q_freq * (bm25.k1 + 1) / (q_freq + bm25.k1 * self._norm))
        return score

    def top_k(self, query: str, k: int, exclude: Callable[[int], bool] | None = None) -> list[int]:
        """The indices of the ``k`` highest-scoring texts, best first; ties keep corpus order.

        ``exclude(i)`` drops text ``i`` from the candidates (e.g. the query itself).
        """
        if self._bm25 is None or k <= 0:
            return []
        import numpy as np

        chosen: list[int] = []
        for i in np.argsort(-self._score_array(query), kind="stable").tolist():
            if exclude is None or not exclude(i):
                chosen.append(i)
                if len(chosen) == k:
                    break
        return chosen
