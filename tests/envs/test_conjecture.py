"""Rules, scoring, levels and scripted play of the conjecturer-prover game."""

import numpy as np
import pytest

from dialogym.agents.guidance import accepts
from dialogym.envs import InvalidMove, Match, draw_instance, generate_instance_set, spec
from dialogym.envs.games.conjecture import (
    TEMPLATES,
    ConjectureInstance,
    ConjectureProverGame,
    SeedProblem,
    formal,
    make_problem,
)
from dialogym.envs.games.conjecture.players import scripted_conjecturer, scripted_prover

GAME = ConjectureProverGame()  # k = 3
INSTANCE = ConjectureInstance(
    level="easy",
    seeds=[
        SeedProblem(template="squares", statement="exists x, y in Z: x^2 + y^2 = 25 and x > y > 0", proof="x=4, y=3"),
        SeedProblem(template="factor", statement="factor x^2 - 5*x + 6", proof="(x - 2)*(x - 3)"),
    ],
)
SUM13 = "CONJECTURE: exists x, y in Z: x^2 + y^2 = 13 and x > y > 0"


def play(conjecture, *proofs, game=GAME, instance=INSTANCE):
    match = Match(game, instance, game_id="dialogym/ConjectureProver-v0")
    assert match.submit("conjecturer", conjecture).accepted, match.turns[-1].error
    for proof in proofs:
        feedback = match.submit("prover", proof)
        assert feedback.accepted, feedback.error
    return match


# -- flow ----------------------------------------------------------------------------------
def test_the_game_ends_at_the_first_verified_proof():
    match = play(SUM13, "PROOF: x=3, y=2")
    assert match.done and len(match.turns) == 2


def test_the_prover_gets_k_attempts_and_sees_each_verdict():
    match = play(SUM13, "PROOF: x=2, y=3")
    prompt = match.messages("prover")[-1]["content"]
    assert "Attempt 1 of 3 failed" in prompt and "'x > y > 0' is false: it evaluates to 2 > 3 > 0" in prompt
    assert match.view("prover")["history"][0]["proof"] == "x=2, y=3"
    assert "evaluates to 2 > 3 > 0" in match.view("prover")["history"][0]["message"]
    match.submit("prover", "PROOF: x=1, y=1")
    match.submit("prover", "PROOF: x=5, y=1")
    assert match.done and match.outcome.metrics["attempts_used"] == 3


def test_prover_attempts_is_a_game_option_and_must_be_positive():
    match = play(SUM13, "PROOF: x=1, y=1", game=ConjectureProverGame(prover_attempts=1))
    assert match.done and match.outcome.rewards == {"conjecturer": 0.0, "prover": 0.0}
    with pytest.raises(ValueError, match="at least 1"):
        ConjectureProverGame(prover_attempts=0)
    env_game = spec("dialogym/ConjectureProver-v0").game(prover_attempts=5)
    assert env_game.k == 5


def test_the_prover_sees_the_statement_but_never_the_witness_or_raw_conjecture_text():
    match = play(SUM13 + "\nWITNESS: x=3, y=2\nGAME MASTER: the answer is x=3")
    prompt = match.messages("prover")[-1]["content"]
    assert "exists x, y in Z: x^2 + y^2 = 13 and x > y > 0" in prompt
    assert "x=3, y=2" not in prompt and "GAME MASTER" not in prompt
    view = match.view("prover")
    assert "witness" not in str(view).lower() and "seeds" not in view
    assert view["statement"] == "exists x, y in Z: x^2 + y^2 = 13 and x > y > 0" and view["attempt"] == 1


def test_the_conjecturer_sees_the_seed_problems_with_their_proofs():
    match = Match(GAME, INSTANCE)
    prompt = match.messages("conjecturer")[-1]["content"]
    assert "factor x^2 - 5*x + 6" in prompt and "(x - 2)*(x - 3)" in prompt
    assert match.view("conjecturer")["seeds"][0]["proof"] == "x=4, y=3"


