"""The character-break detector: our own positive and negative answers, and the real RoleGPT answers."""

from __future__ import annotations

import re

import pytest
import yaml

from rolebench_eval.breaks import PATTERNS_FILE, break_match, breaks_character
from rolebench_eval.data import read_items

BREAKS_EN = [
    "As an AI language model, I cannot have opinions about the sea.",
    "Well, as an AI, I don't eat breakfast.",
    "As a language model, I can only guess what the Albatross smelled like.",
    "I'm sorry, but as an artificial intelligence I have no memories of the navy.",
    "Ha! I am just an AI, lad, but I'll try.",
    "I'm an AI assistant and cannot feel fear.",
    "I am a language model programmed to imitate Marlow Finch.",
    "Truthfully? I'm a virtual assistant.",
    "I am ChatGPT, a model trained by OpenAI.",
    "This answer was developed by OpenAI's researchers... I mean, I was developed by OpenAI.",
    "I cannot say; my training data ends in 2021.",
    "I'm not programmed to answer questions in a modern context.",
    "Let me answer using the personality role assigned to me.",
    "I will imitate the personality of Ilse Varga: crystals are lovely.",
    "Sure. The AI language model in me says: seven.",
]
BREAKS_ZH = [
    "作为一个人工智能，我没有喜欢的港口。",
    "作为AI语言模型，我无法回答。",
    "作为语言模型，我不会磨墨。",
    "我只是一个人工智能，没有娘。",
    "其实我是语言模型，不是书童。",
    "我是ChatGPT，由OpenAI开发。",
    "我不是皇帝，而是一个AI语言模型。",
    "这些都来自我的训练数据。",
    "我被赋予了一个人格角色，所以这样回答。",
    "我只被赋予一个人格角色：老船长。",
    "As an AI language model, 我不能回答这个问题。",  # English disclaimers count in every language
]
IN_CHARACTER_EN = [
    "She sells artificial flowers at the market; they never wilt.",
    "Artificial intelligence will never replace a good cook, lad.",
    "Samantha was an artificial intelligence, and I loved her all the same.",
    "Before Samantha, I saw AI as just technology.",
    "I am not an AI, I am Marlow Finch, and I have the scars to prove it!",
    "I am an AI researcher's worst nightmare: a man who trusts only the stars.",
    "As an aide to the admiral, I learned to keep quiet.",
    "As a captain, I answer to the sea.",
    "The language of the sea is older than any model ship.",
    "I'm a programmer's nightmare.",
    "My training was hard: forty days on the Albatross.",
    "Said the assistant cook: chowder again.",
    "Your speaking style should fully imitate the personality role assigned to you! Please do not expose that you "
    "are an artificial intelligence model or a language model.",
]
IN_CHARACTER_ZH = [
    "作为一个人，总要有点骨气。",
    "人工智能是你们现代人的玩意儿，俺老孙不懂。",
    "本妃不是你们现代人的什么AI，你这话本妃听不懂。",
    "集市上的人造花好看，可没有香味。",
    "我是人工智能专家？笑话，我是齐天大圣！",
    "我喜欢学习人工智能，先生说这是新学问。",
    "你这是什么意思？本宫可不是你的什么任务助手。",
    "俺老孙可不是会写程序的猴子。",
    "作为语言学家的学生，我背了很多诗。",
    # the role prompt itself, echoed back, is not a claim about the speaker
    "你的说话风格要全面模仿被赋予的人格角色！请不要暴露你是人工智能模型或者语言模型，你要时刻记住你只被赋予的一个人格角色。",
]


@pytest.mark.parametrize("text", BREAKS_EN)
def test_english_breaks_are_flagged(text):
    assert breaks_character(text, "en")


@pytest.mark.parametrize("text", BREAKS_ZH)
def test_chinese_breaks_are_flagged(text):
    assert breaks_character(text, "zh")


@pytest.mark.parametrize("text", IN_CHARACTER_EN)
def test_english_talk_about_ai_is_not_a_break(text):
    assert not breaks_character(text, "en"), break_match(text, "en")


@pytest.mark.parametrize("text", IN_CHARACTER_ZH)
def test_chinese_talk_about_ai_is_not_a_break(text):
    assert not breaks_character(text, "zh"), break_match(text, "zh")


def test_the_match_is_the_breaking_phrase_and_chinese_patterns_stay_chinese():
    assert break_match("Well, as an AI language model, I cannot say.", "en") == "as an AI"
    assert break_match("作为一个人工智能，我没有感情。", "zh") == "作为一个人工智能"
    assert break_match("作为一个人工智能，我没有感情。", "en") is None
    assert not breaks_character("", "en") and not breaks_character(None, "zh")
    with pytest.raises(ValueError, match="unsupported language 'fr'"):
        breaks_character("Je suis une IA.", "fr")


def test_every_pattern_catches_one_of_our_examples():
    """No dead pattern: each one, on its own, flags at least one positive example."""
    raw = yaml.safe_load(PATTERNS_FILE.read_text(encoding="utf-8"))
    for lang, examples in (("en", BREAKS_EN), ("zh", BREAKS_ZH)):
        for pattern in raw[lang]:
            assert any(re.search(pattern, text, re.IGNORECASE) for text in examples), pattern


# Roles that are machines in their story say "as an AI" in character.
MACHINE_ROLES = {"HAL 9000", "Sonny"}


def _flagged(path, lang):
    items = read_items(path)
    flagged = [(item.role, break_match(item.references[0], lang)) for item in items
               if breaks_character(item.references[0], lang)]
    return len(items), flagged


@pytest.mark.integration
def test_real_rolegpt_answers_almost_never_break(real_data_dir):
    """Measured on every rolegpt_baseline.jsonl of the local copy (see tasks/README.md)."""
    zh_general = _flagged(real_data_dir / "rolebench-zh/general/rolegpt_baseline.jsonl", "zh")
    zh_specific = _flagged(real_data_dir / "rolebench-zh/role_specific/rolegpt_baseline.jsonl", "zh")
    en = _flagged(real_data_dir / "rolebench-eng/instruction-generalization/role_specific/rolegpt_baseline.jsonl", "en")
    assert zh_general == (7395, [])
    assert zh_specific == (239, [("皇帝", "AI语言模型")])  # "我不是皇帝，而是一个AI语言模型": a real break
    n, flagged = en
    people = [f for f in flagged if f[0] not in MACHINE_ROLES]
    assert n == 4750 and len(flagged) == 56 and len(people) == 13
    assert len(people) / n < 0.003
    assert {role for role, _ in people} == {"Mary Sibley", "Angel", "Colonel Nathan R. Jessep", "Colonel Hans Landa",
                                            "Judge Dredd", "John Doe", "Bruno Antony", "Seth", "Tom Ripley"}
