"""The keys that are ours (:class:`RoleBenchArguments`), the recipe error, and the checks of values that cannot train.

TRL's ``SFTConfig`` and ``ModelConfig`` own every trainer and LoRA setting; only which RoleBench data,
how it is mixed and rendered, and how a run resumes are ours. Nothing here imports torch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from rolebench_eval.catalogue import languages
from rolebench_eval.errors import InputError
from rolebench_eval.fileio import load_yaml

PROMPT_FORMATS = ("auto", "chat", "plain")
EXTRA_FIELDS = ("path", "lang", "kind", "descriptions")


class RecipeError(InputError):
    """A recipe, a flag or an override is wrong; the message names the file, line and key."""


@dataclass
class RoleBenchArguments:
    """Which RoleBench data, how it is mixed and rendered, and how the run resumes (ours, not TRL's)."""

    _argument_group_name = "RoleBench data and resuming (rolebench-eval's own)"

    splits: list[str] = field(default_factory=list, metadata={
        "help": "RoleBench splits whose train.jsonl is used, e.g. general_zh specific_zh (rolebench_eval/splits.yaml)."})
    data_dir: str | None = field(default=None, metadata={
        "help": "Local RoleBench copy; default $ROLEBENCH_DATA_DIR, else the Hub dataset ZenMoore/RoleBench."})
    data_revision: str | None = field(default=None, metadata={"help": "Hub revision of the dataset."})
    extra_data: list[str] = field(default_factory=list, metadata={
        "help": "Extra RoleBench-format JSONL files, each a mapping {path, lang: en|zh, kind: general|specific, "
                "descriptions?: desc.json} (on the command line: '{path: x.jsonl, lang: zh, kind: general}')."})
    context_instruct: bool = field(default=True, metadata={
        "help": "Train on the role-specific (Context-Instruct) items; false: general items only, the paper's "
                "Table 6 ablation 'w/o Context-Instruct'."})
    exclude_held_out_roles: bool = field(default=False, metadata={
        "help": "Leave out every item of the 10 English roles held out for role generalization "
                "(rolebench_eval/splits.yaml held_out_roles_en), from every source."})
    references_per_item: int = field(default=1, metadata={
        "help": "How many of an item's references (up to five for general items) become training samples."})
    skip_degenerate_references: bool = field(default=True, metadata={
        "help": "Leave out references that hold no answer, e.g. '(No response provided)'."})
    general_to_specific_ratio: float | None = field(default=None, metadata={
        "help": "Target ratio of general to role-specific training samples, reached by subsampling the larger "
                "side; unset keeps the natural mix."})
    max_items_per_split: int | None = field(default=None, metadata={
        "help": "Use only the first N items of each split and extra file (smoke runs)."})
    eval_holdout: int = field(default=0, metadata={
        "help": "Items (all their samples) held out for the eval loss (with eval_strategy: steps)."})
    prompt_format: str = field(default="auto", metadata={
        "choices": PROMPT_FORMATS,
        "help": "chat: the tokenizer's chat template (evaluate with --apply_chat_template); plain: the "
                "RoleLLaMA text layout (evaluate without it); auto: chat when the tokenizer has a template."})
    resume: bool = field(default=False, metadata={
        "help": "Continue the run in output_dir from its latest complete checkpoint (a new run when there is "
                "none); safe to pass on every (re)start."})

    def __post_init__(self):
        self.extra_data = [_extra_entry(e, i) for i, e in enumerate(self.extra_data)]

    def check(self) -> None:
        """Refuse values that cannot give a training set (no file is read here)."""
        from rolebench_eval.catalogue import get_split

        if not self.splits and not self.extra_data:
            _fail("splits", "no training data: name RoleBench splits and/or extra_data files")
        for name in self.splits:
            try:
                get_split(name)
            except ValueError as err:
                _fail("splits", getattr(err, "problem", None) or str(err))
        if self.references_per_item < 1:
            _fail("references_per_item", "must be at least 1")
        if self.general_to_specific_ratio is not None and self.general_to_specific_ratio <= 0:
            _fail("general_to_specific_ratio", "must be > 0 (or unset for the natural mix)")
        for key in ("eval_holdout", "max_items_per_split"):
            if (getattr(self, key) or 0) < 0:
                _fail(key, "must not be negative")


def _fail(key: str, problem: str):
    raise RecipeError(None, None, key, problem)


def _extra_entry(entry: Any, index: int) -> dict:
    """One extra_data entry as a checked mapping (a flag gives it as a YAML string)."""
    where = f"extra_data[{index}]"
    if isinstance(entry, str):
        try:
            entry = load_yaml(entry)
        except yaml.YAMLError as err:
            _fail(where, f"not a YAML mapping ({err})")
    if not isinstance(entry, dict):
        _fail(where, f"expected a mapping {{path, lang, kind, descriptions?}}, got {entry!r}")
    unknown = sorted(set(entry) - set(EXTRA_FIELDS))
    if unknown:
        _fail(where, f"unknown field(s) {unknown}; allowed: {list(EXTRA_FIELDS)}")
    for key, choices in (("lang", tuple(languages())), ("kind", ("general", "specific"))):
        if entry.get(key) not in choices:
            _fail(where, f"{key!r} must be one of {choices}, got {entry.get(key)!r}")
    if not isinstance(entry.get("path"), str):
        _fail(where, "'path' (a JSONL file) is required")
    for key in ("path", "descriptions"):
        if key in entry and not Path(str(entry[key])).expanduser().is_file():
            _fail(where, f"{key} file not found: {entry[key]}")
    return entry


def check_settings(script: RoleBenchArguments, training, model, given: set[str]) -> None:
    """Values that cannot train, refused before any file or model is read."""
    for key in ("model_name_or_path", "output_dir"):
        if key not in given or not getattr(model if key == "model_name_or_path" else training, key):
            _fail(key, f"required: pass --{key} (no default: a run folder and a base model are explicit)")
    script.check()
    if not model.use_peft:
        _fail("use_peft", "RoCIT trains a LoRA adapter (what lm-eval loads with peft=); full fine-tuning "
                          "is not supported here")
    check_numbers((script, training, model), given)
    check_output_dir(script, training.output_dir)
    if training.learning_rate <= 0:
        _fail("learning_rate", f"must be > 0, got {training.learning_rate}")
    if model.lora_r < 1 or model.lora_alpha <= 0:
        _fail("lora_r" if model.lora_r < 1 else "lora_alpha", "must be positive")
    if not 0 <= model.lora_dropout < 1:
        _fail("lora_dropout", "must be in [0, 1)")
    if model.lora_target_modules is not None and len(model.lora_target_modules) == 0:
        _fail("lora_target_modules", "is empty: name modules (e.g. [q_proj, v_proj]), all-linear, or leave it "
                                     "unset for peft's default for the model")
    if training.max_length is not None and training.max_length < 8:
        _fail("max_length", "must be at least 8 tokens")
    if training.max_steps < -1:
        _fail("max_steps", f"got {training.max_steps}: a number of optimizer steps (> 0), or -1 (the default) to "
                           "train num_train_epochs epochs")
    if training.max_steps == 0 or (training.max_steps < 0 and training.num_train_epochs <= 0):
        _fail("max_steps" if training.max_steps == 0 else "num_train_epochs", "no training step would run")
    for key in ("per_device_train_batch_size", "gradient_accumulation_steps"):
        if getattr(training, key) < 1:
            _fail(key, "must be at least 1")
    strategy = getattr(training.eval_strategy, "value", training.eval_strategy)
    if strategy != "no" and not script.eval_holdout:
        _fail("eval_strategy", f"is {strategy} but eval_holdout is 0 (no eval items); set eval_holdout > 0 or "
                               "eval_strategy: 'no'")
    if strategy == "no" and script.eval_holdout:
        _fail("eval_holdout", f"holds {script.eval_holdout} items out of training for an eval loss that "
                              "eval_strategy: 'no' never computes; set eval_strategy: steps (and eval_steps) or "
                              "eval_holdout: 0")


# Ranges of numeric trainer keys beyond "finite" (lower bound, upper bound, inclusive); None: open.
RANGES = {"weight_decay": (0, None), "max_grad_norm": (0, None),
          "adam_beta1": (0, 1), "adam_beta2": (0, 1), "adam_epsilon": (0, None), "seed": (0, None),
          "num_train_epochs": (0, None)}


def check_numbers(objects, given: set[str]) -> None:
    """Every number the user set is finite and in range (``.inf`` / ``.nan`` train garbage or die late)."""
    for obj in objects:
        for spec in fields(obj):
            value = getattr(obj, spec.name)
            if spec.name not in given or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if not math.isfinite(value):
                _fail(spec.name, f"must be a finite number, got {value}")
            low, high = RANGES.get(spec.name, (None, None))
            if (low is not None and value < low) or (high is not None and value > high):
                _fail(spec.name, f"must be in [{low}, {'inf' if high is None else high}], got {value}")


def check_output_dir(script: RoleBenchArguments, output_dir: str) -> None:
    """Refuse an output folder inside a data folder (run files would land beside ``train.jsonl``)."""
    out = Path(output_dir).expanduser().resolve()
    data = [script.data_dir or os.environ.get("ROLEBENCH_DATA_DIR")]
    data += [str(Path(e["path"]).expanduser().parent) for e in script.extra_data]
    for folder in filter(None, data):
        folder = Path(folder).expanduser().resolve()
        if out == folder or folder in out.parents:
            _fail("output_dir", f"{output_dir} is inside the data folder {folder}; choose a folder outside it")
