"""RoCIT: role-conditioned instruction tuning with LoRA (installed as ``rolebench_eval.finetune``).

``train(recipe, **overrides)`` trains an adapter for lm-eval's ``peft=``; see ``finetune/README.md``.
Nothing heavy is imported until training starts.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["check_adapter_provenance", "train"]


def train(config: str | os.PathLike | dict | None = None, **overrides) -> Path:
    """Train a LoRA adapter from a recipe (YAML path or mapping) and overrides; returns the adapter folder.

    Keys are those of the recipe and of ``rolebench-eval finetune --help`` (TRL's names), e.g.
    ``train("finetune/recipes/tiny_cpu.yaml", model_name_or_path="m", output_dir="runs/x", lora_r=4)``.
    Bad recipes, missing data and a missing base model raise ``RecipeError`` (an ``InputError``)
    before any model is loaded.
    """
    from .recipe import parse
    from .sft_lora import main

    return main(*parse(config=config, overrides=overrides))


def check_adapter_provenance(adapter_dir, pretrained_dir_or_name, prompt_version, **kwargs) -> list[str]:
    """See :func:`rolebench_eval.provenance.check_adapter_provenance`."""
    from rolebench_eval.provenance import check_adapter_provenance as _check

    return _check(adapter_dir, pretrained_dir_or_name, prompt_version, **kwargs)
