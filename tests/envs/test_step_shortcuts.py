"""What the step's shortcuts must keep: a Match builds its Turn records when they are read,
and an adapter's factory plays every episode on one game object; neither may change what a
seat is shown, what it is rewarded or what the episode records."""

import dialogym
from dialogym.envs import Turn, new_match
from dialogym.envs.core import MAX_ACTION_CHARS
from dialogym.envs.spaces import MatchFactory, to_observation

NEGOTIATION = "dialogym/Negotiation-v0"
#: chatter, a proposal, an invalid proposal (re-prompted), an over-long reply, an accept
REPLIES = (
    "Hello! What matters most to you?",
    "PROPOSE: book=1 hat=1 ball=1",
    "PROPOSE: book=99 hat=0 ball=0",
    "x" * (MAX_ACTION_CHARS + 1),
    "Fine.\nACCEPT",
)


def play(match, replies=REPLIES, read_turns_each_step=False):
    for reply in replies:
        if match.done:
            break
        seat = match.to_act()[0]
        match.prompt(seat)
        match.submit(seat, reply, token_ids=[1, 2, 3], logprobs=[-0.5], latency_s=0.25)
        if read_turns_each_step:
            match.turns  # noqa: B018 -- reading builds the records so far
    return match


def test_turns_read_late_equal_turns_read_after_every_reply():
    late = play(new_match(NEGOTIATION, 5))
    early = play(new_match(NEGOTIATION, 5), read_turns_each_step=True)
    assert [t.model_dump() for t in late.turns] == [t.model_dump() for t in early.turns]
    assert len(late.turns) == len(REPLIES) and sum(t.error is not None for t in late.turns) == 2


def test_the_turn_records_are_built_once_and_validated():
    match = play(new_match(NEGOTIATION, 5), REPLIES[:2])
    assert match.reply_count == 2 and not match._turns  # counted without building a record
    first = match.turns
    play(match, REPLIES[2:])
    assert match.turns[:2] == first[:2] and all(a is b for a, b in zip(first, match.turns, strict=False))
    assert all(isinstance(t, Turn) and Turn.model_validate(t.model_dump()) == t for t in match.turns)
    assert match.episode().turns == match.turns


def test_a_turn_keeps_the_token_ids_given_at_submit_though_the_caller_reuses_its_list():
    match = new_match(NEGOTIATION, 5)
    ids = [7, 8]
    match.prompt("alice")
    match.submit("alice", "Hello", token_ids=ids)
    ids.append(9)
    assert match.turns[0].token_ids == [7, 8]


def test_the_reply_counts_of_the_outcome_count_every_reply_and_every_rejected_one():
    match = play(new_match(NEGOTIATION, 5))
    assert match.done and not match.aborted
    assert match.outcome.metrics["replies"] == match.reply_count == len(match.turns) == len(REPLIES)
    assert match.outcome.metrics["invalid_replies"] == sum(t.error is not None for t in match.turns) == 2


def test_an_env_reset_many_times_shows_and_records_what_fresh_matches_do():
    env = dialogym.make(NEGOTIATION)
    for seed in range(4):
        env.reset(seed=seed)
        fresh = new_match(NEGOTIATION, seed)
        replies = iter(REPLIES)
        for agent in env.agent_iter():
            observation, _, done, _, info = env.last()
            if done:
                env.step(None)
                continue
            assert observation == to_observation(fresh.prompt(agent))
            assert info["messages"] == fresh.messages(agent)
            reply = next(replies)
            env.step(reply)
            fresh.submit(agent, reply)
        strip = {"started_at", "duration_s"}
        assert env.match.episode().model_dump(exclude=strip) == fresh.episode().model_dump(exclude=strip)


def test_a_factory_shares_its_game_but_never_an_episode():
    factory = MatchFactory(NEGOTIATION)
    a, b = factory.new(3), factory.new(3)
    assert a.game is b.game is factory.game and a.state is not b.state
    play(a)
    assert not b.turns and b.to_act() == ["alice"] and b.state.turn == 0
