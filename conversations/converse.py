"""``rolebench-eval converse``: a model under test talks through the scenarios, turn by turn.

Every turn is one batch of requests, one per conversation still going (concurrent across
conversations, through :func:`rolebench_eval.llm.client.run_batch`: cached, budgeted, retried).
A conversation's request holds the character's role prompt (:func:`rolebench_eval.prompts.role_prompt`,
the one the tasks use), every earlier user turn and the model's own earlier replies (their reasoning
cut, :func:`rolebench_eval.reasoning.answer`), then the user's next turn:

- *replay*: the next user turn is the scenario file's, so every model meets the same user turns;
- *live*: after the first turn, the simulator writes it from the conversation so far (its requests
  go through the same cache and budget; ``scenarios freeze`` turns the run into a scenario file).

Requests are deterministic given the conversation so far, so the cache makes a run resumable per
turn: a rerun after a kill or a budget stop sends only what was never answered.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

from rolebench_eval.catalogue import reasoning_markers
from rolebench_eval.errors import InputError
from rolebench_eval.llm.batch import BatchSettings
from rolebench_eval.llm.budget import Budget, Caps, Estimate, Prices, estimate
from rolebench_eval.llm.cache import ResponseCache, default_cache_path
from rolebench_eval.llm.client import BatchResult, ClientConfig, Messages, run_batch
from rolebench_eval.outputs.conversation import Conversation, Turn
from rolebench_eval.outputs.scenario import Scenario, UserTurn
from rolebench_eval.prompts import role_prompt
from rolebench_eval.reasoning import answer

from . import simulator
from .characters import references
from .scores import BREAK, turn_scores


@dataclass
class ConverseOptions:
    model: ClientConfig
    mode: str = "replay"
    turns: int | None = None  # None: as many turns as each scenario has (live: the simulator writes all but the first)
    simulator: ClientConfig | None = None  # live mode's user
    cache: str | os.PathLike | None = None
    caps: Caps = field(default_factory=Caps)
    prices: Prices | None = None
    data_dir: str | os.PathLike | None = None
    progress: bool = True
    batch: BatchSettings | None = None  # each turn one OpenAI Batch job (at its discount) instead of live requests


@dataclass
class Dialogue:
    """One conversation in progress."""

    scenario: Scenario
    planned: int
    said: list[UserTurn] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    conversations: list[Conversation]
    stopped: BatchResult | None = None  # the batch that stopped the run, if one did
    requests: dict[str, int] = field(default_factory=dict)


def character_request(scenario: Scenario, said: Sequence[str], replies: Sequence[str]) -> Messages:
    """What the model under test is sent: role prompt, the turns so far, the user's latest turn."""
    messages = [{"role": "system", "content": role_prompt(scenario.character, scenario.lang, scenario.description)}]
    for user, reply in zip(said, replies):
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
    return messages + [{"role": "user", "content": said[-1]}]


def planned_turns(scenario: Scenario, opts: ConverseOptions) -> int:
    if opts.mode == "live":
        return opts.turns or len(scenario.turns)
    return min(opts.turns or len(scenario.turns), len(scenario.turns))


def _cut(text: str) -> str:
    return answer(text, *reasoning_markers())


def _count(outcome: Outcome, side: str, batch: BatchResult) -> None:
    """Add a batch's requests to the run's counts (``model_sent``, ``simulator_cached``, ...)."""
    for what, n in (("sent", batch.n_sent), ("cached", batch.n_cached)):
        outcome.requests[f"{side}_{what}"] = outcome.requests.get(f"{side}_{what}", 0) + n


def _user_turns(active: list[Dialogue], t: int, opts: ConverseOptions, ask, outcome: Outcome) -> list[Dialogue]:
    """Give each active conversation its user turn ``t``; returns those that got one."""
    if opts.mode == "replay" or t == 0:
        for d in active:
            d.said.append(d.scenario.turns[t])
        return active
    batch = ask([simulator.next_turn_request(d.scenario, [u.text for u in d.said], d.replies) for d in active],
                opts.simulator, f"user turn {t + 1}")
    _count(outcome, "simulator", batch)
    outcome.stopped = outcome.stopped or (batch if batch.stopped else None)
    for d, got in zip(active, batch.responses):
        text = _cut(got["text"]).strip() if got else ""
        if text:
            d.said.append(UserTurn(text=text))
    return [d for d in active if len(d.said) > t]


