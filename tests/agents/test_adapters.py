"""Adapter behaviour beyond the checkers: observations, infos, opponents, seeding."""

import gymnasium
import pytest

import dialogym
from dialogym.agents.base import Reply


def test_aec_observation_is_the_prompt_of_the_seat_to_act_and_empty_otherwise():
    env = dialogym.make("dialogym/Reference-v0")
    env.reset(seed=5)
    assert env.agent_selection == "speaker"
    assert env.observe("speaker")["text"].startswith("You are the SPEAKER")
    assert env.observe("listener") == {"text": ""}
    assert env.infos["speaker"]["messages"][-1]["role"] == "user"


def test_aec_reprompt_keeps_the_turn_and_reports_the_error():
    env = dialogym.make("dialogym/Reference-v0")
    env.reset(seed=5)
    env.step("what?")
    assert env.agent_selection == "speaker"
    assert 'start with "CLUE:"' in env.infos["speaker"]["error"]
    assert env.observe("speaker")["text"].startswith("Invalid move:")


def test_aec_rewards_arrive_at_the_end_for_both_seats():
    env = dialogym.make("dialogym/Reference-v0", level="easy")
    env.reset(seed=5)
    target = env.match.instance.target_number
    env.step("CLUE: whatever")
    env.step(f"ANSWER: {target}")
    assert all(env.terminations.values())
    assert env._cumulative_rewards == {"speaker": 1.0, "listener": 1.0}


class Echo:
    """An opponent that records what it was asked and answers from a fixed list."""

    name = "echo"

    def __init__(self, replies):
        self.replies, self.requests = list(replies), []

    def act(self, requests):
        self.requests.extend(requests)
        return [Reply(text=self.replies.pop(0)) for _ in requests]


def test_gym_env_plays_the_other_seats_with_the_given_agent():
    opponent = Echo(["CLUE: the thing"])
    env = gymnasium.make("dialogym/Reference-v0", seat="listener", opponents=opponent)
    obs, info = env.reset(seed=9)
    assert "| the thing" in obs["text"]
    assert opponent.requests[0].seat == "speaker" and opponent.requests[0].view["target"]
    target = env.unwrapped.match.instance.target_number
    _, reward, terminated, truncated, info = env.step(f"ANSWER: {target}")
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["metrics"]["success"] == 1.0


class Batches:
    """Wraps an agent and records the size of every batch it is asked."""

    name = "batches"

    def __init__(self, wrapped):
        self.wrapped, self.sizes, self.seeds = wrapped, [], []

    def act(self, requests):
        self.sizes.append(len(requests))
        self.seeds.extend(r.seed for r in requests)
        return self.wrapped.act(requests)


def test_gym_env_opponents_are_played_by_the_rollout_engine_in_one_batch_per_turn():
    from dialogym.agents.rollout import RolloutEngine
    from dialogym.agents.scripted import ScriptedAgent

    opponent = Batches(ScriptedAgent())
    env = gymnasium.make("dialogym/Debate-v0", seat="judge", opponents=opponent)
    env.reset(seed=3)
    engine = env.unwrapped.engine
    assert isinstance(engine, RolloutEngine) and engine.stats.agent_calls == len(opponent.sizes) > 0
    assert set(opponent.sizes) == {2}  # both debaters argue at once: one batch of two, as in any rollout
    assert env.unwrapped.match.to_act() == ["judge"]


def test_gym_env_opponents_reply_as_in_a_rollout_of_the_same_instance():
    from dialogym.agents.rollout import EpisodeSpec, RolloutEngine, request_for
    from dialogym.agents.scripted import ScriptedAgent

    seats = {"debater_a": "s", "debater_b": "s", "judge": "s"}
    [expected] = RolloutEngine({"s": ScriptedAgent()}).run([EpisodeSpec("dialogym/Debate-v0", seed=3, seats=seats)])
    env = gymnasium.make("dialogym/Debate-v0", seat="judge")
    env.reset(seed=3)
    match = env.unwrapped.match
    env.step(ScriptedAgent().act([request_for(match, "judge")])[0].text)
    assert [(t.seat, t.raw) for t in match.turns] == [(t.seat, t.raw) for t in expected.turns]


def test_gymnasium_make_works_after_importing_only_dialogym_envs_which_imports_no_agents():
    import subprocess
    import sys

    code = (
        "import sys, gymnasium, dialogym.envs\n"
        "assert not [m for m in sys.modules if m.startswith('dialogym.agents')], 'envs imported agents'\n"
        "env = gymnasium.make('dialogym/Reference-v0', seat='listener', opponents='scripted')\n"
        "obs, info = env.reset(seed=1)\n"
        "assert obs['text'] and type(env.unwrapped).__module__ == 'dialogym.agents.gym_env'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert gymnasium.spec("dialogym/Reference-v0").entry_point == "dialogym.agents.gym_env:DialogueGymEnv"


def test_gym_env_default_opponents_are_the_scripted_players():
    env = gymnasium.make("dialogym/Reference-v0", seat="speaker", level="hard")
    env.reset(seed=2)
    view = env.unwrapped.match.view("speaker")
    clue = " ".join(view["target"].values())
    _, reward, terminated, *_ = env.step(f"CLUE: {clue}")
    assert terminated and reward == 1.0


def test_gym_env_same_seed_same_observation():
    env = gymnasium.make("dialogym/Reference-v0", seat="listener")
    assert env.reset(seed=4)[0] == env.reset(seed=4)[0]
    assert env.reset(seed=4)[0] != env.reset(seed=5)[0]


def test_instances_option_plays_exactly_those_instances():
    instances = dialogym.generate_instance_set("dialogym/Reference-v0", 3, seed=1, level="hard")
    env = dialogym.make("dialogym/Reference-v0", instances=instances)
    ids = set()
    for seed in range(6):
        env.reset(seed=seed)
        ids.add(env.match.instance.id)
    assert ids == {inst.id for inst in instances.load(env.factory.game)}


def test_bad_options_are_one_clear_error():
    with pytest.raises(KeyError, match="did you mean 'dialogym/Reference-v0'"):
        dialogym.make("dialogym/Referenc-v0")
    with pytest.raises(ValueError, match="unknown level"):
        dialogym.make("dialogym/Reference-v0", level="impossible")
    with pytest.raises(TypeError, match="bad game option"):
        dialogym.make("dialogym/Reference-v0", colour="red")
    with pytest.raises(ValueError, match="unknown seat"):
        gymnasium.make("dialogym/Reference-v0", seat="judge")


def test_render_ansi_returns_the_transcript():
    env = dialogym.make("dialogym/Reference-v0", render_mode="ansi")
    env.reset(seed=1)
    env.step("CLUE: the circle")
    assert "speaker: 'CLUE: the circle'" in env.render()
