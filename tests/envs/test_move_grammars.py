"""Every built-in game's move grammar, checked against its own parser, per game:

(a) strings sampled under the grammar (the tiny model's near-random logits under the mask),
    across levels, instances and states reached by play, all parse in their state, except
    for rules a grammar cannot express, which a game raises as ``RuleViolation`` (a false
    conjecture, a witness that does not verify) and which are counted apart;
(b) every valid move the scripted players write is accepted by the grammar, so the grammar
    is not narrower than the rules.
"""

from __future__ import annotations

import copy
from functools import cache

import numpy as np
import pytest
import torch

from dialogym.agents.base import Request, Sampling
from dialogym.agents.guidance import accepts
from dialogym.agents.hf import TransformersAgent
from dialogym.agents.models import tiny_model
from dialogym.envs import InvalidMove, RuleViolation, episode_rng, new_match, resolve_ids, spec

BUILT_IN = [g for g in resolve_ids("all") if g.startswith("dialogym/")]
#: strings sampled per game, spread over the states collected
SAMPLES = 200
#: long enough for the longest move a grammar allows, written one byte per token
SAMPLE_TOKENS = 1600


@cache
def _states(game_id: str) -> tuple:
    """(state, seat, grammar, scripted reply) before every scripted move, every level and
    player set, a few instances each."""
    game_spec = spec(game_id)
    found = []
    for level in game_spec.game_cls.levels:
        for name, players in game_spec.players.items():
            for seed in range(3):
                match = new_match(game_id, seed, level=level)
                rng = episode_rng(seed, 99)
                while not match.done:
                    for seat in match.to_act():
                        if match.done or seat not in match.to_act():
                            continue
                        reply = players[seat](match.view(seat), rng) if seat in players else ""
                        state = copy.deepcopy(match.state)
                        found.append((state, seat, match.move_grammar(seat), reply, name, match.game))
                        match.submit(seat, reply)
    return tuple(found)


@pytest.fixture(scope="module")
def sampler():
    # one thread: the tiny model's matrices are too small for OpenMP to pay on 2 cores
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model, tokenizer = tiny_model()
    yield TransformersAgent(model, tokenizer, name="tiny", batch_size=64)
    torch.set_num_threads(threads)


@pytest.mark.parametrize("game_id", BUILT_IN)
def test_every_state_of_every_seat_has_a_grammar(game_id):
    missing = {(type(s).__name__, seat) for s, seat, g, *_ in _states(game_id) if g is None}
    assert not missing, f"{game_id}: no move grammar for {sorted(missing)}"


@pytest.mark.parametrize("game_id", BUILT_IN)
def test_scripted_moves_are_accepted_by_the_grammar(game_id):
    checked = 0
    for state, seat, grammar, reply, player, game in _states(game_id):
        try:
            game.parse_move(state, seat, reply)
        except InvalidMove:
            continue  # a scripted player that writes an invalid move on purpose
        assert grammar is not None and accepts(grammar, reply.strip()), (
            f"{game_id}: the grammar of {seat!r} refuses player {player!r}'s valid move {reply!r}\n{grammar}"
        )
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("game_id", BUILT_IN)
def test_strings_sampled_under_the_grammar_parse(game_id, sampler):
    states = [item for item in _states(game_id) if item[2] is not None]
    picks = np.random.default_rng(0).choice(len(states), size=SAMPLES, replace=len(states) < SAMPLES)
    # moves of one seat batch together, so a batch of short moves is not held by long ones
    picks = sorted(picks, key=lambda k: (states[k][1], len(states[k][2])))
    requests = [
        Request(messages=[{"role": "user", "content": f"move {i}"}], seed=i, grammar=states[k][2],
                sampling=Sampling(temperature=1.0, max_new_tokens=SAMPLE_TOKENS, guided=True))
        for i, k in enumerate(picks)
    ]
    failures, semantic = [], 0
    for k, reply in zip(picks, sampler.act(requests), strict=True):
        state, seat, grammar, _, _, game = states[k]
        if not accepts(grammar, reply.text):
            failures.append(f"incomplete under its grammar ({len(reply.token_ids)} tokens): {reply.text[:120]!r}")
            continue
        try:
            game.parse_move(state, seat, reply.text)
        except RuleViolation:
            semantic += 1
        except InvalidMove as err:
            failures.append(f"{seat}: {reply.text[:200]!r} -> {err}")
    assert not failures, f"{game_id}: {len(failures)} of {SAMPLES} sampled moves fail:\n" + "\n".join(failures[:8])
    # only games that declare semantic rules may have them, and never for most moves
    assert semantic <= SAMPLES // 2, f"{game_id}: {semantic} of {SAMPLES} sampled moves break a rule the grammar cannot express"
