"""The adapters' text spaces: built once per process, seeded per seat and env."""

from gymnasium import spaces

import dialogym
from dialogym.envs.spaces import charset, to_observation

GAME = "dialogym/Negotiation-v0"


def test_make_builds_no_new_text_space_after_the_first(monkeypatch):
    first = dialogym.make(GAME)
    built = []
    original = spaces.Text.__init__

    def counting(self, *args, **kwargs):
        built.append(kwargs.get("max_length", args[0] if args else None))
        original(self, *args, **kwargs)

    monkeypatch.setattr(spaces.Text, "__init__", counting)
    second = dialogym.make(GAME)
    assert built == []
    for seat in first.possible_agents:
        # one character table shared by every seat and env
        assert second.action_space(seat).character_set is first.action_space(seat).character_set
        ours, theirs = second.observation_space(seat)["text"], first.observation_space(seat)["text"]
        assert ours.character_set is theirs.character_set
        assert second.action_space(seat) == first.action_space(seat)


def test_each_seat_and_env_seeds_its_own_space():
    first, second = dialogym.make(GAME), dialogym.make(GAME)
    alice, bob = first.action_space("alice"), first.action_space("bob")
    assert alice is not bob and alice is not second.action_space("alice")
    alice.seed(7)
    drawn = alice.sample()
    bob.seed(8)
    second.action_space("alice").seed(9)
    alice.seed(7)
    assert alice.sample() == drawn  # seeding the others did not touch alice's generator


def test_observations_replace_exactly_the_characters_outside_the_charset():
    allowed = frozenset(charset())
    text = "".join(chr(code) for code in [*range(0, 0x300), *range(0xD7F0, 0xE010), 0xFFFD, 0xFFFF, 0x1F600])
    expected = "".join(c if c in allowed else "\ufffd" for c in text)
    assert to_observation(text)["text"] == expected
    assert to_observation("PROPOSE: book=1\tü 漢字\n")["text"] == "PROPOSE: book=1\tü 漢字\n"
