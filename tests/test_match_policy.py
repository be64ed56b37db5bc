"""The shared invalid-move policy: parse error -> re-prompt -> abort with a penalty."""

from dialogym.envs import Match, draw_instance
from dialogym.envs.games.reference import ReferenceGame

GAME = ReferenceGame()


def new_match(**kw):
    return Match(GAME, draw_instance(GAME, 11), game_id="dialogym/Reference-v0", seed=11, **kw)


def test_invalid_move_reprompts_the_same_seat_with_the_error():
    match = new_match()
    feedback = match.submit("speaker", "hello")
    assert not feedback.accepted and not feedback.aborted
    assert match.to_act() == ["speaker"]
    last = match.messages("speaker")[-1]
    assert last["role"] == "user" and 'start with "CLUE:"' in last["content"]
    assert "2 attempts left" in last["content"]
    assert match.turns[-1].error and match.turns[-1].move is None


def test_valid_move_after_reprompt_continues_and_resets_the_count():
    match = new_match()
    match.submit("speaker", "hello")
    assert match.submit("speaker", "CLUE: the shape").accepted
    assert match.to_act() == ["listener"]
    assert match.retries_left("speaker") == GAME.max_retries


def test_exhausting_retries_aborts_with_the_penalty_and_a_reason():
    match = new_match(max_retries=1)
    match.submit("speaker", "CLUE: fine")
    assert not match.submit("listener", "no idea").aborted
    feedback = match.submit("listener", "still no idea")
    assert feedback.aborted and match.done and match.aborted
    assert match.outcome.rewards == {"speaker": 0.0, "listener": GAME.abort_penalty}
    episode = match.episode({"speaker": "a", "listener": "b"})
    assert episode.status == "aborted" and episode.aborted_by == "listener"
    assert "listener: invalid move after 1 re-prompts" in episode.abort_reason
    assert [t.error is not None for t in episode.turns] == [False, True, True]


def test_zero_retries_aborts_on_the_first_bad_move():
    match = new_match(max_retries=0)
    assert match.submit("speaker", "nope").aborted


def test_conversation_rebuilt_from_the_episode_equals_the_live_chat():
    match = new_match()
    match.submit("speaker", "bad")
    match.submit("speaker", "CLUE: the shape")
    match.submit("listener", "ANSWER: 1")
    episode = match.episode()
    for seat in GAME.roles:
        assert episode.conversation(seat) == match.chats[seat]


def test_moving_out_of_turn_is_an_error():
    match = new_match()
    try:
        match.submit("listener", "ANSWER: 1")
    except RuntimeError as err:
        assert "not 'listener''s turn" in str(err)
    else:
        raise AssertionError("out-of-turn move accepted")
