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


# -- keys and values kept across calls (the store) ----------------------------------------


def fresh(**options):
    model, tokenizer = random_model("tiny", seed=1)
    return TransformersAgent(model, tokenizer, **options)


def next_turn(requests, replies, note="That move was not valid; try again."):
    """The requests of each conversation's next turn: the reply and a new game-master message."""
    return [
        Request(
            messages=[*r.messages, {"role": "assistant", "content": reply.text}, {"role": "user", "content": note}],
            seed=r.seed, sampling=r.sampling,
        )
        for r, reply in zip(requests, replies, strict=True)
    ]


def test_a_seats_later_turns_reuse_its_earlier_turns_and_replies_do_not_change():
    on, off = fresh(), fresh(share_prefix=False)
    turn = batch(rows=4)
    for _ in range(3):
        kept, plain = on.act(turn), off.act(turn)
        assert_same_replies(kept, plain)
        earlier = [len(r.prompt_token_ids) for r in plain]
        turn = next_turn(turn, plain)
    # each row's third prompt ran from where its second prompt ended, at least (the reply's
    # text may encode to other tokens than were generated: reuse stops where they differ)
    on.act(turn)
    rows = on.last_prefill[-len(turn) :]
    assert all(start >= length for (start, _), length in zip(rows, earlier, strict=True))
    assert all(end == len(on.encode(r.messages)) for (_, end), r in zip(rows, turn, strict=True))


def test_one_request_at_a_time_reuses_the_rules_of_the_request_before():
    on, off = fresh(), fresh(share_prefix=False)
    requests = batch(rows=3)
    for request in requests:
        assert_same_replies(on.act([request]), off.act([request]))
    # the second and third requests started from the first one's rules
    assert on.reused_prompt_tokens >= 2 * 40
    start, end = on.last_prefill[-1]
    assert start >= 40 and end == len(on.encode(requests[-1].messages))


def test_changed_weights_empty_the_store():
    import torch

    on = fresh()
    requests = batch(rows=3)
    on.act(requests)
    assert len(on.store)
    with torch.no_grad():
        for p in on.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    off = TransformersAgent(on.model, on.tokenizer, share_prefix=False)  # same, changed weights
    assert_same_replies(on.act(requests), off.act(requests))
    assert on.last_prefill[0][0] == 0  # nothing came from before the change


def test_a_fused_optimizer_step_empties_the_store():
    import torch

    on = fresh()
    requests = batch(rows=3)
    on.act(requests)
    optimizer = torch.optim.AdamW(on.model.parameters(), lr=1e-2, fused=True)  # leaves _version alone
    ids = torch.tensor([on.encode(requests[0].messages)])
    on.model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    off = TransformersAgent(on.model, on.tokenizer, share_prefix=False)
    assert_same_replies(on.act(requests), off.act(requests))
    assert on.last_prefill[0][0] == 0


def test_switching_lora_adapters_is_a_change_of_weights(tmp_path):
    peft = pytest.importorskip("peft")
    import torch

    model, tokenizer = random_model("tiny", seed=1)
    lora = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    agent = TransformersAgent(lora, tokenizer)
    requests = batch(rows=2)
    with_adapter = agent.act(requests)
    with lora.disable_adapter():
        without = agent.act(requests)
        assert agent.last_prefill[0][0] == 0
    plain = TransformersAgent(random_model("tiny", seed=1)[0], tokenizer, share_prefix=False).act(requests)
    assert_same_replies(without, plain)
    again = agent.act(requests)  # the adapter's own entries serve it again after the swap
    assert again[0].token_ids == with_adapter[0].token_ids and agent.last_prefill[0][0] > 0
    with lora.disable_adapter():
        assert_same_replies(agent.act(requests), plain)
        assert agent.last_prefill[0][0] > 0
    assert torch.is_grad_enabled()


