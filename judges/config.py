"""Judges as data: a folder with ``config.yaml`` and English and Chinese prompt templates.

``load_judge("pairwise")`` loads a judge shipped in this package; ``load_judge("path/to/dir")``
loads any folder with the same layout. Prompts are Jinja2 templates rendered with
``StrictUndefined`` (a misspelt variable is an error, not an empty string). The
variables are listed in judges/README.md.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from rolebench_eval.errors import InputError
from rolebench_eval.llm.budget import Prices
from rolebench_eval.llm.config import DECODING_KEYS, REQUEST_KEYS

PROTOCOLS = ("rank", "pairwise", "rubric")
LANGS = ("en", "zh")
BUILTIN_DIR = Path(__file__).parent
MODEL_ENV = "ROLEBENCH_JUDGE_MODEL"

_TOP_KEYS = {"protocol", "description", "model", "base_url", "api_key_env", "decoding", "request",
             "prices", "prompts", "rubric"}
_DECODING = DECODING_KEYS  # the client's settings (rolebench_eval/llm/config.py)
_REQUEST = REQUEST_KEYS
_PRICES = {"input_per_million", "output_per_million"}


class JudgeConfigError(InputError):
    """A judge folder is missing or malformed; the message names the file and field."""


@dataclass
class Judge:
    """A loaded judge: settings plus its prompt template sources by language."""

    name: str
    folder: Path
    protocol: str
    description: str = ""
    model: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    decoding: dict = field(default_factory=dict)
    request: dict = field(default_factory=dict)
    prices: Prices = field(default_factory=Prices)
    prompts: dict[str, dict[str, str]] = field(default_factory=dict)
    rubric: dict | None = None
    config_hash: str = ""

    def render(self, **variables: Any) -> list[dict[str, str]]:
        """The chat messages of one judge request, in the language ``variables["lang"]``."""
        lang = variables.get("lang")
        try:
            templates = self.prompts[lang]
        except KeyError:
            raise JudgeConfigError(f"{self.folder / 'config.yaml'}: field 'prompts': no {lang!r} prompts") from None
        return [{"role": "system", "content": _template(templates["system"]).render(**variables).strip()},
                {"role": "user", "content": _template(templates["user"]).render(**variables).strip()}]


@lru_cache(maxsize=64)
def _template(source: str):
    """A compiled Jinja2 template (compiled once per source text)."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False)
    return env.from_string(source)


def builtin_judges() -> list[str]:
    """Names of the judges shipped with the package."""
    return sorted(p.parent.name for p in BUILTIN_DIR.glob("*/config.yaml"))


def resolve_folder(name_or_path: str | os.PathLike) -> Path:
    """The folder of a judge given by built-in name or by path."""
    path = Path(name_or_path)
    if (path / "config.yaml").is_file():
        return path
    if (BUILTIN_DIR / str(name_or_path) / "config.yaml").is_file():
        return BUILTIN_DIR / str(name_or_path)
    raise JudgeConfigError(f"no judge {str(name_or_path)!r}: not a folder with a config.yaml, and not one of "
                           f"the built-in judges ({', '.join(builtin_judges())})")


def _check_keys(where: Path, section: str, value: Any, allowed: set[str]) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise JudgeConfigError(f"{where}: field '{section}': expected a mapping, got {type(value).__name__}")
    unknown = set(value) - allowed
    if unknown:
        raise JudgeConfigError(f"{where}: field '{section}': unknown key(s) {sorted(unknown)}; "
                               f"allowed: {sorted(allowed)}")
    return value


def _load_prompts(folder: Path, where: Path, spec: Any) -> dict[str, dict[str, str]]:
    spec = _check_keys(where, "prompts", spec, set(LANGS))
    prompts = {}
    for lang in LANGS:
        files = _check_keys(where, f"prompts.{lang}", spec.get(lang), {"system", "user"})
        if set(files) != {"system", "user"}:
            raise JudgeConfigError(f"{where}: field 'prompts.{lang}': needs 'system' and 'user' template files")
        prompts[lang] = {}
        for part, filename in files.items():
            path = folder / str(filename)
            if not path.is_file():
                raise JudgeConfigError(f"{where}: field 'prompts.{lang}.{part}': file {path} not found")
            prompts[lang][part] = path.read_text(encoding="utf-8")
    return prompts


def _check_rubric(where: Path, raw: dict) -> dict:
    rubric = _check_keys(where, "rubric", raw.get("rubric"), {"criteria", "scale", "flag"})
    criteria, scale = rubric.get("criteria"), rubric.get("scale")
    if not (isinstance(criteria, list) and criteria and all(isinstance(c, str) for c in criteria)):
        raise JudgeConfigError(f"{where}: field 'rubric.criteria': expected a non-empty list of names")
    if not (isinstance(scale, list) and len(scale) == 2 and all(isinstance(s, int) for s in scale)
            and scale[0] < scale[1]):
        raise JudgeConfigError(f"{where}: field 'rubric.scale': expected [low, high] integers with low < high")
    if not isinstance(rubric.get("flag"), str):
        raise JudgeConfigError(f"{where}: field 'rubric.flag': expected the name of the boolean flag")
    return rubric


def _folder_hash(folder: Path, prompts: dict) -> str:
    digest = hashlib.sha256((folder / "config.yaml").read_bytes())
    digest.update(json.dumps(prompts, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()[:16]


def load_judge(name_or_path: str | os.PathLike) -> Judge:
    """Load and validate a judge folder; errors name the file and the field."""
    folder = resolve_folder(name_or_path)
    where = folder / "config.yaml"
    try:
        raw = yaml.safe_load(where.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise JudgeConfigError(f"{where}: invalid YAML: {err}") from None
    raw = _check_keys(where, "(top level)", raw, _TOP_KEYS)
    if raw.get("protocol") not in PROTOCOLS:
        raise JudgeConfigError(f"{where}: field 'protocol': expected one of {PROTOCOLS}, got {raw.get('protocol')!r}")
    prompts = _load_prompts(folder, where, raw.get("prompts"))
    prices = _check_keys(where, "prices", raw.get("prices"), _PRICES)
    return Judge(
        name=folder.name, folder=folder, protocol=raw["protocol"], description=raw.get("description") or "",
        model=raw.get("model"), base_url=raw.get("base_url"), api_key_env=raw.get("api_key_env") or "OPENAI_API_KEY",
        decoding=_check_keys(where, "decoding", raw.get("decoding"), _DECODING),
        request=_check_keys(where, "request", raw.get("request"), _REQUEST),
        prices=Prices(prices.get("input_per_million"), prices.get("output_per_million")),
        prompts=prompts, rubric=_check_rubric(where, raw) if raw["protocol"] == "rubric" else None,
        config_hash=_folder_hash(folder, prompts),
    )
