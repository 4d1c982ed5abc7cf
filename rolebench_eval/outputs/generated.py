"""``rolebench_custom.json``: the record of a folder written by ``rolebench-eval generate``.

Written by :mod:`rolebench_eval.generate.folder` after every run, read by the data source
(``custom_*`` splits: the folder's language, and whether a role was left half-written) and by
the next run. Format 2 keeps per-run records with received/kept/dropped tallies; a format-1
folder (flat drop counts) is read as it is, its old records kept, and stamped 2 on the next write.
"""

from __future__ import annotations

import os
from typing import Any, Union

from msgspec import UNSET, Struct, UnsetType, field

from rolebench_eval.catalogue import languages
from rolebench_eval.errors import InputError

from . import codec

FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)
CUSTOM_META = "rolebench_custom.json"


class RoleEntry(Struct, kw_only=True):
    """One character: its profile files, the last run of each method, and whether one is being written."""

    writing: Union[str, UnsetType] = UNSET  # the method whose files are being replaced (a kill leaves it)
    profile: Union[dict[str, Any], UnsetType] = UNSET
    rolegpt: Union[dict[str, Any], UnsetType] = UNSET
    context_instruct: Union[dict[str, Any], UnsetType] = UNSET


class FolderRecord(Struct, kw_only=True):
    format_version: int = FORMAT_VERSION
    lang: Union[str, None] = None  # one of the catalogue's languages (checked by its reader)
    roles: dict[str, RoleEntry] = field(default_factory=dict)


def read_folder_record(path: str | os.PathLike) -> FolderRecord:
    """The record; a newer format is refused."""
    record = codec.read(path, FolderRecord, "generated-folder record")
    if record.format_version not in READ_VERSIONS:
        raise codec.refuse_version(path, "format_version", record.format_version, READ_VERSIONS,
                                   "not a folder written by rolebench-eval generate")
    if record.lang is not None and record.lang not in languages():
        raise InputError(path, None, "lang", f"expected one of {', '.join(languages())}, got {record.lang!r}")
    return record
