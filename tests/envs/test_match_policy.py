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


def test_the_prompt_is_the_last_message_of_the_seat_to_act_and_empty_for_the_others():
    match = new_match()
    assert match.prompt("listener") == "" and match.prompt("speaker") == match.messages("speaker")[-1]["content"]
    match.submit("speaker", "hello")  # a re-prompt: the error is the message to answer
    assert match.prompt("speaker").startswith("Invalid move:") and match.prompt("listener") == ""
    match.submit("speaker", "CLUE: the shape")
    assert match.prompt("speaker") == "" and "the shape" in match.prompt("listener")
    assert match.prompt("listener") == match.messages("listener")[-1]["content"]


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


# -- a game whose own parser is buggy or whose prompt is huge ---------------------------------
class Careless(ReferenceGame):
    """The referential game with a parser that lets plain errors slip and a long prompt."""

    def parse_move(self, state, seat, text):
        if text == "overflow":
            raise OverflowError("int too large to convert to float")
        if text == "value":
            return int("9" * 5000)  # ValueError: exceeds the limit for integer string conversion
        return super().parse_move(state, seat, text)

    def prompt(self, state, seat):
        return "RULES: describe the target.\n" + "filler " * 5000 + "\nNow write your clue. Start with CLUE:"


def careless_match(**kw):
    game = Careless()
    return Match(game, draw_instance(game, 11), game_id="careless", seed=11, **kw)


def test_a_plain_value_error_from_a_parser_is_an_invalid_move_not_a_crash():
    match = careless_match()
    feedback = match.submit("speaker", "value")
    assert not feedback.accepted and not feedback.aborted
    assert "could not be read (ValueError" in feedback.error and "format the rules give" in feedback.error
    assert match.to_act() == ["speaker"] and "Invalid move" in match.messages("speaker")[-1]["content"]


def test_an_overflow_error_from_a_parser_counts_against_the_retries_and_can_abort():
    match = careless_match(max_retries=1)
    assert "OverflowError" in match.submit("speaker", "overflow").error
    assert match.submit("speaker", "overflow").aborted
    assert match.outcome.rewards["speaker"] == GAME.abort_penalty


def test_a_long_prompt_keeps_its_head_and_tail_and_loses_its_middle():
    from dialogym.envs.core import MAX_PROMPT_CHARS
    from dialogym.envs.spaces import MAX_OBSERVATION_CHARS, to_observation

    shown = careless_match().messages("speaker")[-1]["content"]
    assert len(shown) <= MAX_PROMPT_CHARS <= MAX_OBSERVATION_CHARS
    assert shown.startswith("RULES: describe the target.") and shown.endswith("Start with CLUE:")
    assert "characters cut ..." in shown
    assert to_observation(shown)["text"] == shown  # so the adapters' observation keeps the rules too


def test_every_outcome_counts_the_replies_and_the_invalid_ones():
    match = new_match()
    match.submit("speaker", "bad")
    match.submit("speaker", "CLUE: the shape")
    match.submit("listener", "ANSWER: 0")
    match.submit("listener", "ANSWER: 1")
    assert match.outcome.metrics["replies"] == 4.0 and match.outcome.metrics["invalid_replies"] == 2.0
    aborted = new_match(max_retries=0)
    aborted.submit("speaker", "nope")
    assert aborted.outcome.metrics == {"replies": 1.0, "invalid_replies": 1.0}


def test_a_reply_over_max_action_chars_is_refused_by_the_policy_and_never_stored_whole():
    from dialogym.envs.core import MAX_ACTION_CHARS
    from dialogym.envs.spaces import MAX_ACTION_CHARS as ACTION_SPACE_CHARS

    assert ACTION_SPACE_CHARS == MAX_ACTION_CHARS == 8192
    match = new_match()
    reply = "CLUE: the red one\n" + "x" * 50_000  # the clue parser reads the first line alone: valid if parsed
    feedback = match.submit("speaker", reply)
    assert not feedback.accepted and not feedback.aborted and match.to_act() == ["speaker"]
    assert f"the reply has {len(reply)} characters, over the 8192 a move may have" in feedback.error
    assert len(match.turns[-1].raw) <= MAX_ACTION_CHARS and match.turns[-1].move is None
    assert all(len(m["content"]) <= MAX_ACTION_CHARS for m in match.messages("speaker") if m["role"] == "assistant")
    assert match.submit("speaker", "CLUE: the red one\n" + "x" * (MAX_ACTION_CHARS - 18)).accepted  # 8192 exactly


def test_an_over_long_reply_past_the_retries_aborts_with_the_reason():
    match = new_match(max_retries=0)
    feedback = match.submit("speaker", "CLUE: red " * 1000)
    assert feedback.aborted and "over the 8192 a move may have" in match.abort_reason
    assert len(match.episode().turns[0].raw) <= 8192
