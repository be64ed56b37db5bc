"""The rollout engine: batching, routing under interleaving, determinism, writing."""

import threading

import pytest

from dialogym.agents.base import Reply, Sampling
from dialogym.agents.hf import TransformersAgent
from dialogym.agents.models import tiny_model
from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
from dialogym.agents.scripted import ScriptedAgent
from dialogym.envs import Instance, read_episodes


class Recorder:
    """Answers each request with text that names the episode seed and seat it was for."""

    name = "recorder"

    def __init__(self, wrapped=None):
        self.batches, self.wrapped = [], wrapped

    def act(self, requests):
        self.batches.append([(r.game, r.seat, r.seed) for r in requests])
        if self.wrapped is not None:
            return self.wrapped.act(requests)
        return [Reply(text=f"{r.seat} of {r.meta}") for r in requests]


def reference_specs(n, seats, **kw):
    return [EpisodeSpec(game="dialogym/Reference-v0", seed=i, seats=seats, **kw) for i in range(n)]


def test_one_batched_call_per_agent_per_tick():
    speaker, listener = Recorder(ScriptedAgent()), Recorder(ScriptedAgent())
    engine = RolloutEngine({"s": speaker, "l": listener})
    episodes = engine.run(reference_specs(12, {"speaker": "s", "listener": "l"}))
    assert len(episodes) == 12 and all(e.played for e in episodes)
    assert [len(b) for b in speaker.batches] == [12] and [len(b) for b in listener.batches] == [12]
    assert engine.stats.ticks == 2


def test_replies_reach_the_right_episode_and_seat_under_interleaving():
    """Episodes of different lengths and games interleave; every reply must land where it was asked."""

    class Routed:
        name = "routed"

        def __init__(self):
            self.scripted = ScriptedAgent()

        def act(self, requests):
            # Answer in reverse order internally, then restore order: a backend that
            # reorders work must still return replies in request order.
            replies = list(reversed(self.scripted.act(list(reversed(requests)))))
            return replies

    routed = Routed()
    specs = reference_specs(9, {"speaker": "a", "listener": "a"}, level="hard")
    # a slow episode: bad replies force re-prompts in some episodes only
    for i in (2, 5):
        specs[i] = EpisodeSpec(game="dialogym/Reference-v0", seed=i, seats={"speaker": "bad", "listener": "a"})

    class BadOnce:
        name = "bad"

        def __init__(self):
            self.calls = {}

        def act(self, requests):
            out = []
            for r in requests:
                n = self.calls.get(r.seed, 0)
                self.calls[r.seed] = n + 1
                out.append(Reply(text="nonsense") if len(r.messages) < 3 else ScriptedAgent().act([r])[0])
            return out

    engine = RolloutEngine({"a": routed, "bad": BadOnce()})
    episodes = engine.run(specs)
    for spec, episode in zip(specs, episodes, strict=True):
        assert episode.seed == spec.seed and episode.seats == spec.seats
        assert episode.played and episode.metrics["success"] == 1.0
        clue = next(t.move["text"] for t in episode.turns if t.seat == "speaker" and t.move)
        listener_prompt = episode.conversation("listener")[0]["content"]
        assert clue in listener_prompt  # the listener saw its own episode's clue
    assert sum(t.error is not None for t in episodes[2].turns) == 1


