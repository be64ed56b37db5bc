"""The league's checkpoint pool and opponent samplers."""

import numpy as np
import pytest

from dialogym.trainers.opponents import PFSP, Fixed, Latest, PerRole, Recency, Uniform, make_sampler
from dialogym.trainers.pool import CheckpointPool, MatchResult


def adapter(tmp_path, name, payload="w"):
    folder = tmp_path / "src" / name
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_text(payload)
    return folder


def test_added_checkpoints_are_copied_listed_and_loadable_by_spec(tmp_path):
    pool = CheckpointPool(tmp_path / "pool")
    pool.add("it-0", source=adapter(tmp_path, "a"), base_spec="tiny", iteration=0, parent=None)
    pool.add("it-1", source=adapter(tmp_path, "b"), base_spec="tiny", iteration=1, parent="it-0", step=8)
    pool.add("scripted", kind="external", spec="scripted")
    reopened = CheckpointPool(tmp_path / "pool")
    assert reopened.names == ["it-0", "it-1", "scripted"]
    assert reopened.get("it-1").parent == "it-0" and reopened.get("it-1").step == 8
    assert reopened.get("it-1").spec == f"tiny+lora:{tmp_path / 'pool' / 'checkpoints' / 'it-1'}"
    assert (reopened.path_of("it-0") / "adapter_model.safetensors").read_text() == "w"
    with pytest.raises(ValueError, match="already has"):
        reopened.add("it-0", source=adapter(tmp_path, "c"), base_spec="tiny")


def test_a_crash_mid_add_leaves_the_pool_as_it_was(tmp_path, monkeypatch):
    pool = CheckpointPool(tmp_path / "pool")
    pool.add("it-0", source=adapter(tmp_path, "a"), base_spec="tiny")
    import dialogym.trainers.pool as module

    def crash(*args, **kwargs):
        raise OSError("disk died")

    monkeypatch.setattr(module, "atomic_write_text", crash)  # the index replace never happens
    with pytest.raises(OSError):
        pool.add("it-1", source=adapter(tmp_path, "b"), base_spec="tiny")
    monkeypatch.undo()
    (pool.dir / ".tmp-it-2-999").mkdir()  # a copy interrupted even earlier
    recovered = CheckpointPool(tmp_path / "pool")
    assert recovered.names == ["it-0"]
    assert sorted(p.name for p in recovered.dir.iterdir()) == ["it-0"]
    recovered.add("it-1", source=adapter(tmp_path, "c"), base_spec="tiny")
    assert recovered.names == ["it-0", "it-1"]


def test_ratings_and_win_rates_come_from_recorded_results(tmp_path):
    pool = CheckpointPool(tmp_path / "pool")
    for name in ("old", "new"):
        pool.add(name, kind="external", spec="scripted")
    pool.record([MatchResult(a="new", b="old", score=1.0)] * 8 + [MatchResult(a="old", b="new", score=1.0)] * 2)
    with (tmp_path / "pool" / "matches.jsonl").open("a") as handle:
        handle.write('{"a": "new", "b"')  # torn last line
    assert pool.win_rate("new", "old") == pytest.approx(0.8)
    assert pool.win_rate("old", "new") == pytest.approx(0.2)
    pool.update_ratings()
    assert pool.get("new").rating > pool.get("old").rating
    assert pool.get("new").rating_lo < pool.get("new").rating < pool.get("new").rating_hi
    assert pool.get("new").matches == 10


def test_prune_keeps_the_newest_and_the_best(tmp_path):
    pool = CheckpointPool(tmp_path / "pool")
    for i in range(5):
        pool.add(f"it-{i}", source=adapter(tmp_path, f"s{i}"), base_spec="tiny")
    pool.record([MatchResult(a="it-1", b=f"it-{j}", score=1.0) for j in (0, 2, 3, 4) for _ in range(3)])
    pool.update_ratings()
    removed = pool.prune(keep_last=2, keep_best=1)
    assert sorted(removed) == ["it-0", "it-2"]
    assert pool.names == ["it-1", "it-3", "it-4"] and not pool.path_of("it-0").exists()


def test_export_copies_weights_and_metadata(tmp_path):
    pool = CheckpointPool(tmp_path / "pool")
    pool.add("it-0", source=adapter(tmp_path, "a"), base_spec="tiny", step=3)
    out = pool.export("it-0", tmp_path / "out")
    assert (out / "adapter_model.safetensors").exists()
    assert '"step": 3' in (out / "dialogym_checkpoint.json").read_text()


# -- samplers: empirical frequencies match the definitions --------------------------------
CANDIDATES = ["c0", "c1", "c2", "c3"]
RATES = {"c0": 0.9, "c1": 0.5, "c2": 0.2, "c3": None}


def frequencies(sampler, n=20000, seed=0):
    rng = np.random.default_rng(seed)
    draws = [sampler.sample(CANDIDATES, rng, RATES.get) for _ in range(n)]
    return np.array([draws.count(c) for c in CANDIDATES]) / n


def assert_matches(sampler, expected, n=20000):
    expected = np.asarray(expected, dtype=float)
    observed = frequencies(sampler, n)
    # within 5 standard errors of each bin's binomial count
    tolerance = 5 * np.sqrt(expected * (1 - expected) / n) + 1e-9
    assert np.all(np.abs(observed - expected) <= tolerance), (observed, expected)


def test_latest_always_picks_the_newest():
    assert_matches(Latest(), [0, 0, 0, 1])


def test_uniform_picks_every_candidate_equally():
    assert_matches(Uniform(), [0.25] * 4)


def test_recency_mixture_follows_its_definition():
    # p_latest=0.5, decay=0.5: older ages 3,2,1 get 0.125, 0.25, 0.5 of the remaining 0.5
    assert_matches(Recency(p_latest=0.5, decay=0.5), [0.5 * 0.125 / 0.875, 0.5 * 0.25 / 0.875, 0.5 * 0.5 / 0.875, 0.5])


def test_pfsp_squared_prefers_opponents_the_learner_loses_to():
    w = np.array([0.9, 0.5, 0.2, 0.5])
    weights = (1 - w) ** 2
    assert_matches(PFSP("squared"), weights / weights.sum())


def test_pfsp_variance_prefers_even_matches():
    w = np.array([0.9, 0.5, 0.2, 0.5])
    weights = w * (1 - w)
    assert_matches(PFSP("variance"), weights / weights.sum())


def test_fixed_draws_from_its_own_list_and_per_role_samplers_differ():
    rng = np.random.default_rng(1)
    fixed = Fixed(["scripted", "smollm2"])
    draws = {fixed.sample(CANDIDATES, rng) for _ in range(100)}
    assert draws == {"scripted", "smollm2"}
    roles = PerRole({"judge": fixed}, default=Latest())
    assert roles.for_role("judge") is fixed and isinstance(roles.for_role("debater_b"), Latest)


def test_sampler_specs_parse_and_bad_ones_are_clear():
    assert isinstance(make_sampler("pfsp:variance"), PFSP) and make_sampler("pfsp:variance").weighting == "variance"
    assert make_sampler("recency:0.8:0.9").p_latest == 0.8
    assert make_sampler("fixed:scripted,tiny").specs == ["scripted", "tiny"]
    with pytest.raises(ValueError, match="unknown opponent sampler"):
        make_sampler("best")
    with pytest.raises(LookupError, match="no candidates"):
        Uniform().sample([], np.random.default_rng(0))
