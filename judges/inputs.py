"""What the judge reads: lm-eval samples files as :class:`~.protocols.Unit` s of items to judge.

* Only the newest samples of each (run name, task) are judged; each run left out for a newer
  one of the same name is named in a warning (two folders of one model, say).
* Items are matched across runs (and with another run as baseline) on (role, question,
  occurrence): a split that repeats a question pairs the n-th repeat with the n-th, so a joint
  ranking shows each system once per prompt.
* ``across_variants`` ranks each prompting-study variant (``_fewshot``, ``_dialogue``) with
  its zero-shot task (the paper's Table 7); each run is then one system per variant.
* Items without a baseline or a candidate answer are kept aside and counted, never judged.
* Converse's conversations (the catalogue's live tasks) are read by the conversation judge only, one
  item per conversation; every other judge leaves them out with a warning.
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

from rolebench_eval.catalogue import live_tasks, task_of_split, tasks
from rolebench_eval.data import NO_ROLEGPT_ANSWER
from rolebench_eval.errors import InputError
from rolebench_eval.outputs import UNFINISHED_REASONING, find_runs, latest_samples, read_records
from rolebench_eval.outputs.conversation import read_conversation_samples
from rolebench_eval.prompts import role_prompt

from .config import Judge
from .protocols import Item, Unit

log = logging.getLogger(__name__)
#: The prompting-study families ranked together with ``across_variants``, and their system suffix.
VARIANTS = {"single": "zero-shot", "fewshot": "fewshot", "dialogue": "dialogue"}


def _item(doc_id: int, doc: dict, candidate: str, baseline: str | None, occurrence: int,
          unfinished: bool = False) -> Item:
    return Item(doc_id=doc_id, role=doc["role"], question=doc["question"], lang=doc["lang"], kind=doc["kind"],
                references=tuple(doc["references"]), role_prompt=doc["system_prompt"], candidate=candidate,
                baseline=baseline, description=doc.get("description"), occurrence=occurrence,
                unfinished_reasoning=unfinished)


def occurrences(docs) -> list[tuple[str, str, int]]:
    """(role, question, n) of each doc: n counts the earlier docs with the same raw (role, question).

    Example:
        >>> occurrences([{"role": "R", "question": "q"}, {"role": "R", "question": "p"}, {"role": "R", "question": "q"}])
        [('R', 'q', 0), ('R', 'p', 0), ('R', 'q', 1)]
    """
    seen: dict[tuple[str, str], int] = {}
    keys = []
    for doc in docs:
        pair = (doc["role"], doc["question"])
        keys.append((*pair, seen.get(pair, 0)))
        seen[pair] = seen.get(pair, 0) + 1
    return keys


def _is_no_answer(response: str) -> bool:
    """True for what the ``rolegpt`` replay logs when the dataset has no answer for an item."""
    return response == NO_ROLEGPT_ANSWER


def _samples_of(inputs: Sequence[str | os.PathLike], conversations: bool = False) -> list:
    """The newest samples file of each (run, task) under ``inputs``; unreadable inputs are errors.

    ``conversations``: only converse's conversations (the catalogue's live tasks), else everything but them.
    """
    runs, errors = find_runs(inputs)
    if errors:
        raise errors[0]
    found = latest_samples(runs)
    live = live_tasks()
    where = inputs[0] if len(inputs) == 1 else None
    if conversations:
        found = [f for f in found if f[1] in live]
        if not found:
            raise InputError(where, None, None, "no conversations to judge: the conversation judge reads the "
                             f"samples of rolebench-eval converse (samples_<task>_<date>.jsonl of {', '.join(live)})")
    talks = sorted({task for _, task, _ in found if task in live}) if not conversations else []
    if talks:  # converse's conversations: the conversation judge's, not this one's
        log.warning("not judging %s: conversations of rolebench-eval converse (judge them with --judge conversation)",
                    ", ".join(talks))
        found = [f for f in found if f[1] not in talks]
    if not found:
        raise InputError(where, None, None,
                         "no lm-eval samples_<task>_<date>.jsonl files (was lm-eval run with --log_samples?)"
                         + (" - only conversations, which --judge conversation reads" if talks else ""))
    warn_dropped(runs, found)
    return found


def warn_dropped(runs: Sequence, found: Sequence) -> None:
    """One warning per run left out because a newer run of the same name has its task(s).

    Two folders of one model (with and without a chat template, say) share a run name; only
    the newest samples of each (run name, task) are judged, and the user must hear which. Tasks this
    judge leaves out (the conversations, or all but them) are no run's loss.
    """
    kept = {(run.name, task): path for run, task, path in found}
    for run in runs:
        dropped = sorted(t for t, path in run.samples.items() if kept.get((run.name, t), path) != path)
        if dropped:
            newer = sorted({str(kept[run.name, t]) for t in dropped})
            log.warning("not judging %s (run %s, task(s) %s): the newer run %s has the same run name and "
                        "task(s), and only the newest is judged; to judge the older one, give it alone "
                        "(with another --out)", run.results_path, run.name, ", ".join(dropped), ", ".join(newer))


def baseline_answers(source: str | os.PathLike, task: str) -> tuple[str, dict[tuple[str, str], str]]:
    """Another model's answers for ``task``, keyed by raw (role, question), and its run name."""
    files = [(run, path) for run, t, path in _samples_of([source]) if t == task]
    if not files:
        raise InputError(source, None, None, f"the baseline has no samples for task {task}")
    if len(files) > 1:
        raise InputError(source, None, None, f"several runs have samples for task {task} "
                         f"({', '.join(str(p) for _, p in files)}); point at one model's folder or file")
    run, path = files[0]
    records = read_records(path)
    return run.name, dict(zip(occurrences(r.doc for r in records), (r.response for r in records)))


