"""The board spec (``rolebench-eval board BOARD.yaml``): which models, on which tasks, in how many shards,
judged how, ranked how.

A YAML file decoded straight into :class:`BoardSpec` by msgspec; whatever it refuses, and the few rules
a type cannot say (known task names, one folder per model, an adapter only where lm-eval loads one),
is one :class:`~rolebench_eval.errors.InputError` naming the file, the line of the field and the field.
Relative paths in the spec (``out``, ``data_dir``, adapters) are read relative to the spec's folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Union

from msgspec import Meta, Struct, field

from . import codec
from .models import ModelInfo
from .runs import model_args

Count = Annotated[int, Meta(ge=1)]
# lm-eval models that load an adapter, and the model_args key that names it.
ADAPTER_ARG = {"hf": "peft", "vllm": "lora_local_path"}
# lm-eval models that ask an OpenAI-compatible chat endpoint: the ones a board can put through conversations;
# the first is the model type a conversation run records (what ``lm_eval --model`` takes for a served endpoint).
CHAT_MODELS = ("local-chat-completions", "openai-chat-completions")


class Resources(Struct, kw_only=True, forbid_unknown_fields=True):
    """What one run of the model needs (a Ray task's ``num_cpus``/``num_gpus``; the local backend ignores it)."""

    cpus: Annotated[float, Meta(ge=0)] = 1.0
    gpus: Annotated[float, Meta(ge=0)] = 0.0


class ModelSpec(ModelInfo, kw_only=True, forbid_unknown_fields=True):
    """One row of the board: an lm-eval model (``hf``, ``vllm``, ``local-chat-completions`` for a served
    OpenAI-compatible model, ``rolegpt``, ``dummy``, ...) with its ``model_args``, and how to show it
    (:class:`~.models.ModelInfo`: ``name``, the row's label and, made file-safe, its folder under the
    board's output; ``parameters``, ``base_model``, ``link``, ``license``)."""

    model: str
    model_args: Union[str, dict[str, Any]] = field(default_factory=dict)
    adapter: Union[str, None] = None  # hf: peft=, vllm: lora_local_path=
    apply_chat_template: bool = False
    run_args: list[str] = field(default_factory=list)  # more lm-eval flags, as given on its command line
    resources: Resources = field(default_factory=Resources)

    @property
    def folder(self) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.name).strip("._") or "model"

    def lm_eval_model_args(self) -> str:
        """``model_args`` as lm-eval's ``k=v,k=v`` string, with the adapter under its model's key."""
        args = self.model_args if isinstance(self.model_args, str) else ",".join(
            f"{k}={v}" for k, v in self.model_args.items())
        if self.adapter is not None:
            args = ",".join(a for a in (args, f"{ADAPTER_ARG[self.model]}={self.adapter}") if a)
        return args or f"model={self.folder}"  # else lm-eval names the output folder at random

    def chat_endpoint(self) -> tuple[str, str | None] | None:
        """(served model name, the endpoint's ``/v1`` root or None for OpenAI's) of a chat-endpoint model."""
        if self.model not in CHAT_MODELS:
            return None
        args = model_args({"model_args": self.model_args})
        url = args.get("base_url")  # lm-eval's is the full .../chat/completions URL; the client takes the root
        return str(args.get("model", self.folder)), None if url is None else re.sub(r"/chat/completions/?$", "", str(url))


class JudgeStep(Struct, kw_only=True, forbid_unknown_fields=True):
    """One ``rolebench-eval judge`` over every model's merged runs and conversations."""

    judge: str  # rank, pairwise, rubric, conversation (the conversations section's) or a judge folder
    model: Union[str, None] = None
    base_url: Union[str, None] = None
    args: list[str] = field(default_factory=list)  # more `judge` flags (--max-cost 5, ...)


class ConversationStep(Struct, kw_only=True, forbid_unknown_fields=True):
    """``rolebench-eval converse`` of one scenario file (replay: every model meets the same user turns)
    for each chat-endpoint model (:data:`CHAT_MODELS`), or the ones named."""

    scenarios: str
    models: Union[list[str], None] = None  # names of board models; default: every chat-endpoint model
    args: list[str] = field(default_factory=list)  # more `converse` flags (--turns 4, --max-cost 2, ...)

    def chosen(self, models: list[ModelSpec]) -> list[ModelSpec]:
        return [m for m in models if (m.name in self.models if self.models is not None else m.chat_endpoint())]


