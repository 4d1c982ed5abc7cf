"""``pairwise``: the candidate against the baseline, asked in both presentation orders.

Two requests per item: candidate shown first (as answer A), then baseline first. Agreeing
verdicts stand; disagreeing ones are a tie and a position flip. Score: win 1, tie 0.5, loss 0.
"""

from __future__ import annotations

from .. import stats
from ..parsing import ParseError, parse_verdict
from .base import OUTCOME_SCORE, Job, Judgment, VersusBaseline, template_variables


class Pairwise(VersusBaseline):
    name = "pairwise"
    detail = "position_flip_rate"

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

    def statistics(self, parsed: list[dict], judge) -> dict:
        return {**super().statistics(parsed, judge), "position_flip_rate": stats.rate([r["flip"] for r in parsed])}


PROTOCOL = Pairwise()
