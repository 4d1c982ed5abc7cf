"""Command-line flags whose values are checked where they are parsed: a bad value is one line naming
the flag, exit status 2 (argparse's own type errors print the whole usage first). Every verb's numeric
flags go through :func:`number_arg`, so a negative cap or a NaN never reaches the work.

    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="demo")
    >>> _ = parser.add_argument("--jobs", **number_arg(int, 1))
    >>> parser.parse_args(["--jobs", "3"]).jobs
    3
"""

from __future__ import annotations

import argparse
import math


class Checked(argparse.Action):
    """A flag whose value ``parse`` checks: a bad one is one line naming the flag, exit status 2
    (argparse's own type errors print the whole usage first)."""

    def __init__(self, *args, parse, **kwargs):
        super().__init__(*args, **kwargs)
        self.parse = parse

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            setattr(namespace, self.dest, self.parse(values))
        except ValueError as err:
            parser.exit(2, f"{parser.prog}: error: argument {option_string}: {err}, got {values!r}\n")


def number_arg(kind: type = float, low: float | None = 0, strict: bool = False) -> dict:
    """``add_argument`` keywords for a finite number at or above ``low`` (above it when ``strict``)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or (low is not None and (value <= low if strict else value < low)):
            bound = "" if low is None else f" {'>' if strict else '>='} {low:g}"
            raise ValueError(f"expected {'a whole number' if kind is int else 'a finite number'}{bound}")
        return value
    return {"action": Checked, "parse": parse}
