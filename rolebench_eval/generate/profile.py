"""Character profiles for ``rolebench-eval generate``: a YAML file per character.

Example (all paths relative to the profile file)::

    name: Captain Ottoline Brine          # the role name, as it appears in the data
    language: en                         # en | zh
    description: >-                      # who the character is (third or second person)
      Captain Ottoline Brine commands the salvage barge Mild Regret ...
    catchphrases:                        # optional
      - Salt in the wound, sugar in the tea!
    aliases: [BRINE, CAPTAIN]            # optional: the character's speaker names in the script
    dialogues:                           # optional: dialogue pairs, someone -> the character
      - user: Where are we headed?
        assistant: Wherever the wreck is, and then a little further.
    script: brine_script.txt             # optional: plain text, UTF-8

In the script, a line ``SPEAKER: text`` (or ``SPEAKER：text``) is a dialogue line and other
lines are narration; blank lines separate scenes. Besides ``dialogues``, every line of the
character that directly follows another speaker's line in the same scene becomes a dialogue
pair (the character's following lines are appended to its answer).
Any problem raises :class:`ProfileError` naming the file and the field.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from rolebench_eval.errors import InputError

LANGS = ("en", "zh")
_FIELDS = {"name", "language", "description", "catchphrases", "aliases", "dialogues", "script"}
_SPEAKER = re.compile(r"^\s*([^\s:：][^:：]{0,39}?)\s*[:：]\s*(\S.*?)\s*$")


class ProfileError(InputError):
    """A profile (or its script) is missing or malformed; the message names file and field."""

    def __init__(self, path: str | os.PathLike, field: str | None, problem: str):
        super().__init__(path, None, field, problem)

    def __reduce__(self):
        return (type(self), (self.path, self.field, self.problem))


@dataclass(frozen=True)
class DialoguePair:
    """Someone speaks (``user``), the character answers (``assistant``)."""

    user: str
    assistant: str


@dataclass(frozen=True)
class Profile:
    """A validated character profile; ``script`` holds the script's text (None without one)."""

    path: Path
    name: str
    lang: str
    description: str
    catchphrases: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    dialogues: tuple[DialoguePair, ...] = ()
    script: str | None = None
    script_path: Path | None = None


def _text(data: dict, key: str, path: Path, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ProfileError(path, key, "missing" if value is None else f"expected a non-empty string, got {value!r}")
    return value.strip()


def _strings(data: dict, key: str, path: Path) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise ProfileError(path, key, f"expected a list of strings, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise ProfileError(path, f"{key}[{i}]", f"expected a non-empty string, got {item!r}")
    return tuple(item.strip() for item in value)


def _dialogues(data: dict, path: Path) -> tuple[DialoguePair, ...]:
    value = data.get("dialogues") or []
    if not isinstance(value, list):
        raise ProfileError(path, "dialogues",
                           f"expected a list of {{user, assistant}} mappings, got {type(value).__name__}")
    pairs = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"user", "assistant"}:
            raise ProfileError(path, f"dialogues[{i}]",
                               f"expected a mapping with exactly 'user' and 'assistant', got {item!r}")
        for key in ("user", "assistant"):
            if not isinstance(item[key], str) or not item[key].strip():
                raise ProfileError(path, f"dialogues[{i}].{key}", f"expected a non-empty string, got {item[key]!r}")
        pairs.append(DialoguePair(item["user"].strip(), item["assistant"].strip()))
    return tuple(pairs)


def _script(data: dict, path: Path) -> tuple[str | None, Path | None]:
    rel = _text(data, "script", path, required=False)
    if rel is None:
        return None, None
    script_path = (path.parent / rel).resolve()
    if not script_path.is_file():
        raise ProfileError(path, "script", f"script file not found: {script_path}")
    try:
        text = script_path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        problem = f"{script_path} is not UTF-8 text ({err.reason} at byte {err.start})"
        raise ProfileError(path, "script", problem) from None
    if not text.strip():
        raise ProfileError(path, "script", f"script file is empty: {script_path}")
    return text, script_path


def load_profile(path: str | os.PathLike) -> Profile:
    """Read and validate a profile YAML file (see the module docstring for the format)."""
    path = Path(path)
    if not path.is_file():
        raise ProfileError(path, None, "profile file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ProfileError(path, None, f"invalid YAML ({err})") from None
    if not isinstance(data, dict):
        raise ProfileError(path, None, f"expected a mapping of fields, got {type(data).__name__}")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ProfileError(path, unknown[0], f"unknown field; allowed: {', '.join(sorted(_FIELDS))}")
    lang = data.get("language")
    if lang not in LANGS:
        raise ProfileError(path, "language", f"expected one of {', '.join(LANGS)}, got {lang!r}")
    script, script_path = _script(data, path)
    return Profile(path=path, name=_text(data, "name", path), lang=lang, description=_text(data, "description", path),
                   catchphrases=_strings(data, "catchphrases", path), aliases=_strings(data, "aliases", path),
                   dialogues=_dialogues(data, path), script=script, script_path=script_path)


def role_description(profile: Profile) -> str:
    """The description the role prompt carries: the description, then the catchphrases.

    It goes into :func:`rolebench_eval.prompts.role_prompt`, whose template adds the final
    full stop, so the last one is left out here.

    Example:
        >>> p = Profile(Path("p.yaml"), "Ann", "en", "Ann sails.", ("Ahoy!", "Steady"))
        >>> role_description(p)
        'Ann sails. Your catchphrases are: "Ahoy!", "Steady"'
    """
    desc = profile.description.rstrip(" .。")
    if not profile.catchphrases:
        return desc
    if profile.lang == "zh":
        return f"{desc}。你的口头禅是：" + "、".join(f"“{c}”" for c in profile.catchphrases)
    return f"{desc}. Your catchphrases are: " + ", ".join(f'"{c}"' for c in profile.catchphrases)


def speaker_lines(scene: str) -> list[tuple[str, str] | None]:
    """``(speaker, text)`` for each dialogue line of a scene, None for narration lines."""
    found = []
    for line in scene.splitlines():
        match = _SPEAKER.match(line)
        found.append((match.group(1), match.group(2)) if match else None)
    return found


def script_scenes(script: str) -> list[str]:
    """The script's scenes: blocks separated by blank lines, stripped, empty ones dropped."""
    return [block.strip() for block in re.split(r"\n\s*\n", script) if block.strip()]


def script_dialogues(script: str, names: list[str]) -> list[DialoguePair]:
    """Dialogue pairs from a script: another speaker's line, then the character's line(s)."""
    wanted = {n.casefold() for n in names}
    pairs: list[DialoguePair] = []
    for scene in script_scenes(script):
        prompt, answer = None, []
        for line in speaker_lines(scene):
            if line is None:
                continue
            speaker, text = line
            if speaker.casefold() in wanted:
                if prompt is not None:
                    answer.append(text)
                continue
            if prompt is not None and answer:
                pairs.append(DialoguePair(prompt, " ".join(answer)))
            prompt, answer = text, []
        if prompt is not None and answer:
            pairs.append(DialoguePair(prompt, " ".join(answer)))
    return pairs


def all_dialogues(profile: Profile) -> list[DialoguePair]:
    """The profile's dialogue pairs, then those found in its script (exact repeats once)."""
    pairs = list(profile.dialogues)
    if profile.script:
        pairs += script_dialogues(profile.script, [profile.name, *profile.aliases])
    return list(dict.fromkeys(pairs))
