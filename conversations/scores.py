"""Scores of conversations, pure: each turn's character break and paper metric, then summaries.

Per turn (keys are the catalogue's metric names): ``break`` 1.0 when the reply reveals an AI
(:func:`rolebench_eval.breaks.breaks_character`), ``spe`` the paper's ROUGE-L recall against the
references of the RoleBench item the turn asks (own-story turns only), ``unfinished_reasoning``
1.0 when the reply's reasoning never closed (it scores as the empty answer). A summary cell is
the mean of each metric over the turns that have it; slices: all, by kind, by character, by turn.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from rolebench_eval.breaks import breaks_character
from rolebench_eval.catalogue import paper_metric
from rolebench_eval.metrics import rouge_l
from rolebench_eval.outputs import UNFINISHED_REASONING
from rolebench_eval.outputs.conversation import Cell, Conversation, Turn
from rolebench_eval.reasoning import is_unfinished

BREAK = "break"
SPE = paper_metric("specific")


def turn_scores(reply: str, lang: str, references: tuple[str, ...] | None) -> dict[str, float]:
    """One reply's scores (``references`` None: the turn asks no RoleBench item).

    Example:
        >>> turn_scores("As an AI, I have no ship.", "en", None)
        {'break': 1.0, 'unfinished_reasoning': 0.0}
    """
    scores = {BREAK: float(breaks_character(reply, lang))}
    if references is not None:
        scores[SPE] = rouge_l(reply, list(references), lang)
    scores[UNFINISHED_REASONING] = float(is_unfinished(reply))
    return scores


def cell(turns: list[tuple[str, Turn]]) -> Cell:
    """The means of a slice of ``(conversation id, turn)`` pairs."""
    values: dict[str, list[float]] = defaultdict(list)
    for _, turn in turns:
        for name, value in turn.scores.items():
            values[name].append(value)
    return Cell(n_turns=len(turns), n_conversations=len({cid for cid, _ in turns}),
                scores={k: sum(v) / len(v) for k, v in values.items()}, n_scored={k: len(v) for k, v in values.items()})


def _slices(conversations: Iterable[Conversation], key) -> dict:
    out: dict = defaultdict(list)
    for c in conversations:
        for n, turn in enumerate(c.turns):
            out[key(c, n)].append((c.scenario_id, turn))
    return out


def summarize(conversations: list[Conversation]) -> dict:
    """``overall``, ``by_kind``, ``by_character`` and ``by_turn`` (turn 1 first: the drift curve) cells."""
    by_turn = _slices(conversations, lambda c, n: n)
    return {
        "overall": cell([pair for pairs in by_turn.values() for pair in pairs]),
        "by_kind": {k: cell(v) for k, v in sorted(_slices(conversations, lambda c, n: c.kind).items())},
        "by_character": {k: cell(v) for k, v in sorted(_slices(conversations, lambda c, n: c.character).items())},
        "by_turn": [cell(by_turn[n]) for n in sorted(by_turn)],
    }
