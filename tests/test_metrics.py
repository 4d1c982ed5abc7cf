"""Metrics: hand-computed cases, agreement with pltrdy `rouge`, and the paper's numbers."""

from __future__ import annotations

import json
import random

import pytest
from rouge import Rouge

from rolebench_eval.metrics import cjk_split, item_scores, response_tokens, rouge_l, rouge_l_f

_PLTRDY = Rouge(metrics=["rouge-l"], stats=["r"])


def pltrdy_recall(prediction: str, reference: str, lang: str = "en") -> float:
    if lang == "zh":
        prediction, reference = cjk_split(prediction), cjk_split(reference)
    return _PLTRDY.get_scores(prediction, reference)[0]["rouge-l"]["r"]


# (prediction, references, lang, expected): each expected value worked out by hand.
CASES = [
    ("the cat sat", ["the cat sat"], "en", 1.0),
    ("", ["the cat sat"], "en", 0.0),  # empty prediction: 0, where pltrdy raises
    (" ... ", ["the cat sat"], "en", 0.0),  # only dots and spaces: no sentence at all
    ("The cat", ["the cat"], "en", 0.5),  # case-sensitive: only "cat" matches
    ("cat, sat", ["cat sat"], "en", 0.5),  # punctuation stays attached: "cat," != "cat"
    ("c d. a b.", ["a b. c d."], "en", 1.0),  # summary-level union over sentences
    ("a b c d", ["a b. c d."], "en", 1.0),
    ("a", ["a a b"], "en", 0.5),  # distinct reference tokens: {a, b}
    ("a b", ["x y", "a b", "a z"], "en", 1.0),  # max over references
    ("q", ["x y"], "en", 0.0),
    ("大海很大", ["大海很大"], "zh", 1.0),  # identical Chinese is 1, not OpenCompass's 0
    ("大海", ["大海很大"], "zh", 2 / 3),  # distinct characters {大, 海, 很}
    ("海大", ["大海"], "zh", 0.5),
    ("", ["大海"], "zh", 0.0),
    ("大海 is big", ["大海isbig"], "zh", 1.0),  # zh splits every non-space character
]


@pytest.mark.parametrize("prediction,references,lang,expected", CASES)
def test_rouge_l_hand_computed(prediction, references, lang, expected):
    assert rouge_l(prediction, references, lang) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("prediction,references,lang,expected", [c for c in CASES if c[0].strip(" .")])
def test_hand_cases_agree_with_pltrdy(prediction, references, lang, expected):
    assert max(pltrdy_recall(prediction, r, lang) for r in references) == pytest.approx(expected, abs=1e-12)


def test_reference_without_tokens_scores_zero():
    assert rouge_l("a b", [" . ", "a"], "en") == 1.0
    assert rouge_l("a b", ["..."], "en") == 0.0


def _random_text(rng: random.Random, vocab: list[str]) -> str:
    words = [rng.choice(vocab) for _ in range(rng.randint(1, 25))]
    return " ".join(w if rng.random() > 0.15 else w + "." for w in words)


def test_random_texts_equal_pltrdy_exactly():
    """Small vocabularies make many LCS ties: the backtrack must break them like pltrdy."""
    rng = random.Random(1234)
    for trial in range(1500):
        vocab = [chr(97 + i) for i in range(rng.randint(2, 6))]
        hyp, ref = _random_text(rng, vocab), _random_text(rng, vocab)
        if not hyp.replace(".", "").strip() or not ref.replace(".", "").strip():
            continue
        assert rouge_l(hyp, [ref]) == pltrdy_recall(hyp, ref), (trial, hyp, ref)


def test_long_sentences_beyond_pltrdy_recursion():
    """pltrdy recurses once per token; ours handles a 3000-token sentence."""
    text = " ".join(f"w{i % 50}" for i in range(3000))
    assert rouge_l(text, [text]) == 1.0