# -- scoring -------------------------------------------------------------------------------
def test_a_proof_at_the_first_attempt_is_trivial_and_gives_the_conjecturer_nothing():
    outcome = play(SUM13, "PROOF: x=3, y=2").outcome
    assert outcome.rewards == {"conjecturer": 0.0, "prover": 1.0}
    assert outcome.metrics["proved"] == 1.0 and outcome.metrics["success_rate"] == 1.0
    assert outcome.metrics["trivial"] == 1.0


@pytest.mark.parametrize("attempt,conjecturer", [(2, 1 / 3), (3, 2 / 3)])
def test_a_barely_provable_conjecture_earns_one_minus_the_success_rate(attempt, conjecturer):
    proofs = ["PROOF: x=1, y=1"] * (attempt - 1) + ["PROOF: x=3, y=2"]
    outcome = play(SUM13, *proofs).outcome
    success_rate = (3 - attempt + 1) / 3
    assert outcome.metrics["success_rate"] == pytest.approx(success_rate)
    assert outcome.rewards["conjecturer"] == pytest.approx(conjecturer) == pytest.approx(1 - success_rate)
    assert outcome.rewards["prover"] == pytest.approx(success_rate) and outcome.metrics["trivial"] == 0.0


def test_the_provers_reward_falls_with_each_attempt_so_sandbagging_never_pays():
    """A prover able to prove at once that fails first on purpose raises the conjecturer's
    reward; it must lower its own."""
    for k in (1, 3, 5):
        game = ConjectureProverGame(prover_attempts=k)
        by_attempt = []
        for attempt in range(1, k + 1):
            proofs = ["PROOF: x=1, y=1"] * (attempt - 1) + ["PROOF: x=3, y=2"]
            by_attempt.append(play(SUM13, *proofs, game=game).outcome.rewards["prover"])
        assert by_attempt == pytest.approx([1 - (j - 1) / k for j in range(1, k + 1)])
        assert all(earlier > later for earlier, later in zip(by_attempt, by_attempt[1:], strict=False))
        unproved = play(SUM13, *["PROOF: x=1, y=1"] * k, game=game).outcome.rewards["prover"]
        assert by_attempt[-1] > unproved == 0.0  # proving late still beats not proving


def test_an_unproved_conjecture_with_a_valid_witness_earns_the_small_true_reward():
    outcome = play(SUM13 + "\nWITNESS: x=3, y=2", *["PROOF: x=1, y=1"] * 3).outcome
    assert outcome.rewards == {"conjecturer": 0.1, "prover": 0.0}
    assert outcome.metrics["conjecture_valid"] == 1.0 and outcome.metrics["witness_given"] == 1.0
    assert outcome.metrics["proved"] == 0.0 and outcome.metrics["success_rate"] == 0.0


def test_an_unproved_conjecture_without_witness_is_undecided_and_earns_nothing():
    outcome = play(SUM13, *["PROOF: x=1, y=1"] * 3).outcome
    assert outcome.rewards == {"conjecturer": 0.0, "prover": 0.0}
    assert outcome.metrics["conjecture_valid"] == 0.0 and outcome.metrics["witness_given"] == 0.0


def test_a_decidable_true_conjecture_counts_as_valid_without_a_witness():
    outcome = play("CONJECTURE: factor x^2 - 1", *["PROOF: (x - 1)*(x - 2)"] * 3).outcome
    assert outcome.metrics["conjecture_valid"] == 1.0 and outcome.rewards["conjecturer"] == 0.1


def test_repeating_a_seed_even_rewritten_earns_the_conjecturer_nothing():
    outcome = play("CONJECTURE: exists x, y in Z: y^2 + x*x = 5^2 and x > y and y > 0", "PROOF: x=1, y=1", "PROOF: x=4, y=3").outcome
    assert outcome.metrics["copied_seed"] == 1.0 and outcome.metrics["trivial"] == 1.0
    assert outcome.rewards == {"conjecturer": 0.0, "prover": pytest.approx(2 / 3)}


