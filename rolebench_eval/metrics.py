"""RoleBench metrics: the paper-faithful ROUGE-L recall, a conventional ROUGE-L F, length.

``rouge_l`` reproduces, value for value, ``Rouge().get_scores(hyp, ref)[0]["rouge-l"]["r"]``
of the PyPI package ``rouge`` 1.0.1 (pltrdy), which is what reproduces the paper's numbers
(PAPER.md 2.2): sentences split on ".", whitespace tokens, case-sensitive, summary-level
union LCS over *distinct* tokens, divided by the number of distinct reference tokens.
A language whose tokens are characters (the catalogue's ``languages``: Chinese) has every
non-space character separated by a space first. An item with several references scores the
maximum over them.

The union LCS depends on which LCS the backtrack picks, so the backtrack follows
pltrdy's exactly (diagonal on a match, else up when strictly longer, else left); the
table behind it is computed bit-parallel (Hyyro 2004), one machine word op per row.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from rolebench_eval.catalogue import token_unit

# ----------------------------------------------------------------- tokenization


def cjk_split(text: str) -> str:
    """Every non-whitespace character becomes its own space-separated token."""
    return " ".join("".join(text.split()))  # str.split() drops exactly the characters isspace() is true for


def _paper_text(text: str, lang: str) -> str:
    """The text as the paper metric tokenizes it: as is (words) or one token per character."""
    return cjk_split(text) if token_unit(lang) == "characters" else text


def _sentences(text: str, lang: str) -> list[list[str]]:
    """pltrdy's preprocessing: split on ".", drop empty pieces, squeeze whitespace."""
    return _pieces(_paper_text(text, lang))


def _pieces(text: str) -> list[list[str]]:
    # pltrdy squeezes each piece with " ".join(piece.split()).split(" "): the same tokens, and a
    # single empty token for a piece made of whitespace only
    return [piece.split() or [""] for piece in text.split(".") if piece]


# ----------------------------------------------------------------- union LCS
#
# Tokens stay strings: masks and sets are keyed by them directly (str hashes are cached),
# which is faster in CPython than first mapping every token to an integer id.


class _Sentence:
    """A hypothesis sentence, prepared once: tokens, token set and per-token match masks."""

    __slots__ = ("tokens", "vocab", "masks", "full")

    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.masks = _masks(tokens)
        self.vocab = self.masks.keys()
        self.full = (1 << len(tokens)) - 1


def _masks(tokens: list[str]) -> dict[str, int]:
    """token -> bit mask of its positions in ``tokens``."""
    # Comprehensions run far faster than an explicit loop in CPython: first the last position
    # of every token, then the earlier positions of repeated tokens OR-ed in.
    masks = {tok: 1 << pos for pos, tok in enumerate(tokens)}
    if len(masks) != len(tokens):
        for pos in [pos for pos, tok in enumerate(tokens) if masks[tok] >> pos != 1]:
            masks[tokens[pos]] |= 1 << pos
    return masks


def _lcs_tokens(x: list[str], y: _Sentence, out: set[str]) -> None:
    """Add to ``out`` the tokens of x on pltrdy's backtracked LCS of x and y.

    Rows of the LCS table are computed bit-parallel (Hyyro 2004) for the tokens of x that
    occur in y only: a token absent from y leaves its row equal to the previous one.
    """
    full, masks = y.full, y.masks
    kept = [(i, tok, m) for i, tok in enumerate(x) if (m := masks.get(tok))]
    rows, v = [], full  # rows[k]: zero bits mark where the row of kept token k steps up
    for _, _, m in kept:
        u = v & m
        v = ((v + u) | (v - u)) & full
        rows.append(v)
    ys = y.tokens
    j = len(ys)
    remaining = j - v.bit_count()  # table[len(x)][len(y)]: LCS tokens still to collect
    # Without a match at (i, j), pltrdy goes up iff table[i-1][j] > table[i][j-1], which
    # holds exactly when row i steps up at column j (a zero bit). So from (i, j) it walks
    # left to the nearest column that is a step of row i or a match of x[i-1]: one jump.
    # Rows of tokens absent from y equal the row above them and never match: a run of them
    # is one jump to the nearest step of that row (the jump is idempotent).
    k, end = len(kept) - 1, len(x)
    while remaining:
        i, tok, m = kept[k]
        row = rows[k]
        if i + 1 < end:  # rows i+2..end are absent tokens with this row's value
            j = (~row & ((1 << j) - 1)).bit_length()
        j = ((~row | m) & ((1 << j) - 1)).bit_length()
        if tok == ys[j - 1]:
            out.add(tok)
            j -= 1
            remaining -= 1
        end, k = i, k - 1