def ranked_with(task: str) -> tuple[str, str | None]:
    """The task whose items ``task``'s are ranked with across the prompting-study variants, and
    its variant: ``rolebench_specific_en_fewshot`` -> (``rolebench_specific_en``, ``fewshot``).
    Tasks outside the single-turn and study families are ranked alone (variant None).

    Example:
        >>> ranked_with("rolebench_general_zh_dialogue"), ranked_with("rolebench_general_zh")
        (('rolebench_general_zh', 'dialogue'), ('rolebench_general_zh', 'zero-shot'))
    """
    known = tasks(custom=True, family=None).get(task)
    if known is None or known.family not in VARIANTS:
        return task, None
    return task_of_split(known.split.name).name, VARIANTS[known.family]


def check_variants(units: Sequence[Unit], inputs: Sequence[str | os.PathLike]) -> None:
    """``across_variants`` needs a split with two of its variants among the runs (else it would be a
    plain rank, silently): an :class:`InputError` naming the tasks it looked for."""
    found: dict[str, set[str]] = {}
    for unit in units:
        found.setdefault(unit.group or unit.task, set()).add(unit.task)
    if any(len(variants) > 1 for variants in found.values()):
        return
    have = {task for variants in found.values() for task in variants}
    looked = sorted(t for t in tasks(custom=True, family=None) if ranked_with(t)[0] in found and t not in have)
    raise InputError("--across-variants", None, None, "ranks a split's zero-shot, _fewshot and _dialogue runs "
                     f"together, but no split has two of them in {', '.join(map(str, inputs))}: found "
                     f"{', '.join(sorted(have))}; looked for {', '.join(looked) or 'a prompting-study variant'}")


