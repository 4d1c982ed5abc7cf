"""Context-Instruct for your own character: role-specific question/answer pairs from its profile.

1. **Segments.** The description is one segment; the script is cut into segments of at
   most ``segment_size`` words (English) or characters (Chinese), whole scenes where they
   fit, else whole lines, else cut hard.
2. **Requests.** The description gets the *script-agnostic* template; each script segment
   gets the *script-based* template and the script-agnostic one (with the segment as
   background). The templates (``generate/prompts/context_instruct_<type>_<lang>.jinja``)
   ask for ``questions`` question / confidence (1-10) / answer triplets, the answer in
   character.
3. **Parsing** (:mod:`rolebench_eval.generate.triplets`): a malformed triplet is counted and dropped.
4. **Filters**, in this order, each counted: confidence below ``min_confidence``; an answer
   that breaks character or refuses; a question that mentions the source text
   (``generate/prompts/filters.yaml``); a repeated question (same normalised text; the
   first kept, in request order).
5. **Output.** ``role_specific/{train,test}.jsonl`` rows with ``type`` ``script_based`` or
   ``script_agnostic`` (the template that produced them), split by
   :func:`rolebench_eval.generate.common.assign_test`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from .common import PROMPTS_DIR, GenerateError, GenerateOptions, GenerationResult, ask
from .common import assign_test, load_filters, matched_filter, normalize_question
from .folder import check_folder, finish
from rolebench_eval.llm.client import Messages
from .profile import Profile, load_profile, script_scenes
from .triplets import Triplet, parse_triplets

TYPES = ("script_agnostic", "script_based")
DEFAULT_SEGMENT_SIZE = {"en": 400, "zh": 800}
DEFAULT_MAX_NEW_TOKENS = 2048
DROP_REASONS = ("malformed", "low_confidence", "breaks_character", "refusal", "question_mentions_source", "duplicate")


@dataclass(frozen=True)
class Job:
    """One request: a segment (None = the description alone) and the question type asked for."""

    segment: int
    text: str | None
    qtype: str


def _size(text: str, lang: str) -> int:
    return sum(1 for ch in text if not ch.isspace()) if lang == "zh" else len(text.split())


def _cut(line: str, size: int, lang: str) -> list[str]:
    """A line longer than ``size`` cut into pieces of ``size`` words / characters."""
    if _size(line, lang) <= size:
        return [line]
    if lang == "zh":
        return [line[i:i + size] for i in range(0, len(line), size)]
    words = line.split()
    return [" ".join(words[i:i + size]) for i in range(0, len(words), size)]


def segment_script(script: str, size: int, lang: str) -> list[str]:
    """Greedy segments of whole scenes, else whole lines, else hard cuts, each at most ``size``."""
    pieces: list[tuple[str, int]] = []  # (text, scene number)
    for n, scene in enumerate(script_scenes(script)):
        if _size(scene, lang) <= size:
            pieces.append((scene, n))
        else:
            lines = [line.strip() for line in scene.splitlines() if line.strip()]
            pieces += [(cut, n) for line in lines for cut in _cut(line, size, lang)]
    segments, current, used, last_scene = [], "", 0, None
    for text, scene in pieces:
        need = _size(text, lang)
        if current and used + need > size:
            segments.append(current)
            current, used = "", 0
        joiner = "" if not current else ("\n" if scene == last_scene else "\n\n")
        current, used, last_scene = current + joiner + text, used + need, scene
    return segments + ([current] if current else [])


def plan_jobs(profile: Profile, segment_size: int) -> list[Job]:
    """The description (script-agnostic), then per script segment: script-based, script-agnostic."""
    jobs = [Job(0, None, "script_agnostic")]
    for i, text in enumerate(segment_script(profile.script or "", segment_size, profile.lang), start=1):
        jobs += [Job(i, text, "script_based"), Job(i, text, "script_agnostic")]
    return jobs


def render_request(profile: Profile, job: Job, questions: int) -> Messages:
    """The user message of one job, rendered from its Jinja template."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(PROMPTS_DIR)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)
    template = env.get_template(f"context_instruct_{job.qtype}_{profile.lang}.jinja")
    quote = (lambda c: f"“{c}”") if profile.lang == "zh" else (lambda c: f'"{c}"')
    catchphrases = ("、" if profile.lang == "zh" else ", ").join(quote(c) for c in profile.catchphrases)
    text = template.render(role=profile.name, description=profile.description, segment=job.text,
                           n=questions, catchphrases=catchphrases)
    return [{"role": "user", "content": text.strip()}]


