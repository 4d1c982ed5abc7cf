"""``rolebench-eval finetune``: the verb hands its whole command line to TRL's parser.

Registering the verb imports nothing heavy (``rolebench-eval --help`` stays fast); the flags
are SFTConfig's, ModelConfig's and ours, parsed by ``TrlParser`` when the verb runs, so
``rolebench-eval finetune --help`` lists them all.
"""

from __future__ import annotations

import argparse
import logging
import os

from rolebench_eval.errors import EXIT_OK

HELP = "RoCIT: LoRA fine-tuning on RoleBench (TRL's SFT script shape; --help lists every flag)"


class _PassThrough(argparse.ArgumentParser):
    """A subparser that keeps every argument for TrlParser instead of parsing it."""

    def parse_known_args(self, args=None, namespace=None):
        namespace = namespace if namespace is not None else argparse.Namespace()
        namespace.finetune_argv, namespace.func = list(args or []), run
        return namespace, []


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``finetune`` verb to ``rolebench-eval``'s subparsers."""
    subparsers.add_parser("finetune", help=HELP, add_help=False)
    parser = _PassThrough(prog="rolebench-eval finetune", add_help=False)
    subparsers.choices["finetune"] = parser  # argparse looks the verb's parser up in this mapping
    return parser


def run(args: argparse.Namespace) -> int:
    """Train from ``--config`` and the flags; print the adapter folder. Bad input raises RecipeError (exit 2)."""
    from .recipe import parse
    from .sft_lora import main as train_main

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    adapter = train_main(*parse(args.finetune_argv))
    if int(os.environ.get("RANK", "0")) == 0:
        print(adapter)
    return EXIT_OK
