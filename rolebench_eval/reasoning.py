"""A reasoning model's answer: the text after its ``<think>…</think>`` block (pure, ground floor).

Shared by the tasks' lm-eval filter (``tasks/reasoning.py``) and the live conversations
(``conversations/``), so a reply is cut the same way in a single-turn task and in a dialogue:

- a closed block: the answer is what follows the first end marker (as vLLM's reasoning parsers
  split), so markers quoted inside the answer stay part of it;
- an end marker without a start marker: the chat template opened the block in the prompt
  (DeepSeek-R1, QwQ); the same rule;
- a start marker that never closes: an unfinished answer, the empty answer, told apart by
  :func:`is_unfinished`;
- no marker: the text as it came (a model that does not reason).
"""

from __future__ import annotations


class UnfinishedAnswer(str):
    """The empty answer of a reasoning block that never closed.

    A ``str`` (lm-eval logs it as ``""`` and the metrics score it as the empty answer) that
    ``process_results`` can tell from an answer that was empty on purpose.
    """


def answer(text: str, start: str, end: str) -> str:
    """The answer of a generation: the text after its reasoning block (see the module docstring).

    Example:
        >>> answer("<think>who am I?</think> Ahoy.", "<think>", "</think>")
        'Ahoy.'
        >>> is_unfinished(answer("<think>still thinking", "<think>", "</think>"))
        True
    """
    head, closed, tail = text.partition(end)
    if closed:
        return tail.lstrip()
    if text.lstrip().startswith(start):
        return UnfinishedAnswer()
    return text


def is_unfinished(prediction: str) -> bool:
    """True for the answer :func:`answer` gives an unclosed reasoning block."""
    return isinstance(prediction, UnfinishedAnswer)