def filter_triplets(found: list[tuple[str, Triplet]], min_confidence: float, filters: dict,
                    counts: dict) -> list[tuple[str, Triplet]]:
    """Step 4: the (type, triplet) pairs that pass every filter; ``counts`` gets what each removed."""
    kept, seen = [], set()
    for qtype, triplet in found:
        reason = None
        if triplet.confidence < min_confidence:
            reason = "low_confidence"
        else:
            reason = (matched_filter(triplet.answer, filters, ("breaks_character", "refusal"))
                      or matched_filter(triplet.question, filters, ("question_mentions_source",)))
        key = normalize_question(triplet.question)
        if reason is None and key in seen:
            reason = "duplicate"
        if reason:
            counts[reason] += 1
            continue
        seen.add(key)
        kept.append((qtype, triplet))
    return kept


def collect(role: str, jobs: list[Job], texts: list[str | None], min_confidence: float, filters: dict,
            test_fraction: float) -> tuple[dict[str, list[dict]], dict]:
    """Steps 3-5 over the answers of ``jobs`` (None = not answered): the files' rows and the counts."""
    counts = dict.fromkeys(DROP_REASONS, 0)
    found, empty_replies = [], 0
    for job, text in zip(jobs, texts):
        if text is None:
            continue
        triplets, malformed = parse_triplets(text)
        counts["malformed"] += malformed
        empty_replies += not triplets
        found += [(job.qtype, t) for t in triplets]
    kept = filter_triplets(found, min_confidence, filters, counts)
    rows = [{"role": role, "question": t.question, "generated": [t.answer], "type": qtype} for qtype, t in kept]
    test = assign_test([r["question"] for r in rows], test_fraction)
    files = {"train": [r for r, t in zip(rows, test) if not t], "test": [r for r, t in zip(rows, test) if t]}
    report = {"pending_requests": sum(t is None for t in texts), "replies_without_triplets": empty_replies,
              "triplets_parsed": len(found), "dropped": counts,
              "kept": {q: sum(r["type"] == q for r in rows) for q in TYPES}}
    return files, report


def generate_context_instruct(profile_path: str | os.PathLike, opts: GenerateOptions, questions: int = 5,
                              min_confidence: float = 7, segment_size: int | None = None) -> GenerationResult:
    """Role-specific data for the profile's character; writes ``<out>/role_specific/*.jsonl`` (unless dry run)."""
    if questions < 1:
        raise GenerateError(f"--questions must be at least 1, got {questions}")
    if opts.max_new_tokens is None:
        opts = dataclasses.replace(opts, max_new_tokens=DEFAULT_MAX_NEW_TOKENS)
    profile = load_profile(profile_path)
    size = segment_size or DEFAULT_SEGMENT_SIZE[profile.lang]
    if size < 1:
        raise GenerateError(f"--segment-size must be at least 1, got {size}")
    filters = load_filters(opts.filters)
    out = Path(opts.out)
    check_folder(out, profile)
    jobs = plan_jobs(profile, size)
    requests = [render_request(profile, job, questions) for job in jobs]
    report = {"settings": opts.settings() | {"questions_per_request": questions, "min_confidence": min_confidence,
                                             "segment_size": size},
              "segments": {"description": 1, "script": len(jobs) // 2}, "requests": len(requests)}
    estimate, batch = ask(requests, [{"generator": "context_instruct"}] * len(requests), opts,
                          desc=f"context-instruct {profile.name}")
    if batch is None:
        return GenerationResult(report, estimate=estimate)
    texts = [r["text"] if r is not None else None for r in batch.responses]
    files, counts = collect(profile.name, jobs, texts, min_confidence, filters, opts.test_fraction)
    report = finish(out, profile, "context_instruct", "role_specific", files, report | counts, batch)
    return GenerationResult(report, batch=batch)
