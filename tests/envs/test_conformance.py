"""Every registered game honours the PettingZoo and Gymnasium contracts.

New games are picked up automatically: registering is enough to be checked here.
"""

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import api_test, parallel_api_test, seed_test

import dialogym
from dialogym.agents.scripted import ScriptedAgent
from dialogym.envs import spec

BUILTIN = [i for i in dialogym.registered() if i.startswith("dialogym/")]


@pytest.mark.parametrize("game_id", BUILTIN)
def test_pettingzoo_aec_api(game_id):
    api_test(dialogym.make(game_id), num_cycles=60)


@pytest.mark.parametrize("game_id", BUILTIN)
def test_pettingzoo_parallel_api(game_id):
    parallel_api_test(dialogym.make_parallel(game_id), num_cycles=60)


@pytest.mark.parametrize("game_id", BUILTIN)
def test_pettingzoo_seed(game_id):
    seed_test(lambda: dialogym.make(game_id), num_cycles=60)


@pytest.mark.parametrize("game_id", BUILTIN)
def test_gymnasium_check_env_for_every_seat(game_id):
    for seat in spec(game_id).game_cls.roles:
        check_env(gymnasium.make(game_id, seat=seat).unwrapped, skip_render_check=True)


def play_scripted_aec(game_id, seed):
    env = dialogym.make(game_id)
    env.reset(seed=seed)
    agent = ScriptedAgent()
    from dialogym.agents.base import Request

    for seat in env.agent_iter():
        _, _, term, trunc, info = env.last()
        if term or trunc:
            env.step(None)
            continue
        request = Request(messages=info["messages"], game=game_id, seat=seat, view=env.match.view(seat), seed=seed)
        env.step(agent.act([request])[0].text)
    return env.match.episode()


@pytest.mark.parametrize("game_id", BUILTIN)
def test_scripted_players_finish_games_without_invalid_moves(game_id):
    for seed in range(5):
        episode = play_scripted_aec(game_id, seed)
        assert episode.status == "completed", episode.abort_reason
        assert not any(t.error for t in episode.turns), [t.error for t in episode.turns if t.error]


@pytest.mark.parametrize("game_id", BUILTIN)
def test_the_same_seed_replays_the_same_episode(game_id):
    a, b = play_scripted_aec(game_id, 42), play_scripted_aec(game_id, 42)
    strip = {"started_at", "duration_s", "turns"}
    assert a.model_dump(exclude=strip) == b.model_dump(exclude=strip)
    assert [t.model_dump(exclude={"latency_s"}) for t in a.turns] == [t.model_dump(exclude={"latency_s"}) for t in b.turns]


@pytest.mark.parametrize("game_id", BUILTIN)
def test_random_text_actions_are_ordinary_invalid_moves(game_id):
    env = dialogym.make_parallel(game_id)
    observations, _ = env.reset(seed=0)
    for seat in env.agents:
        env.action_space(seat).seed(0)
    while env.agents:
        actions = {seat: env.action_space(seat).sample() for seat in env.agents}
        *_, infos = env.step(actions)
    assert env.match.done
    episode = env.match.episode()
    assert episode.status == "aborted" or all(t.error is None for t in episode.turns)
