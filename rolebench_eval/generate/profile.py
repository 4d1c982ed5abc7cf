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

``dialogues`` may also name a JSONL file instead (``dialogues: brine_dialogues.jsonl``),
one ``{"user": ..., "assistant": ...}`` object a line.

In the script, a line ``SPEAKER: text`` (or ``SPEAKER：text``) is a dialogue line and other
lines are narration; blank lines separate scenes. Besides ``dialogues``, every line of the
character that directly follows another speaker's line in the same scene becomes a dialogue
pair (the character's following lines are appended to its answer).

The files a profile names (``script``, a ``dialogues`` file) must resolve inside the
profile's folder, symbolic links followed: their text goes into requests sent to the
endpoint, so ``script: ../../.ssh/id_rsa`` or a link pointing out of the folder is refused
unless the caller allows it (``--allow-outside-paths``).
Any problem raises :class:`ProfileError` naming the file and the field.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from rolebench_eval.catalogue import language, languages
from rolebench_eval.errors import InputError
from rolebench_eval.fileio import load_yaml, read_jsonl

LANGS = tuple(languages())
_FIELDS = {"name", "language", "description", "catchphrases", "aliases", "dialogues", "script"}
_SPEAKER = re.compile(r"^\s*([^\s:：][^:：]{0,39}?)\s*[:：]\s*(\S.*?)\s*$")


class ProfileError(InputError):
    """A profile (or its script) is missing or malformed; the message names file and field."""

    def __init__(self, path: str | os.PathLike, field: str | None, problem: str, line: int | None = None):
        super().__init__(path, line, field or None, problem)

    def __reduce__(self):
        return (type(self), (self.path, self.field, self.problem, self.line))


@dataclass(frozen=True)
class DialoguePair:
    """Someone speaks (``user``), the character answers (``assistant``)."""

    user: str
    assistant: str


@dataclass(frozen=True)
class Profile:
    """A validated character profile; ``script`` holds the script's text (None without one).

    ``files`` maps each field that named a file (``script``, ``dialogues``) to its resolved path.
    """

    path: Path
    name: str
    lang: str
    description: str
    catchphrases: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    dialogues: tuple[DialoguePair, ...] = ()
    script: str | None = None
    files: dict[str, Path] = field(default_factory=dict, hash=False, compare=False)


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


def _pair(item, path: Path, line: int | None, where: str) -> DialoguePair:
    if not isinstance(item, dict) or set(item) != {"user", "assistant"}:
        raise ProfileError(path, where, f"expected a mapping with exactly 'user' and 'assistant', got {item!r}", line)
    for key in ("user", "assistant"):
        if not isinstance(item[key], str) or not item[key].strip():
            raise ProfileError(path, f"{where}.{key}".lstrip("."), f"expected a non-empty string, got {item[key]!r}",
                               line)
    return DialoguePair(item["user"].strip(), item["assistant"].strip())


def _dialogues(data: dict, path: Path, allow_outside: bool) -> tuple[tuple[DialoguePair, ...], Path | None]:
    value = data.get("dialogues") or []
    if isinstance(value, str):
        file = inside_folder(path, "dialogues", value, allow_outside)
        pairs = tuple(_pair(row, file, line, "") for line, row in read_jsonl(file, "dialogues file"))
        if not pairs:
            raise ProfileError(path, "dialogues", f"dialogues file is empty: {file}")
        return pairs, file
    if not isinstance(value, list):
        raise ProfileError(path, "dialogues", "expected a list of {user, assistant} mappings or a JSONL file name, "
                                              f"got {type(value).__name__}")
    return tuple(_pair(item, path, None, f"dialogues[{i}]") for i, item in enumerate(value)), None


def inside_folder(profile: Path, key: str, rel: str, allow_outside: bool = False) -> Path:
    """The file that field ``key`` names (``rel``, relative to the profile's folder), checked.

    Symbolic links are followed before the check, so a link inside the folder that points
    out of it is refused like ``../..`` and absolute paths that leave it.
    """
    base = profile.parent.resolve()
    target = (profile.parent / Path(rel).expanduser()).resolve()
    if not allow_outside and not target.is_relative_to(base):
        raise ProfileError(profile, key, f"{rel!r} resolves to {target}, outside the profile's folder {base}; "
                                         "keep the profile's files in its folder (or pass --allow-outside-paths)")
    if not target.is_file():
        raise ProfileError(profile, key, f"{key} file not found: {target}")
    return target


def _script(data: dict, path: Path, allow_outside: bool) -> tuple[str | None, Path | None]:
    rel = _text(data, "script", path, required=False)
    if rel is None:
        return None, None
    script_path = inside_folder(path, "script", rel, allow_outside)
    try:
        text = script_path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        problem = f"{script_path} is not UTF-8 text ({err.reason} at byte {err.start})"
        raise ProfileError(path, "script", problem) from None
    if not text.strip():
        raise ProfileError(path, "script", f"script file is empty: {script_path}")
    return text, script_path


def load_profile(path: str | os.PathLike, allow_outside_paths: bool = False) -> Profile:
    """Read and validate a profile YAML file (see the module docstring for the format).

    Args:
        path: The profile.
        allow_outside_paths: Accept ``script`` and ``dialogues`` files outside the profile's folder.
    """
    path = Path(path)
    if not path.is_file():
        raise ProfileError(path, None, "profile file not found")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
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
    name, description = _text(data, "name", path), _text(data, "description", path)
    catchphrases, aliases = _strings(data, "catchphrases", path), _strings(data, "aliases", path)
    dialogues, dialogues_path = _dialogues(data, path, allow_outside_paths)
    script, script_path = _script(data, path, allow_outside_paths)
    files = {k: v for k, v in (("script", script_path), ("dialogues", dialogues_path)) if v is not None}
    return Profile(path=path, name=name, lang=lang, description=description, catchphrases=catchphrases,
                   aliases=aliases, dialogues=dialogues, script=script, files=files)


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
    return language(profile.lang).catchphrases.format(description=desc, catchphrases=quoted_list(profile))


def quoted_list(profile: Profile) -> str:
    """The profile's catchphrases, quoted and listed as its language writes them."""
    texts = language(profile.lang)
    return texts.list_separator.join(f"{texts.quotes[0]}{c}{texts.quotes[1]}" for c in profile.catchphrases)


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
