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
last one is the RoleGPT baseline answer (``general/rolegpt_baseline.jsonl``). Answers that
are empty, break character or refuse (``generate/prompts/filters.yaml``) are dropped and
so are repeats of a reference; an instruction with no reference left is not written.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from .common import GenerateError, GenerateOptions, GenerationResult, ask, assign_test
from .common import load_filters, matched_filter
from .folder import check_folder, finish, read_instructions
from rolebench_eval.llm.client import Messages
from .profile import DialoguePair, Profile, all_dialogues, load_profile, role_description
from rolebench_eval.prompts import role_prompt
from .retrieval import DialogueIndex

log = logging.getLogger(__name__)
ANSWER_FILTERS = ("breaks_character", "refusal")
DEFAULT_MAX_NEW_TOKENS = 512


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


def _usable(text: str, filters: dict, counts: dict) -> bool:
    if not text:
        counts["empty"] += 1
        return False
    reason = matched_filter(text, filters, ANSWER_FILTERS)
    if reason:
        counts[reason] += 1
        return False
    return True


def assemble(role: str, instructions: list[str], texts: list[str | None], samples: int, filters: dict,
             test_fraction: float) -> tuple[dict[str, list[dict]], dict]:
    """RoleBench rows from the answers (``texts``: ``samples`` per instruction, None = not answered)."""
    counts = {"empty": 0, "breaks_character": 0, "refusal": 0, "duplicate": 0}
    rows, baseline, pending, no_reference, no_baseline = [], [], 0, 0, 0
    for i, instruction in enumerate(instructions):
        got = texts[i * samples:(i + 1) * samples]
        if any(t is None for t in got):
            pending += 1
            continue
        refs: list[str] = []
        for text in got[:-1]:
            if _usable(text.strip(), filters, counts):
                if text.strip() in refs:
                    counts["duplicate"] += 1
                else:
                    refs.append(text.strip())
        if not refs:
            no_reference += 1
            continue
        rows.append({"role": role, "question": instruction, "generated": refs})
        if _usable(got[-1].strip(), filters, counts):
            baseline.append({"role": role, "question": instruction, "generated": [got[-1].strip()]})
        else:
            no_baseline += 1
    test = assign_test([r["question"] for r in rows], test_fraction)
    files = {"train": [r for r, t in zip(rows, test) if not t], "test": [r for r, t in zip(rows, test) if t],
             "rolegpt_baseline": baseline}
    report = {"pending_instructions": pending, "answers_dropped": counts,
              "instructions_without_reference": no_reference, "instructions_without_baseline": no_baseline,
              "references_written": sum(len(r["generated"]) for r in rows)}
    return files, report


def generate_rolegpt(profile_path: str | os.PathLike, instructions_path: str | os.PathLike, opts: GenerateOptions,
                     samples: int = 6, top_k: int = 5) -> GenerationResult:
    """Answer the instructions as the profile's character; writes ``<out>/general/*.jsonl`` (unless dry run)."""
    if samples < 2:
        raise GenerateError(f"--samples must be at least 2 (references and one baseline answer), got {samples}")
    if top_k < 0:
        raise GenerateError(f"--top-k must not be negative, got {top_k}")
    if opts.max_new_tokens is None:
        opts = dataclasses.replace(opts, max_new_tokens=DEFAULT_MAX_NEW_TOKENS)
    profile = load_profile(profile_path)
    instructions, repeats = read_instructions(instructions_path)
    filters = load_filters(opts.filters)
    out = Path(opts.out)
    check_folder(out, profile)
    pairs = all_dialogues(profile)
    if not pairs and top_k:
        log.warning("%s has no dialogue pairs (no 'dialogues', none found in the script): prompts are zero-shot",
                    profile.path)
    requests, extras = build_requests(profile, instructions, samples, top_k)
    report = {"settings": opts.settings() | {"samples": samples, "top_k": top_k},
              "instructions": len(instructions), "repeated_instructions_dropped": repeats,
              "dialogue_pairs": len(pairs), "requests": len(requests)}
    estimate, batch = ask(requests, extras, opts, desc=f"rolegpt {profile.name}")
    if batch is None:
        return GenerationResult(report, estimate=estimate)
    texts = [r["text"] if r is not None else None for r in batch.responses]
    files, counts = assemble(profile.name, instructions, texts, samples, filters, opts.test_fraction)
    report = finish(out, profile, "rolegpt", "general", files, report | counts, batch)
    return GenerationResult(report, batch=batch)
