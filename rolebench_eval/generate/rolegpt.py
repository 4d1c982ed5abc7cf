"""RoleGPT for your own character: general instructions answered in character (PAPER.md 5.4).

Each request is the paper's few-shot *dialogue* engineering:

1. a system message: :func:`rolebench_eval.prompts.role_prompt` (the RoleGPT role prompt,
   the same one the evaluation tasks use) with the description of
   :func:`rolebench_eval.generate.profile.role_description`: the profile's description followed by
   ``Your catchphrases are: "A", "B"`` (Chinese: ``你的口头禅是：“A”、“B”``);
2. the ``top_k`` dialogue pairs of the profile most similar to the instruction (BM25,
   :mod:`rolebench_eval.generate.retrieval`), best first, as alternating user/assistant turns;
3. the instruction as the last user turn.

Every instruction is sampled ``samples`` times (paper: 6, temperature 0.7, top_p 0.95).
Samples 1 to ``samples - 1`` are the references of ``general/{train,test}.jsonl``; the
last one is the RoleGPT baseline answer (``general/rolegpt_baseline.jsonl``).

Every answer received is kept or dropped for one reason (:class:`~.filters.Tally`), in
this order: its instruction is ``incomplete`` (a sample is missing: the run stopped; a
rerun finishes it), it is ``empty``, it ``breaks_character`` or is a ``refusal``
(``generate/prompts/filters.yaml``), all the instruction's samples are
``identical_samples`` (the first is kept as a reference, the baseline is dropped: a copy
is not a second opinion), it is a ``duplicate`` of a kept reference, or (the baseline) the
instruction kept ``no_reference`` and is not written. Identical samples at temperature > 0
mean the endpoint does not sample (``transformers serve`` ignores ``temperature`` unless the
model's generation config samples): the run warns once.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from pathlib import Path

from rolebench_eval.data import RoleBenchDataError
from rolebench_eval.fileio import read_jsonl
from rolebench_eval.llm.client import Messages
from rolebench_eval.prompts import role_prompt

from .common import GenerateError, GenerateOptions, GenerationResult, ask
from .filters import Filters, Tally, load_filters
from .folder import batch_record, check_folder, nothing_written, split_rows, write_role
from .profile import DialoguePair, Profile, all_dialogues, load_profile, role_description
from .retrieval import DialogueIndex

log = logging.getLogger(__name__)
DEFAULT_MAX_NEW_TOKENS = 512
REFERENCE_REASONS = ("incomplete", "empty", "breaks_character", "refusal", "identical_samples", "duplicate")
BASELINE_REASONS = ("incomplete", "empty", "breaks_character", "refusal", "identical_samples", "no_reference")


def read_instructions(path: str | os.PathLike) -> tuple[list[str], int]:
    """Instructions from JSONL rows with ``instruction`` (or ``question``); returns them and the repeats dropped.

    Raises:
        RoleBenchDataError: naming the file, line and field of the first bad row.
    """
    found: dict[str, None] = {}
    repeats = 0
    for line_no, row in read_jsonl(path, "instructions file"):
        if not isinstance(row, dict):
            raise RoleBenchDataError(path, line_no, None, f"expected a JSON object, got {type(row).__name__}")
        key = "instruction" if "instruction" in row else "question"
        if key not in row:
            raise RoleBenchDataError(path, line_no, "instruction",
                                     'missing (each row needs "instruction" or "question")')
        text = row[key]
        if not isinstance(text, str) or not text.strip():
            raise RoleBenchDataError(path, line_no, key, f"expected a non-empty string, got {text!r}")
        repeats += text.strip() in found
        found[text.strip()] = None
    if not found:
        raise RoleBenchDataError(path, None, None, "no instructions in the file")
    return list(found), repeats


def rolegpt_messages(system: str, demos: list[DialoguePair], instruction: str) -> Messages:
    """System role prompt, demo pairs as user/assistant turns, then the instruction."""
    messages = [{"role": "system", "content": system}]
    for pair in demos:
        messages += [{"role": "user", "content": pair.user}, {"role": "assistant", "content": pair.assistant}]
    return messages + [{"role": "user", "content": instruction}]


def build_requests(profile: Profile, instructions: list[str], samples: int,
                   top_k: int) -> tuple[list[Messages], list[dict]]:
    """``samples`` requests per instruction (in order), with the cache-key extras that tell them apart."""
    index = DialogueIndex(all_dialogues(profile), profile.lang)
    system = role_prompt(profile.name, profile.lang, role_description(profile))
    requests, extras = [], []
    for instruction in instructions:
        messages = rolegpt_messages(system, index.top_k(instruction, top_k), instruction)
        for sample in range(samples):
            requests.append(messages)
            extras.append({"generator": "rolegpt", "sample": sample})
    return requests, extras


def screen_samples(answers: list[dict], filters: Filters, refs: Tally,
                   base: Tally) -> tuple[list[str], str | None, bool]:
    """One instruction's answers (all received): the references kept, the baseline kept (or None), identical?"""
    screened = [((a.get("text") or "").strip(), a.get("refusal")) for a in answers]
    screened = [(text, filters.answer_problem(text, refusal)) for text, refusal in screened]
    identical = len(screened) > 1 and len({text for text, _ in screened}) == 1
    kept: list[str] = []
    for text, problem in screened[:-1]:
        reason = problem or ("identical_samples" if identical and kept else None) or (
            "duplicate" if text in kept else None)
        if reason:
            refs.drop(reason)
        else:
            refs.keep()
            kept.append(text)
    text, problem = screened[-1]
    reason = problem or ("identical_samples" if identical else None) or (None if kept else "no_reference")
    if reason:
        base.drop(reason)
        return kept, None, identical
    base.keep()
    return kept, text, identical