class LeaderboardOptions(Struct, kw_only=True, forbid_unknown_fields=True):
    baseline: Union[str, None] = None
    include_incomparable: bool = False
    seed: Union[int, None] = None
    n_boot: Union[Count, None] = None
    args: list[str] = field(default_factory=list)  # more `leaderboard` flags


class BoardSpec(Struct, kw_only=True, forbid_unknown_fields=True):
    models: Annotated[list[ModelSpec], Meta(min_length=1)]
    tasks: Annotated[list[str], Meta(min_length=1)]
    shards: Union[Count, dict[str, Count]] = 1  # one count for every task, or per task (default 1)
    judges: list[JudgeStep] = field(default_factory=list)
    conversations: Union[ConversationStep, None] = None
    leaderboard: LeaderboardOptions = field(default_factory=LeaderboardOptions)
    data_dir: Union[str, None] = None  # else $ROLEBENCH_DATA_DIR, else the Hub
    out: Union[str, None] = None  # else BOARD's name without .yaml, beside it

    def shards_of(self, task: str) -> int:
        return self.shards if isinstance(self.shards, int) else self.shards.get(task, 1)


def _check(spec: BoardSpec, fail) -> BoardSpec:
    """The rules a type cannot say; ``fail(field, problem)`` raises."""
    from rolebench_eval import catalogue

    known = catalogue.names()
    for i, task in enumerate(spec.tasks):
        if task not in known:
            fail(f"tasks[{i}]", f"unknown task {task!r}: one of the catalogue's names (rolebench-eval tasks-dir)")
    for task in spec.shards if isinstance(spec.shards, dict) else ():
        if task not in spec.tasks:
            fail("shards", f"{task!r} is not one of the board's tasks")
    seen: dict[str, str] = {}
    for i, model in enumerate(spec.models):
        if model.folder in seen:
            fail(f"models[{i}].name", f"{model.name!r} would share the folder {model.folder!r} with {seen[model.folder]!r}")
        seen[model.folder] = model.name
        for where, problem in model.problems():
            fail(f"models[{i}].{where}", problem)
        if model.adapter is not None and model.model not in ADAPTER_ARG:
            fail(f"models[{i}].adapter", f"lm-eval loads adapters for {' and '.join(ADAPTER_ARG)} models, "
                                         f"not {model.model!r}")
    if spec.conversations is not None:
        _check_conversations(spec.conversations, spec.models, fail)
    return spec


def _check_conversations(step: ConversationStep, models: list[ModelSpec], fail) -> None:
    by_name = {m.name: m for m in models}
    for i, name in enumerate(step.models or ()):
        if name not in by_name:
            fail(f"conversations.models[{i}]", f"{name!r} is not one of the board's models")
        elif by_name[name].chat_endpoint() is None:
            fail(f"conversations.models[{i}]", f"{name!r} is an lm-eval {by_name[name].model!r} model; conversations "
                                               f"ask a chat endpoint ({', '.join(CHAT_MODELS)}): serve it")
    if not step.chosen(models):
        fail("conversations", f"no model of the board is a chat endpoint ({', '.join(CHAT_MODELS)}) to converse with")


def read_spec(path: str | os.PathLike) -> BoardSpec:
    """``BOARD.yaml`` as a checked :class:`BoardSpec`; relative paths made relative to its folder."""
    spec, fail = codec.read_yaml(path, BoardSpec, "board spec")
    spec = _check(spec, fail)
    here = Path(path).resolve().parent
    for name in ("out", "data_dir"):
        value = getattr(spec, name)
        if value is not None:
            setattr(spec, name, str(here / os.path.expanduser(value)))
    for model in spec.models:
        local = None if model.adapter is None else here / os.path.expanduser(model.adapter)
        if local is not None and local.exists():  # else a Hub id, as given
            model.adapter = str(local)
    if spec.out is None:
        spec.out = str(Path(path).resolve().with_suffix(""))
    if spec.conversations is not None:
        spec.conversations.scenarios = str(here / os.path.expanduser(spec.conversations.scenarios))
    return spec