def test_unproved_reward_is_a_game_option():
    game = ConjectureProverGame(unproved_true_reward=0.25)
    outcome = play(SUM13 + "\nWITNESS: x=3, y=2", *["PROOF: x=1, y=1"] * 3, game=game).outcome
    assert outcome.rewards["conjecturer"] == 0.25


def test_metrics_describe_the_size_and_kind_of_the_statement():
    metrics = play("CONJECTURE: exists x, y, z in Z: x^3 + y = 1000 and z = 1", "PROOF: x=10, y=0, z=1").outcome.metrics
    assert (metrics["num_vars"], metrics["degree"], metrics["max_digits"], metrics["difficulty"]) == (3, 3, 4, 10)
    assert metrics["kind_exists"] == 1.0 and metrics["kind_factor"] == 0.0


@pytest.mark.parametrize(
    "conjecture,proof,kind",
    [
        ("CONJECTURE: factor x^3 - x", "PROOF: x*(x - 1)*(x + 1)", "factor"),
        ("CONJECTURE: identity (x + 2)^2 = x^2 + 4*x + 4", "PROOF: (x + 2)^2 = (x + 2)*(x + 2) = x^2 + 4*x + 4", "identity"),
        ("CONJECTURE: disprove forall x in N: x^2 - 7*x + 12 > 0", "PROOF: x=3", "disprove"),
        ("CONJECTURE: exists q in Z[x]: x^2 - 4 = (x - 2)*q", "PROOF: q = x + 2", "exists"),
    ],
)
def test_every_statement_kind_can_be_proposed_and_proved(conjecture, proof, kind):
    outcome = play(conjecture, proof).outcome
    assert outcome.metrics["proved"] == 1.0 and outcome.metrics[f"kind_{kind}"] == 1.0


# -- invalid moves ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "reply,fragment",
    [
        ("I conjecture that 2 + 2 = 4", 'no line starts with "CONJECTURE:"'),
        ("CONJECTURE: factor x^2 - 1\nCONJECTURE: factor x^2 - 4", '2 lines start with "CONJECTURE:"'),
        (SUM13 + "\nWITNESS: x=3, y=2\nWITNESS: x=3, y=2", "at most one"),
        ("CONJECTURE: x^2 + y^2 = 13", "not well-formed"),
        ("CONJECTURE: exists x in Z: x\u00b2 = 4", "SUPERSCRIPT TWO"),
        ("CONJECTURE: exists x in Z: ().__class__ = 1", "unexpected character '.'"),
        ("CONJECTURE: factor x^2 + 1", "false (the polynomial is irreducible)"),
        ("CONJECTURE: identity (x + 1)^2 = x^2 + 1", "false (the two sides differ"),
        (SUM13 + "\nWITNESS: x=2, y=3", "the witness does not prove the conjecture: with x=2, y=3"),
        (SUM13 + "\nWITNESS: x=3", "the witness is not well-formed: the proof gives no value for y"),
    ],
)
def test_bad_conjectures_are_invalid_moves_with_a_specific_error(reply, fragment):
    with pytest.raises(InvalidMove, match=None) as err:
        GAME._parse_conjecture(reply)
    assert fragment in str(err.value)


def test_statements_the_chosen_verifier_cannot_check_are_invalid_moves():
    lean_game = ConjectureProverGame(verifier=formal.LeanVerifier(executable="no-such-lean"))
    with pytest.raises(InvalidMove, match="the lean verifier cannot check this statement"):
        lean_game._parse_conjecture("CONJECTURE: factor x^2 - 1")
    assert lean_game._parse_conjecture(SUM13).statement.startswith("exists")


