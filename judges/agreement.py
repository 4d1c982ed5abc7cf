"""Agreement with people (judge health, (b)): labelled answers as a judge judges runs, and the comparison.

The ``pairwise`` judge asks each pair of a label's answers in both orders (its verdict for the first
answer is the candidate's: win is "A"); the ``rank`` judge ranks all of a label's answers in one prompt
(the last answer is the baseline, the others candidates named ``answer 1``, ``answer 2``, ...). Either
way each pair of answers becomes the judge's A / B / tie, set beside the person's
(:func:`.health.agreement_numbers`).
"""

from __future__ import annotations

from pathlib import Path

from rolebench_eval.errors import InputError
from rolebench_eval.outputs import health as schema

from . import health, stats
from .protocols import Item, Job, Unit

PAIRWISE_OUTCOME = {"win": "A", "loss": "B", "tie": "tie"}  # the first answer of the pair is the candidate


def _label_item(label: schema.HumanLabel, line: int, first: str, second: str) -> Item:
    reference = label.reference
    return Item(doc_id=line, role=label.role, question=label.question, lang=label.lang,
                kind="specific" if reference else "general", references=(reference,) if reference else (),
                role_prompt="", candidate=first, baseline=second, description=label.description)


def jobs(judge, labels: list[tuple[int, schema.HumanLabel]], path: Path) -> list[Job]:
    """One job per pair of answers (pairwise judge) or per label (rank judge)."""
    made = []
    for line, label in labels:
        answers = label.answers
        if judge.protocol == "pairwise":
            made += [Job([(None, _label_item(label, line, answers[i], answers[j]))])
                     for i in range(len(answers)) for j in range(i + 1, len(answers))]
            continue
        if len(answers) > judge.settings["max_systems"]:
            raise InputError(path, line, "answers", f"{len(answers)} answers to rank in one prompt, more than the "
                             f"{judge.name} judge's max_systems={judge.settings['max_systems']}; use --judge pairwise")
        members = []
        for i, answer in enumerate(answers[:-1]):
            unit = Unit(model=f"answer {i + 1}", task="human labels", path=path,
                        baseline_name=f"answer {len(answers)}", items=[], skipped=[], no_answer=[])
            members.append((unit, _label_item(label, line, answer, answers[-1])))
        made.append(Job(members))
    return made


def _rank_pairs(judgment, n_answers: int) -> list[str] | None:
    """The judge's A / B / tie for each pair of a label's answers, from the ranks it gave (None: not parsed)."""
    if judgment.value is None:
        return None
    rank_of = {entry["system"]: entry["rank"] for entry in judgment.value["shown"]}
    return health.order_pairs([rank_of[f"answer {i + 1}"] for i in range(n_answers)])


def summary(judge, answered: list, labels: list, labels_file: str) -> schema.Agreement:
    """(b) from the judgments of :func:`jobs` (``answered``: per job, (judgments, responses), or None when
    not answered yet: pending), each label's (person, judge) pairs, then the numbers."""
    per_label: dict[int, list] = {}
    flips, pending = [], 0
    humans = [(line, health.human_pairs(label), label) for line, label in labels]
    if judge.protocol == "pairwise":
        expected = [(line, human) for line, pairs, _ in humans for human in pairs]
        for (line, human), done in zip(expected, answered):
            if done is None:
                pending += 1
                continue
            judgment = done[0][0]
            if judgment.value is not None:
                flips.append(judgment.extra["flip"])
            verdict = PAIRWISE_OUTCOME[judgment.value["outcome"]] if judgment.value is not None else None
            per_label.setdefault(line, []).append((human, verdict))
    else:
        for (line, pairs, label), done in zip(humans, answered):
            if done is None:
                pending += len(pairs)
                continue
            judged = _rank_pairs(done[0][0], len(label.answers)) or [None] * len(pairs)
            per_label[line] = list(zip(pairs, judged))
    found = list(per_label.values())
    n_parsed = sum(1 for label in found for _, j in label if j is not None)
    n_pairs = sum(len(label) for label in found) + pending
    return schema.Agreement(
        labels_file=labels_file, judge=judge.name, protocol=judge.protocol, n_labels=len(labels),
        n_pairs=n_pairs, n_parsed=n_parsed, n_parse_failures=n_pairs - pending - n_parsed, n_pending=pending,
        position_flip_rate=stats.rate(flips), method=health.AGREEMENT_METHOD,
        **health.agreement_numbers(found))
