"""RoCIT recipes in TRL's script shape: ``TrlParser((RoleBenchArguments, SFTConfig, ModelConfig))``.

A recipe is the YAML config file of TRL's parser (``--config recipe.yaml``); flags override it,
and so do keyword arguments of :func:`rolebench_eval.finetune.train`. TRL's ``SFTConfig`` and
``ModelConfig`` own every trainer and LoRA setting under their own names; only what is ours
(which RoleBench data, how it is mixed and rendered, how a run resumes) is in
:class:`RoleBenchArguments`.

What we add to TRL's parser, all before any model is loaded: unknown keys and flags are refused
with a did-you-mean (``recipe.yaml:12: field 'lora_rank': unknown key; did you mean 'lora_r'?``),
YAML values are converted and checked exactly as flags are (argparse does not check defaults),
and values that cannot train (a learning rate <= 0, no LoRA target, ...) are refused with the key
at fault. Every such problem is a :class:`RecipeError`, which the CLI prints as one line.
"""

from __future__ import annotations

import argparse
import difflib
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rolebench_eval.errors import InputError

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
            entry = yaml.safe_load(entry)
        except yaml.YAMLError as err:
            _fail(where, f"not a YAML mapping ({err})")
    if not isinstance(entry, dict):
        _fail(where, f"expected a mapping {{path, lang, kind, descriptions?}}, got {entry!r}")
    unknown = sorted(set(entry) - set(EXTRA_FIELDS))
    if unknown:
        _fail(where, f"unknown field(s) {unknown}; allowed: {list(EXTRA_FIELDS)}")
    for key, choices in (("lang", ("en", "zh")), ("kind", ("general", "specific"))):
        if entry.get(key) not in choices:
            _fail(where, f"{key!r} must be one of {choices}, got {entry.get(key)!r}")
    if not isinstance(entry.get("path"), str):
        _fail(where, "'path' (a JSONL file) is required")
    for key in ("path", "descriptions"):
        if key in entry and not Path(str(entry[key])).expanduser().is_file():
            _fail(where, f"{key} file not found: {entry[key]}")
    return entry


# --------------------------------------------------------------------------- the parser


def make_parser():
    """TRL's parser over our three dataclasses (imports transformers: call it when training)."""
    from trl import ModelConfig, SFTConfig, TrlParser

    class RecipeParser(TrlParser):
        """TrlParser whose errors are one-line RecipeErrors and whose config keys are checked."""

        recipe: str | None = None  # the --config file
        overrides: tuple = ()  # (mapping, origin) pairs applied over the recipe, in order

        def error(self, message):  # argparse would print the usage and exit 2
            raise RecipeError(None, None, None, f"{message} (see rolebench-eval finetune --help)")

        def set_defaults_with_config(self, **values):
            values = checked_values(self, values, self.recipe)
            for mapping, origin in self.overrides:
                values |= checked_values(self, mapping, origin)
            return super().set_defaults_with_config(**values)

    parser = RecipeParser((RoleBenchArguments, SFTConfig, ModelConfig), prog="rolebench-eval finetune",
                          description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                          allow_abbrev=False)
    parser.set_defaults(use_peft=True)  # RoCIT trains a LoRA adapter
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # launched processes on a CPU-only host: DDP over gloo
        import torch

        if not torch.accelerator.is_available():
            parser.set_defaults(use_cpu=True)
    return parser


def options(parser) -> dict[str, argparse.Action]:
    """Every ``--flag`` (and ``--no_flag``) of the parser -> its action."""
    return {s: a for a in parser._actions for s in a.option_strings}  # noqa: SLF001 (TRL reads it too)


def dests(parser) -> dict[str, argparse.Action]:
    """Every recipe key -> its (first) action."""
    out = {}
    for action in parser._actions:  # noqa: SLF001
        if action.option_strings and action.dest != "help":
            out.setdefault(action.dest, action)
    return out


