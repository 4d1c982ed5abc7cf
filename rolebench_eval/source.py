"""Where RoleBench comes from (a local copy or the Hub) and loading one split of it."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from rolebench_eval.catalogue import Split, get_split
from rolebench_eval.data import (
    ENV_VAR,
    HUB_REPO,
    HUB_REVISION,
    Item,
    RoleBenchDataError,
    read_baseline,
    read_descriptions,
    read_items,
)
from rolebench_eval.fileio import sha256_file

# The marker file of a folder written by `rolebench-eval generate`; its "lang" is the
# language of the folder's `lang: auto` splits (custom splits in rolebench_eval/splits.yaml).
CUSTOM_META = "rolebench_custom.json"


@dataclass(frozen=True)
class DataSource:
    """A RoleBench root: a local folder in the dataset's layout, or the Hub dataset."""

    local_root: Path | None = None
    revision: str = HUB_REVISION

    @classmethod
    def resolve(cls, data_dir: str | os.PathLike | None = None, revision: str | None = None) -> DataSource:
        """``data_dir``, else ``$ROLEBENCH_DATA_DIR``, else the Hub at ``revision``."""
        chosen = data_dir or os.environ.get(ENV_VAR) or None
        if chosen is None:
            return cls(None, revision or HUB_REVISION)
        root = Path(chosen).expanduser().resolve()
        if not root.is_dir():
            origin = "data_dir" if data_dir else f"${ENV_VAR}"
            raise RoleBenchDataError(root, None, None, f"RoleBench data folder not found (from {origin})")
        return cls(root, revision or HUB_REVISION)

    def fetch(self, relpath: str) -> Path | None:
        """The local path of ``relpath`` inside the dataset, or None when it does not exist."""
        if self.local_root is not None:
            path = self.local_root / relpath
            return path if path.is_file() else None
        from huggingface_hub import _CACHED_NO_EXIST, hf_hub_download, try_to_load_from_cache
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

        try:
            return Path(hf_hub_download(HUB_REPO, relpath, repo_type="dataset", revision=self.revision))
        except LocalEntryNotFoundError as err:
            # Offline: absent only if an earlier online run saw it absent (the cache's .no_exist marker).
            if try_to_load_from_cache(HUB_REPO, relpath, revision=self.revision, repo_type="dataset") is _CACHED_NO_EXIST:
                return None
            raise RoleBenchDataError(f"{HUB_REPO}@{self.revision}/{relpath}", None, None,
                                     f"not in the local Hugging Face cache and the Hub is unreachable ({err})") from err
        except EntryNotFoundError:  # the dataset has no such file
            return None

    def describe(self, fetched: Path) -> dict[str, str]:
        """Provenance for results files: where the data came from and which version."""
        if self.local_root is not None:
            return {"origin": "local", "data_dir": str(self.local_root)}
        parts = fetched.parts
        commit = parts[parts.index("snapshots") + 1] if "snapshots" in parts else self.revision
        return {"origin": "hub", "repo": HUB_REPO, "revision": self.revision, "commit": commit}


@dataclass
class SplitData:
    """Everything one task needs: items, RoleGPT answers, role descriptions, provenance."""

    split: Split
    items: list[Item]
    baseline: dict[tuple[str, str], str] | None  # None: no rolegpt_baseline.jsonl released
    descriptions: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)


def load_split(
    name: str,
    data_dir: str | os.PathLike | None = None,
    revision: str | None = None,
    file: str = "test",
) -> SplitData:
    """Load ``<split dir>/<file>.jsonl`` with its baseline and the role descriptions."""
    split = get_split(name)
    source = DataSource.resolve(data_dir, revision)
    if split.lang == "auto":
        split = dataclasses.replace(split, lang=custom_lang(source, name))
    relpath = f"{split.dir}/{file}.jsonl"
    path = source.fetch(relpath)
    if path is None:
        where = source.local_root or f"{HUB_REPO}@{source.revision}"
        raise RoleBenchDataError(
            f"{where}/{relpath}", None, None,
            f"file not found; point {ENV_VAR} or --metadata data_dir at a RoleBench copy that has it",
        )
    baseline_path = source.fetch(f"{split.dir}/rolegpt_baseline.jsonl")
    desc_path = source.fetch(f"{split.profiles}/desc.json")
    provenance = source.describe(path) | {"file": relpath, "sha256": sha256_file(path)}
    return SplitData(
        split=split,
        items=read_items(path),
        baseline=read_baseline(baseline_path) if baseline_path else None,
        descriptions=read_descriptions(desc_path) if desc_path else {},
        provenance=provenance,
    )


def custom_lang(source: DataSource, split: str) -> str:
    """The language of a generated folder, from its ``rolebench_custom.json``."""
    meta = source.fetch(CUSTOM_META) if source.local_root is not None else None
    if meta is None:
        where = source.local_root or f"{HUB_REPO}@{source.revision}"
        raise RoleBenchDataError(f"{where}/{CUSTOM_META}", None, None,
                                 f"split {split!r} reads a folder written by `rolebench-eval generate`; "
                                 "pass that folder as data_dir (--metadata '{\"data_dir\": ...}')")
    try:
        lang = json.loads(meta.read_text(encoding="utf-8")).get("lang")
    except (json.JSONDecodeError, AttributeError):
        raise RoleBenchDataError(meta, None, None, "invalid JSON object") from None
    if lang not in ("en", "zh"):
        raise RoleBenchDataError(meta, None, "lang", f"expected 'en' or 'zh', got {lang!r}")
    return lang
