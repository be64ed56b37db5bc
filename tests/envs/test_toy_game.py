"""A whole new game in one file (under 60 lines): registers, plays, passes every checker."""

from dataclasses import dataclass, field

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import api_test, parallel_api_test, seed_test

import dialogym
from dialogym.envs import Game, Instance, InvalidMove, Move, Outcome


class Pennies(Instance):
    rounds: int

class Call(Move):
    side: str


@dataclass
class State:
    rounds: int
    calls: list = field(default_factory=list)


class MatchingPennies(Game):  # both call at once; "match" wins a round if the calls agree
    roles, instance_cls, levels = ("match", "mismatch"), Pennies, ("short", "long")
    def generate_instance(self, rng, level):
        return Pennies(level=level, rounds=int(rng.integers(1, 3 if level == "short" else 6)))
    def initial_state(self, instance): return State(rounds=instance.rounds)
    def to_move(self, s): return [] if self.is_terminal(s) else list(self.roles)
    def prompt(self, s, seat): return f"Round {len(s.calls) + 1}/{s.rounds}: reply 'heads' or 'tails'."
    def parse_move(self, s, seat, text):
        if text.strip().lower() not in ("heads", "tails"):
            raise InvalidMove(f"reply 'heads' or 'tails', not {text[:20]!r}")
        return Call(side=text.strip().lower())
    def apply(self, s, moves): s.calls.append((moves["match"].side, moves["mismatch"].side))
    def is_terminal(self, s): return len(s.calls) == s.rounds
    def score(self, s):
        share = sum(a == b for a, b in s.calls) / s.rounds
        return Outcome({"match": share, "mismatch": 1 - share}, {"match_rate": share})


dialogym.register("dialogym/Pennies-v0", MatchingPennies, players={"heads": {r: lambda v, g: "heads" for r in MatchingPennies.roles}})


def test_toy_game_registers_plays_and_passes_the_checkers():
    assert "dialogym/Pennies-v0" in dialogym.registered()
    api_test(dialogym.make("dialogym/Pennies-v0"), num_cycles=50)
    parallel_api_test(dialogym.make_parallel("dialogym/Pennies-v0"), num_cycles=50)
    seed_test(lambda: dialogym.make("dialogym/Pennies-v0"), num_cycles=50)
    check_env(gymnasium.make("dialogym/Pennies-v0", level="long").unwrapped, skip_render_check=True)
    env = gymnasium.make("dialogym/Pennies-v0", opponents="scripted")
    env.reset(seed=3)
    done = False
    while not done:
        _, reward, done, *_ = env.step("heads")
    assert reward == 1.0  # the scripted opponent also always says heads


class OnePenny(MatchingPennies):  # a single instance: one split holds it, the other nothing
    def generate_instance(self, rng, level):
        return Pennies(level=level, rounds=1)


@pytest.fixture
def one_penny():
    """Registered for one test only: suites that bench 'all' games must not meet it."""
    from dialogym.envs import registry

    game_id = "dialogym-test/OnePenny-v0"
    dialogym.register(game_id, OnePenny, players={"heads": {r: lambda v, g: "heads" for r in OnePenny.roles}})
    yield game_id
    registry._REGISTRY.pop(game_id, None)
    gymnasium.registry.pop(game_id, None)


def test_a_tiny_instance_space_on_the_empty_split_is_one_clear_line(tmp_path, one_penny):
    from typer.testing import CliRunner

    from dialogym.cli import app
    from dialogym.envs import draw_instance
    from dialogym.envs.instances import NoInstanceInSplit, split_of

    empty = "train" if split_of(Pennies(level="short", rounds=1)) == "test" else "test"
    with pytest.raises(NoInstanceInSplit, match="--split any"):
        draw_instance(OnePenny(), 0, level="short", split=empty)
    result = CliRunner().invoke(app, ["play", one_penny, "--model", "scripted:heads", "--split", empty,
                                      "--episodes", "1", "--out", str(tmp_path / "run")])
    assert result.exit_code != 0 and result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and "--split any" in result.output, result.output
