"""``rolebench_provenance.json``: what an adapter was trained on and with, and the eval-time check.

The file sits in the adapter folder. :func:`check_adapter_provenance` compares it with what an
evaluation is about to render (base model, chat template, role-prompt version) and returns
warnings: a silent train/eval template mismatch is the most common way fine-tuned role-play
scores go wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path

from rolebench_eval.outputs import adapter as schema
from rolebench_eval.outputs.adapter import PROVENANCE_FILE, BaseModel, Provenance

PACKAGES = ("rolebench-eval", "lm_eval", "torch", "transformers", "peft", "trl", "accelerate", "datasets", "tokenizers")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape training."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def base_model_record(name_or_path: str) -> BaseModel:
    """The base model as given, plus its resolved folder and config.json hash when it is local."""
    config = Path(name_or_path).expanduser() / "config.json"
    if not config.is_file():
        return BaseModel(name_or_path=name_or_path)
    return BaseModel(name_or_path=name_or_path, path=str(config.parent.resolve()),
                     config_sha256=hashlib.sha256(config.read_bytes()).hexdigest())


def read_provenance(adapter_dir: str | os.PathLike) -> Provenance | None:
    """The adapter's provenance record, or None when it has none."""
    path = Path(adapter_dir) / PROVENANCE_FILE
    if not path.is_file():
        return None
    return schema.read_provenance(path)


UNKNOWN = "unknown"


def chat_template_sha256(tokenizer) -> str | None:
    """sha256 of the tokenizer's chat template text (a dict of named templates as sorted JSON)."""
    template = tokenizer.chat_template
    if not template:
        return None
    text = template if isinstance(template, str) else json.dumps(template, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def provenance_warnings(record: Provenance, *, base: str | None, prompt_version: str, chat_template_sha256: str | None,
                        apply_chat_template: bool | None = None) -> list[str]:
    """Pure comparison of a provenance record with an evaluation's settings.

    ``chat_template_sha256`` is the hash of the template evaluation would apply (None: the model
    has none; ``UNKNOWN``: not compared); ``apply_chat_template`` is None when unknown.
    """
    warnings = []
    prompt = record.prompt
    trained_version = prompt.prompt_version
    if trained_version != prompt_version:
        warnings.append(f"role-prompt version mismatch: the adapter was trained with PROMPT_VERSION "
                        f"{trained_version!r}, evaluation renders version {prompt_version!r}")
    fmt = prompt.format
    if fmt == "chat":
        if chat_template_sha256 != UNKNOWN and chat_template_sha256 != prompt.chat_template_sha256:
            warnings.append(f"chat template mismatch: trained with template sha256 "
                            f"{prompt.chat_template_sha256}, the evaluated tokenizer's is {chat_template_sha256}")
        if apply_chat_template is False:
            warnings.append("the adapter was trained on chat-template prompts but evaluation runs without "
                            "--apply_chat_template")
    elif fmt == "plain" and apply_chat_template:
        warnings.append("the adapter was trained on plain-text prompts (no chat template) but evaluation "
                        "applies the chat template; run without --apply_chat_template")
    trained_base = record.base_model
    if base is not None and not _same_base(trained_base, base_model_record(base)):
        warnings.append(f"base model mismatch: the adapter was trained on {trained_base.name_or_path!r}, "
                        f"evaluation loads {base!r}")
    return warnings


def _same_base(trained: BaseModel, evaluated: BaseModel) -> bool:
    if trained.config_sha256 and evaluated.config_sha256:
        return trained.config_sha256 == evaluated.config_sha256
    return trained.name_or_path == evaluated.name_or_path


def check_adapter_provenance(adapter_dir: str | os.PathLike, pretrained_dir_or_name: str, prompt_version: str,
                             *, apply_chat_template: bool | None = None, tokenizer=None) -> list[str]:
    """Warnings about an adapter evaluated on ``pretrained_dir_or_name``; empty when consistent or unrecorded.

    The evaluation's chat template is read from ``tokenizer`` when given (e.g. lm-eval's
    ``lm.tokenizer``), else from the base model's tokenizer.
    """
    try:
        record = read_provenance(adapter_dir)
    except (OSError, ValueError) as err:
        return [f"{Path(adapter_dir) / PROVENANCE_FILE}: unreadable provenance file ({err})"]
    if record is None:
        return []
    warnings, sha = [], UNKNOWN
    try:
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(pretrained_dir_or_name)
        sha = chat_template_sha256(tokenizer)
    except (OSError, ValueError) as err:
        warnings.append(f"could not load the tokenizer of {pretrained_dir_or_name!r} to compare chat templates: {err}")
    return warnings + provenance_warnings(record, base=pretrained_dir_or_name, prompt_version=prompt_version,
                                          chat_template_sha256=sha, apply_chat_template=apply_chat_template)
