"""RoCIT: role-conditioned instruction tuning with LoRA (installed as ``rolebench_eval.finetune``).

``train(recipe, **overrides)`` trains an adapter for lm-eval's ``peft=``; see ``finetune/README.md``.
Nothing heavy is imported until training starts.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["check_adapter_provenance", "train"]


def train(config: str | os.PathLike | dict, **overrides) -> Path:
    """Train a LoRA adapter from a recipe (YAML path or dict) and overrides; returns the adapter folder.

    Bad recipes, missing data and a missing base model raise ``RecipeError`` /
    ``RoleBenchDataError`` before torch is imported.
    """
    from .config import load_config
    from .sft_lora import main

    return main(*load_config(config, overrides))


def check_adapter_provenance(adapter_dir, pretrained_dir_or_name, prompt_version, **kwargs) -> list[str]:
    """See :func:`rolebench_eval.provenance.check_adapter_provenance`."""
    from rolebench_eval.provenance import check_adapter_provenance as _check

    return _check(adapter_dir, pretrained_dir_or_name, prompt_version, **kwargs)
