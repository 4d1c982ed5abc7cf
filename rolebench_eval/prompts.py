"""The role prompt and the two layouts (chat messages, plain text) every part renders.

This module is the single source of truth for what a model sees: the evaluation tasks,
the fine-tuning data and the judges all call it; the role prompt's texts per language are in
the catalogue (``splits.yaml``, ``languages``). Any change here or there moves scores: bump
``PROMPT_VERSION`` and the tasks' ``metadata.version`` and add a changelog line.
"""

from __future__ import annotations

from typing import Callable

from rolebench_eval.catalogue import language

PROMPT_VERSION = "1"

# Plain-text layout (no chat template): the RoleLLaMA / RoCIT training format.
PLAIN_TEMPLATE = "### Instruction:\n{system}\n\n### Input:\n{question}\n\n### Response:\n"
# Stop sequences that end a plain-text answer; harmless for chat models.
STOP_SEQUENCES = ["\n### Instruction:", "\n### Input:", "\n### Response:"]


def role_prompt(role: str, lang: str, description: str | None = None) -> str:
    """The system prompt that casts the model as ``role``: the RoleGPT zero-shot prompt (PAPER.md 5.4)
    of the catalogue's language ``lang``, without its description clause when there is no description."""
    texts = language(lang)
    template = texts.role_prompt
    if not (description and description.strip()):
        with_desc, without = texts.role_clause
        template = template.replace(with_desc, without)
        return template.format(role=role)
    return template.format(role=role, desc=description.strip())


def render_question(question: str) -> str:
    """The user turn: the released question without its stray surrounding whitespace."""
    return question.strip()


def chat_messages(system: str, question: str) -> list[dict[str, str]]:
    """OpenAI-style messages: the role prompt as system message, then the question."""
    return [{"role": "system", "content": system}, {"role": "user", "content": render_question(question)}]


def fold_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Move system messages into the first user turn, for templates that reject them."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if system and rest and rest[0]["role"] == "user":
        rest[0]["content"] = f"{system}\n\n{rest[0]['content']}"
    elif system:
        rest.insert(0, {"role": "user", "content": system})
    return rest


# A marker no real prompt contains: rendered inside a system message to see if it survives.
PROBE = "ROLEBENCH-SYSTEM-PROBE-7f3a"


def template_keeps_system(render: Callable[..., object]) -> bool:
    """Whether a chat template renders system messages (some drop or reject them).

    ``render(messages, add_generation_prompt=True)`` is the model's template renderer,
    e.g. lm-eval's ``lm.apply_chat_template``, which itself drops a rejected system turn.
    """
    rendered = render([{"role": "system", "content": PROBE}, {"role": "user", "content": "?"}],
                      add_generation_prompt=True)
    return PROBE in str(rendered)


def plain_prompt(system: str, question: str) -> str:
    """The plain-text layout used when no chat template is applied."""
    return PLAIN_TEMPLATE.format(system=system, question=render_question(question))
