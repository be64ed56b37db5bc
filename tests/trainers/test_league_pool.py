"""The league's checkpoint pool, its folder-replacing helper and opponent samplers."""

import json

import numpy as np
import pytest

from dialogym.envs.files import atomic_replace_dir, recover_dir
from dialogym.trainers.opponents import (
    PFSP,
    Base,
    Fixed,
    Latest,
    Mixture,
    PerRole,
    Recency,
    Uniform,
    make_sampler,
)
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


def test_a_result_recorded_after_a_torn_line_is_kept(tmp_path):
    pool = CheckpointPool(tmp_path / "pool")
    for name in ("old", "new"):
        pool.add(name, kind="external", spec="scripted")
    pool.record([MatchResult(a="new", b="old", score=1.0)])
    with pool.matches_path.open("a") as handle:
        handle.write('{"a": "new", "b"')  # a crash mid-append
    with pytest.warns(UserWarning, match="torn last line"):
        pool.record([MatchResult(a="old", b="new", score=1.0, iteration=2)])
    assert [(r.a, r.iteration) for r in pool.results()] == [("new", 0), ("old", 2)]
    assert pool.matches_path.read_text().count("\n") == 2


def test_win_rates_are_kept_in_the_metadata_and_exported(tmp_path):
    pool = CheckpointPool(tmp_path / "pool")
    for name in ("a", "b", "c"):
        pool.add(name, kind="external", spec="scripted")
    pool.record([MatchResult(a="a", b="b", score=s) for s in (1.0, 1.0, 0.0, 0.5)] + [MatchResult(a="c", b="a", score=1.0)])
    pool.update_ratings()
    reopened = CheckpointPool(tmp_path / "pool")
    assert reopened.get("a").win_rates == {"b": pytest.approx(0.625), "c": 0.0}
    assert reopened.get("b").win_rates == {"a": pytest.approx(0.375)}
    exported = json.loads((pool.export("a", tmp_path / "out") / "dialogym_checkpoint.json").read_text())
    assert exported["win_rates"] == {"b": 0.625, "c": 0.0}


def test_rollback_forgets_later_entries_results_and_their_ratings(tmp_path):
    pool = CheckpointPool(tmp_path / "pool")
    for i in range(3):
        pool.add(f"it-{i}", source=adapter(tmp_path, f"s{i}"), base_spec="tiny", iteration=i)
    pool.record([MatchResult(a="it-1", b="it-0", score=1.0, iteration=1), MatchResult(a="it-2", b="it-1", score=1.0, iteration=2)])
    pool.update_ratings()
    pool.rollback(1)
    assert pool.names == ["it-0", "it-1"] and not pool.path_of("it-2").exists()
    assert [(r.a, r.b) for r in pool.results()] == [("it-1", "it-0")]
    assert pool.get("it-1").win_rates == {"it-0": 1.0} and pool.get("it-1").matches == 1
    pool.rollback(0)
    assert pool.names == ["it-0"] and pool.get("it-0").rating is None and pool.get("it-0").win_rates == {}


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


def test_base_always_picks_the_oldest():
    assert_matches(Base(), [1, 0, 0, 0])


def test_a_mixture_weights_its_parts():
    # 1*base + 3*pfsp:squared: a quarter on the base, three quarters by PFSP (which also counts the base)
    w = np.array([0.9, 0.5, 0.2, 0.5])
    pfsp = (1 - w) ** 2 / ((1 - w) ** 2).sum()
    sampler = make_sampler("1*base+3*pfsp")
    assert isinstance(sampler, Mixture) and sampler.weights == [1.0, 3.0]
    assert_matches(sampler, 0.25 * np.array([1, 0, 0, 0]) + 0.75 * pfsp)
    # a model spec may hold "+" (smollm2+guided): only a leading weight makes a mixture
    assert make_sampler("fixed:smollm2+guided").specs == ["smollm2+guided"]
    assert make_sampler("player_1=fixed:scripted,smollm2+guided", ["player_0", "player_1"]).for_role("player_1").specs == [
        "scripted", "smollm2+guided"]
    per_role = make_sampler("speaker=0.5*base+0.5*latest,listener=uniform", ["speaker", "listener"])
    assert_matches(per_role.for_role("speaker"), [0.5, 0, 0, 0.5])


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


