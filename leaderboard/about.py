"""What the board says about each model: parameters, base model, link, license, the run's date.

The display data is :class:`rolebench_eval.outputs.models.ModelInfo` (the board spec's models, or a
``models.yaml`` given with ``--models``), matched to a row by its label; whether a row is the
paper's is its ``source``. The Markdown, CSV, JSON and both pages take the fields from here.
"""

from __future__ import annotations

from collections.abc import Iterable

from rolebench_eval.outputs.models import ModelEntry, ModelInfo, billions

from .model import Row

FIELDS = ("parameters", "base_model", "link", "license", "date")  # the row's own: name, source


def describe(rows: Iterable[Row], entries: Iterable[ModelEntry], source: str) -> list[str]:
    """Give each row the entry with its name; returns a note for each entry that names no row."""
    by_name = {row.name: row for row in rows}
    notes = []
    for entry in entries:
        row = by_name.get(entry.name)
        if row is None:
            notes.append(f"{source}: {entry.name!r} describes no row on the board (rows are named by their label)")
        else:
            row.about = entry
    return notes


def fields(row: Row) -> dict[str, str | None]:
    """The row's display data, each field a string or None (parameters as given: ``7B``)."""
    about = row.about or ModelInfo(name=row.name)
    values = {f: getattr(about, f) for f in FIELDS if f != "date"}
    values["parameters"] = None if about.parameters is None else str(about.parameters)
    values["link"] = safe_link(about.link)
    return {**values, "date": row.date}


def size(row: Row) -> float | None:
    """The row's parameters in billions (for sorting and filtering), None when not given."""
    return None if row.about is None else billions(row.about.parameters)


def safe_link(link: str | None) -> str | None:
    """``link`` when it is an http(s) address, else None (the schema refuses others; a page never links them)."""
    return link if link is not None and link.startswith(("https://", "http://")) else None
