"""How a model is shown on the leaderboard: display name, parameters, base model, link, license.

One schema, :class:`ModelInfo`, read from two places: the board spec's models
(:class:`~.board_spec.ModelSpec` extends it with how to run the model) and a ``models.yaml``
given to ``rolebench-eval leaderboard --models`` for a board built from run folders::

    models:
      - name: RoleLLaMA-7B            # the row's label
        run: outputs/org__tuned       # optional: relabels the runs found there (as --name PATH=LABEL)
        parameters: 7B                # a count (7000000000) or a number with K, M, B or T
        base_model: huggyllama/llama-7b
        link: https://huggingface.co/org/tuned   # http(s) only
        license: llama-license

A run of the ``rolegpt`` replay model that no rename labels is shown as :data:`REPLAY_LABEL`.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Iterator, Union

from msgspec import Meta, Struct

from . import codec

REPLAY_MODEL = "rolegpt"  # the lm-eval model name of the replay of the dataset's RoleGPT answers
REPLAY_LABEL = "RoleGPT (replay)"  # its row's label, everywhere (console, page, CSV, item browser, demo)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmbt]?)\s*$", re.IGNORECASE)
_SCALE = {"": 1e-9, "k": 1e-6, "m": 1e-3, "b": 1.0, "t": 1e3}


def billions(parameters: str | int | float | None) -> float | None:
    """``7B`` -> 7.0, ``350M`` -> 0.35, ``7000000000`` -> 7.0 (a bare number is a count); None when unreadable."""
    if parameters is None or isinstance(parameters, bool):
        return None
    if isinstance(parameters, (int, float)):
        return float(parameters) * 1e-9 if parameters >= 0 else None
    match = _SIZE.match(parameters)
    return None if match is None else float(match[1]) * _SCALE[match[2].lower()]


class ModelInfo(Struct, kw_only=True, forbid_unknown_fields=True):
    """What a reader is told about a model (every field but the name optional)."""

    name: Annotated[str, Meta(min_length=1)]
    parameters: Union[str, int, float, None] = None
    base_model: Union[str, None] = None
    link: Union[str, None] = None
    license: Union[str, None] = None

    def problems(self) -> Iterator[tuple[str, str]]:
        """(field, problem) for each rule a type cannot say."""
        if self.parameters is not None and billions(self.parameters) is None:
            yield "parameters", f"{self.parameters!r} is not a size: a count, or a number with K, M, B or T (7B)"
        if self.link is not None and not self.link.startswith(("https://", "http://")):
            yield "link", f"{self.link!r} is not an http:// or https:// address"


class ModelEntry(ModelInfo, kw_only=True, forbid_unknown_fields=True):
    """One model of a ``models.yaml``: its display data, and optionally the runs it labels."""

    run: Union[str, None] = None  # an input, results file, folder, run name or adapter (as --name PATH=)


class ModelsFile(Struct, kw_only=True, forbid_unknown_fields=True):
    models: list[ModelEntry]


def read_models(path: str | os.PathLike) -> list[ModelEntry]:
    """The models of a ``models.yaml``, checked; an error names the file, the line and the field."""
    found, fail = codec.read_yaml(path, ModelsFile, "models file")
    seen: set[str] = set()
    for i, entry in enumerate(found.models):
        for where, problem in entry.problems():
            fail(f"models[{i}].{where}", problem)
        if entry.name in seen:
            fail(f"models[{i}].name", f"{entry.name!r} is described twice")
        seen.add(entry.name)
    return found.models


def models_document(models: list[ModelInfo]) -> bytes:
    """A ``models.yaml`` of ``models``' display data (JSON, which is YAML): what ``rolebench-eval board``
    hands its leaderboard step."""
    import msgspec

    fields = msgspec.structs.fields(ModelInfo)
    entries = [{f.encode_name: getattr(m, f.name) for f in fields if getattr(m, f.name) is not None} for m in models]
    return msgspec.json.format(msgspec.json.encode({"models": entries}), indent=2) + b"\n"
