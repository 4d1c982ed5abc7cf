"""Prompt-token cost of the three layouts of the paper's Table 7 on the Chinese splits.

Renders every test item of ``specific_zh`` and ``general_zh`` as the tasks do, zero-shot
(``rolebench_*_zh``), with k demonstrations in one user turn (``*_fewshot``) and as earlier
turns (``*_dialogue``), and prints the mean prompt length in the paper metric's tokens
(Chinese characters) and its ratio to zero-shot, for both layouts a model can get:

- plain: the RoCIT text layout, what ``prompt_tokens`` reports without a chat template
  (the dialogue layout repeats the role prompt once per turn);
- chat: the characters of the messages' contents (the role prompt once, as system message),
  before a model's template adds its markup.

    python benchmarks/bench_prompt_cost.py [--data-dir ../shared/rolebench] [--k 3]
"""

from __future__ import annotations

import argparse
import os
from statistics import mean

from rolebench_eval.metrics import response_tokens
from rolebench_eval.prompts import chat_messages, plain_prompt
from rolebench_eval.source import load_split
from rolebench_eval.tasks.conversation import conversation_messages, plain_conversation
from rolebench_eval.tasks.studies import demonstrations, fewshot_user_turn
from rolebench_eval.tasks.task import build_docs


def layouts(doc: dict, demos: list[dict]) -> dict[str, tuple[str, list[dict]]]:
    """(plain prompt, chat messages) of each layout for one document."""
    system, question = doc["system_prompt"], doc["question"]
    block = fewshot_user_turn(demos, question, doc["lang"])
    return {
        "zero-shot": (plain_prompt(system, question), chat_messages(system, question)),
        "fewshot": (plain_prompt(system, block), chat_messages(system, block)),
        "dialogue": (plain_conversation(system, demos, question), conversation_messages(system, demos, question)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("ROLEBENCH_DATA_DIR", "../shared/rolebench"))
    parser.add_argument("--k", type=int, default=3)
    args = parser.parse_args()
    for split in ("specific_zh", "general_zh"):
        test, train = load_split(split, args.data_dir), load_split(split, args.data_dir, file="train")
        docs = build_docs(test)
        rendered = [layouts(doc, demos) for doc, demos in zip(docs, demonstrations(docs, train.items, "zh", args.k))]
        print(f"{split} ({len(docs)} items, k={args.k}), mean prompt tokens (Chinese characters):")
        base = None
        for name in ("zero-shot", "fewshot", "dialogue"):
            plain = mean(response_tokens(r[name][0], "zh") for r in rendered)
            chat = mean(sum(response_tokens(m["content"], "zh") for m in r[name][1]) for r in rendered)
            base = base or (plain, chat)
            print(f"  {name:9}  plain {plain:7.1f} (x{plain / base[0]:.2f})   chat {chat:7.1f} (x{chat / base[1]:.2f})")


if __name__ == "__main__":
    main()
