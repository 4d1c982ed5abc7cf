"""Training text and tokens, rendered exactly as the evaluation tasks render prompts.

The prompt of every sample is the string :meth:`rolebench_eval.tasks.task.RoleBenchTask.fewshot_context`
gives lm-eval for the same (role, question): the role prompt of :mod:`rolebench_eval.prompts`, as a
system message through the tokenizer's chat template (folded into the user turn when the template
drops system messages, with the same probe the task uses), or the plain RoleLLaMA layout. The
prompt is tokenized alone, as lm-eval tokenizes a context, and the answer after it; only the
answer tokens (and the end-of-turn/EOS tokens) carry loss.
"""

from __future__ import annotations

from collections.abc import Callable

from .args import RecipeError
from .data import Sample

from rolebench_eval.prompts import chat_messages, fold_system, plain_prompt, role_prompt, template_keeps_system

IGNORE_INDEX = -100


def hflm_chat(tokenizer) -> Callable[..., str]:
    """Render messages as lm-eval's ``HFLM.apply_chat_template`` does (it drops system messages on error)."""
    import jinja2

    def render(messages: list[dict], add_generation_prompt: bool = True) -> str:
        kwargs = {"tokenize": False, "add_generation_prompt": add_generation_prompt,
                  "continue_final_message": not add_generation_prompt}
        try:
            return tokenizer.apply_chat_template(messages, **kwargs)
        except jinja2.exceptions.TemplateError:
            return tokenizer.apply_chat_template([m for m in messages if m["role"] != "system"], **kwargs)

    return render


class Renderer:
    """Prompt/answer strings and token ids for samples, for one tokenizer and prompt format."""

    def __init__(self, tokenizer, prompt_format: str = "auto"):
        if prompt_format == "auto":
            prompt_format = "chat" if tokenizer.chat_template else "plain"
        if prompt_format == "chat" and not tokenizer.chat_template:
            raise RecipeError(None, None, "prompt_format",
                              "is 'chat' but the base model's tokenizer has no chat template")
        self.tokenizer = tokenizer
        self.format = prompt_format
        self._render = hflm_chat(tokenizer) if prompt_format == "chat" else None
        self.keeps_system = template_keeps_system(self._render) if self._render else None

    @property
    def placement(self) -> str | None:
        """Where the role prompt goes: "system", "user" (folded) or None (plain text)."""
        return None if self.keeps_system is None else ("system" if self.keeps_system else "user")

    def _messages(self, sample: Sample) -> list[dict]:
        messages = chat_messages(role_prompt(sample.role, sample.lang, sample.description), sample.question)
        return messages if self.keeps_system else fold_system(messages)

    def prompt(self, sample: Sample) -> str:
        """What the task renders for this sample's role and question (with ``--apply_chat_template`` for chat)."""
        if self.format == "plain":
            return plain_prompt(role_prompt(sample.role, sample.lang, sample.description), sample.question)
        return self._render(self._messages(sample), add_generation_prompt=True)

    def pair(self, sample: Sample) -> tuple[str, str]:
        """(prompt, completion): the completion is the answer, closed as the template closes a turn."""
        prompt, answer, eos = self.prompt(sample), sample.answer.strip(), self.tokenizer.eos_token or ""
        if self.format == "plain":
            return prompt, answer + eos
        full = self.tokenizer.apply_chat_template(
            self._messages(sample) + [{"role": "assistant", "content": answer}], tokenize=False)
        if not full.startswith(prompt):
            raise RecipeError(None, None, "prompt_format", "the chat template renders a conversation that does not "
                              "start with its own generation prompt, so prompt and answer cannot be split; use "
                              "prompt_format: plain")
        completion = full[len(prompt):]
        return prompt, completion if eos in completion else completion + eos

    def encode(self, sample: Sample, max_length: int) -> dict | None:
        """Token ids and labels (-100 on the prompt); None when the prompt alone fills ``max_length``."""
        return self._encode(sample, max_length)[0]

    def _encode(self, sample: Sample, max_length: int) -> tuple[dict | None, bool]:
        prompt, completion = self.pair(sample)
        bos = self.tokenizer.bos_token
        # lm-eval adds the tokenizer's special tokens to a context unless it already starts with BOS.
        special = {"add_special_tokens": False} if bos and prompt.startswith(bos) else {}
        prompt_ids = self.tokenizer(prompt, verbose=False, **special)["input_ids"]
        if len(prompt_ids) >= max_length:
            return None, False
        ids = prompt_ids + self.tokenizer(completion, add_special_tokens=False, verbose=False)["input_ids"]
        row = {"input_ids": ids[:max_length], "labels": [IGNORE_INDEX] * len(prompt_ids) + ids[len(prompt_ids):max_length]}
        return row, len(ids) > max_length

    def encode_all(self, samples: list[Sample], max_length: int) -> tuple[list[dict], dict]:
        """Encoded rows and counts of samples dropped (prompt too long) or cut (answer too long)."""
        rows, dropped, cut = [], 0, 0
        for sample in samples:
            row, was_cut = self._encode(sample, max_length)
            if row is None:
                dropped += 1
            else:
                rows.append(row)
                cut += was_cut
        return rows, {"dropped_prompt_too_long": dropped, "answer_cut_at_max_length": cut}
