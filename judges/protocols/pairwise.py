"""``pairwise``: the candidate against the baseline, asked in both presentation orders.

Two requests per item: candidate shown first (as answer A), then baseline first. Agreeing
verdicts stand; disagreeing ones are a tie and a position flip. Score: win 1, tie 0.5, loss 0.

An ensemble's outcome is the majority of its members' outcomes; with no majority (one win and
one loss of two members, say) it is a tie, counted. Its item counts as a position flip when any
member's verdict changed with the order. Agreement is measured on the outcomes as categories.
"""

from __future__ import annotations

from collections import Counter

from .. import stats
from ..parsing import ParseError, parse_verdict
from .base import OUTCOME_SCORE, Job, Judgment, VersusBaseline, template_variables


class Pairwise(VersusBaseline):
    name = "pairwise"
    detail = "position_flip_rate"
    ensemble_rule = ("the outcome (win, tie, loss) more than half of the members give, among those whose reply "
                     "parsed; no such majority (an even split): a tie, counted in n_ensemble_ties; a flip when "
                     "any member's verdict changed with the order")
    agreement_level = "nominal"

    def requests(self, judge, job: Job) -> list:
        item = job.item
        common = template_variables(item)
        return [judge.render(**common, answer_a=item.candidate, answer_b=item.baseline),
                judge.render(**common, answer_a=item.baseline, answer_b=item.candidate)]

    def parse(self, judge, job: Job, texts: list[str]) -> list[Judgment]:
        outcomes = []
        for order, text in enumerate(texts):
            try:
                verdict = parse_verdict(text)
            except ParseError as err:
                shown = "candidate first" if order == 0 else "baseline first"
                return [Judgment(error=f"{shown}: {err}")]
            if verdict == "C":
                outcomes.append("tie")
            else:
                candidate_won = (verdict == "A") == (order == 0)
                outcomes.append("win" if candidate_won else "loss")
        flip = outcomes[0] != outcomes[1]
        final = "tie" if flip else outcomes[0]
        return [Judgment(value={"orders": outcomes, "outcome": final}, score=OUTCOME_SCORE[final],
                         extra={"flip": flip})]

    def combine(self, judge, judged: list[dict]) -> tuple[dict, bool]:
        votes = Counter(r["value"]["outcome"] for r in judged)
        top, count = votes.most_common(1)[0]
        tied = 2 * count <= len(judged)
        outcome = "tie" if tied else top
        return {"value": {"outcome": outcome, "votes": dict(sorted(votes.items()))}, "score": OUTCOME_SCORE[outcome],
                "flip": any(r["flip"] for r in judged)}, tied

    def statistics(self, parsed: list[dict], judge) -> dict:
        return {**super().statistics(parsed, judge), "position_flip_rate": stats.rate([r["flip"] for r in parsed])}


PROTOCOL = Pairwise()
