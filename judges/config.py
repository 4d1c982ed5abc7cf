"""Judges as data: a folder with ``config.yaml`` and English and Chinese prompt templates.

``load_judge("pairwise")`` loads a judge shipped in this package; ``load_judge("path/to/dir")``
loads any folder with the same layout. The folder's config is merged over the shared
defaults (``judges/defaults.yaml``) section by section; its ``protocol`` names the protocol
object (``judges/protocols/<name>.py``), which validates its own config section (named like
the protocol, e.g. ``rubric:``). Prompts are Jinja2 templates rendered in jinja2's sandbox
(judge folders are data people share: a template that reaches for Python internals is an
error naming its file, and nothing of it runs) with ``StrictUndefined`` (a misspelt variable
is an error, not an empty string). The variables are listed in judges/README.md.
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

from rolebench_eval.catalogue import languages
from rolebench_eval.fileio import load_yaml
from rolebench_eval.llm.budget import Prices

from .errors import JudgeConfigError  # noqa: F401  (raised here, imported from here by callers)

LANGS = tuple(languages())  # every language needs its prompts
BUILTIN_DIR = Path(__file__).parent
DEFAULTS = BUILTIN_DIR / "defaults.yaml"
MODEL_ENV = "ROLEBENCH_JUDGE_MODEL"

_TOP_KEYS = {"protocol", "description", "model", "base_url", "api_key_env", "decoding", "request",
             "prices", "prompts"}
_SECTIONS = {"decoding", "request", "prices"}  # merged key by key over the defaults
_PRICES = {"input_per_million", "output_per_million"}


@dataclass
class Judge:
    """A loaded judge: settings plus its prompt template sources by language.

    ``settings`` is the protocol's own config section (``rubric:``, ``rank:``) validated
    by the protocol object (:attr:`impl`), or None for a protocol without settings.
    """

    name: str
    folder: Path
    protocol: str
    description: str = ""
    model: str | list[str] | None = None  # a list: an ensemble of judge models
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    decoding: dict = field(default_factory=dict)
    request: dict = field(default_factory=dict)
    prices: Prices = field(default_factory=Prices)
    prompts: dict[str, dict[str, str]] = field(default_factory=dict)
    prompt_files: dict[str, dict[str, Path]] = field(default_factory=dict)  # where each template came from
    settings: dict | None = None
    config_hash: str = ""

    @property
    def impl(self):
        """The protocol object (requests, parsing, statistics) this judge uses."""
        from . import protocols

        return protocols.get(self.protocol)

    def render(self, **variables: Any) -> list[dict[str, str]]:
        """The chat messages of one judge request, in the language ``variables["lang"]``."""
        lang = variables.get("lang")
        if lang not in self.prompts:
            raise JudgeConfigError(self.folder / "config.yaml", None, "prompts", f"no {lang!r} prompts")
        return [{"role": part, "content": self._render(lang, part, variables)} for part in ("system", "user")]

    def _render(self, lang: str, part: str, variables: dict) -> str:
        """One template rendered, or one error naming its file (a user's template is input, not code)."""
        import jinja2

        try:
            return _template(self.prompts[lang][part]).render(**variables).strip()
        except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as err:
            where = self.prompt_files.get(lang, {}).get(part, self.folder / "config.yaml")
            raise JudgeConfigError(where, None, None, _template_problem(err)) from None


def _template_problem(err: Exception) -> str:
    import jinja2.sandbox

    if isinstance(err, jinja2.sandbox.SecurityError):
        return (f"the template reaches for Python internals ({err}); judge templates are rendered in jinja2's "
                "sandbox and may use only their variables and filters (judges/README.md)")
    if isinstance(err, jinja2.UndefinedError):
        return f"{err} (the variables a template gets are listed in judges/README.md)"
    return f"the template failed to render: {type(err).__name__}: {err}"


@lru_cache(maxsize=64)
def _template(source: str):
    """A compiled Jinja2 template (compiled once per source text), for jinja2's immutable sandbox."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                        autoescape=False)
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
    raise JudgeConfigError(name_or_path, None, None, "no such judge: not a folder with a config.yaml, and not one of "
                           f"the built-in judges ({', '.join(builtin_judges())})")


def _check_keys(where: Path, section: str, value: Any, allowed: set[str]) -> dict:
    from .protocols.base import check_keys

    return check_keys(where, section, value, allowed)


def _client_keys() -> set[str]:
    """What ``decoding`` and ``request`` may set: the client's settings (rolebench_eval.llm)."""
    import dataclasses

    from rolebench_eval.llm.client import ClientConfig

    return {f.name for f in dataclasses.fields(ClientConfig)} - {"model", "base_url", "api_key_env"}


def _load_prompts(folder: Path, where: Path, spec: Any) -> tuple[dict, dict]:
    """The template sources and their files by language and part; a template that does not compile
    is an error naming its file and line."""
    import jinja2

    spec = _check_keys(where, "prompts", spec, set(LANGS))
    prompts, files_of = {}, {}
    for lang in LANGS:
        files = _check_keys(where, f"prompts.{lang}", spec.get(lang), {"system", "user"})
        if set(files) != {"system", "user"}:
            raise JudgeConfigError(where, None, f"prompts.{lang}", "needs 'system' and 'user' template files")
        prompts[lang], files_of[lang] = {}, {}
        for part, filename in files.items():
            path = folder / str(filename)
            if not path.is_file():
                raise JudgeConfigError(where, None, f"prompts.{lang}.{part}", f"file {path} not found")
            prompts[lang][part], files_of[lang][part] = path.read_text(encoding="utf-8"), path
            try:
                _template(prompts[lang][part])
            except jinja2.TemplateSyntaxError as err:
                raise JudgeConfigError(path, err.lineno, None, f"invalid template: {err.message}") from None
    return prompts, files_of


def _check_model(where: Path, model: Any) -> str | list[str] | None:
    """A judge model's name, or a list of distinct names (an ensemble), or None."""
    names = model if isinstance(model, list) else [model]
    if model is not None and (not names or not all(isinstance(m, str) and m.strip() for m in names)
                              or len(set(names)) < len(names)):
        raise JudgeConfigError(where, None, "model", f"expected a model name or a list of distinct names, "
                               f"got {model!r}")
    return model


def _read_yaml(where: Path) -> Any:
    try:
        return load_yaml(where.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise JudgeConfigError(where, None, None, f"invalid YAML: {err}") from None


def _merged(raw: dict, protocol: str) -> dict:
    """The folder's config over the shared defaults: sections key by key, other values replaced."""
    from . import protocols

    defaults = _read_yaml(DEFAULTS) or {}
    merged = {k: v for k, v in defaults.items() if k not in protocols.names() or k == protocol}
    for key, value in raw.items():
        if (key in _SECTIONS or key == protocol) and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _config_hash(config: dict, prompts: dict) -> str:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8"))
    digest.update(json.dumps(prompts, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()[:16]


def load_judge(name_or_path: str | os.PathLike) -> Judge:
    """Load and validate a judge folder (over the shared defaults); errors name the file and the field."""
    from . import protocols

    folder = resolve_folder(name_or_path)
    where = folder / "config.yaml"
    raw = _read_yaml(where)
    if not isinstance(raw, dict):
        raise JudgeConfigError(where, None, None, f"expected a mapping of settings, got {type(raw).__name__}")
    protocol = raw.get("protocol")
    if protocol not in protocols.names():
        raise JudgeConfigError(where, None, "protocol", f"expected one of {protocols.names()}, got {protocol!r}")
    raw = _check_keys(where, "(top level)", raw, _TOP_KEYS | {protocol})
    config = _merged(raw, protocol)
    client_keys = _client_keys()
    prompts, prompt_files = _load_prompts(folder, where, config.get("prompts"))
    prices = _check_keys(where, "prices", config.get("prices"), _PRICES)
    return Judge(
        name=folder.name, folder=folder, protocol=protocol, description=config.get("description") or "",
        model=_check_model(where, config.get("model")), base_url=config.get("base_url"),
        api_key_env=config.get("api_key_env") or "OPENAI_API_KEY",
        decoding=_check_keys(where, "decoding", config.get("decoding"), client_keys),
        request=_check_keys(where, "request", config.get("request"), client_keys),
        prices=Prices(prices.get("input_per_million"), prices.get("output_per_million")),
        prompts=prompts, prompt_files=prompt_files, settings=protocols.get(protocol).check_settings(where, config.get(protocol)),
        config_hash=_config_hash(config, prompts),
    )