def test_the_store_keeps_within_its_budget_and_drops_covered_entries():
    agent = fresh(kv_store_mb=1)
    agent.act(batch(rows=6))
    per_token = sum(k.numel() * k.element_size() * 2 for k, _ in next(iter(agent.store.entries.values())).layers)
    per_token //= len(next(iter(agent.store.entries.values())).tokens)
    assert 0 < agent.store.nbytes <= 2**20
    assert len(agent.store) < 6 or 6 * 200 * per_token <= 2**20  # evicted, or all fit
    from dialogym.agents.hf.kvstore import KVStore

    store = KVStore(2**30)
    store.validate("weights-a")
    layer = [(torch_zeros(3), torch_zeros(3))]
    store.add([1, 2, 3], layer)
    store.add([1, 2, 3, 4, 5], [(torch_zeros(5), torch_zeros(5))])
    assert [e.tokens.tolist() for e in store.entries.values()] == [[1, 2, 3, 4, 5]]
    entry, length = store.best([1, 2, 3, 9], limit=10)
    assert length == 3 and entry.tokens.tolist() == [1, 2, 3, 4, 5]
    assert store.best([1, 2, 3, 9], limit=2)[1] == 2 and store.best([7], limit=5) == (None, 0)
    kept = store.nbytes
    store.validate("weights-b")  # other weights: none of a's entries is served
    assert not len(store) and store.best([1, 2, 3, 9], limit=10) == (None, 0) and store.nbytes == kept
    store.validate("weights-a")  # back: a's entries are
    assert store.best([1, 2, 3, 9], limit=10)[1] == 3
    for key in "cdef":  # past four keys, the least recently served shelf goes (an empty one is not kept)
        store.validate(key)
        store.add([ord(key)], [(torch_zeros(1), torch_zeros(1))])
    one = torch_zeros(1).numel() * 4 * 2
    assert store.nbytes == 4 * one and list(store.shelves) == ["c", "d", "e", "f"]
    store.validate("weights-a")
    assert not len(store) and list(store.shelves) == ["d", "e", "f", "weights-a"]
    store.add([1, 2], [(torch_zeros(2), torch_zeros(2))])
    store.clear()
    assert not len(store) and store.nbytes == 0


def test_a_full_store_makes_room_from_an_idle_shelf_of_other_weights():
    from dialogym.agents.hf.kvstore import KVStore

    size = torch_zeros(4).numel() * 4 * 2  # bytes of one 4-token entry
    store = KVStore(2 * size, idle_calls=2)
    store.validate("old-weights")
    store.add([1, 0, 0, 0], [(torch_zeros(4), torch_zeros(4))])
    store.add([2, 0, 0, 0], [(torch_zeros(4), torch_zeros(4))])
    store.validate("new-weights")
    assert store.add([3, 0, 0, 0], [(torch_zeros(4), torch_zeros(4))]) is None  # the old ones are still in use
    store.tick(), store.tick(), store.tick()
    assert store.add([3, 0, 0, 0], [(torch_zeros(4), torch_zeros(4))]) is not None and store.nbytes == 2 * size
    assert [e.tokens[0] for e in store.shelves["old-weights"].values()] == [2]  # the least recently used went


def test_a_full_store_keeps_serving_what_it_holds_and_lets_idle_entries_go():
    from dialogym.agents.hf.kvstore import KVStore

    size = torch_zeros(4).numel() * 4 * 2  # bytes of one 4-token entry
    store = KVStore(3 * size, idle_calls=2)
    for cycle in range(3):  # five live chats served in turn, room for three
        store.tick()
        hits = [store.best([c, 0, 0, 9], limit=3)[1] for c in range(5)]
        for c in range(5):
            store.add([c, 0, 0, 0], [(torch_zeros(4), torch_zeros(4))])
        assert hits == ([0] * 5 if cycle == 0 else [3, 3, 3, 0, 0])  # not a miss every time
    for _ in range(3):  # chats 0-2 end; after two idle calls their entries make room
        store.tick()
    store.add([7, 0, 0, 0], [(torch_zeros(4), torch_zeros(4))])
    assert store.best([7, 0, 0, 1], limit=3)[1] == 3 and len(store) == 3


def torch_zeros(length):
    import torch

    return torch.zeros(1, 2, length, 4)


def test_multi_turn_episodes_are_the_same_with_and_without_reuse():
    from dialogym.agents.rollout import EpisodeSpec, RolloutEngine

    specs = [EpisodeSpec(game="dialogym/Negotiation-v0", seed=i, seats={"alice": "m", "bob": "m"}, split="test") for i in range(3)]
    sampling = Sampling(temperature=0.0, max_new_tokens=8)
    on, off = fresh(), fresh(share_prefix=False)
    kept = RolloutEngine({"m": on}, sampling=sampling).run(specs)
    plain = RolloutEngine({"m": off}, sampling=sampling).run(specs)
    assert [[t.token_ids for t in e.turns] for e in kept] == [[t.token_ids for t in e.turns] for e in plain]
    assert sum(len(e.turns) for e in kept) > 6 and on.reused_prompt_tokens > 0
