"""``conversation``: one whole conversation of ``rolebench-eval converse`` graded alone, 1-10 per criterion.

It reads the conversations tasks (the catalogue's ``live_tasks``; every other judge leaves them out): one
request per conversation, showing the character's name and description and every user turn with the
model's reply (its reasoning cut). The judge replies with a JSON object giving each criterion (config
section ``conversation``: ``criteria``, ``scale``) an integer score and a reason, parsed strictly
(:func:`~..parsing.parse_scored_reasons`): a reply that does not parse is None and counted, never a
score. Score = the mean of the criteria; the summary gives their means and the overall mean with its
bootstrap interval over conversations, as the rubric's. No baseline and no reference (so no ROUGE
agreement): the per-turn break rate and SPE of the conversation are converse's own columns.

An ensemble's scores are the means of its members' per criterion (the reasons stay each member's own).
"""

from __future__ import annotations

from .. import stats
from ..parsing import ParseError, parse_scored_reasons
from .base import Job, Judgment
from .rubric import Rubric


class Conversation(Rubric):
    name = "conversation"
    reads_conversations = True
    flagged = False
    detail = None
    ensemble_rule = "the mean of the members' scores on each criterion (members whose reply parsed)"

    def requests(self, judge, job: Job) -> list:
        item, settings = job.item, judge.settings
        low, high = settings["scale"]
        return [judge.render(role=item.role, description=(item.description or "").strip() or item.role,
                             role_prompt=item.role_prompt, lang=item.lang, kind=item.kind,
                             turns=[{"user": user, "reply": reply} for user, reply in item.turns],
                             criteria=settings["criteria"], scale_min=low, scale_max=high)]

    def parse(self, judge, job: Job, texts: list[str]) -> list[Judgment]:
        settings = judge.settings
        try:
            parsed = parse_scored_reasons(texts[0], settings["criteria"], tuple(settings["scale"]))
        except ParseError as err:
            return [Judgment(error=str(err))]
        return [Judgment(value=parsed, score=stats.mean([parsed[c] for c in settings["criteria"]]))]

    def combine(self, judge, judged: list[dict]) -> tuple[dict, bool]:
        value = {c: stats.mean([r["value"][c] for r in judged]) for c in judge.settings["criteria"]}
        return {"value": value, "score": stats.mean([r["score"] for r in judged])}, False

    def statistics(self, parsed: list[dict], judge) -> dict:
        scores = [r["score"] for r in parsed]
        means = {c: stats.mean([r["value"][c] for r in parsed]) for c in judge.settings["criteria"]}
        ci = stats.bootstrap_ci(scores)
        return {"rubric_means": {**means, "overall": stats.mean(scores)} if parsed else None,
                "rubric_ci95": {"overall": ci} if ci else None}

    def rouge_agreement(self, parsed: list[dict]) -> tuple[float | None, str | None]:
        return None, None

    def table_cells(self, summary: dict) -> tuple:
        return ((summary.get("rubric_means") or {}).get("overall"),
                (summary.get("rubric_ci95") or {}).get("overall"), None, None)


PROTOCOL = Conversation()