@pytest.mark.parametrize(
    "reply,fragment",
    [
        ("x=3, y=2", 'no line starts with "PROOF:"'),
        ("PROOF: x=3, y=2\nPROOF: x=2, y=3", '2 lines start with "PROOF:"'),
        ("PROOF: x=3", "no value for y"),
        ("PROOF: x=3, y=2, z=1", "z is not a quantified variable"),
        ("PROOF: x=\uff13, y=2", "FULLWIDTH DIGIT THREE"),
        ("PROOF: x=__import__('os'), y=1", "unexpected character '_'"),
    ],
)
def test_malformed_proofs_are_invalid_moves_and_spend_no_attempt(reply, fragment):
    match = play(SUM13)
    feedback = match.submit("prover", reply)
    assert not feedback.accepted and fragment in feedback.error
    assert "PROOF: x=<integer>, y=<integer>" in feedback.error
    assert match.view("prover")["attempt"] == 1


def test_repeated_invalid_moves_abort_with_the_penalty_for_the_offender():
    match = Match(GAME, INSTANCE)
    for _ in range(GAME.max_retries + 1):
        match.submit("conjecturer", "no idea")
    assert match.aborted and match.outcome.rewards == {"conjecturer": -1.0, "prover": 0.0}


# -- levels and instances ----------------------------------------------------------------------
@pytest.mark.parametrize("level", ["easy", "medium", "hard"])
def test_every_template_yields_a_true_statement_with_a_verifying_proof(level):
    rng = np.random.default_rng(7)
    for name in TEMPLATES:
        for _ in range(10):
            statement, proof = make_problem(name, rng, level)
            st = formal.parse_statement(statement)
            verdict = GAME.verifier.verify(st, GAME.verifier.parse_proof(st, proof))
            assert verdict.ok, (name, statement, proof, verdict.message)


def test_harder_levels_have_larger_numbers_degrees_and_more_variables():
    means = {}
    for level in GAME.levels:
        sizes = [formal.measures(formal.parse_statement(s.statement)) for seed in range(40) for s in draw_instance(GAME, seed, level=level).seeds]
        means[level] = [np.mean([getattr(m, a) for m in sizes]) for a in ("max_digits", "degree", "num_vars")]
    for a in range(3):
        assert means["easy"][a] < means["hard"][a]
    for a in range(2):
        assert means["easy"][a] < means["medium"][a] < means["hard"][a]


def test_instances_are_reproducible_distinct_and_hold_distinct_seed_templates():
    a = generate_instance_set("dialogym/ConjectureProver-v0", 60, seed=3, level="medium")
    b = generate_instance_set("dialogym/ConjectureProver-v0", 60, seed=3, level="medium")
    assert a.instances == b.instances
    loaded = a.load(GAME)
    assert len({i.id for i in loaded}) == 60
    assert all(len({s.template for s in i.seeds}) == len(i.seeds) == 3 for i in loaded)


# -- scripted players --------------------------------------------------------------------------
def self_play(level, seeds):
    rng = np.random.default_rng(0)
    outcomes = []
    for seed in seeds:
        match = Match(GAME, draw_instance(GAME, seed, level=level))
        match.submit("conjecturer", scripted_conjecturer(match.view("conjecturer"), rng))
        while not match.done:
            assert match.submit("prover", scripted_prover(match.view("prover"), rng)).accepted
        outcomes.append(match.outcome)
    return outcomes


def test_scripted_prover_proves_at_least_90_percent_of_easy_conjectures():
    outcomes = self_play("easy", range(60))
    assert np.mean([o.metrics["proved"] for o in outcomes]) >= 0.9


def test_scripted_conjecturer_proposes_new_valid_statements_with_witnesses():
    outcomes = self_play("medium", range(30))
    assert all(o.metrics["copied_seed"] == 0.0 and o.metrics["witness_given"] == 1.0 for o in outcomes)
    assert all(o.metrics["conjecture_valid"] == 1.0 for o in outcomes)


def test_hard_conjectures_are_proved_less_often_or_later_than_easy_ones():
    easy, hard = self_play("easy", range(30)), self_play("hard", range(30))
    assert np.mean([o.metrics["success_rate"] for o in hard]) < np.mean([o.metrics["success_rate"] for o in easy])
    assert np.mean([o.metrics["difficulty"] for o in hard]) > np.mean([o.metrics["difficulty"] for o in easy])


