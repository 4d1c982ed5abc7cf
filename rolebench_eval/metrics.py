"""RoleBench metrics: the paper-faithful ROUGE-L recall, a conventional ROUGE-L F, length.

``rouge_l`` reproduces, value for value, ``Rouge().get_scores(hyp, ref)[0]["rouge-l"]["r"]``
of the PyPI package ``rouge`` 1.0.1 (pltrdy), which is what reproduces the paper's numbers
(PAPER.md 2.2): sentences split on ".", whitespace tokens, case-sensitive, summary-level
union LCS over *distinct* tokens, divided by the number of distinct reference tokens.
Chinese text has every non-space character separated by a space first. An item with
several references scores the maximum over them.

The union LCS depends on which LCS the backtrack picks, so the backtrack follows
pltrdy's exactly (diagonal on a match, else up when strictly longer, else left); the
table behind it is computed bit-parallel (Hyyro 2004), one machine word op per row.
"""

from __future__ import annotations

import re

# ----------------------------------------------------------------- tokenization


def cjk_split(text: str) -> str:
    """Every non-whitespace character becomes its own space-separated token."""
    return " ".join(ch for ch in text if not ch.isspace())


def _sentences(text: str, lang: str) -> list[list[str]]:
    """pltrdy's preprocessing: split on ".", drop empty pieces, squeeze whitespace."""
    if lang == "zh":
        text = cjk_split(text)
    return [" ".join(piece.split()).split(" ") for piece in text.split(".") if piece]


# ----------------------------------------------------------------- union LCS


class _Sentence:
    """A hypothesis sentence, prepared once: tokens, token set and per-token match masks."""

    __slots__ = ("tokens", "vocab", "masks", "full")

    def __init__(self, tokens: list[int]):
        self.tokens = tokens
        self.vocab = set(tokens)
        self.masks: dict[int, int] = {}
        for pos, tok in enumerate(tokens):
            self.masks[tok] = self.masks.get(tok, 0) | (1 << pos)
        self.full = (1 << len(tokens)) - 1


def _lcs_tokens(x: list[int], y: _Sentence, out: set[int]) -> None:
    """Add to ``out`` the tokens of x on pltrdy's backtracked LCS of x and y."""
    full, masks = y.full, y.masks
    rows = [full]  # rows[i]: zero bits mark where row i of the LCS table steps up
    v = full
    for tok in x:
        u = v & masks.get(tok, 0)
        v = ((v + u) | (v - u)) & full
        rows.append(v)
    ys = y.tokens
    i = len(x)
    j = len(ys)
    remaining = j - v.bit_count()  # table[len(x)][len(y)]: LCS tokens still to collect
    # Without a match at (i, j), pltrdy goes up iff table[i-1][j] > table[i][j-1], which
    # holds exactly when row i steps up at column j (a zero bit). So from (i, j) it walks
    # left to the nearest column that is a step of row i or a match of x[i-1]: one jump.
    while remaining:
        tok = x[i - 1]
        j = ((~rows[i] | masks.get(tok, 0)) & ((1 << j) - 1)).bit_length()
        if tok == ys[j - 1]:
            out.add(tok)
            j -= 1
            remaining -= 1
        i -= 1


def _encode(sentences: list[list[str]], vocab: dict[str, int]) -> list[list[int]]:
    return [[vocab.setdefault(tok, len(vocab)) for tok in sent] for sent in sentences]


def _recall(hyp: list[_Sentence], ref: list[list[int]]) -> float:
    ref_vocab = {tok for sent in ref for tok in sent}
    union: set[int] = set()
    for ref_sent in ref:
        ref_set = set(ref_sent)
        for hyp_sent in hyp:
            common = ref_set & hyp_sent.vocab
            if common and not common <= union:  # an LCS only adds common tokens
                _lcs_tokens(ref_sent, hyp_sent, union)
        if len(union) == len(ref_vocab):
            break
    return len(union) / len(ref_vocab)


def rouge_l(prediction: str, references: list[str] | tuple[str, ...] | str, lang: str = "en") -> float:
    """Paper-faithful ROUGE-L recall of ``prediction``, max over ``references``.

    An empty prediction (or one made only of dots and spaces) scores 0.0, where pltrdy
    would raise; so does a reference without tokens.
    """
    if isinstance(references, str):
        references = [references]
    vocab: dict[str, int] = {}
    hyp = [_Sentence(tokens) for tokens in _encode(_sentences(prediction, lang), vocab)]
    if not hyp:
        return 0.0
    best = 0.0
    for reference in references:
        ref = _encode(_sentences(reference, lang), vocab)
        if ref:
            best = max(best, _recall(hyp, ref))
    return best


# ----------------------------------------------------------------- conventional ROUGE-L F

_CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
_TOKEN = {
    "en": re.compile("[a-z0-9]+"),  # Google rouge_score's default tokenizer, without stemming
    "zh": re.compile(f"[{_CJK_RANGES}]|[^\\W_{_CJK_RANGES}]+"),  # each CJK ideograph is a token
}


def f_tokens(text: str, lang: str = "en") -> list[str]:
    """Tokens of the conventional ROUGE-L: lowercased runs of letters/digits (zh: plus ideographs)."""
    return _TOKEN["zh" if lang == "zh" else "en"].findall(text.lower())


def _lcs_length(x: list[int], y: list[int]) -> int:
    """Length of the longest common subsequence, bit-parallel over y."""
    masks: dict[int, int] = {}
    for pos, tok in enumerate(y):
        masks[tok] = masks.get(tok, 0) | (1 << pos)
    full = v = (1 << len(y)) - 1
    for tok in x:
        u = v & masks.get(tok, 0)
        v = ((v + u) | (v - u)) & full
    return len(y) - v.bit_count()


def rouge_l_f(prediction: str, references: list[str] | tuple[str, ...] | str, lang: str = "en") -> float:
    """ROUGE-L F-measure as Google ``rouge_score`` computes it (no stemming), max over references.

    English uses ``rouge_score``'s default tokenizer (which would delete every CJK
    character); Chinese adds each ideograph as a token of its own.
    """
    if isinstance(references, str):
        references = [references]
    vocab: dict[str, int] = {}
    pred = [vocab.setdefault(t, len(vocab)) for t in f_tokens(prediction, lang)]
    best = 0.0
    for reference in references:
        ref = [vocab.setdefault(t, len(vocab)) for t in f_tokens(reference, lang)]
        if pred and ref and (lcs := _lcs_length(ref, pred)):
            precision, recall = lcs / len(pred), lcs / len(ref)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def response_tokens(prediction: str, lang: str = "en") -> int:
    """Length in the paper metric's tokens: whitespace words (en) or characters (zh)."""
    text = cjk_split(prediction) if lang == "zh" else prediction
    return len(text.split())
