"""Registration rules, and discovery of outside games through the entry-point group."""

import importlib
import sys
import textwrap

import pytest

import dialogym
from dialogym.envs import registry
from dialogym.envs.games.reference import ReferenceGame


def test_reference_game_is_registered_under_its_gymnasium_id():
    assert "dialogym/Reference-v0" in dialogym.registered()
    import gymnasium

    assert "dialogym/Reference-v0" in gymnasium.registry


def test_ids_must_follow_the_gymnasium_convention():
    with pytest.raises(ValueError, match="must look like 'dialogym/Name-v0'"):
        dialogym.register("Reference", ReferenceGame)


def test_an_id_cannot_be_taken_by_another_game():
    class Other(ReferenceGame):
        pass

    with pytest.raises(ValueError, match="already registered"):
        dialogym.register("dialogym/Reference-v0", Other)


def test_registering_something_that_is_not_a_game_is_refused():
    with pytest.raises(TypeError, match="not a subclass"):
        dialogym.register("dialogym/Nope-v0", dict)


def install_fake_distribution(tmp_path, monkeypatch, name, entry_point):
    """Make importlib.metadata see an installed package announcing ``entry_point``."""
    dist = tmp_path / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[dialogym.games]\n{name} = {entry_point}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    monkeypatch.setattr(registry, "_plugins_loaded", False)


def test_games_of_installed_packages_are_found_through_the_entry_point_group(tmp_path, monkeypatch):
    package = tmp_path / "outside_games"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            import dialogym
            from dialogym.envs.games.reference import ReferenceGame

            class OutsideGame(ReferenceGame):
                pass

            def register_all():
                dialogym.register("outside/Outside-v0", OutsideGame)
            """
        )
    )
    install_fake_distribution(tmp_path, monkeypatch, "outside_games", "outside_games:register_all")
    try:
        assert "outside/Outside-v0" in dialogym.registered()
        env = dialogym.make("outside/Outside-v0")
        env.reset(seed=0)
        assert env.agent_selection == "speaker"
    finally:
        registry._REGISTRY.pop("outside/Outside-v0", None)
        sys.modules.pop("outside_games", None)


def test_a_broken_plugin_warns_and_leaves_the_builtin_games(tmp_path, monkeypatch):
    install_fake_distribution(tmp_path, monkeypatch, "broken", "no_such_module:register")
    with pytest.warns(UserWarning, match="could not load games from 'no_such_module:register'"):
        ids = dialogym.registered()
    assert "dialogym/Reference-v0" in ids


def test_latest_keeps_the_newest_version_of_each_game():
    from dialogym.envs.registry import latest_versions

    ids = ["x/A-v0", "x/B-v0", "x/A-v2", "x/A-v1", "x/Odd"]
    assert latest_versions(ids) == ["x/A-v2", "x/B-v0", "x/Odd"]
    latest = registry.resolve_ids("latest")
    assert "dialogym/Negotiation-v1" in latest and "dialogym/Negotiation-v0" not in latest
    assert "dialogym/Reference-v0" in latest and len(latest) < len(registry.resolve_ids("all"))


def test_a_short_name_two_namespaces_share_is_dialogyms_own_game():
    class Elsewhere(ReferenceGame):
        pass

    registry.register("elsewhere/Reference-v0", Elsewhere)
    try:
        assert registry.resolve_ids("reference") == ["dialogym/Reference-v0"]
        assert registry.resolve_ids("elsewhere/Reference-v0") == ["elsewhere/Reference-v0"]
    finally:
        registry._REGISTRY.pop("elsewhere/Reference-v0", None)
        import gymnasium

        gymnasium.registry.pop("elsewhere/Reference-v0", None)