def test_simultaneous_and_multi_round_games_are_played_by_the_engine():
    from tests.envs.test_toy_game import MatchingPennies  # noqa: F401  (registers dialogym/Pennies-v0)

    engine = RolloutEngine({"p": ScriptedAgent()})
    specs = [EpisodeSpec(game="dialogym/Pennies-v0", seed=i, seats={"match": "p", "mismatch": "p"}, level="long") for i in range(6)]
    episodes = engine.run(specs)
    assert all(e.played and e.rewards["match"] == 1.0 for e in episodes)
    rounds = [len(e.turns) // 2 for e in episodes]
    assert rounds == [e.instance["rounds"] for e in episodes]


def test_waiting_episodes_do_not_block_others_and_concurrency_is_bounded():
    engine = RolloutEngine({"s": Recorder(ScriptedAgent())}, max_concurrent=4)
    episodes = engine.run(reference_specs(10, {"speaker": "s", "listener": "s"}))
    assert len(episodes) == 10 and max(len(b) for b in engine.agents["s"].batches) <= 4


def test_different_agents_are_called_concurrently():
    barrier = threading.Barrier(2, timeout=5)

    class Waits:
        def __init__(self, name):
            self.name, self.scripted = name, ScriptedAgent()

        def act(self, requests):
            barrier.wait()  # deadlocks (and times out) unless both agents run at once
            return self.scripted.act(requests)

    specs = [
        EpisodeSpec(game="dialogym/Pennies-v0", seed=0, seats={"match": "x", "mismatch": "y"}, level="short"),
    ]
    from tests.envs.test_toy_game import MatchingPennies  # noqa: F401

    episodes = RolloutEngine({"x": Waits("x"), "y": Waits("y")}).run(specs)
    assert episodes[0].played


def test_same_seeds_same_backend_give_identical_episodes():
    model, tokenizer = tiny_model()
    agent = TransformersAgent(model, tokenizer, name="tiny")
    specs = reference_specs(4, {"speaker": "t", "listener": "t"})
    first = RolloutEngine({"t": agent}).run(specs)
    second = RolloutEngine({"t": agent}).run(specs)
    strip = {"started_at", "duration_s", "turns"}
    assert [e.model_dump(exclude=strip) for e in first] == [e.model_dump(exclude=strip) for e in second]
    assert [[t.token_ids for t in e.turns] for e in first] == [[t.token_ids for t in e.turns] for e in second]
    assert all(t.token_ids and t.logprobs and t.prompt_token_ids for e in first for t in e.turns)


def test_episodes_are_written_as_they_finish(tmp_path):
    from dialogym.envs import EpisodeWriter

    seen = []
    with EpisodeWriter(tmp_path / "e.jsonl") as writer:
        episodes = RolloutEngine({"s": ScriptedAgent()}).run(
            reference_specs(5, {"speaker": "s", "listener": "s"}), writer=writer, on_episode=seen.append
        )
    assert [e.id for e in read_episodes(tmp_path / "e.jsonl")] == [e.id for e in seen]
    assert sorted(e.id for e in seen) == sorted(e.id for e in episodes)


def test_a_failed_write_ends_the_run_with_the_writers_error():
    class FullDisk:
        def write_many(self, episodes):
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left on device"):
        RolloutEngine({"s": ScriptedAgent()}).run(reference_specs(3, {"speaker": "s", "listener": "s"}), writer=FullDisk())


def test_every_finished_episode_is_written_before_an_agent_error_leaves_run(tmp_path):
    from dialogym.envs import EpisodeWriter

    four_ended = threading.Event()

    class BreaksOnListeners:
        name = "breaks"

        def act(self, requests):
            if requests[0].seat == "listener":
                four_ended.wait(10)  # fails once the other agent's four episodes are over
                raise RuntimeError("backend down")
            return ScriptedAgent().act(requests)

    ended = []

    def count(episode):
        ended.append(episode)
        if len(ended) == 4:
            four_ended.set()

    seats = [{"speaker": "s", "listener": "s"}] * 4 + [{"speaker": "b", "listener": "b"}]
    specs = [EpisodeSpec(game="dialogym/Reference-v0", seed=i, seats=seat) for i, seat in enumerate(seats)]
    engine = RolloutEngine({"s": ScriptedAgent(), "b": BreaksOnListeners()})
    with EpisodeWriter(tmp_path / "e.jsonl") as writer, pytest.raises(RuntimeError, match="backend down"):
        engine.run(specs, writer=writer, on_episode=count)
    assert sorted(e.seed for e in read_episodes(tmp_path / "e.jsonl")) == [0, 1, 2, 3]


def test_given_instances_are_played_as_given():
    from dialogym.envs import draw_instance
    from dialogym.envs.games.reference import ReferenceGame

    instance = draw_instance(ReferenceGame(), 99, level="hard")
    specs = [EpisodeSpec(game="dialogym/Reference-v0", seed=1, seats={"speaker": "s", "listener": "s"}, instance=instance.model_dump())]
    (episode,) = RolloutEngine({"s": ScriptedAgent()}).run(specs)
    assert episode.instance_id == instance.id and isinstance(instance, Instance)


def test_unknown_agent_name_and_wrong_seats_are_clear_errors():
    with pytest.raises(KeyError, match="no agent named"):
        RolloutEngine({"s": ScriptedAgent()}).run(reference_specs(1, {"speaker": "s", "listener": "zzz"}))
    with pytest.raises(ValueError, match="do not match the game's"):
        RolloutEngine({"s": ScriptedAgent()}).run(reference_specs(1, {"speaker": "s", "judge": "s"}))


def test_an_agent_returning_too_few_replies_is_reported():
    class Short:
        name = "short"

        def act(self, requests):
            return []

    with pytest.raises(RuntimeError, match="returned 0 replies for 2 requests"):
        RolloutEngine({"x": Short()}).run(reference_specs(2, {"speaker": "x", "listener": "x"}))


class Gated:
    """A scripted player whose first call blocks until the test opens its gate."""

    def __init__(self, name, gate, events, timeout=10.0):
        self.name, self.gate, self.events, self.timeout = name, gate, events, timeout
        self.scripted, self.batches, self.opened_in_time = ScriptedAgent(), [], []

    def act(self, requests):
        self.batches.append(len(requests))
        self.events.append(f"{self.name} called")
        if len(self.batches) == 1:
            self.opened_in_time.append(self.gate.wait(self.timeout))
        self.events.append(f"{self.name} returned")
        return self.scripted.act(requests)


def mixed_specs():
    """fast-only episodes 0-3, episodes 4-7 wait for the slow listener, episode 8 has a slow speaker."""
    specs = [EpisodeSpec(game="dialogym/Reference-v0", seed=i, seats={"speaker": "fast", "listener": "fast"}) for i in range(4)]
    specs += [EpisodeSpec(game="dialogym/Reference-v0", seed=i, seats={"speaker": "fast", "listener": "slow"}) for i in range(4, 8)]
    specs.append(EpisodeSpec(game="dialogym/Reference-v0", seed=8, seats={"speaker": "slow", "listener": "fast"}))
    return specs


def test_a_blocked_agent_does_not_hold_up_episodes_other_agents_can_finish():
    gate, events = threading.Event(), []
    fast, slow = Recorder(ScriptedAgent()), Gated("slow", gate, events)
    done = []

    def finished(episode):
        done.append(episode.seed)
        events.append(f"episode {episode.seed} done")
        if sorted(done) == [0, 1, 2, 3]:
            gate.set()  # only now may the slow agent answer its first batch

    episodes = RolloutEngine({"fast": fast, "slow": slow}).run(mixed_specs(), on_episode=finished)
    assert slow.opened_in_time == [True], "the fast episodes never finished while the slow agent was busy"
    fast_done = [events.index(f"episode {i} done") for i in range(4)]
    assert max(fast_done) < events.index("slow returned")
    # the listener requests of episodes 4-7 arrived while the slow agent was busy: one next batch
    assert slow.batches == [1, 4]
    assert [e.seed for e in episodes] == list(range(9)) and all(e.played for e in episodes)


def test_lockstep_routes_no_reply_before_every_agent_has_answered():
    gate, events = threading.Event(), []  # nobody opens the gate: the slow call ends by timeout
    fast, slow = Gated("fast", threading.Event(), events, timeout=0), Gated("slow", gate, events, timeout=0.2)
    episodes = RolloutEngine({"fast": fast, "slow": slow}, lockstep=True).run(mixed_specs())
    second_fast_call = [i for i, e in enumerate(events) if e == "fast called"][1]
    assert events.index("slow returned") < second_fast_call
    assert all(e.played for e in episodes)


def test_a_simultaneous_turn_gives_the_same_episode_whichever_agent_answers_first():
    import time

    from tests.envs.test_toy_game import MatchingPennies  # noqa: F401  (registers dialogym/Pennies-v0)

    class Delayed:
        def __init__(self, name, delay):
            self.name, self.delay, self.scripted = name, delay, ScriptedAgent()

        def act(self, requests):
            time.sleep(self.delay)
            return self.scripted.act(requests)

    specs = [EpisodeSpec(game="dialogym/Pennies-v0", seed=i, seats={"match": "x", "mismatch": "y"}, level="long") for i in range(3)]
    runs = []
    for x_delay, y_delay in ((0.02, 0.0), (0.0, 0.02)):
        episodes = RolloutEngine({"x": Delayed("x", x_delay), "y": Delayed("y", y_delay)}).run(specs)
        runs.append([[(t.seat, t.raw) for t in e.turns] + [e.rewards] for e in episodes])
    assert runs[0] == runs[1]
    assert all(turns[0][0] == "match" for turns in runs[0])


def test_an_agent_error_is_raised_at_once_while_another_agent_is_still_busy():
    gate, events = threading.Event(), []
    slow = Gated("slow", gate, events)

    class Broken:
        name = "broken"

        def act(self, requests):
            raise ValueError("backend down")

    specs = [
        EpisodeSpec(game="dialogym/Reference-v0", seed=0, seats={"speaker": "slow", "listener": "slow"}),
        EpisodeSpec(game="dialogym/Reference-v0", seed=1, seats={"speaker": "broken", "listener": "broken"}),
    ]
    try:
        with pytest.raises(ValueError, match="backend down"):
            RolloutEngine({"slow": slow, "broken": Broken()}).run(specs)
        assert "slow returned" not in events
    finally:
        gate.set()


def test_two_sampling_models_give_the_same_episodes_however_their_calls_overlap():
    import time

    model, tokenizer = tiny_model()

    class Delayed(TransformersAgent):
        delay = 0.0

        def act(self, requests):
            time.sleep(self.delay)
            return super().act(requests)

    a, b = Delayed(model, tokenizer, name="a"), Delayed(model, tokenizer, name="b")
    specs = reference_specs(4, {"speaker": "a", "listener": "b"}) + [
        EpisodeSpec(game="dialogym/Reference-v0", seed=i, seats={"speaker": "b", "listener": "a"}) for i in range(4, 8)
    ]
    runs = []
    for a.delay, b.delay in ((0.0, 0.3), (0.3, 0.0)):  # which agent's batch lands first flips
        episodes = RolloutEngine({"a": a, "b": b}, sampling=Sampling(temperature=1.0, max_new_tokens=12)).run(specs)
        runs.append([[(t.seat, t.token_ids) for t in e.turns] for e in episodes])
    assert runs[0] == runs[1]


def test_plays_of_one_instance_share_the_instance_and_get_their_own_reply_seeds():
    from dialogym.envs import reply_seed

    speaker = Recorder(ScriptedAgent())
    specs = [EpisodeSpec(game="dialogym/Reference-v0", seed=3, play=play, seats={"speaker": "s", "listener": "s"}) for play in (0, 1)]
    episodes = RolloutEngine({"s": speaker}).run(specs)
    assert episodes[0].instance_id == episodes[1].instance_id and episodes[0].id != episodes[1].id
    assert [e.play for e in episodes] == [0, 1]
    first_seeds = [seed for _, seat, seed in speaker.batches[0] if seat == "speaker"]
    assert first_seeds == [reply_seed(3, 0, 0, 0), reply_seed(3, 1, 0, 0)]


def test_registered_options_hold_in_the_matches_the_engine_builds():
    from dialogym.envs import register, spec
    from dialogym.envs.games.reference import ReferenceGame

    register("test/ReferenceNoRetries-v0", ReferenceGame, players=spec("dialogym/Reference-v0").players, max_retries=0)

    class Nonsense:
        name = "nonsense"

        def act(self, requests):
            return [Reply(text="what?") for _ in requests]

    engine = RolloutEngine({"n": Nonsense()})
    [episode] = engine.run([EpisodeSpec(game="test/ReferenceNoRetries-v0", seed=0, seats={"speaker": "n", "listener": "n"})])
    assert episode.status == "aborted" and len(episode.turns) == 1  # no re-prompt: max_retries=0


# -- advance: the engine plays some seats, the caller the others ------------------------


def reference_matches(n, **kw):
    from dialogym.envs import new_match

    return [new_match("dialogym/Reference-v0", seed, **kw) for seed in range(n)]


def test_advance_stops_each_match_where_a_seat_the_caller_plays_is_to_act():
    speaker = Recorder(ScriptedAgent())
    matches = reference_matches(5)
    engine = RolloutEngine({"s": speaker})
    engine.advance([(m, {"speaker": "s"}) for m in matches])
    assert [m.to_act() for m in matches] == [["listener"]] * 5
    assert [len(b) for b in speaker.batches] == [5]  # the five matches shared one batched call
    engine.advance([(m, {"speaker": "s"}) for m in matches])  # nothing to do: all wait on the caller
    assert len(speaker.batches) == 1


def test_advance_plays_the_same_requests_and_seeds_as_run():
    """A caller who answers its seat as the engine's agent would gets run()'s episodes exactly."""
    specs = reference_specs(4, {"speaker": "s", "listener": "s"}, level="hard")
    expected = RolloutEngine({"s": ScriptedAgent()}).run(specs)

    from dialogym.agents.rollout import request_for

    engine, caller = RolloutEngine({"s": ScriptedAgent()}), ScriptedAgent()
    matches = reference_matches(4, level="hard")
    engine.advance([(m, {"speaker": "s"}) for m in matches])
    while not all(m.done for m in matches):
        for match in (m for m in matches if not m.done):
            match.submit("listener", caller.act([request_for(match, "listener")])[0].text)
        engine.advance([(m, {"speaker": "s"}) for m in matches])
    played = [m.episode(specs[i].seats) for i, m in enumerate(matches)]
    strip = {"started_at", "duration_s"}
    assert [e.model_dump(exclude=strip) for e in played] == [e.model_dump(exclude=strip) for e in expected]


def test_advance_on_a_simultaneous_turn_moves_the_engines_seats_and_leaves_the_callers_to_act():
    from dialogym.envs import new_match
    from tests.envs.test_toy_game import MatchingPennies  # noqa: F401  (registers dialogym/Pennies-v0)

    match = new_match("dialogym/Pennies-v0", 0, level="long")
    RolloutEngine({"p": ScriptedAgent()}).advance([(match, {"mismatch": "p"})])
    assert match.to_act() == ["match"] and [t.seat for t in match.turns] == ["mismatch"]


def test_advance_with_every_seat_seated_plays_the_match_to_the_end():
    [match] = reference_matches(1)
    RolloutEngine({"s": ScriptedAgent()}).advance([(match, {"speaker": "s", "listener": "s"})])
    assert match.done and not match.aborted


def test_advance_rejects_unknown_agents_unknown_seats_and_a_match_given_twice():
    [match] = reference_matches(1)
    engine = RolloutEngine({"s": ScriptedAgent()})
    with pytest.raises(KeyError, match="no agent named \\['x'\\]"):
        engine.advance([(match, {"speaker": "x"})])
    with pytest.raises(ValueError, match="seats \\['judge'\\] are not among"):
        engine.advance([(match, {"judge": "s"})])
    with pytest.raises(ValueError, match="the same match is given twice"):
        engine.advance([(match, {"speaker": "s"}), (match, {"speaker": "s"})])


@pytest.mark.parametrize("guided", [False, True])
def test_a_runs_token_cap_applies_to_guided_replies_as_to_free_ones(guided):
    from dialogym.agents.rollout import request_for
    from dialogym.envs import new_match

    match = new_match("dialogym/Negotiation-v0", seed=0)
    (seat,) = match.to_act()
    game_cap = match.game.max_reply_tokens
    assert request_for(match, seat, Sampling(max_new_tokens=24, guided=guided)).sampling.max_new_tokens == 24
    assert request_for(match, seat, Sampling(max_new_tokens=10_000, guided=guided)).sampling.max_new_tokens == game_cap
    # a benchmark's cap is for free replies: guided moves ask for the game's whole cap
    whole = request_for(match, seat, Sampling(max_new_tokens=24, guided=guided, guided_game_cap=True)).sampling
    assert whole.max_new_tokens == (game_cap if guided else 24) and not whole.guided_game_cap


def test_agent_sampling_gives_named_agents_their_own_setting():
    """A league's opponents can play greedy while the learner samples: each request carries
    the setting of the agent that answers it; the others keep the engine's."""

    class Settings:
        name = "settings"

        def __init__(self):
            self.seen, self.scripted = [], ScriptedAgent()

        def act(self, requests):
            self.seen += [r.sampling.temperature for r in requests]
            return self.scripted.act(requests)

    sampled, greedy = Settings(), Settings()
    engine = RolloutEngine({"s": sampled, "l": greedy}, sampling=Sampling(temperature=1.5),
                           agent_sampling={"l": Sampling(temperature=0.0)})
    engine.run(reference_specs(4, {"speaker": "s", "listener": "l"}))
    assert sampled.seen and set(sampled.seen) == {1.5}
    assert greedy.seen and set(greedy.seen) == {0.0}
    with pytest.raises(ValueError, match="agent_sampling names agents the engine does not have: x"):
        RolloutEngine({"s": sampled}, agent_sampling={"x": Sampling()})