def did_you_mean(key: str, known) -> str:
    """A suggestion, among the names that share the key's first word when one is close (lora_rank: lora_r)."""
    known = list(known)
    head = key.lstrip("-").split("_")[0] + "_"
    same_head = [k for k in known if k.lstrip("-").startswith(head)]
    close = difflib.get_close_matches(key, same_head, n=1, cutoff=0.6) or difflib.get_close_matches(
        key, known, n=1, cutoff=0.7)
    return f"; did you mean {close[0]!r}?" if close else "; rolebench-eval finetune --help lists the keys"


def key_lines(path: str | os.PathLike | None) -> dict[str, int]:
    """Line of each top-level key of a YAML mapping file (for messages)."""
    if path is None:
        return {}
    try:
        node = yaml.compose(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}


def checked_values(parser, values: dict, recipe: str | None) -> dict:
    """Recipe values converted with the flags' own types; unknown keys and bad values raise RecipeError."""
    known, lines, hints, out = dests(parser), key_lines(recipe), type_hints(parser), {}
    for key, value in values.items():
        def fail(problem, key=key):
            raise RecipeError(recipe or "recipe", lines.get(key), key, problem)

        if key not in known:
            fail("unknown key" + did_you_mean(key, known))
        out[key] = convert(known[key], hints.get(key), value, fail)
    return out


def type_hints(parser) -> dict[str, Any]:
    """Each field's declared type (HfArgumentParser narrows ``field.type`` to what one flag can parse)."""
    out = {}
    for cls in parser.dataclass_types:
        out |= typing.get_type_hints(cls)
    return out


def _admits(hint: Any, kind: type) -> bool:
    """Whether a type hint accepts values of ``kind`` (list, dict), e.g. ``report_to: str | list[str] | None``."""
    return any(typing.get_origin(h) is kind or h is kind for h in (hint, *typing.get_args(hint)))


def convert(action: argparse.Action, hint: Any, value: Any, fail) -> Any:
    """``value`` as the flag would parse it (argparse leaves defaults unconverted and unchecked)."""
    if value is None:
        return value
    if isinstance(value, dict):
        return value if _admits(hint, dict) else fail(f"expected a single value, got a mapping {value!r}")
    if action.nargs in ("+", "*"):
        if not isinstance(value, list):
            fail(f"expected a list, got {value!r}")
        return [v if isinstance(v, dict) else _one(action, v, fail) for v in value]
    if isinstance(value, list):
        if not _admits(hint, list):
            fail(f"expected a single value, got a list {value!r}")
        return [_one(action, v, fail) for v in value]
    return _one(action, value, fail)


def _one(action: argparse.Action, value: Any, fail) -> Any:
    kind = getattr(action.type, "__name__", "value")
    if action.type is int and isinstance(value, float) and not value.is_integer():
        fail(f"expected an integer, got {value!r}")
    try:
        converted = action.type(str(int(value) if action.type is int and isinstance(value, float) else value)) \
            if action.type is not None else value
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        fail(f"expected {kind.replace('string_to_bool', 'true or false')}, got {value!r}")
    if action.choices is not None and converted not in action.choices:
        fail(f"expected one of {', '.join(map(str, action.choices))}, got {value!r}")
    return converted


def check_flags(parser, argv: list[str]) -> None:
    """Unknown ``--flags`` get a did-you-mean (argparse alone says only 'unrecognized')."""
    known = options(parser)
    for arg in argv:
        if arg.startswith("--") and arg != "--":
            name = arg.split("=", 1)[0]
            if name not in known and name != "--config":
                raise RecipeError(None, None, name, "unknown flag" + did_you_mean(name, known))


