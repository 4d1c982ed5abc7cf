"""RoCIT recipes: the argument dataclasses, YAML loading, overrides and the early checks.

A recipe is a flat YAML mapping whose keys are fields of :class:`ScriptArguments`,
:class:`ModelArguments` or :class:`TrainArguments` (TRL's recipe shape). Everything here is
light (PyYAML only), so a bad recipe, a missing file or a wrong base-model path fails in a
fraction of a second, before torch is imported.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rolebench_eval.errors import InputError

PROMPT_FORMATS = ("auto", "chat", "plain")


class RecipeError(InputError):
    """A recipe or an override is wrong; the message names the recipe file and the key."""


@dataclass
class ScriptArguments:
    """Which RoleBench data, how it is mixed, and how it is rendered."""

    splits: list[str] = field(default_factory=list, metadata={
        "help": "RoleBench splits whose train.jsonl is used, e.g. general_zh specific_zh (rolebench_eval/splits.yaml)."})
    data_dir: str | None = field(default=None, metadata={
        "help": "Local RoleBench copy; default $ROLEBENCH_DATA_DIR, else the Hub dataset ZenMoore/RoleBench."})
    data_revision: str | None = field(default=None, metadata={"help": "Hub revision of the dataset."})
    extra_data: list[dict] = field(default_factory=list, metadata={
        "help": "Extra RoleBench-format JSONL files: a list of {path, lang: en|zh, kind: general|specific, "
                "descriptions?: desc.json}."})
    references_per_item: int = field(default=1, metadata={
        "help": "How many of an item's references (up to five for general items) become training samples."})
    skip_degenerate_references: bool = field(default=True, metadata={
        "help": "Leave out references that hold no answer, e.g. '(No response provided)'."})
    general_to_specific_ratio: float | None = field(default=None, metadata={
        "help": "Target ratio of general to role-specific training samples, reached by subsampling the larger "
                "side; null keeps the natural mix."})
    max_items_per_split: int | None = field(default=None, metadata={
        "help": "Use only the first N items of each split and extra file (smoke runs)."})
    eval_holdout: int = field(default=0, metadata={
        "help": "Items (all their samples) held out for the periodic eval loss; 0 turns evaluation off."})
    prompt_format: str = field(default="auto", metadata={
        "help": "chat: the tokenizer's chat template (evaluate with --apply_chat_template); plain: the "
                "RoleLLaMA text layout (evaluate without it); auto: chat when the tokenizer has a template."})


@dataclass
class ModelArguments:
    """The base model and the LoRA adapter (field names as in TRL's ``ModelConfig``)."""

    model_name_or_path: str | None = field(default=None, metadata={
        "help": "Base model: a local folder or a Hugging Face model id. Required; no default."})
    dtype: str = field(default="auto", metadata={"help": "auto, bfloat16, float16 or float32."})
    attn_implementation: str | None = field(default=None, metadata={"help": "e.g. sdpa or flash_attention_2."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (scaling = alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: list[str] | None = field(default=None, metadata={
        "help": "Modules that get LoRA, e.g. q_proj v_proj, or all-linear; null: peft's default for the model."})


@dataclass
class TrainArguments:
    """The trainer settings we expose; defaults are TRL ``SFTConfig``'s, except where noted."""

    output_dir: str | None = field(default=None, metadata={
        "help": "Run folder: checkpoint-*/ and, at the end, adapter/. Required."})
    resume: bool = field(default=False, metadata={"help": "Continue from the latest complete checkpoint."})
    learning_rate: float = field(default=2e-5, metadata={"help": "Peak learning rate."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Epochs (ignored when max_steps > 0)."})
    max_steps: int = field(default=-1, metadata={"help": "Total optimizer steps; -1: from num_train_epochs."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Batch size per process."})
    per_device_eval_batch_size: int = field(default=8, metadata={"help": "Eval batch size per process."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Steps accumulated per update."})
    lr_scheduler_type: str = field(default="linear", metadata={"help": "e.g. linear, cosine, constant."})
    warmup_steps: float = field(default=0, metadata={"help": "Warmup steps, or a ratio of all steps if < 1."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    max_length: int = field(default=1024, metadata={
        "help": "Tokens per sample; longer answers are cut, samples whose prompt alone is longer are dropped."})
    packing: bool = field(default=False, metadata={"help": "Pack samples into max_length rows (BFD)."})
    logging_steps: float = field(default=10, metadata={"help": "Log the training loss every N steps."})
    eval_steps: float | None = field(default=None, metadata={
        "help": "Eval loss every N steps when eval_holdout > 0; null: every logging_steps."})
    save_steps: float = field(default=500, metadata={"help": "Checkpoint every N steps."})
    save_total_limit: int | None = field(default=None, metadata={"help": "Keep at most N checkpoints."})
    seed: int = field(default=42, metadata={"help": "Seed for the data mix, LoRA init and shuffling."})
    bf16: bool = field(default=False, metadata={"help": "bfloat16 mixed precision (ours: off by default)."})
    fp16: bool = field(default=False, metadata={"help": "float16 mixed precision."})
    gradient_checkpointing: bool = field(default=True, metadata={"help": "Trade compute for memory."})
    optim: str = field(default="adamw_torch", metadata={"help": "Optimizer name (transformers' optim)."})
    report_to: list[str] = field(default_factory=lambda: ["none"], metadata={
        "help": "Trackers, e.g. tensorboard wandb; none: only the console and trainer_state.json."})
    disable_tqdm: bool = field(default=False, metadata={"help": "Hide the progress bar."})


ARG_CLASSES = (ScriptArguments, ModelArguments, TrainArguments)


def fields_by_name() -> dict[str, tuple[type, dataclasses.Field, Any]]:
    """Every recipe key -> (its dataclass, the field, the resolved type hint)."""
    out = {}
    for cls in ARG_CLASSES:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            out[f.name] = (cls, f, hints[f.name])
    return out


def _type_ok(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in args)
    if hint is type(None):
        return value is None
    if origin is list:
        return isinstance(value, list) and all(_type_ok(v, args[0]) for v in value)
    if hint is dict:
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("NoneType", "null")


def _coerce(value: Any, hint: Any) -> Any:
    """YAML 1.1 reads ``2e-4`` (no dot) as a string; accept it where a number is expected."""
    accepts_float = hint is float or float in typing.get_args(hint)
    if accepts_float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def coerce_values(values: dict) -> dict:
    """``values`` with number-like strings turned into numbers for the numeric keys."""
    known = fields_by_name()
    return {k: _coerce(v, known[k][2]) if k in known else v for k, v in values.items()}


def check_keys(values: dict, origin: str) -> None:
    """Unknown keys and values of the wrong type raise :class:`RecipeError` naming ``origin``."""
    known = fields_by_name()
    for key, value in values.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(known))}"
            raise RecipeError(f"{origin}: unknown recipe key {key!r}{hint}")
        hint_type = known[key][2]
        if not _type_ok(value, hint_type):
            raise RecipeError(f"{origin}: key {key!r}: expected {_type_name(hint_type)}, got {value!r}")


def read_recipe(path: str | os.PathLike) -> dict:
    """The key/value mapping of a recipe YAML file (not yet checked)."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise RecipeError(f"{path}: invalid YAML ({err})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of keys to values, got {type(data).__name__}")
    return data


def build_args(values: dict, origin: str) -> tuple[ScriptArguments, ModelArguments, TrainArguments]:
    """Split checked key/values into the three dataclasses and validate what they say."""
    check_keys(values, origin)
    known = fields_by_name()
    parts: dict[type, dict] = {cls: {} for cls in ARG_CLASSES}
    for key, value in values.items():
        parts[known[key][0]][key] = value
    script, model, train = (cls(**parts[cls]) for cls in ARG_CLASSES)
    _validate(script, model, train, origin)
    return script, model, train


def _validate(script: ScriptArguments, model: ModelArguments, train: TrainArguments, origin: str) -> None:
    from rolebench_eval.catalogue import get_split

    def fail(key: str, problem: str):
        raise RecipeError(f"{origin}: key {key!r}: {problem}")

    if not model.model_name_or_path:
        fail("model_name_or_path", "required (a local model folder or a Hub id); pass --model_name_or_path")
    if not train.output_dir:
        fail("output_dir", "required; pass --output_dir")
    if not script.splits and not script.extra_data:
        fail("splits", "no training data: name RoleBench splits and/or extra_data files")
    for name in script.splits:
        try:
            get_split(name)
        except ValueError as err:
            fail("splits", str(err))
    if script.prompt_format not in PROMPT_FORMATS:
        fail("prompt_format", f"expected one of {', '.join(PROMPT_FORMATS)}, got {script.prompt_format!r}")
    if script.references_per_item < 1:
        fail("references_per_item", "must be at least 1")
    if script.general_to_specific_ratio is not None and script.general_to_specific_ratio <= 0:
        fail("general_to_specific_ratio", "must be > 0 (or null for the natural mix)")
    if script.eval_holdout < 0 or (script.max_items_per_split is not None and script.max_items_per_split < 0):
        fail("eval_holdout" if script.eval_holdout < 0 else "max_items_per_split", "must not be negative")
    for i, extra in enumerate(script.extra_data):
        _validate_extra(extra, f"{origin}: key 'extra_data[{i}]'")
    if model.lora_r < 1 or model.lora_alpha < 1:
        fail("lora_r" if model.lora_r < 1 else "lora_alpha", "must be at least 1")
    if not 0 <= model.lora_dropout < 1:
        fail("lora_dropout", "must be in [0, 1)")
    if train.max_length < 8:
        fail("max_length", "must be at least 8 tokens")


def _validate_extra(extra: dict, where: str) -> None:
    allowed = {"path", "lang", "kind", "descriptions"}
    unknown = set(extra) - allowed
    if unknown:
        raise RecipeError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    for key, choices in (("lang", ("en", "zh")), ("kind", ("general", "specific"))):
        if extra.get(key) not in choices:
            raise RecipeError(f"{where}: field {key!r} must be one of {choices}, got {extra.get(key)!r}")
    for key in ("path", "descriptions"):
        if key in extra and not isinstance(extra[key], str):
            raise RecipeError(f"{where}: field {key!r} must be a path string")
    if "path" not in extra:
        raise RecipeError(f"{where}: field 'path' is required")
    for key in ("path", "descriptions"):
        if key in extra and not Path(extra[key]).expanduser().is_file():
            raise RecipeError(f"{where}: {key} file not found: {extra[key]}")


def load_config(config: str | os.PathLike | dict, overrides: dict | None = None):
    """Recipe (a YAML path or a dict) plus overrides -> the three checked dataclasses."""
    if isinstance(config, dict):
        values, origin = dict(config), "recipe"
    else:
        values, origin = read_recipe(config), str(config)
    values = coerce_values(values)
    check_keys(values, origin)
    overrides = coerce_values(dict(overrides or {}))
    check_keys(overrides, f"{origin} (overrides)")
    return build_args(values | overrides, origin)


def looks_like_local_path(name: str) -> bool:
    """A model reference meant as a folder (absolute, ./, ../, ~, a/b/c or existing) rather than a Hub id."""
    return (name.startswith(("/", "./", "../", "~")) or os.path.isabs(name) or name.count("/") > 1
            or Path(name).exists())


def check_base_model(name: str) -> None:
    """A local base model must be a folder with config.json; offline, a Hub id must be cached."""
    if looks_like_local_path(name):
        path = Path(name).expanduser()
        if not path.is_dir():
            raise RecipeError(f"base model folder not found: {name} (key 'model_name_or_path')")
        if not (path / "config.json").is_file():
            raise RecipeError(f"base model folder {name} has no config.json (key 'model_name_or_path')")
        return
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(name, "config.json"), str):
            raise RecipeError(f"base model {name!r} is not a local folder and HF_HUB_OFFLINE is set but it is "
                              "not in the Hugging Face cache (key 'model_name_or_path')")
