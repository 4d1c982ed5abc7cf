"""``rolebench-eval finetune``: the verb's parser and its run function."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from rolebench_eval.errors import EXIT_OK

from .sft_lora import make_parser, overrides_from


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``finetune`` verb to ``rolebench-eval``'s subparsers."""
    parser = make_parser(subparsers)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Train from ``--config`` and the overrides; print the adapter folder. Exit 2 on bad input."""
    from . import train

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    adapter = train(args.config or {}, **overrides_from(args))
    if int(os.environ.get("RANK", "0")) == 0:
        print(adapter)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """``python -m rolebench_eval.finetune`` (what ``accelerate launch -m`` runs), with the CLI's exit policy."""
    from rolebench_eval.cli import main as cli_main

    return cli_main(["finetune", *(sys.argv[1:] if argv is None else argv)])
