"""``rubric``: the candidate's answer graded alone (no baseline) on named criteria.

One request per item; the judge replies with a JSON object of integer scores on a fixed
scale and a boolean flag (the answer breaks character). Score = mean of the criteria.
Settings (config section ``rubric``): ``criteria`` (the JSON keys), ``scale`` [low, high]
and ``flag`` (the key of the boolean).

An ensemble's scores are the means of its members' per criterion; the answer is out of character
when more than half of the members say so. Agreement is measured on the item's mean score.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import stats
from ..errors import JudgeConfigError
from ..parsing import ParseError, parse_rubric
from .base import Job, Judgment, Protocol, check_keys, template_variables


class Rubric(Protocol):
    name = "rubric"
    needs_baseline = False
    detail = "character_break_rate"
    ensemble_rule = ("the mean of the members' scores on each criterion (members whose reply parsed); out of "
                     "character when more than half of them say so (an even split: not, counted in "
                     "n_ensemble_ties)")

    flagged = True  # the settings name a boolean flag (``flag``) the judge sets beside the scores

    def check_settings(self, where: Path, section: Any) -> dict:
        name = self.name
        rubric = check_keys(where, name, section, {"criteria", "scale"} | ({"flag"} if self.flagged else set()))
        criteria, scale = rubric.get("criteria"), rubric.get("scale")
        if not (isinstance(criteria, list) and criteria and all(isinstance(c, str) for c in criteria)):
            raise JudgeConfigError(where, None, f"{name}.criteria", "expected a non-empty list of names")
        if not (isinstance(scale, list) and len(scale) == 2 and all(isinstance(s, int) for s in scale)
                and scale[0] < scale[1]):
            raise JudgeConfigError(where, None, f"{name}.scale", "expected [low, high] integers with low < high")
        if self.flagged and not isinstance(rubric.get("flag"), str):
            raise JudgeConfigError(where, None, f"{name}.flag", "expected the name of the boolean flag")
        return rubric

    def requests(self, judge, job: Job) -> list:
        item, rubric = job.item, judge.settings
        low, high = rubric["scale"]
        return [judge.render(**template_variables(item), answer=item.candidate, criteria=rubric["criteria"],
                             scale_min=low, scale_max=high)]

    def parse(self, judge, job: Job, texts: list[str]) -> list[Judgment]:
        rubric = judge.settings
        try:
            parsed = parse_rubric(texts[0], rubric["criteria"], tuple(rubric["scale"]), rubric["flag"])
        except ParseError as err:
            return [Judgment(error=str(err))]
        scores = [parsed[c] for c in rubric["criteria"]]
        return [Judgment(value=parsed, score=sum(scores) / len(scores),
                         extra={"character_break": parsed[rubric["flag"]]})]

    def combine(self, judge, judged: list[dict]) -> tuple[dict, bool]:
        rubric = judge.settings
        value = {c: stats.mean([r["value"][c] for r in judged]) for c in rubric["criteria"]}
        flags = sum(1 for r in judged if r["character_break"])
        value[rubric["flag"]] = 2 * flags > len(judged)
        return {"value": value, "score": stats.mean([r["score"] for r in judged]),
                "character_break": value[rubric["flag"]]}, 2 * flags == len(judged)

    def statistics(self, parsed: list[dict], judge) -> dict:
        scores = [r["score"] for r in parsed]
        means = {c: stats.mean([r["value"][c] for r in parsed]) for c in judge.settings["criteria"]}
        means["overall"] = stats.mean(scores)
        ci = stats.bootstrap_ci(scores)
        return {"rubric_means": means if parsed else None, "rubric_ci95": {"overall": ci} if ci else None,
                "character_break_rate": stats.rate([r["character_break"] for r in parsed])}

    def rouge_agreement(self, parsed: list[dict]) -> tuple[float | None, str]:
        return (stats.kendall_tau([r["score"] for r in parsed], [r["rouge_candidate"] for r in parsed]),
                "kendall_tau_b(rubric mean score, ROUGE-L recall of the candidate)")

    def table_cells(self, summary: dict) -> tuple:
        return ((summary.get("rubric_means") or {}).get("overall"),
                (summary.get("rubric_ci95") or {}).get("overall"), None, summary.get("character_break_rate"))


PROTOCOL = Rubric()
