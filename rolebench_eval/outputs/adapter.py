"""The fine-tuning run's two records: ``rolebench_run.json`` (its folder) and ``rolebench_provenance.json``
(the adapter's folder).

The run record is written when training starts and read by ``--resume`` to refuse settings that
would not fit the checkpoints. The provenance record is written with the adapter and read at
evaluation time (the train/eval prompt check of :mod:`rolebench_eval.provenance`) and by
``--resume`` (is the adapter finished?). Both are format version 1; a record without a version
is read as version 1. ``data``, ``hyperparameters`` and ``settings`` hold the run's settings as
given (TRL's and ours), so they are open mappings.
"""

from __future__ import annotations

import os
from typing import Any, Literal, Union

from msgspec import UNSET, Struct, UnsetType, field

from . import codec

FORMAT_VERSION = 1
READ_VERSIONS = (1,)
PROVENANCE_FILE = "rolebench_provenance.json"
RUN_FILE = "rolebench_run.json"


class BaseModel(Struct, kw_only=True):
    """The base model as given, plus its resolved folder and config.json hash when it is local."""

    name_or_path: Union[str, None] = None
    path: Union[str, UnsetType] = UNSET
    config_sha256: Union[str, UnsetType] = UNSET


class PromptRecord(Struct, kw_only=True):
    """How the training prompts were rendered: what evaluation must render too."""

    format: Union[Literal["chat", "plain"], None] = None
    prompt_version: Union[str, None] = None
    chat_template_sha256: Union[str, None] = None
    role_prompt_placement: Union[str, None] = None
    plain_template: Union[str, None] = None
    evaluate_with_apply_chat_template: Union[bool, None] = None


class TrainResult(Struct, kw_only=True):
    global_step: Union[int, None] = None
    world_size: Union[int, None] = None
    first_train_loss: Union[float, None] = None
    last_train_loss: Union[float, None] = None
    last_eval_loss: Union[float, None] = None


class Provenance(Struct, kw_only=True):
    """``rolebench_provenance.json``: what an adapter was trained on and with."""

    format_version: int = FORMAT_VERSION
    created: Union[str, None] = None
    base_model: BaseModel = field(default_factory=BaseModel)
    data: dict[str, Any] = field(default_factory=dict)
    prompt: PromptRecord = field(default_factory=PromptRecord)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    result: TrainResult = field(default_factory=TrainResult)
    packages: dict[str, Union[str, None]] = field(default_factory=dict)


class RunRecord(Struct, kw_only=True):
    """``rolebench_run.json``: every setting of the run (the base model as :class:`BaseModel` gives it)."""

    format_version: int = FORMAT_VERSION
    created: Union[str, None] = None
    settings: dict[str, Any] = field(default_factory=dict)


def _read(path: str | os.PathLike, type_: type, what: str):
    record = codec.read(path, type_, what)
    if record.format_version not in READ_VERSIONS:
        raise codec.refuse_version(path, "format_version", record.format_version, READ_VERSIONS,
                                   "not written by rolebench-eval finetune")
    return record


def read_provenance(path: str | os.PathLike) -> Provenance:
    return _read(path, Provenance, "adapter provenance file")


def read_run_record(path: str | os.PathLike) -> RunRecord:
    return _read(path, RunRecord, "run record")