def talk(dialogues: list[Dialogue], opts: ConverseOptions, ask) -> Outcome:
    """Run every dialogue turn by turn; ``ask(requests, config, desc)`` answers a batch."""
    outcome = Outcome(conversations=[])
    for t in range(max(d.planned for d in dialogues)):
        active = _user_turns([d for d in dialogues if len(d.replies) == t < d.planned], t, opts, ask, outcome)
        if not active:
            break
        batch = ask([character_request(d.scenario, [u.text for u in d.said], d.replies) for d in active],
                    opts.model, f"turn {t + 1}")
        _count(outcome, "model", batch)
        for d, got in zip(active, batch.responses):
            if got is not None:
                d.raw.append(got["text"])
                d.replies.append(_cut(got["text"]))
        if batch.stopped or outcome.stopped:
            outcome.stopped = outcome.stopped or batch
            break
    return outcome


def record(d: Dialogue, refs: dict[str, tuple[str, ...]]) -> Conversation:
    """A dialogue as its file record, each turn scored."""
    s, turns = d.scenario, []
    for user, raw, reply in zip(d.said, d.raw, d.replies):
        scores = turn_scores(reply, s.lang, refs.get(user.item_id) if user.item_id else None)
        turns.append(Turn(user=user.text, reply=str(reply), item_id=user.item_id, scores=scores,
                          **({"raw": raw} if raw != reply else {})))
    breaks = [t.scores[BREAK] for t in turns]
    return Conversation(scenario_id=s.id, scenario_hash=s.hash, character=s.character, kind=s.kind, lang=s.lang,
                        description=s.description, turns=turns, planned_turns=d.planned,
                        complete=len(turns) == d.planned, break_rate=sum(breaks) / len(breaks) if breaks else None)


def load_references(scenarios: list[Scenario], data_dir, path) -> dict[str, tuple[str, ...]]:
    """The references of every item the scenarios ask, from the same version of the file they were written from
    (another version, or an item the file lacks, is refused before anything is sent)."""
    refs: dict[str, tuple[str, ...]] = {}
    for split, sha in sorted({(s.source.split, s.source.sha256) for s in scenarios
                              if any(t.item_id for t in s.turns)}):
        found, by_id = references(split, data_dir)
        if found != sha:
            raise InputError(path, None, "source.sha256", f"the scenarios were written from another version of "
                             f"split {split}'s test file ({sha[:12]}…, this data folder has {found[:12]}…): "
                             "point --data-dir at that version")
        refs |= by_id
    for s in scenarios:
        for n, turn in enumerate(s.turns):
            if turn.item_id and turn.item_id not in refs:
                raise InputError(path, None, f"turns[{n}].item_id", f"scenario {s.id!r}: {turn.item_id!r} is no item "
                                 f"of split {s.source.split} in this data folder, so nothing scores the answer")
    return refs


def dry_run(scenarios: list[Scenario], opts: ConverseOptions) -> tuple[int, Estimate]:
    """(requests planned in all, the estimate of the first turn's: later prompts hold replies not known yet)."""
    turns = [planned_turns(s, opts) for s in scenarios]
    first = [character_request(s, [s.turns[0].text], []) for s in scenarios]
    planned = sum(turns) + (sum(turns) - len(turns) if opts.mode == "live" else 0)  # live: the simulator's too
    with ResponseCache(opts.cache or default_cache_path()) as cache:
        return planned, estimate(first, opts.model, cache, opts.batch.prices(opts.prices) if opts.batch else opts.prices)


def converse(scenarios: list[Scenario], opts: ConverseOptions, path: str | os.PathLike = "scenarios") -> Outcome:
    """Every scenario talked through; conversations scored (an unfinished one keeps its answered turns)."""
    if opts.mode == "live" and opts.simulator is None:
        raise InputError("--simulator-model", None, None, "live mode needs a simulator model")
    refs = load_references(scenarios, opts.data_dir, path)
    dialogues = [Dialogue(s, planned_turns(s, opts)) for s in scenarios]
    budget = Budget(opts.caps, opts.batch.prices(opts.prices) if opts.batch else opts.prices)
    with ResponseCache(opts.cache or default_cache_path()) as cache:
        def ask(requests, config, desc):
            if opts.batch is not None:
                from rolebench_eval.llm.batch import run_batch_jobs

                return run_batch_jobs(requests, config, cache, budget, opts.batch, progress=opts.progress, desc=desc)
            return run_batch(requests, config, cache, budget, progress=opts.progress, desc=desc)

        outcome = talk(dialogues, opts, ask)
    outcome.conversations = [record(d, refs) for d in dialogues]
    return outcome