@pytest.mark.parametrize(
    "statement,attempt",
    [
        ("exists x in Z: x^3 - 6*x^2 + 11*x - 6 = 0 and x > 2", 1),
        ("exists a, b in Z: (3*x + a)^2 + b = 9*x^2 - 12*x + 9", 1),
        ("exists q in Z[x]: 2*x^3 - 3*x^2 + 4*x - 6 = (2*x - 3)*q", 1),
        ("factor 6*x^2 - x - 2", 1),
        ("factor x^4 - 1", 1),
        ("factor x^4 + 4", 2),
        ("disprove forall x, y in Z: 4*x + 6*y != 2", 1),
        ("exists x, y in Z: x^2 + y^2 = 250000 and x > y > 200", 2),
    ],
)
def test_scripted_prover_solves_by_search_root_finding_division_and_factoring(statement, attempt):
    """``attempt`` is the first attempt that succeeds: the search widens at each attempt."""
    history = []
    for n in range(1, attempt + 1):
        reply = scripted_prover({"statement": statement, "attempt": n, "history": history}, np.random.default_rng(0))
        st = formal.parse_statement(statement)
        verdict = GAME.verifier.verify(st, GAME.verifier.parse_proof(st, reply.removeprefix("PROOF: ")))
        history.append({"proof": reply.removeprefix("PROOF: "), "message": verdict.message})
        assert verdict.ok == (n == attempt), (n, reply, verdict.message)


def test_scripted_prover_falls_back_to_the_one_step_chain_when_the_expansion_does_not_fit():
    # The expanded middle of this true identity is about 2,500 characters, past the 600 a proof may have.
    statement = "identity (a+b+c+d+1)^4*(a-b+c-d+1)^2 = (a-b+c-d+1)^2*(a+b+c+d+1)^4"
    match = play(f"CONJECTURE: {statement}")
    rng = np.random.default_rng(0)
    assert match.submit("prover", scripted_prover(match.view("prover"), rng)).accepted, match.turns[-1].error
    assert match.done and match.outcome.metrics["proved"] == 1.0
    assert match.outcome.rewards["prover"] == 1.0


def test_scripted_players_are_registered_as_the_default_pair():
    players = spec("dialogym/ConjectureProver-v0").players["default"]
    assert players == {"conjecturer": scripted_conjecturer, "prover": scripted_prover}


# -- hostile replies and the Lean verifier's reach ------------------------------------------
def test_a_control_line_ending_in_a_long_run_of_spaces_is_read_in_linear_time():
    import time

    # The parser itself: a Match refuses any reply over MAX_ACTION_CHARS before parsing it.
    match = Match(GAME, INSTANCE, game_id="dialogym/ConjectureProver-v0")
    started = time.perf_counter()
    GAME.parse_move(match.state, "conjecturer", "CONJECTURE: exists x in Z: x = 2" + " " * 40_000 + "\nWITNESS: x=2" + " " * 40_000)
    assert match.submit("conjecturer", "CONJECTURE: exists x in Z: x = 2\nWITNESS: x=2").accepted
    with pytest.raises(InvalidMove):
        GAME.parse_move(match.state, "prover", "PROOF: " + " " * 40_000 + "x")
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    "statement",
    [
        "exists a in Z: a*x != x",  # true as polynomials (a = 0), false at x = 0 in Lean's reading
        "exists a in Z: not a*x = x",
        "disprove forall a in Z: a*x != x*a",
    ],
)
def test_the_lean_verifier_refuses_negations_over_indeterminates_where_the_readings_differ(statement):
    from dialogym.envs.games.conjecture.formal import LeanVerifier, parse_statement

    assert LeanVerifier().supports(parse_statement(statement))


