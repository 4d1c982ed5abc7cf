"""The role prompt and the two layouts (chat messages, plain text) every part renders.

This module is the single source of truth for what a model sees: the evaluation tasks,
the fine-tuning data and the judges all call it. Any change here moves scores: bump
``PROMPT_VERSION`` and the tasks' ``metadata.version`` and add a changelog line.
"""

from __future__ import annotations

from typing import Callable

PROMPT_VERSION = "1"

# RoleGPT zero-shot role prompt (PAPER.md 5.4, the authors' OpenCompass config).
# Chinese: the released text says "说话不要嗦"; "嗦" is a mangled "啰嗦" and is fixed here.
_ROLE_PROMPT = {
    "en": (
        "You are {role}, your description is: {desc}. Now please answer some questions to accurately "
        "show your personality traits! Your speaking style should fully imitate the personality role "
        "assigned to you! Please do not expose that you are an artificial intelligence model or a "
        "language model, you must always remember that you are only assigned one personality role. "
        "Don’t be verbose or too formal or polite when speaking."
    ),
    "zh": (
        "你是{role}，你的特征描述是：{desc}。现在请你回答我的一些问题，以准确展现你的人格特征！"
        "你的说话风格要全面模仿被赋予的人格角色！请不要暴露你是人工智能模型或者语言模型，"
        "你要时刻记住你只被赋予的一个人格角色。说话不要啰嗦，也不要太过于正式或礼貌。"
    ),
}
# Without a description (no desc.json for the role) the description clause is dropped.
_NO_DESC = {
    "en": ("You are {role}, your description is: {desc}. ", "You are {role}. "),
    "zh": ("你是{role}，你的特征描述是：{desc}。", "你是{role}。"),
}

# Plain-text layout (no chat template): the RoleLLaMA / RoCIT training format.
PLAIN_TEMPLATE = "### Instruction:\n{system}\n\n### Input:\n{question}\n\n### Response:\n"
# Stop sequences that end a plain-text answer; harmless for chat models.
STOP_SEQUENCES = ["\n### Instruction:", "\n### Input:", "\n### Response:"]


def role_prompt(role: str, lang: str, description: str | None = None) -> str:
    """The system prompt that casts the model as ``role`` (``lang`` is "en" or "zh")."""
    if lang not in _ROLE_PROMPT:
        raise ValueError(f"unsupported language {lang!r}; expected 'en' or 'zh'")
    template = _ROLE_PROMPT[lang]
    if not (description and description.strip()):
        with_desc, without = _NO_DESC[lang]
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
