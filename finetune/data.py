"""The RoCIT training mix: RoleBench train splits (and extra files) -> (role, question, answer) samples.

Mixing policy, in order (all deterministic for a given ``seed``):

1. **Sources.** Each split named in ``splits`` contributes its ``train.jsonl``, read through the
   same data layer as the evaluation tasks (:func:`rolebench_eval.source.load_split`), with the
   split's language and kind (general / role-specific) and the role descriptions of its
   ``profiles-*/desc.json``. Each ``extra_data`` file (RoleBench JSONL format) gets the language
   and kind its entry declares, and the descriptions of its ``descriptions`` file, else those of
   the loaded splits of the same language. ``context_instruct: false`` drops every role-specific
   (Context-Instruct) source, the paper's Table 6 ablation; ``exclude_held_out_roles`` drops every
   item of the 10 English roles held out for role generalization, from every source.
   ``max_items_per_split`` then keeps the first N items of each.
2. **References -> samples.** An item becomes up to ``references_per_item`` samples, one per
   reference in file order, after dropping exact duplicates and (``skip_degenerate_references``)
   references that hold no answer, e.g. "(No response provided)".
3. **Held-out slice.** ``eval_holdout`` items, drawn at random over all sources, go with all
   their samples to the eval set, so no answer to an eval question is trained on.
4. **Ratio.** With ``general_to_specific_ratio`` set, the larger side of the remaining training
   samples is subsampled at random to reach general : specific = ratio (nothing is duplicated).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .args import RecipeError, RoleBenchArguments

from rolebench_eval.catalogue import get_split, held_out_roles_en
from rolebench_eval.data import is_degenerate, read_descriptions, read_items
from rolebench_eval.fileio import sha256_file
from rolebench_eval.source import load_split


@dataclass(frozen=True)
class Sample:
    """One training sample: the role's answer to a question, with what renders its prompt."""

    role: str
    lang: str
    kind: str
    question: str
    answer: str
    description: str | None
    source: str
    item: int  # index of the item in its source (samples of one item stay together)


@dataclass
class Source:
    """One file of training items with its language, kind, role descriptions and provenance."""

    name: str
    lang: str
    kind: str
    items: list
    descriptions: dict[str, str]
    provenance: dict = field(default_factory=dict)


@dataclass
class Mix:
    """The training and eval samples and a summary for the provenance file."""

    train: list[Sample]
    eval: list[Sample]
    summary: dict


def load_sources(args: RoleBenchArguments) -> list[Source]:
    """The splits' train files and the extra files (step 1)."""
    sources = []
    for name in args.splits:
        if not args.context_instruct and get_split(name).kind == "specific":
            continue
        data = load_split(name, args.data_dir, args.data_revision, file="train")
        sources.append(Source(name, data.split.lang, data.split.kind, data.items, data.descriptions,
                              dict(data.provenance)))
    for extra in args.extra_data:
        if not args.context_instruct and extra["kind"] == "specific":
            continue
        if "descriptions" in extra:
            descriptions = read_descriptions(Path(extra["descriptions"]).expanduser())
        else:
            descriptions = {k: v for s in sources if s.lang == extra["lang"] for k, v in s.descriptions.items()}
        path = Path(extra["path"]).expanduser()
        sources.append(Source(extra["path"], extra["lang"], extra["kind"], read_items(path), descriptions,
                              {"origin": "extra", "file": str(path.resolve()), "sha256": sha256_file(path)}))
    held_out = set(held_out_roles_en()) if args.exclude_held_out_roles else set()
    for source in sources:
        kept = [item for item in source.items if item.role not in held_out]
        source.provenance["held_out_role_items_excluded"] = len(source.items) - len(kept)
        source.items = kept[: args.max_items_per_split] if args.max_items_per_split is not None else kept
    return sources


