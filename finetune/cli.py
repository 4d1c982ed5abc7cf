"""``rolebench-eval finetune``: the verb's parser and its run function."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from .config import RecipeError
from .sft_lora import make_parser, overrides_from

from rolebench_eval.data import RoleBenchDataError


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``finetune`` verb to ``rolebench-eval``'s subparsers."""
    parser = make_parser(subparsers)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Train from ``--config`` and the overrides; print the adapter folder. Exit 2 on bad input."""
    from . import train

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        adapter = train(args.config or {}, **overrides_from(args))
    except (RecipeError, RoleBenchDataError) as err:
        print(f"rolebench-eval finetune: error: {err}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(adapter)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m rolebench_eval.finetune`` (what ``accelerate launch -m`` runs)."""
    return run(make_parser().parse_args(argv))
