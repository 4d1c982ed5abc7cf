"""Conversations as the model sees them: earlier turns, then the scored question.

Built on the single-turn layouts of :mod:`rolebench_eval.prompts`, so a conversation
without earlier turns renders exactly as the single-turn tasks render it:

- chat (``--apply_chat_template``): the role prompt as system message, then alternating
  user/assistant messages, then the question; the system message goes into the first user
  turn when the model's template drops system messages;
- plain: the RoCIT layout once per turn, each earlier turn completed with its answer and
  separated from the next by a blank line.

Turns are ``{"question": ..., "answer": ...}`` dicts (the shape task documents log them in).
"""

from __future__ import annotations

from typing import Callable, Sequence

from rolebench_eval.prompts import chat_messages, fold_system, plain_prompt, render_question

from .task import RoleBenchTask, warn_on_adapter_mismatch

Turn = dict  # {"question": str, "answer": str}


def conversation_messages(system: str, turns: Sequence[Turn], question: str) -> list[dict[str, str]]:
    """OpenAI-style messages: system, then each turn as user/assistant, then the question."""
    messages = chat_messages(system, question)
    history = []
    for turn in turns:
        history.append({"role": "user", "content": render_question(turn["question"])})
        history.append({"role": "assistant", "content": turn["answer"].strip()})
    return messages[:1] + history + messages[1:]


def plain_conversation(system: str, turns: Sequence[Turn], question: str) -> str:
    """The plain RoCIT layout repeated per turn, ending where the answer to ``question`` starts."""
    done = [plain_prompt(system, turn["question"]) + turn["answer"].strip() for turn in turns]
    return "\n\n".join([*done, plain_prompt(system, question)])


def render_conversation(system: str, turns: Sequence[Turn], question: str,
                        chat_template: Callable | None, keeps_system: Callable[[], bool]) -> str:
    """The context string for lm-eval: chat-templated when ``chat_template`` is given, else plain.

    ``keeps_system()`` says whether the template renders system messages (asked only in chat mode).
    """
    if chat_template is None:
        return plain_conversation(system, turns, question)
    messages = conversation_messages(system, turns, question)
    if not keeps_system():
        messages = fold_system(messages)
    return chat_template(messages, add_generation_prompt=True)


class ConversationTask(RoleBenchTask):
    """A RoleBench task whose documents hold earlier turns before the scored question.

    Subclasses say which turns come first (:meth:`turns`) and what the last user turn says
    (:meth:`user_turn`); the role prompt, the adapter check and the system-message probe
    are the single-turn task's.
    """

    def turns(self, doc: dict) -> list[Turn]:
        return []

    def user_turn(self, doc: dict) -> str:
        return doc["question"]

    def fewshot_context(self, doc, num_fewshot, system_instruction=None, apply_chat_template=False,
                        fewshot_as_multiturn=False, chat_template=None, gen_prefix=None):
        if num_fewshot:
            raise ValueError(f"{self.config.task} builds its own earlier turns; --num_fewshot does not apply")
        chat = bool(apply_chat_template and chat_template)
        warn_on_adapter_mismatch(self.config.metadata or {}, chat)
        system = "\n\n".join(s for s in (system_instruction, doc["system_prompt"]) if s)
        return render_conversation(system, self.turns(doc), self.user_turn(doc), chat_template if chat else None,
                                   lambda: self._template_keeps_system(chat_template))