def _recall(hyp: list[_Sentence], ref: list[list[str]]) -> float:
    ref_vocab = {tok for sent in ref for tok in sent}
    union: set[str] = set()
    for ref_sent in ref:
        ref_set = set(ref_sent)
        for hyp_sent in hyp:
            common = ref_set & hyp_sent.vocab
            if common and not common <= union:  # an LCS only adds common tokens
                _lcs_tokens(ref_sent, hyp_sent, union)
        if len(union) == len(ref_vocab):
            break
    return len(union) / len(ref_vocab)


def _as_list(references: list[str] | tuple[str, ...] | str) -> list[str] | tuple[str, ...]:
    return [references] if isinstance(references, str) else references


def _best_recall(hyp: list[_Sentence], references, lang: str) -> float:
    best = 0.0
    if hyp:
        for reference in references:
            ref = _sentences(reference, lang)
            if ref:
                best = max(best, _recall(hyp, ref))
    return best


def rouge_l(prediction: str, references: list[str] | tuple[str, ...] | str, lang: str = "en") -> float:
    """Paper-faithful ROUGE-L recall of ``prediction``, max over ``references``.

    An empty prediction (or one made only of dots and spaces) scores 0.0, where pltrdy
    would raise; so does a reference without tokens.
    """
    hyp = [_Sentence(tokens) for tokens in _sentences(prediction, lang)]
    return _best_recall(hyp, _as_list(references), lang)


# ----------------------------------------------------------------- conventional ROUGE-L F

_CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
_TOKEN = {  # by the catalogue's language `tokens`
    "words": re.compile("[a-z0-9]+"),  # Google rouge_score's default tokenizer, without stemming
    "characters": re.compile(f"[{_CJK_RANGES}]|[^\\W_{_CJK_RANGES}]+"),  # each CJK ideograph is a token
}


def f_tokens(text: str, lang: str = "en") -> list[str]:
    """Tokens of the conventional ROUGE-L: lowercased runs of letters/digits (zh: plus ideographs)."""
    return _TOKEN[token_unit(lang)].findall(text.lower())


def _lcs_length(x: list[str], masks: dict[str, int], full: int) -> int:
    """Length of the longest common subsequence of x and the sequence behind ``masks``, bit-parallel."""
    v = full
    for mask in [m for m in map(masks.get, x) if m]:  # a token absent from the other side leaves v as it is
        u = v & mask
        v = ((v + u) | (v - u)) & full
    return full.bit_length() - v.bit_count()


def _best_f(pred: list[str], references, lang: str) -> float:
    if not pred:
        return 0.0
    masks, full, best = _masks(pred), (1 << len(pred)) - 1, 0.0
    for reference in references:
        ref = f_tokens(reference, lang)
        if ref and (lcs := _lcs_length(ref, masks, full)):
            precision, recall = lcs / len(pred), lcs / len(ref)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def rouge_l_f(prediction: str, references: list[str] | tuple[str, ...] | str, lang: str = "en") -> float:
    """ROUGE-L F-measure as Google ``rouge_score`` computes it (no stemming), max over references.

    English uses ``rouge_score``'s default tokenizer (which would delete every CJK
    character); Chinese adds each ideograph as a token of its own.
    """
    return _best_f(f_tokens(prediction, lang), _as_list(references), lang)


class ItemScores(NamedTuple):
    """The per-item scores every RoleBench task reports (see :func:`item_scores`)."""

    recall: float  # the paper metric (CUS or SPE), max over references
    f: float  # rougeL_f, max over references
    length: int  # resp_tokens
    raw: float | None = None  # the paper metric against the original answer (RAW), when one was given


def item_scores(prediction: str, references: list[str] | tuple[str, ...], lang: str = "en",
                raw: str | None = None) -> ItemScores:
    """The paper metric, ``rougeL_f``, the answer length (and RAW) of one item, preparing the prediction once.

    Equal to ``(rouge_l(...), rouge_l_f(...), response_tokens(...), rouge_l(prediction, [raw]))``;
    the tasks call this.
    """
    text = _paper_text(prediction, lang)
    hyp = [_Sentence(tokens) for tokens in _pieces(text)]
    return ItemScores(_best_recall(hyp, references, lang), _best_f(f_tokens(prediction, lang), references, lang),
                      len(text.split()), None if raw is None else _best_recall(hyp, [raw], lang))


def response_tokens(prediction: str, lang: str = "en") -> int:
    """Length in the paper metric's tokens: whitespace words (en) or characters (zh)."""
    return len(_paper_text(prediction, lang).split())
