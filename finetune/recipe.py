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
from pathlib import Path
from typing import Any

import yaml

from rolebench_eval.fileio import load_yaml, yaml_loader

from .args import RecipeError, RoleBenchArguments, check_settings


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
        node = yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=yaml_loader())
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
    if isinstance(value, bool) and kind != "string_to_bool":
        # YAML 1.1 reads an unquoted no/yes as a boolean: eval_strategy: no means "no"
        word = "yes" if value else "no"
        if action.choices is None or word not in map(str, action.choices):
            fail(f"expected {_expected(action, kind)}, got {str(value).lower()} (YAML reads unquoted yes/no as "
                 "booleans: quote the value)")
        value = word
    if action.type is int and isinstance(value, float):
        if not value.is_integer():
            fail(f"expected an integer, got {value!r}")
        value = int(value)
    try:
        converted = value if action.type is None else action.type(str(value))
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        fail(f"expected {_expected(action, kind)}, got {value!r}")
    if action.choices is not None and converted not in action.choices:
        fail(f"expected {_expected(action, kind)}, got {value!r}")
    return converted


def _expected(action: argparse.Action, kind: str) -> str:
    if action.choices is not None:
        return "one of " + ", ".join(map(str, action.choices))
    return {"string_to_bool": "true or false"}.get(kind, kind)


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
        data = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise RecipeError(path, None, None, f"invalid YAML ({err})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(path, None, None, f"a recipe is a mapping of keys to values, got {type(data).__name__}")
    return data