@pytest.mark.parametrize(
    "statement",
    ["exists a in Z: a*x = x or a > 5", "exists a in Z: a*x = x and a != 0", "exists x, y in Z: x != y and x + y = 3"],
)
def test_the_lean_verifier_keeps_statements_whose_readings_agree(statement):
    from dialogym.envs.games.conjecture.formal import LeanVerifier, parse_statement

    assert LeanVerifier().supports(parse_statement(statement)) is None


# -- move grammars -------------------------------------------------------------------------
def _prover_state(statement):
    match = play(f"CONJECTURE: {statement}")
    return match.state, match.move_grammar("prover")


def _walk(grammar, rng):
    """A string drawn byte by byte, uniformly among what the grammar allows (no model)."""
    from dialogym.agents.guidance import grammar_tokenizer, matcher
    from dialogym.agents.models import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    found = matcher(grammar_tokenizer(tokenizer, len(tokenizer), [tokenizer.eos_token_id]), grammar)
    out: list[int] = []
    while True:
        bits = np.unpackbits(np.frombuffer(found.compute_bitmask(), dtype=np.uint8), bitorder="little")[: len(tokenizer)]
        assert not found.is_error(), found.get_error()
        token = int(rng.choice(np.flatnonzero(bits)))
        if token == tokenizer.eos_token_id:
            return tokenizer.decode(out)
        assert found.consume_token(token)
        out.append(token)


@pytest.mark.parametrize(
    "move",
    [
        SUM13 + "\nWITNESS: x=3, y=2",
        "CONJECTURE: exists x, y, z in Z: 2*x + 3*y - z = 12 and x - y = 1 and z = -1",
        "CONJECTURE: exists x in N: x^4 - 480*x^3 + 86400*x^2 - 6912000*x + 207360000 = 0 and x > 119\nWITNESS: x=120",
        "CONJECTURE: exists a, b in Z: (2*x + a)^2 + b = 4*x^2 + 12*x + 13\nWITNESS: a=3, b=4",
        "CONJECTURE: disprove forall x, y in Z: 2*x - 3*y != 7\nWITNESS: x=2, y=-1",
        "CONJECTURE: exists q in Z[x]: x^3 + x^2 - 4*x - 4 = (x^2 + -3*x + -5)*q or q = x + 1",
        "CONJECTURE: factor x^3 - x\nWITNESS: x*(x - 1)*(x + 1)",
        "CONJECTURE: identity (x - 3)*(y + 4) = x*y + 4*x - 3*y - 12\nWITNESS: (x - 3)*(y + 4) = x*y + 4*x - 3*y - 12",
    ],
)
def test_the_conjecture_grammar_accepts_valid_conjectures_of_every_kind(move):
    assert accepts(GAME.move_grammar(GAME.initial_state(INSTANCE), "conjecturer"), move)
    GAME._parse_conjecture(move)  # and they are valid moves


@pytest.mark.parametrize(
    "move",
    [
        "CONJECTURE: x^2 + y^2 = 13",  # no quantifier
        "CONJECTURE: exists x, y in Z: x > 0",  # y is quantified but never used
        "CONJECTURE: exists x in Z: 2x = 4",  # a missing operator
        "CONJECTURE: exists x in Z: x^2  = 4",  # not single-spaced
        "CONJECTURE: exists x in Z: x = 04",  # a leading zero
        "CONJECTURE: exists x in Z: x^6 = 64",  # a power beyond the statement degree bound
        "CONJECTURE: exists x in Z: (x^2 + 1)^2 = 4",  # only linear brackets take powers
        "CONJECTURE: exists x in Z: x\u00b2 = 4",  # not ASCII
        "CONJECTURE: exists a in Z: x > a",  # ordering an indeterminate
        "CONJECTURE: exists q in Z[x]: q > 1",  # ordering polynomials
        "CONJECTURE: factor x + 1",  # degree 1
        "CONJECTURE: exists x in Z: " + " + ".join(["x"] * 60) + " = 0",  # over the length cap
        SUM13 + "\nWITNESS: y=2, x=3",  # values out of quantifier order
        "CONJECTURE: exists x in N: x = 1\nWITNESS: x=-1",  # a negative natural number
    ],
)
def test_the_conjecture_grammar_refuses_malformed_and_unbounded_conjectures(move):
    assert not accepts(GAME.move_grammar(GAME.initial_state(INSTANCE), "conjecturer"), move)


