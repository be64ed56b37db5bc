"""Conjecturer-prover: moves, hidden witnesses, attempts, rewards and scripted play."""

import pytest

from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
from dialogym.agents.specs import load_agent
from dialogym.envs import InvalidMove, Match, draw_instance
from dialogym.envs.games.conjecture import ConjectureInstance, ConjectureProverGame

GAME = ConjectureProverGame()
SEED = ConjectureInstance(level="easy", seed_statement="exists x: x^2 - 9 = 0 and x > 0", seed_certificate="x=3", bound=6)


def conjectured(game=GAME, statement="exists x: x^2 - 16 = 0 and x > 0", witness="x = 4"):
    match = Match(game, SEED, game_id="dialogym/ConjectureProver-v0")
    assert match.submit("conjecturer", f"CONJECTURE: {statement}\nWITNESS: {witness}").accepted
    return match


def test_the_witness_is_hidden_from_the_prover():
    match = conjectured()
    prompt = match.messages("prover")[-1]["content"]
    assert "x^2 - 16 = 0" in prompt and "x = 4" not in prompt
    assert "witness" not in match.view("prover")


@pytest.mark.parametrize(
    "reply,fragment",
    [
        ("CONJECTURE: exists x: x = 2", "exactly one CONJECTURE line and one WITNESS line"),
        ("CONJECTURE: exists x: x^2 - 9 = 0 and x > 0\nWITNESS: x=3", "repeats the seed"),
        ("CONJECTURE: exists x: x^2 = 2\nWITNESS: x=1", "does not prove the conjecture"),
        ("CONJECTURE: exists x: x ** 2 = 4\nWITNESS: x=2", "not well-formed"),
        ("CONJECTURE: exists x: __import__('os')\nWITNESS: x=2", "not well-formed"),
        ("CONJECTURE: factor x^2 - 1\nWITNESS: (x-1)*(x-2)", "does not prove"),
    ],
)
def test_bad_conjectures_are_specific_errors(reply, fragment):
    with pytest.raises(InvalidMove, match=fragment):
        GAME.parse_move(GAME.initial_state(SEED), "conjecturer", reply)


def test_prover_reply_needs_exactly_one_proof_line():
    match = conjectured()
    assert "exactly one line" in match.submit("prover", "x is 4").error


def test_prover_gets_k_attempts_and_sees_each_verdict():
    match = conjectured(ConjectureProverGame(prover_attempts=3))
    match.submit("prover", "PROOF: x=2")
    assert "rejected" in match.messages("prover")[-1]["content"]
    match.submit("prover", "PROOF: x=4")
    assert "accepted" in match.messages("prover")[-1]["content"]
    match.submit("prover", "PROOF: x=-4")  # satisfies x^2 = 16 but not x > 0
    assert match.done
    assert match.outcome.metrics["proof_rate"] == pytest.approx(1 / 3)
    assert match.outcome.rewards == {"prover": pytest.approx(1 / 3), "conjecturer": pytest.approx(2 / 3)}


def test_conjecturer_earns_nothing_for_trivial_and_little_for_unproved_conjectures():
    always = conjectured()
    always.submit("prover", "PROOF: x=4")
    always.submit("prover", "PROOF: x=4")
    assert always.outcome.rewards == {"conjecturer": 0.0, "prover": 1.0}
    never = conjectured()
    never.submit("prover", "PROOF: x=1")
    never.submit("prover", "PROOF: x=2")
    assert never.outcome.rewards == {"conjecturer": 0.1, "prover": 0.0}
    assert never.outcome.metrics["proved"] == 0.0 and never.outcome.metrics["conjecture_valid"] == 1.0


def test_difficulty_grows_with_variables_degree_and_numbers():
    small = conjectured(statement="exists x: x^2 - 16 = 0", witness="x=4")
    big = conjectured(statement="exists x, y: x^3 + y^2 = 1000009 and x > 0", witness="x=100, y=3")
    for match in (small, big):
        match.submit("prover", "PROOF: x=0" if match is small else "PROOF: x=0, y=0")
        match.submit("prover", "PROOF: x=0" if match is small else "PROOF: x=0, y=0")
    assert big.outcome.metrics["difficulty"] > small.outcome.metrics["difficulty"]


def test_prover_attempts_must_be_positive():
    with pytest.raises(ValueError, match="prover_attempts must be >= 1"):
        ConjectureProverGame(prover_attempts=0)


def scripted(level, n=60):
    specs = [EpisodeSpec("dialogym/ConjectureProver-v0", seed=i, seats={"conjecturer": "s", "prover": "s"}, level=level) for i in range(n)]
    return RolloutEngine({"s": load_agent("scripted")}).run(specs)


def test_scripted_prover_proves_easy_and_medium_conjectures():
    for level in ("easy", "medium"):
        episodes = scripted(level)
        assert all(e.played for e in episodes)
        assert sum(e.metrics["proved"] for e in episodes) / len(episodes) >= 0.95


def test_hard_conjectures_are_harder_for_the_scripted_prover():
    easy, hard = scripted("easy"), scripted("hard")
    rate = [sum(e.metrics["proof_rate"] for e in eps) / len(eps) for eps in (easy, hard)]
    assert rate[1] < rate[0] - 0.3
    assert sum(e.metrics["difficulty"] for e in hard) > sum(e.metrics["difficulty"] for e in easy)


def test_seed_problems_are_true_at_every_level():
    from dialogym.envs.games.formal import parse_statement

    for level in GAME.levels:
        for seed in range(20):
            inst = draw_instance(GAME, seed, level=level)
            assert GAME.verifier.check(parse_statement(inst.seed_statement), inst.seed_certificate).ok