def refuse_identical(units: Sequence[Unit]) -> None:
    """A candidate whose every answer is the baseline's own (the ``rolegpt`` replay against RoleGPT,
    a run given as its own baseline) would pay for a judge to compare identical texts: an
    :class:`InputError` naming its samples file, unless asked for (``allow_identical``)."""
    for unit in units:
        if unit.baseline_name and unit.items and all(
                item.candidate.strip() == (item.baseline or "").strip() for item in unit.items):
            raise InputError(unit.path, None, None, f"every answer of {unit.system} ({len(unit.items)} items of "
                             f"{unit.task}) is the baseline's ({unit.baseline_name}) own, so judging it compares "
                             "identical answers; judge a model's run, or pass --allow-identical to measure the "
                             "judge on identical answers")


def _conversation_item(doc_id: int, row: dict) -> Item:
    """One conversation as the judge is told about it: the character, its scenario, every (user turn, reply)."""
    doc = row["doc"]
    turns = tuple(zip(doc["user_turns"], row["filtered_resps"]))
    role, lang, description = doc["role"], doc["lang"], doc.get("description") or ""
    return Item(doc_id=doc_id, role=role, question=str(doc.get("scenario_id")), lang=lang,
                kind=str(doc.get("scenario_kind")), references=(), role_prompt=role_prompt(role, lang, description),
                candidate="\n\n".join(f"User: {user}\n{role}: {reply}" for user, reply in turns), baseline=None,
                description=description or None, unfinished_reasoning=bool(row.get(UNFINISHED_REASONING)),
                turns=turns)


def conversation_units(inputs: Sequence[str | os.PathLike], limit: int | None = None) -> list[Unit]:
    """One unit per (run, conversations task): its conversations, each one item (a conversation without a
    reply is not in the samples: converse leaves it out)."""
    units = []
    for run, task, path in _samples_of(inputs, conversations=True):
        rows = sorted(read_conversation_samples(path).items())[:limit]
        units.append(Unit(run.name, task, path, None, [_conversation_item(d, row) for d, row in rows], [], []))
    return units


def build_units(inputs: Sequence[str | os.PathLike], judge: Judge, baseline: str,
                limit: int | None = None, across_variants: bool = False) -> list[Unit]:
    """Read every samples file and pair each candidate answer with its baseline answer.

    Items are matched on (role, question, occurrence), so a split that repeats a question
    pairs the n-th repeat with the n-th. ``across_variants`` ranks each study variant
    (``_fewshot``, ``_dialogue``) with its zero-shot task (:func:`ranked_with`): the baseline
    comes from that task, and each run is a system per variant. A conversation judge reads converse's
    conversations instead (:func:`conversation_units`).
    """
    if judge.impl.reads_conversations:
        return conversation_units(inputs, limit)
    units = []
    for run, task, path in _samples_of(inputs):
        samples = read_records(path, limit)
        group, variant = ranked_with(task) if across_variants else (task, None)
        name, answers = None, None
        if judge.impl.needs_baseline:
            if baseline == "rolegpt":
                name = "rolegpt"
            else:
                name, answers = baseline_answers(baseline, group)
        unit = Unit(run.name, task, path, name, [], [], [], group=group, variant=variant)
        for s, key in zip(samples, occurrences(s.doc for s in samples)):
            base = None if name is None else s.doc.get("rolegpt") if answers is None else answers.get(key)
            item = _item(s.doc_id, s.doc, s.response, base, key[2], s.unfinished_reasoning)
            if _is_no_answer(s.response):
                unit.no_answer.append(item)
            elif name is not None and base is None:
                unit.skipped.append(item)
            else:
                unit.items.append(item)
        for what, left_out in (("baseline (" + str(name) + ")", unit.skipped), ("candidate", unit.no_answer)):
            if left_out:
                log.warning("%s: %d of %d items have no %s answer; they are skipped, not judged",
                            path, len(left_out), len(samples), what)
        if unfinished := sum(s.unfinished_reasoning for s in samples):
            log.warning("%s: unfinished_reasoning: %d of %d items (the reasoning never closed); their answer is "
                        "empty and is judged as such", path, unfinished, len(samples))
        units.append(unit)
    if across_variants:
        check_variants(units, inputs)
    return units
