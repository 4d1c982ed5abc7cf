"""The three judging protocols: which requests an item needs, and what the answers mean.

* ``pairwise``: two requests, candidate shown first then baseline first. Agreeing verdicts
  stand; disagreeing ones are a tie and a position flip. Score: win 1, tie 0.5, loss 0.
* ``rank``: one request with the RoleLLM ranking prompt over the two answers, shown in an
  order fixed per item by a hash of (role, question). Score as above, from the ranks.
* ``rubric``: one request grading the candidate alone; score = mean of the criteria.

The judge sees the role name and the role prompt the candidate was given (the doc's
``system_prompt``, which holds the role description when the dataset has one), the
question, and for role-specific items the reference answer. Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from rolebench_eval.prompts import render_question

from .config import Judge
from .parsing import ParseError, parse_ranking, parse_rubric, parse_verdict

CANDIDATE, BASELINE = "candidate", "baseline"
_OUTCOME = {"win": 1.0, "tie": 0.5, "loss": 0.0}


@dataclass(frozen=True)
class Item:
    """One (role, question) to judge: the candidate's answer and the baseline's."""

    doc_id: int
    role: str
    question: str
    lang: str
    kind: str
    references: tuple[str, ...]
    role_prompt: str
    candidate: str
    baseline: str | None


@dataclass
class Judgment:
    """The meaning of a judge's answer(s) for one item; ``value`` is None on a parse failure.

    Attributes:
        value: the parsed label (verdicts, ranks or rubric scores), or None.
        score: the number statistics use (win 1 / tie 0.5 / loss 0; rubric mean), or None.
        error: why parsing failed, or None.
        flip: pairwise only: the two presentation orders disagreed.
        rank: rank only: the candidate's rank.
        character_break: rubric only: the flag.
    """

    value: Any = None
    score: float | None = None
    error: str | None = None
    flip: bool | None = None
    rank: int | None = None
    character_break: bool | None = None


def _common(item: Item) -> dict:
    reference = item.references[0] if item.kind == "specific" and item.references else None
    return {"role": item.role, "role_prompt": item.role_prompt, "question": render_question(item.question),
            "reference": reference.strip() if reference else None, "lang": item.lang, "kind": item.kind}


def candidate_first(item: Item) -> bool:
    """The rank protocol's presentation order for ``item`` (stable across runs)."""
    digest = hashlib.sha256(f"{item.role}\n{item.question}".encode("utf-8")).digest()
    return digest[0] % 2 == 0


def requests_for(judge: Judge, item: Item) -> list[list[dict[str, str]]]:
    """The chat requests the judge needs for ``item`` (the baseline must exist unless rubric)."""
    common = _common(item)
    if judge.protocol == "rubric":
        low, high = judge.rubric["scale"]
        return [judge.render(**common, answer=item.candidate, criteria=judge.rubric["criteria"],
                             scale_min=low, scale_max=high)]
    if item.baseline is None:
        raise ValueError(f"doc {item.doc_id}: no baseline answer to compare with")
    if judge.protocol == "pairwise":
        return [judge.render(**common, answer_a=item.candidate, answer_b=item.baseline),
                judge.render(**common, answer_a=item.baseline, answer_b=item.candidate)]
    first, second = (item.candidate, item.baseline) if candidate_first(item) else (item.baseline, item.candidate)
    answers = [{"model": "model_1", "answer": first}, {"model": "model_2", "answer": second}]
    return [judge.render(**common, answers=answers)]


def _pairwise(texts: list[str]) -> Judgment:
    outcomes = []
    for order, text in enumerate(texts):
        try:
            verdict = parse_verdict(text)
        except ParseError as err:
            shown = "candidate first" if order == 0 else "baseline first"
            return Judgment(error=f"{shown}: {err}")
        if verdict == "C":
            outcomes.append("tie")
        else:
            candidate_won = (verdict == "A") == (order == 0)
            outcomes.append("win" if candidate_won else "loss")
    flip = outcomes[0] != outcomes[1]
    final = "tie" if flip else outcomes[0]
    return Judgment(value={"orders": outcomes, "outcome": final}, score=_OUTCOME[final], flip=flip)


def _rank(item: Item, text: str) -> Judgment:
    try:
        ranks = parse_ranking(text, ["model_1", "model_2"])
    except ParseError as err:
        return Judgment(error=str(err))
    cand_label = "model_1" if candidate_first(item) else "model_2"
    base_label = "model_2" if cand_label == "model_1" else "model_1"
    cand, base = ranks[cand_label], ranks[base_label]
    outcome = "win" if cand < base else "tie" if cand == base else "loss"
    value = {CANDIDATE: cand, BASELINE: base, "candidate_label": cand_label, "outcome": outcome}
    return Judgment(value=value, score=_OUTCOME[outcome], rank=cand)


def _rubric(judge: Judge, text: str) -> Judgment:
    rubric = judge.rubric
    try:
        parsed = parse_rubric(text, rubric["criteria"], tuple(rubric["scale"]), rubric["flag"])
    except ParseError as err:
        return Judgment(error=str(err))
    scores = [parsed[c] for c in rubric["criteria"]]
    return Judgment(value=parsed, score=sum(scores) / len(scores), character_break=parsed[rubric["flag"]])


def judge_item(judge: Judge, item: Item, texts: list[str]) -> Judgment:
    """Parse the judge's answers to :func:`requests_for` (same order) into a :class:`Judgment`."""
    if judge.protocol == "pairwise":
        return _pairwise(texts)
    if judge.protocol == "rank":
        return _rank(item, texts[0])
    return _rubric(judge, texts[0])