def parse(argv: list[str] | None = None, config: str | os.PathLike | dict | None = None,
          overrides: dict | None = None):
    """(RoleBenchArguments, SFTConfig, ModelConfig) from a recipe, flags and keyword overrides, checked.

    ``argv`` is the command line as TrlParser takes it (``--config recipe.yaml`` and flags);
    ``config`` (a recipe path or mapping) and ``overrides`` serve the Python API. Precedence:
    TRL's defaults < the recipe < ``overrides`` < flags.
    """
    argv = list(argv or [])
    if config is not None and not isinstance(config, dict):
        argv = ["--config", str(config), *argv]
    recipe = recipe_path(argv)
    parser = make_parser()
    parser.recipe = recipe
    parser.overrides = ((config if isinstance(config, dict) else {}, "recipe"), (dict(overrides or {}), "overrides"))
    check_flags(parser, argv)
    if recipe is None:  # TrlParser applies the config file's values (and ours) only when there is one
        parser.set_defaults_with_config()
    try:
        script, training, model = parser.parse_args_and_config(argv)
    except ValueError as err:  # the dataclasses' own checks (SFTConfig, ModelConfig, ours)
        if isinstance(err, RecipeError):
            raise
        raise RecipeError(recipe, None, None, str(err)) from None
    sources = key_sources(parser, argv, recipe, config, overrides)
    try:
        check_settings(script, training, model, set(sources))
    except RecipeError as err:
        path, line = sources.get(err.field, (None, None))
        raise RecipeError(path, line, err.field, err.problem) from None
    return script, training, model


def recipe_path(argv: list[str]) -> str | None:
    """The ``--config`` file, checked to be a YAML mapping (TrlParser would raise a bare OSError)."""
    if "--config" not in argv:
        return None
    index = argv.index("--config") + 1
    if index >= len(argv):
        raise RecipeError(None, None, "--config", "expects a recipe file (finetune/recipes/*.yaml)")
    read_recipe(argv[index])
    return argv[index]


def key_sources(parser, argv: list[str], recipe: str | None, config, overrides) -> dict[str, tuple]:
    """Each key set by the recipe, an override or a flag -> (file, line) when its value is the recipe's."""
    lines = key_lines(recipe)
    sources = {key: (recipe, lines.get(key)) for key in (read_recipe(recipe) if recipe else {})}
    sources |= {key: (None, None) for key in (config if isinstance(config, dict) else {})}
    sources |= {key: (None, None) for key in (overrides or {})}
    flags = options(parser)
    sources |= {flags[a.split("=", 1)[0]].dest: (None, None) for a in argv if a.split("=", 1)[0] in flags}
    return sources


def read_recipe(path: str | os.PathLike) -> dict:
    """The key/value mapping of a recipe YAML file (not yet checked)."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(path, None, None, "recipe file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise RecipeError(path, None, None, f"invalid YAML ({err})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(path, None, None, f"a recipe is a mapping of keys to values, got {type(data).__name__}")
    return data


def check_settings(script: RoleBenchArguments, training, model, given: set[str]) -> None:
    """Values that cannot train, refused before any file or model is read."""
    for key in ("model_name_or_path", "output_dir"):
        if key not in given or not getattr(model if key == "model_name_or_path" else training, key):
            _fail(key, f"required: pass --{key} (no default: a run folder and a base model are explicit)")
    script.check()
    if not model.use_peft:
        _fail("use_peft", "RoCIT trains a LoRA adapter (what lm-eval loads with peft=); full fine-tuning "
                          "is not supported here")
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
    if training.max_steps == 0 or (training.max_steps < 0 and training.num_train_epochs <= 0):
        _fail("max_steps" if training.max_steps == 0 else "num_train_epochs", "no training step would run")
    for key in ("per_device_train_batch_size", "gradient_accumulation_steps"):
        if getattr(training, key) < 1:
            _fail(key, "must be at least 1")
    if training.eval_strategy != "no" and not script.eval_holdout:
        _fail("eval_strategy", f"is {getattr(training.eval_strategy, 'value', training.eval_strategy)} but eval_holdout is 0 (no eval items); "
                               "set eval_holdout > 0 or eval_strategy: no")
