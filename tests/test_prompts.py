"""The role prompt and its layouts."""

import pytest

from rolebench_eval.prompts import STOP_SEQUENCES, chat_messages, fold_system, plain_prompt, role_prompt


def test_english_prompt_with_description():
    text = role_prompt("Marlow Finch", "en", " a gruff captain ")
    assert text.startswith("You are Marlow Finch, your description is: a gruff captain. Now please answer")
    assert text.endswith("Don’t be verbose or too formal or polite when speaking.")


def test_english_fallback_without_description_keeps_the_instructions():
    text = role_prompt("Marlow Finch", "en", None)
    assert text.startswith("You are Marlow Finch. Now please answer some questions")
    assert "description" not in text
    assert role_prompt("Marlow Finch", "en", "  ") == text


def test_chinese_prompt():
    assert role_prompt("老船长", "zh", "一位老水手").startswith("你是老船长，你的特征描述是：一位老水手。现在请你回答")
    fallback = role_prompt("老船长", "zh")
    assert fallback.startswith("你是老船长。现在请你回答") and "说话不要啰嗦" in fallback


def test_unknown_language():
    with pytest.raises(ValueError, match="unsupported language"):
        role_prompt("X", "fr")


def test_chat_messages_strip_the_question_only_for_display():
    assert chat_messages("SYS", "  Why?  ") == [{"role": "system", "content": "SYS"}, {"role": "user", "content": "Why?"}]


def test_fold_system_into_first_user_turn():
    folded = fold_system([{"role": "system", "content": "S1"}, {"role": "system", "content": "S2"},
                          {"role": "user", "content": "Q"}])
    assert folded == [{"role": "user", "content": "S1\n\nS2\n\nQ"}]
    assert fold_system([{"role": "system", "content": "S"}]) == [{"role": "user", "content": "S"}]


def test_plain_layout_and_stops():
    text = plain_prompt("SYS", " Q? ")
    assert text == "### Instruction:\nSYS\n\n### Input:\nQ?\n\n### Response:\n"
    assert all(stop.lstrip("\n") in text for stop in STOP_SEQUENCES)  # a model that goes on to a new turn stops