def assemble(role: str, instructions: list[str], responses: list[dict | None], samples: int,
             filters: Filters) -> tuple[list[dict], list[dict], dict]:
    """The rows, the baseline rows and the record of what became of every answer.

    ``responses`` holds ``samples`` answers per instruction, in order (None = not answered).
    """
    refs, base, counts = Tally(REFERENCE_REASONS), Tally(BASELINE_REASONS), Counter()
    rows, baseline = [], []
    for i, instruction in enumerate(instructions):
        got = responses[i * samples:(i + 1) * samples]
        refs.receive(sum(r is not None for r in got[:-1]))
        base.receive(got[-1] is not None)
        if any(r is None for r in got):
            refs.drop("incomplete", sum(r is not None for r in got[:-1]))
            base.drop("incomplete", got[-1] is not None)
            counts["incomplete"] += 1
            continue
        kept, answer, identical = screen_samples(got, filters, refs, base)
        counts["identical_samples"] += identical
        if not kept:
            counts["without_reference"] += 1
            continue
        rows.append({"role": role, "question": instruction, "generated": kept})
        if answer is not None:
            baseline.append({"role": role, "question": instruction, "generated": [answer]})
    record = {"instructions": {"asked": len(instructions), "incomplete": counts["incomplete"],
                               "without_reference": counts["without_reference"], "written": len(rows),
                               "identical_samples": counts["identical_samples"]},
              "tallies": {"references": refs.check("references").as_dict(),
                          "baseline answers": base.check("baseline answers").as_dict()}}
    return rows, baseline, record


def identical_warning(n: int, asked: int, samples: int, temperature: float) -> str:
    """The one warning of a run in which all samples of some instructions came back identical."""
    if temperature > 0:
        return (f"{n} of {asked} instructions got {samples} identical samples although temperature "
                f"{temperature:g} was sent: the endpoint seems to ignore temperature (transformers serve does "
                "unless the model's generation config samples); such an instruction keeps at most one reference "
                "and no baseline answer (the repeats are counted as identical_samples)")
    return (f"{n} of {asked} instructions got {samples} identical samples at temperature 0: use --temperature > 0 "
            "(paper: 0.7) to get several references and a baseline answer")


def generate_rolegpt(profile_path: str | os.PathLike, instructions_path: str | os.PathLike, opts: GenerateOptions,
                     samples: int = 6, top_k: int = 5, allow_outside_paths: bool = False) -> GenerationResult:
    """Answer the instructions as the profile's character; writes ``<out>/general/*.jsonl`` (unless dry run).

    Raises:
        NothingUsable: every answer was dropped (the folder is left as it was).
    """
    if samples < 2:
        raise GenerateError("--samples", None, None,
                            f"must be at least 2 (references and one baseline answer), got {samples}")
    if top_k < 0:
        raise GenerateError("--top-k", None, None, f"must not be negative, got {top_k}")
    if opts.max_new_tokens is None:
        opts = dataclasses.replace(opts, max_new_tokens=DEFAULT_MAX_NEW_TOKENS)
    profile = load_profile(profile_path, allow_outside_paths)
    instructions, repeats = read_instructions(instructions_path)
    filters = load_filters(opts.filters, profile.lang)
    out = Path(opts.out)
    check_folder(out, profile)
    pairs = all_dialogues(profile)
    if not pairs and top_k:
        log.warning("%s has no dialogue pairs (no 'dialogues', none found in the script): prompts are zero-shot",
                    profile.path)
    requests, extras = build_requests(profile, instructions, samples, top_k)
    report = {"role": profile.name, "settings": opts.settings() | {"samples": samples, "top_k": top_k},
              "instructions_file": {"read": len(instructions) + repeats, "repeats_dropped": repeats},
              "dialogue_pairs": len(pairs), "requests": len(requests)}
    estimate, batch = ask(requests, extras, opts, desc=f"rolegpt {profile.name}")
    if batch is None:
        return GenerationResult(report, estimate=estimate)
    rows, baseline, record = assemble(profile.name, instructions, batch.responses, samples, filters)
    report |= record | batch_record(batch)
    identical = record["instructions"]["identical_samples"]
    if identical:
        temperature = opts.client_config().temperature
        report["warnings"] = [identical_warning(identical, len(instructions), samples, temperature)]
        log.warning("%s", report["warnings"][0])
    if not rows:
        return nothing_written(report, batch, out, f"received {report['answers_received']} answers to "
                                                   f"{len(instructions)} instructions")
    files = split_rows(rows, opts.test_fraction) | {"rolegpt_baseline": baseline}
    report["written"] = write_role(out, profile, "rolegpt", "general", files, report)
    return GenerationResult(report, batch=batch)
