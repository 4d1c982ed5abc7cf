"""Context-Instruct for your own character: role-specific question/answer pairs from its profile.

1. **Segments.** The description is one segment; the script is cut into segments of at
   most ``segment_size`` words (English) or characters (Chinese), whole scenes where they
   fit, else whole lines, else cut hard.
2. **Requests.** The description gets the *script-agnostic* template; each script segment
   gets the *script-based* template and the script-agnostic one (with the segment as
   background). The templates (``generate/prompts/context_instruct_<type>_<lang>.jinja``)
   ask for ``questions`` question / confidence (1-10) / answer triplets, the answer in
   character.
3. **Parsing** (:mod:`rolebench_eval.generate.triplets`): a reply without a single
   well-formed triplet is counted (``no_triplets``, or ``refusal`` when it refuses); a
   malformed triplet is counted and dropped.
4. **Filters**, in this order, each counted (:mod:`rolebench_eval.generate.filters`):
   confidence below ``min_confidence``; an answer that is empty, breaks character or
   refuses; a question that mentions the source text; a repeated question (same
   normalised text; the first kept, in request order).
5. **Output.** ``role_specific/{train,test}.jsonl`` rows with ``type`` ``script_based`` or
   ``script_agnostic`` (the template that produced them), split by
   :func:`rolebench_eval.generate.folder.assign_test`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from rolebench_eval.catalogue import language, token_unit
from rolebench_eval.llm.client import Messages

from .common import PROMPTS_DIR, GenerateError, GenerateOptions, GenerationResult, ask
from .filters import Filters, Tally, load_filters, normalize_question
from .folder import batch_record, check_folder, nothing_written, split_rows, write_role
from .profile import Profile, load_profile, quoted_list, script_scenes
from .triplets import Triplet, parse_triplets

TYPES = ("script_agnostic", "script_based")
DEFAULT_MAX_NEW_TOKENS = 2048
TRIPLET_REASONS = ("malformed", "low_confidence", "breaks_character", "refusal", "question_mentions_source",
                   "duplicate")
REPLY_REASONS = ("refusal", "no_triplets")


@dataclass(frozen=True)
class Job:
    """One request: a segment (None = the description alone) and the question type asked for."""

    segment: int
    text: str | None
    qtype: str


def _size(text: str, lang: str) -> int:
    return sum(1 for ch in text if not ch.isspace()) if token_unit(lang) == "characters" else len(text.split())


def _cut(line: str, size: int, lang: str) -> list[str]:
    """A line longer than ``size`` cut into pieces of ``size`` words / characters."""
    if _size(line, lang) <= size:
        return [line]
    if token_unit(lang) == "characters":
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
    catchphrases = quoted_list(profile)
    text = template.render(role=profile.name, description=profile.description, segment=job.text,
                           n=questions, catchphrases=catchphrases)
    return [{"role": "user", "content": text.strip()}]


def triplet_problem(triplet: Triplet, min_confidence: float, filters: Filters) -> str | None:
    """Why a well-formed triplet cannot be used (step 4 without the duplicate check), or None."""
    if triplet.confidence < min_confidence:
        return "low_confidence"
    return filters.answer_problem(triplet.answer) or filters.matched(triplet.question, ("question_mentions_source",))


def parse_replies(jobs: list[Job], responses: list[dict | None], filters: Filters,
                  replies: Tally, triplets: Tally) -> list[tuple[str, Triplet]]:
    """Step 3: the well-formed (type, triplet) pairs of the answered replies, in request order."""
    found = []
    for job, response in zip(jobs, responses):
        if response is None:
            continue
        replies.receive()
        text = response.get("text") or ""
        parsed, malformed = parse_triplets(text)
        triplets.receive(len(parsed) + malformed)
        triplets.drop("malformed", malformed)
        if parsed:
            replies.keep()
        elif response.get("refusal") or filters.matched(text, ("refusal",)):
            replies.drop("refusal")
        else:
            replies.drop("no_triplets")
        found += [(job.qtype, t) for t in parsed]
    return found


def collect(role: str, jobs: list[Job], responses: list[dict | None], min_confidence: float,
            filters: Filters) -> tuple[list[dict], dict]:
    """Steps 3-4 over the answers of ``jobs`` (None = not answered): the rows and the record of every triplet."""
    replies, triplets = Tally(REPLY_REASONS), Tally(TRIPLET_REASONS)
    rows, seen = [], set()
    for qtype, triplet in parse_replies(jobs, responses, filters, replies, triplets):
        key = normalize_question(triplet.question)
        reason = triplet_problem(triplet, min_confidence, filters) or ("duplicate" if key in seen else None)
        if reason:
            triplets.drop(reason)
            continue
        triplets.keep()
        seen.add(key)
        rows.append({"role": role, "question": triplet.question, "generated": [triplet.answer], "type": qtype})
    record = {"pending_requests": sum(r is None for r in responses),
              "kept_by_type": {q: sum(r["type"] == q for r in rows) for q in TYPES},
              "tallies": {"replies": replies.check("replies").as_dict(),
                          "triplets": triplets.check("triplets").as_dict()}}
    return rows, record


def generate_context_instruct(profile_path: str | os.PathLike, opts: GenerateOptions, questions: int = 5,
                              min_confidence: float = 7, segment_size: int | None = None,
                              allow_outside_paths: bool = False) -> GenerationResult:
    """Role-specific data for the profile's character; writes ``<out>/role_specific/*.jsonl`` (unless dry run).

    Raises:
        NothingUsable: no triplet survived (the folder is left as it was).
    """
    if questions < 1:
        raise GenerateError("--questions", None, None, f"must be at least 1, got {questions}")
    if opts.max_new_tokens is None:
        opts = dataclasses.replace(opts, max_new_tokens=DEFAULT_MAX_NEW_TOKENS)
    profile = load_profile(profile_path, allow_outside_paths)
    size = segment_size or language(profile.lang).segment_size
    if size < 1:
        raise GenerateError("--segment-size", None, None, f"must be at least 1, got {size}")
    filters = load_filters(opts.filters, profile.lang)
    out = Path(opts.out)
    check_folder(out, profile)
    jobs = plan_jobs(profile, size)
    requests = [render_request(profile, job, questions) for job in jobs]
    report = {"role": profile.name,
              "settings": opts.settings() | {"questions_per_request": questions, "min_confidence": min_confidence,
                                             "segment_size": size},
              "segments": {"description": 1, "script": len(jobs) // 2}, "requests": len(requests)}
    estimate, batch = ask(requests, [{"generator": "context_instruct"}] * len(requests), opts,
                          desc=f"context-instruct {profile.name}")
    if batch is None:
        return GenerationResult(report, estimate=estimate)
    rows, record = collect(profile.name, jobs, batch.responses, min_confidence, filters)
    report |= record | batch_record(batch)
    if not rows:
        tallies = report["tallies"]
        return nothing_written(report, batch, out, f"received {tallies['replies']['received']} replies with "
                                                   f"{tallies['triplets']['received']} triplets")
    report["written"] = write_role(out, profile, "context_instruct", "role_specific",
                                   split_rows(rows, opts.test_fraction), report)
    return GenerationResult(report, batch=batch)
