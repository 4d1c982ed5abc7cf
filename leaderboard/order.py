"""One order for the whole board: the paper's rows ranked among the measured ones, and a note
where one system is on the board both ways (measured here and as the paper reported it).

A paper row's Score is computed from its published cells over the same tasks as every other
row's, so it takes its place in the ranking (with a rank number, no interval, no paired test:
it has no items). The measured rows keep their paired tests against the *measured* row ranked
above them; a paper row between them does not change what was tested.
"""

from __future__ import annotations

import re

from .compute import assign_ranks
from .model import MEASURED, Row

GENERIC_REASON = ("the measured row is scored here from its own answers, the paper's row is as published "
                  "(its decoding, prompts, checkpoint and scoring rules may differ)")
_SUFFIX = re.compile(r"\s*[\(\[].*?[\)\]]\s*$")


def one_order(measured: list[Row], reported: list[Row]) -> list[Row]:
    """Every row with a Score, measured or reported, by Score (competition ranks over both); then
    the measured rows without a rank (not comparable, or no Score) and the paper rows without a Score.

    ``measured`` is in the order (and with the ranks) :func:`compute.assign_ranks` gave it.
    """
    ranked = [r for r in measured if r.rank is not None] + [r for r in reported if r.value("score") is not None]
    rest = [r for r in measured if r.rank is None] + [r for r in reported if r.value("score") is None]
    return assign_ranks(ranked) + rest


def system_key(name: str) -> str:
    """What a name says the system is: its last path part, without a trailing ``(...)``, case-folded
    (``RoleGPT (replay)``, ``rolegpt`` and ``org/RoleGPT`` are one system)."""
    return _SUFFIX.sub("", name.rsplit("/", 1)[-1]).strip().casefold()


def link_twins(rows: list[Row], reasons: dict[str, str]) -> list[str]:
    """Mark each measured row whose label or run name is a paper row's system, and that paper row, with
    ``twin`` (the other row's name) and ``twin_note`` (why their numbers differ); returns the notes.

    ``reasons``: paper system name -> why a re-measurement of it differs (``paper.yaml``'s ``remeasured``).
    """
    papers = {system_key(r.name): r for r in rows if r.source != MEASURED}
    notes = []
    for row in (r for r in rows if r.source == MEASURED):
        keys = [system_key(n) for n in [row.name, *sorted(row.run_names)]]
        paper = next((papers[k] for k in keys if k in papers), None)
        if paper is None or paper.twin is not None:
            continue
        scores = ""
        if row.value("score") is not None and paper.value("score") is not None:
            scores = f" (Score {row.value('score'):.4f} measured, {paper.value('score'):.4f} reported)"
        note = (f"{row.name} and {paper.name} (paper) are the same system, measured here and as reported{scores}: "
                f"{reasons.get(paper.name, GENERIC_REASON)}.")
        row.twin, paper.twin = paper.name, row.name
        row.twin_note = paper.twin_note = note
        notes.append(note)
    return notes