def _rouge_score_f(prediction, references, lang):
    from rouge_score import rouge_scorer

    from rolebench_eval.metrics import f_tokens

    class Tokenizer:  # rouge_score's own tokenizer for en; ours for zh (its own deletes CJK)
        def tokenize(self, text):
            return f_tokens(text, "zh")

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=Tokenizer() if lang == "zh" else None)
    return max(scorer.score(ref, prediction)["rougeL"].fmeasure for ref in references)


def test_rouge_l_f_equals_rouge_score_on_random_text():
    rng = random.Random(99)
    words = ["The", "cat", "sat", "on", "mat", "mat.", "Cat,", "42", "état", "don't", "大海", "很", "—"]
    for _ in range(400):
        pred = " ".join(rng.choice(words) for _ in range(rng.randint(0, 20)))
        refs = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 20))) for _ in range(rng.randint(1, 3))]
        for lang in ("en", "zh"):
            assert rouge_l_f(pred, refs, lang) == _rouge_score_f(pred, refs, lang), (pred, refs, lang)


def test_rouge_l_f_chinese_is_cjk_aware():
    assert rouge_l_f("大海很大", ["大海很大"], "zh") == 1.0
    assert rouge_l_f("大海", ["大海很大"], "zh") == pytest.approx(2 * (1 * 0.5) / 1.5)
    assert rouge_l_f("AI 大海", ["ai大海"], "zh") == 1.0  # latin words stay words, lowercased


def test_response_tokens():
    assert response_tokens("Aye, lad.  Fair winds!") == 4
    assert response_tokens("大海 很大。", "zh") == 5
    assert response_tokens("大海 很大。", "en") == 2
    assert response_tokens("") == 0


# ------------------------------------------------------------------ real data


def _pairs(root, split_dir):
    base = {}
    with open(root / split_dir / "rolegpt_baseline.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            base[(row["role"], row["question"])] = row["generated"][0]
    with open(root / split_dir / "test.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [(base[(r["role"], r["question"])], r["generated"]) for r in rows if (r["role"], r["question"]) in base]


@pytest.mark.integration
@pytest.mark.parametrize("split_dir,lang,paper", [
    ("rolebench-eng/instruction-generalization/role_specific", "en", 0.3229),
    ("rolebench-zh/role_specific", "zh", 0.2478),
    ("rolebench-zh/general", "zh", None),
    ("rolebench-eng/role-generalization/role_specific", "en", None),
])
def test_real_data_equals_pltrdy_on_every_pair(real_data_dir, split_dir, lang, paper):
    pairs = _pairs(real_data_dir, split_dir)
    assert pairs
    scores = []
    for hyp, refs in pairs:
        per_ref = [rouge_l(hyp, [ref], lang) for ref in refs]
        assert per_ref == [pltrdy_recall(hyp, ref, lang) for ref in refs], (hyp[:60], refs[0][:60])
        scores.append(max(per_ref))
        assert rouge_l(hyp, refs, lang) == max(per_ref)
    for hyp, refs in pairs[:100]:  # rouge_score is slow; a slice is enough for the F-measure
        assert rouge_l_f(hyp, refs, lang) == _rouge_score_f(hyp, refs, lang)
    if paper is not None:
        assert round(sum(scores) / len(scores), 4) == paper


def test_item_scores_equal_the_three_metrics():
    rng = random.Random(7)
    vocab = ["the", "sea", "The", "ship,", "sails", "大海", "很", "蓝", "a", "b"]
    for _ in range(300):
        pred = _random_text(rng, vocab) if rng.random() > 0.05 else ""
        refs = [_random_text(rng, vocab) for _ in range(rng.randint(1, 5))]
        for lang in ("en", "zh"):
            raw = refs[0] if rng.random() > 0.5 else None
            scores = item_scores(pred, refs, lang, raw)
            assert scores == (rouge_l(pred, refs, lang), rouge_l_f(pred, refs, lang), response_tokens(pred, lang),
                              None if raw is None else rouge_l(pred, [raw], lang))