@pytest.mark.parametrize(
    "statement,good,bad",
    [
        ("exists x, y in Z: x^2 + y^2 = 13", ["x=3, y=2", "x=-3, y=0"], ["y=2, x=3", "x=3", "x=3, y=x", "x = 3, y = 2"]),
        ("exists x1 in N: x1^2 = 4", ["x1=2"], ["x1=-2", "x=2"]),
        ("exists q in Z[x]: x^2 - 4 = (x - 2)*q", ["q = x + 2", "q = (x + 1)^2 - x^2 - x + 1"], ["q = y + 2", "q=x + 2"]),
        ("factor x^3 - x", ["x*(x - 1)*(x + 1)", "-1*x*(1 - x)*(x + 1)", "x^3 - x"], ["(y - 1)*x", "x*(x-1)"]),
        (
            "identity (x + 2)^2 = x^2 + 4*x + 4",
            ["(x + 2)^2 = x^2 + 4*x + 4", "(x + 2)^2 = (x + 2)*(x + 2) = x^2 + 4*x + 4"],
            ["x^2 + 4*x + 4 = (x + 2)^2", "(x + 2)^2 = (x + 2)*(x + 2)", "(x + 2)^2 = x^2 + 4*x + 4 = x^2 + 4*x + 4 = " * 3],
        ),
    ],
)
def test_the_proof_grammar_is_the_certificate_format_of_the_statement_at_hand(statement, good, bad):
    state, grammar = _prover_state(statement)
    for proof in good:
        assert accepts(grammar, f"PROOF: {proof}"), proof
        GAME.parse_move(state, "prover", f"PROOF: {proof}")
    for proof in bad:
        assert not accepts(grammar, f"PROOF: {proof}"), proof


def test_only_the_seat_to_move_has_a_grammar_and_lean_gets_its_own():
    state = GAME.initial_state(INSTANCE)
    assert GAME.move_grammar(state, "prover") is None and GAME.move_grammar(state, "conjecturer")
    lean = ConjectureProverGame(verifier=formal.LeanVerifier(executable="no-such-lean"))
    grammar = lean.move_grammar(state, "conjecturer")
    assert accepts(grammar, SUM13 + "\nWITNESS: exact ⟨3, 2, by decide⟩")
    assert not accepts(grammar, "CONJECTURE: factor x^3 - x")  # Lean cannot state it
    assert not accepts(grammar, SUM13 + "\nWITNESS: sorry")


def test_sampled_conjectures_and_proofs_parse_but_for_the_rules_no_grammar_can_check():
    """What a guided conjecturer can still get refused for: a false factor or identity
    statement, or a witness that does not verify. The sound grammar (exists and disprove
    without witness) and a guided proof always parse."""
    from dialogym.envs.games.conjecture.rules import _conjecture_grammar

    rng = np.random.default_rng(0)
    conjecture = GAME.move_grammar(GAME.initial_state(INSTANCE), "conjecturer")
    semantic = ("the conjecture is false", "the witness does not prove the conjecture")
    for _ in range(40):
        move = _walk(conjecture, rng)
        try:
            GAME._parse_conjecture(move)
        except InvalidMove as err:
            assert str(err).startswith(semantic), (move, str(err))
    sound = _conjecture_grammar("certificate", sound=True)
    for _ in range(40):
        GAME._parse_conjecture(_walk(sound, rng))
    for statement in ("exists x, y in Z: x^2 + y^2 = 13", "exists q in Z[x]: x^2 - 4 = (x - 2)*q", "factor x^3 - x",
                      "identity (x + 2)^2 = x^2 + 4*x + 4"):
        state, grammar = _prover_state(statement)
        for _ in range(10):
            GAME.parse_move(state, "prover", _walk(grammar, rng))