def chosen_references(references, n: int, skip_degenerate: bool) -> tuple[list[str], int]:
    """The first ``n`` distinct usable references, and how many degenerate ones were skipped.

    >>> chosen_references(["a", "a", "(No response provided)", "b", "c"], 2, True)
    (['a', 'b'], 1)
    """
    kept, skipped = [], 0
    for ref in references:
        if skip_degenerate and is_degenerate(ref):
            skipped += 1
        elif ref not in kept:
            kept.append(ref)
    return kept[:n], skipped


def source_samples(source: Source, n: int, skip_degenerate: bool) -> tuple[list[Sample], int]:
    """All samples of one source (step 2), and the number of degenerate references skipped."""
    samples, skipped_total = [], 0
    for index, item in enumerate(source.items):
        answers, skipped = chosen_references(item.references, n, skip_degenerate)
        skipped_total += skipped
        desc = source.descriptions.get(item.role)
        samples += [Sample(item.role, source.lang, source.kind, item.question, a, desc, source.name, index)
                    for a in answers]
    return samples, skipped_total


def hold_out(samples: list[Sample], n_items: int, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Split off all samples of ``n_items`` random items (step 3)."""
    items = sorted({(s.source, s.item) for s in samples})
    chosen = set(random.Random(seed).sample(items, min(n_items, len(items))))
    return [s for s in samples if (s.source, s.item) not in chosen], [s for s in samples if (s.source, s.item) in chosen]


def apply_ratio(samples: list[Sample], ratio: float | None, seed: int) -> list[Sample]:
    """Subsample the larger side to general : specific = ``ratio`` (step 4); order is kept."""
    if ratio is None:
        return samples
    general = [i for i, s in enumerate(samples) if s.kind == "general"]
    specific = [i for i, s in enumerate(samples) if s.kind == "specific"]
    if not general or not specific:
        raise RecipeError(None, None, "general_to_specific_ratio", "is set but the training data has "
                          f"{len(general)} general and {len(specific)} role-specific samples; it needs both")
    rng = random.Random(seed)
    if len(general) > ratio * len(specific):
        general = rng.sample(general, max(1, round(ratio * len(specific))))
    else:
        specific = rng.sample(specific, max(1, round(len(general) / ratio)))
    keep = set(general) | set(specific)
    return [s for i, s in enumerate(samples) if i in keep]


def build_mix(args: RoleBenchArguments, seed: int) -> Mix:
    """Steps 1-4; an empty training set raises :class:`RecipeError` naming the sources."""
    sources = load_sources(args)
    samples, per_source = [], []
    for source in sources:
        got, skipped = source_samples(source, args.references_per_item, args.skip_degenerate_references)
        samples += got
        per_source.append({"name": source.name, "lang": source.lang, "kind": source.kind,
                           "items": len(source.items), "samples": len(got), "degenerate_skipped": skipped,
                           "roles_with_description": len({i.role for i in source.items} & set(source.descriptions)),
                           "roles": len({i.role for i in source.items}), **source.provenance})
    train, held = hold_out(samples, args.eval_holdout, seed)
    train = apply_ratio(train, args.general_to_specific_ratio, seed)
    if not train:
        names = ", ".join(f"{p['name']} ({p['items']} items, {p['samples']} samples)" for p in per_source)
        skipped = "" if args.context_instruct else " (context_instruct: false leaves out role-specific sources)"
        raise RecipeError(None, None, None, "empty training set: no training samples from "
                          f"{names or 'no sources'}{skipped} after eval_holdout={args.eval_holdout}")
    summary = {
        "sources": per_source,
        "policy": {k: v for k, v in asdict(args).items()
                   if k not in ("data_dir", "extra_data", "prompt_format", "resume")},
        "train_samples": len(train),
        "train_general": sum(s.kind == "general" for s in train),
        "train_specific": sum(s.kind == "specific" for s in train),
        "eval_items": len({(s.source, s.item) for s in held}),
        "eval_samples": len(held),
    }
    return Mix(train, held, summary)
