"""Guided play through the rollout engine: a guided agent's replies follow the seat's move
grammar, turns record the grammar, and an unguided agent of the same model is left free."""

from __future__ import annotations

import re

import pytest

from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
from dialogym.agents.specs import load_agent, parse_spec
from dialogym.trainers.toy import CHOICE_ID as GAME  # one seat replies CHOICE: <1-4> under a move grammar


def specs(n, agent):
    return [EpisodeSpec(GAME, seed=i, seats={"chooser": agent}) for i in range(n)]


def test_a_plus_guided_spec_is_a_distinct_guided_agent():
    assert parse_spec("tiny+guided").guided and not parse_spec("tiny").guided
    assert parse_spec("smollm2+guided+lora:/x").lora == "/x" and parse_spec("smollm2+lora:/x+guided").guided
    agent = load_agent("tiny+guided")
    assert agent.guided and agent.name == "tiny+guided"


def test_a_guided_agent_plays_every_episode_and_its_turns_record_the_grammar():
    engine = RolloutEngine({"g": load_agent("tiny+guided"), "f": load_agent("tiny")})
    guided = engine.run(specs(12, "g"))
    free = engine.run(specs(12, "f"))
    assert all(e.status == "completed" for e in guided)
    assert all(e.turns[0].grammar and "CHOICE" in e.turns[0].grammar for e in guided)
    assert all(re.fullmatch(r"CHOICE: [1-4]", e.turns[0].raw) for e in guided)
    # the same random model, unguided, never writes the move format
    assert all(e.status == "aborted" for e in free) and all(t.grammar is None for e in free for t in e.turns)


def test_scripted_players_ignore_guidance():
    from dialogym.agents.scripted import ScriptedAgent

    assert not getattr(ScriptedAgent(), "guided", False)
    episodes = RolloutEngine({"s": load_agent("scripted+guided")}).run(
        [EpisodeSpec("dialogym/Reference-v0", seed=0, seats={"speaker": "s", "listener": "s"})]
    )
    assert episodes[0].status == "completed" and all(t.grammar is None for t in episodes[0].turns)


@pytest.mark.parametrize("seed", [0, 1])
def test_guided_episodes_replay_exactly(seed):
    first = RolloutEngine({"g": load_agent("tiny+guided")}).run(specs(6, "g"))
    again = RolloutEngine({"g": load_agent("tiny+guided")}).run(specs(6, "g"))
    assert [e.turns[0].token_ids for e in first] == [e.turns[0].token_ids for e in again]


def test_a_benchmarks_guided_request_gets_the_games_reply_cap_and_a_free_one_the_smaller():
    """The grammar bounds a guided reply to fit the game's ``max_reply_tokens``; a benchmark's
    cap is for free replies and would cut legal moves short (a therapist's DIAGNOSIS and PLAN),
    so it asks for the game's cap on guided ones (``guided_game_cap``). A trainer's cap
    applies to guided replies too (tests/agents/test_rollout.py)."""
    from dialogym.agents.base import Sampling
    from dialogym.agents.rollout import build_match, request_for

    match = build_match(EpisodeSpec("dialogym/PatientTherapist-v0", seed=0,
                                    seats={"patient": "s", "therapist": "m"}))
    seat = match.to_act()[0]
    cap = match.game.max_reply_tokens
    guided = request_for(match, seat, Sampling(max_new_tokens=64, guided=True, guided_game_cap=True))
    free = request_for(match, seat, Sampling(max_new_tokens=64, guided_game_cap=True))
    assert guided.grammar and guided.sampling.max_new_tokens == cap > 64
    assert free.grammar is None and free.sampling.max_new_tokens == 64
    assert request_for(match, seat, Sampling(max_new_tokens=10_000)).sampling.max_new_tokens == cap
