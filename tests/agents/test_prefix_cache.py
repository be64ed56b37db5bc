"""Shared-prefix reuse in the transformers backend: the batch's common prompt prefix is
encoded once, and the replies are the ones a plain left-padded batch gives."""

import pytest

from dialogym.agents.base import Request, Sampling
from dialogym.agents.hf import TransformersAgent
from dialogym.agents.models import random_model

RULES = (
    "You are negotiating how to divide 2 books, 1 hat and 3 balls with a partner. "
    "Each turn write a short message; you may add one control line. "
) * 2
ANSWER = 'start: "ANSWER: " /[1-3]/'


@pytest.fixture(scope="module")
def agents():
    model, tokenizer = random_model("tiny", seed=1)  # float32
    return TransformersAgent(model, tokenizer, share_prefix=True), TransformersAgent(model, tokenizer, share_prefix=False)


def batch(rows=5, *, temperature=0.0, guided=False, max_new_tokens=12):
    """Requests with the same rules and turn texts of different lengths; in a guided batch
    every other row carries a grammar."""
    return [
        Request(
            messages=[{"role": "system", "content": RULES}, {"role": "user", "content": f"Turn {i}: " + "so " * (3 * i)}],
            seed=100 + i,
            grammar=ANSWER if guided and i % 2 else None,
            sampling=Sampling(temperature=temperature, max_new_tokens=max_new_tokens, guided=guided),
        )
        for i in range(rows)
    ]


def assert_same_replies(shared, plain):
    assert [r.token_ids for r in shared] == [r.token_ids for r in plain]
    assert [r.text for r in shared] == [r.text for r in plain]
    assert [r.prompt_token_ids for r in shared] == [r.prompt_token_ids for r in plain]
    for a, b in zip(shared, plain, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


def test_greedy_float32_replies_are_token_for_token_those_of_a_left_padded_batch(agents):
    on, off = agents
    requests = batch()
    before = on.reused_prompt_tokens
    shared, plain = on.act(requests), off.act(requests)
    assert on.reused_prompt_tokens > before  # the rules were encoded once for the batch
    assert off.reused_prompt_tokens == 0
    assert_same_replies(shared, plain)


def test_guided_rows_keep_their_grammar_and_their_replies(agents):
    on, off = agents
    shared, plain = on.act(batch(guided=True)), off.act(batch(guided=True))
    assert_same_replies(shared, plain)
    assert all(r.text.startswith("ANSWER: ") and r.guided for r in shared[1::2])


def test_seeded_sampled_replies_do_not_change(agents):
    on, off = agents
    requests = batch(temperature=1.0, guided=True)
    assert_same_replies(on.act(requests), off.act(requests))


def test_a_reply_does_not_depend_on_which_rows_share_its_prefix(agents):
    on, _ = agents
    requests = batch()
    alone = on.act(requests[2:3])[0]
    assert on.act(requests)[2].token_ids == alone.token_ids


def test_identical_prompts_still_prefill_a_token_of_their_own(agents):
    on, off = agents
    requests = [batch()[3]] * 3
    assert_same_replies(on.act(requests), off.act(requests))


def test_prefixes_too_short_to_pay_are_not_shared():
    model, tokenizer = random_model("tiny", seed=1)
    agent = TransformersAgent(model, tokenizer)
    prompts = [[1] * (agent.MIN_SHARED_PREFIX - 1) + [2, 3], [1] * (agent.MIN_SHARED_PREFIX - 1) + [4, 5]]
    assert agent.shared_prefix(prompts) == []
    assert agent.shared_prefix([p + [9] for p in ([1] * 40, [1] * 40)]) == [1] * 40
    assert TransformersAgent(model, tokenizer, share_prefix=False).shared_prefix([[1] * 40] * 2) == []