def test_per_role_sampler_specs_give_each_role_its_own_sampler():
    roles = ["speaker", "listener", "judge"]
    sampler = make_sampler("speaker=pfsp:variance,listener=fixed:scripted,hf:/m/x,*=latest", roles)
    assert isinstance(sampler, PerRole)
    assert sampler.for_role("speaker").weighting == "variance"
    assert sampler.for_role("listener").specs == ["scripted", "hf:/m/x"]
    assert sampler.for_role("listener").entries == {"scripted": "scripted", "hf:_m_x": "hf:/m/x"}
    assert isinstance(sampler.for_role("judge"), Latest)
    assert isinstance(make_sampler("speaker=latest", roles).for_role("judge"), Uniform)
    with pytest.raises(ValueError, match="roles \\['referee'\\]"):
        make_sampler("referee=latest", roles)
    with pytest.raises(ValueError, match="<role>=<sampler> pairs"):
        make_sampler("latest,speaker=uniform", roles)


@pytest.mark.parametrize(
    "spec", ["pfsp:sq", "recency:x", "recency:1.5", "recency:0.5:0", "recency:0.5:0.5:1", "latest:1", "fixed:", "fixed:gpt9", "fixed:hf:/a/b,hf:_a_b", "speaker=pfsp:sq",
             "base:1", "0.5*base+pfsp", "0*base+1*pfsp", "-1*base+2*pfsp", "x*base+1*pfsp", "0.5*base+0.5*pfsp:sq",
             "0.5*base+0.5*fixed:scripted", "inf*base+1*pfsp", "nan*base+1*pfsp"]
)
def test_bad_sampler_arguments_fail_when_parsed(spec):
    with pytest.raises(ValueError):
        make_sampler(spec, ["speaker", "listener"])


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
    assert isinstance(make_sampler("recency"), Recency) and make_sampler("recency:0.3").p_latest == 0.3
    with pytest.raises(ValueError, match="unknown opponent sampler"):
        make_sampler("best")
    with pytest.raises(LookupError, match="no candidates"):
        Uniform().sample([], np.random.default_rng(0))


# -- replacing a checkpoint folder -------------------------------------------------------
def folder(path, text):
    path.mkdir(parents=True)
    (path / "weights").write_text(text)
    return path


def test_atomic_replace_dir_swaps_in_the_new_folder(tmp_path):
    final = folder(tmp_path / "ckpt", "old")
    atomic_replace_dir(folder(tmp_path / ".tmp", "new"), final)
    assert (final / "weights").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


@pytest.mark.parametrize(("crash_on", "survivor"), [(1, "old"), (2, "old"), (3, "new")])
def test_a_crash_at_any_step_of_a_replace_leaves_one_complete_folder(tmp_path, monkeypatch, crash_on, survivor):
    """Steps: 1 rename old aside, 2 rename new into place, 3 remove the aside copy."""
    import os
    import shutil

    import dialogym.envs.files as fs

    final = folder(tmp_path / "ckpt", "old")
    tmp = folder(tmp_path / ".tmp", "new")
    steps = iter(range(1, 4))

    def step(real):
        def wrapped(*args, **kwargs):
            if next(steps) == crash_on:
                raise OSError("killed")
            return real(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(fs.os, "replace", step(os.replace))
    monkeypatch.setattr(fs.shutil, "rmtree", step(shutil.rmtree))
    monkeypatch.setattr(fs, "_fsync_dir", lambda folder: None)
    with pytest.raises(OSError, match="killed"):
        atomic_replace_dir(tmp, final)
    monkeypatch.undo()
    assert (recover_dir(final) / "weights").read_text() == survivor
    assert not (tmp_path / ".ckpt.old").exists()
