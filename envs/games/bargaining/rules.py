"""Buyer-seller bargaining, after Fu et al. 2023, "Improving Language Model Negotiation with
Self-Play and In-Context Learning from AI Feedback".

One item with a public list price. The seller has a private cost, the buyer a private
budget. They alternate, seller first; a reply is a short message with exactly one control
line:

- ``OFFER: <price>`` -- a price in whole dollars (it replaces one's own standing offer);
- ``ACCEPT`` -- accept the other side's standing offer; the game ends with a deal;
- ``WALK AWAY`` -- break off; the game ends with no deal.

Rule: nobody may offer or accept a price beyond their own limit -- the seller nothing
below its cost, the buyer nothing above its budget. So every deal lies in the zone of
agreement [cost, budget], and when the budget is below the cost no deal is possible.

A deal at price ``p`` pays the seller ``(p - cost) / (budget - cost)`` and the buyer
``(budget - p) / (budget - cost)``, each side's share of the surplus (0 for both in the
degenerate case budget == cost). No deal -- walking away or reaching the turn limit (seller
and buyer turns together: 10 on ``easy``, 8 on ``hard``) -- scores 0 for both. On ``easy``
the zone is wide; on ``hard`` it is narrow, and about one instance in five has none.

``dialogym/BargainingCritic-v0`` (:mod:`.critic`) adds a ``critic`` seat, as in Fu et al.:
after every full round (a seller and a buyer turn) that does not end the game, the critic
reads that round and replies ``FEEDBACK: <advice>``; the coached side (the seller, or the
buyer with the game option ``coached="buyer"``) sees the advice at its next turn, the other
side never does. The critic earns the coached side's reward.

Move grammar (guided play, :meth:`BargainingGame.move_grammar`): the control line first,
then optionally one message line, or one message line, then the control line. The control
line is ``OFFER: <price>`` within the side's own limit, ``ACCEPT`` when the other side's
offer stands and is within it, or ``WALK AWAY``; a message is at most 240 characters and
never reads as a control line. The critic writes ``FEEDBACK: <advice>``, one line of at most
240 characters. So the longest guided reply fits ``max_reply_tokens`` at 3 characters a token.

The game option ``reward_view="zero_sum"`` rewards each side its share minus the other's
(:mod:`dialogym.envs.games.negotiation.zero_sum`). The buyer always has the known last turn;
``Bargaining-v1`` (:mod:`.hidden_horizon`) hides it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import model_validator

from ...core import (
    WHOLE_NUMBER,
    Game,
    Instance,
    InvalidMove,
    Move,
    Outcome,
    excerpt,
    quote,
    unify_line_breaks,
)
from ...grammar import grammar, int_range, text
from ..negotiation.zero_sum import check_reward_view, in_reward_view

ITEMS = ("a used bicycle", "a vintage camera", "an oak bookshelf", "a road atlas collection", "a ceramic teapot set",
         "a second-hand guitar", "a leather armchair", "a mountain tent", "a sewing machine", "a set of garden tools")
SIDES = ("seller", "buyer")
#: level -> (lowest and highest surplus as a fraction of the cost, turn limit)
LEVELS: dict[str, tuple[float, float, int]] = {"easy": (0.25, 1.0, 10), "hard": (-0.08, 0.3, 8)}
#: Longer messages and feedback are cut before anyone else sees them.
MAX_MESSAGE_CHARS = 1000

_OFFER_RE = re.compile(r"^\s*OFFER\s*:(.*)$", re.IGNORECASE)
_ACCEPT_RE = re.compile(r"^\s*ACCEPT\s*[.!]?\s*$", re.IGNORECASE)
_WALK_RE = re.compile(r"^\s*WALK\s+AWAY\s*[.!]?\s*$", re.IGNORECASE)
#: A guided message's (or advice's) length: with its newline and the longest control line
#: (16 characters) it is at most 257 characters, within 96 tokens at 3 a token.
GUIDED_MESSAGE_CHARS = 240
#: The highest price the parser reads (9 digits).
MAX_PRICE = 999_999_999
# Whitespace as Python's re and str.strip see it: the grammar regex \s plus \x1c-\x1f.
_WS = r"[\s\x1c-\x1f]"
#: Free text of one line, without \x1c-\x1f, which Python strips but regex \s does not (a
#: message or advice of them alone would be empty).
GUIDED_TEXT = text(GUIDED_MESSAGE_CHARS, exclude=r"\x1c-\x1f")
#: One message line of a guided reply: never matches _OFFER_RE, _ACCEPT_RE or _WALK_RE.
_GUIDED_MESSAGE = " & ".join([
    GUIDED_TEXT,
    f"~/{_WS}*(?i:offer){_WS}*:.*/",
    f"~/{_WS}*(?i:accept){_WS}*[.!]?{_WS}*/",
    f"~/{_WS}*(?i:walk){_WS}+(?i:away){_WS}*[.!]?{_WS}*/",
])


class BargainInstance(Instance):
    item: str
    list_price: int
    #: the seller's private cost
    cost: int
    #: the buyer's private budget
    budget: int
    turn_limit: int

    @model_validator(mode="after")
    def _check(self) -> BargainInstance:
        if min(self.cost, self.budget, self.list_price) < 1:
            raise ValueError("cost, budget and list_price must be positive whole dollars")
        if self.turn_limit < 1:
            raise ValueError(f"turn_limit must be at least 1, got {self.turn_limit}")
        return self

    @property
    def zone_exists(self) -> bool:
        """Whether a deal can leave both sides better off than no deal."""
        return self.budget > self.cost


class Bargain(Move):
    message: str
    price: int | None = None
    accept: bool = False
    walk_away: bool = False


@dataclass(frozen=True)
class Said:
    """One reply of the seller or the buyer as the other side sees it."""

    seat: str
    message: str
    price: int | None
    accept: bool
    walk_away: bool


@dataclass
class BargainState:
    instance: BargainInstance
    turn: int = 0  # seller and buyer turns so far (critic turns do not count)
    offer: int | None = None  # the standing offer
    offerer: str | None = None
    price: int | None = None  # the agreed price
    walked_away: str | None = None
    log: list[Said] = field(default_factory=list)
    feedback: str | None = None  # the critic's latest advice, until the coached side reads it
    critic_due: bool = False


def render(said: Said) -> str:
    """A reply as the other side is shown it (before quoting)."""
    lines = [said.message] if said.message else []
    if said.accept:
        lines.append("ACCEPT")
    elif said.walk_away:
        lines.append("WALK AWAY")
    elif said.price is not None:
        lines.append(f"OFFER: {said.price}")
    return "\n".join(lines)


def surplus_shares(instance: BargainInstance, price: int) -> dict[str, float]:
    """Each side's share of the surplus at ``price``: 1 means it got all of it."""
    surplus = instance.budget - instance.cost
    if surplus <= 0:
        return {"seller": 0.0, "buyer": 0.0}
    return {"seller": (price - instance.cost) / surplus, "buyer": (instance.budget - price) / surplus}


RULES = {
    "seller": "You are the SELLER of {item} (list price ${list_price}). It cost you ${cost}: you may not sell below that. Sell for as much as you can.",
    "buyer": "You are the BUYER of {item} (list price ${list_price}). Your budget is ${budget}: you may not pay more. Pay as little as you can.",
}
#: The moves, shown at a side's first turn after how the game ends (:data:`FORMAT`).
MOVES = """Each turn, write a short message and exactly ONE control line:
  OFFER: <price in whole dollars>
  ACCEPT      (accept the {other}'s standing offer; this ends the game with a deal)
  WALK AWAY   (end the game with no deal)
Example reply:
  {example_message}
  OFFER: {example}"""
FORMAT = "The seller and the buyer take turns, {limit} turns in all. Without a deal by then, neither of you gains anything.\n" + MOVES


class BargainingGame(Game[BargainInstance, BargainState]):
    roles: ClassVar[tuple[str, ...]] = SIDES
    instance_cls = BargainInstance
    levels = tuple(LEVELS)
    max_reply_tokens = 96
    reward_range = (0.0, 1.0)  # the seat's share of the surplus
    zero_sum = True  # the shares of one deal add up to the whole surplus
    selfplay_description = "100 if a deal was struck when the buyer's budget exceeds the cost, and none otherwise"

    def selfplay_score(self, outcome: Outcome) -> float:
        right = (outcome.metric("agreed") > 0) == (outcome.metric("zone_exists") > 0)
        return 100.0 if right else 0.0

    def __init__(self, reward_view: str = "general") -> None:
        """``reward_view="zero_sum"`` rewards each side its share of the surplus minus the
        other side's (:mod:`dialogym.envs.games.negotiation.zero_sum`); the shares stay in the
        ``score_<side>`` metrics."""
        self.reward_view = check_reward_view(reward_view)

    # -- instances ---------------------------------------------------------------------
    def generate_instance(self, rng: np.random.Generator, level: str) -> BargainInstance:
        low, high, turn_limit = LEVELS[level]
        cost = int(rng.integers(20, 400))
        gap = 0
        while gap == 0:  # budget == cost would leave a zone of a single price and no surplus
            gap = int(rng.integers(int(np.floor(low * cost)), int(np.ceil(high * cost)) + 1))
        budget = cost + gap
        list_price = max(cost, budget) + int(rng.integers(max(5, cost // 10), max(10, cost // 2)))
        item = ITEMS[int(rng.integers(len(ITEMS)))]
        return BargainInstance(level=level, item=item, list_price=list_price, cost=cost, budget=budget, turn_limit=turn_limit)

    # -- rules -------------------------------------------------------------------------
    def initial_state(self, instance: BargainInstance) -> BargainState:
        return BargainState(instance=instance)

    def to_move(self, state: BargainState) -> list[str]:
        if self.is_terminal(state):
            return []
        if state.critic_due:
            return ["critic"]
        return [SIDES[state.turn % 2]]

    @staticmethod
    def other(seat: str) -> str:
        return SIDES[1 - SIDES.index(seat)]

    @staticmethod
    def example_price(instance: BargainInstance, seat: str) -> int:
        """A price this seat may offer, for examples (never the seat's exact limit)."""
        if seat == "seller":
            return instance.list_price
        return max(1, min(instance.budget - 1, instance.list_price // 2))

    def coached_feedback(self, state: BargainState, seat: str) -> str | None:
        """The critic's advice ``seat`` is shown, if any (none without a critic)."""
        return None

    def prompt(self, state: BargainState, seat: str) -> str:
        inst, other = state.instance, self.other(seat)
        parts = []
        if state.turn < 2:  # this side's first turn
            parts.append(RULES[seat].format(item=inst.item, list_price=inst.list_price, cost=inst.cost, budget=inst.budget))
            parts.append(self.format_text(inst, seat))
        if state.log and state.log[-1].seat == other:
            parts.append(f"The {other} says:\n{quote(render(state.log[-1]))}")
        feedback = self.coached_feedback(state, seat)
        if feedback:
            parts.append(f"Feedback from your coach:\n{quote(feedback)}")
        if state.offer is not None and state.offerer == other:
            parts.append(f"Standing offer by the {other}: ${state.offer}.")
        parts.append(self.turn_line(state))
        return "\n\n".join(parts)

    def format_text(self, inst: BargainInstance, seat: str) -> str:
        """How turns go, how the game ends and the moves, shown at a side's first turn."""
        return FORMAT.format(limit=inst.turn_limit, **self.format_fields(inst, seat))

    def format_fields(self, inst: BargainInstance, seat: str) -> dict[str, Any]:
        message = "It is in great condition." if seat == "seller" else "I like it, but it is a bit pricey."
        return {"other": self.other(seat), "example": self.example_price(inst, seat), "example_message": message}

    def turn_line(self, state: BargainState) -> str:
        """The prompt's last line: the turn count, and a warning on the last turn."""
        limit = state.instance.turn_limit
        last = " This is the last turn: ACCEPT now or there is no deal." if limit - state.turn == 1 else ""
        return f"Turn {state.turn + 1} of {limit}.{last} Your reply:"

    def parse_move(self, state: BargainState, seat: str, text: str) -> Move:
        inst = state.instance
        example = f'"OFFER: {self.example_price(inst, seat)}"'
        text = unify_line_breaks(text)  # "\r", "\u2028", ... end a line as "\n" does
        lines = text.strip().split("\n")
        control = [line for line in lines if _OFFER_RE.match(line) or _ACCEPT_RE.match(line) or _WALK_RE.match(line)]
        if len(control) != 1:
            found = "no control line" if not control else f"{len(control)} control lines"
            raise InvalidMove(f'bargaining: write exactly one control line ("OFFER: <price>", "ACCEPT" or "WALK AWAY"), found {found}; e.g. {example}')
        message = "\n".join(line for line in lines if line not in control).strip()[:MAX_MESSAGE_CHARS]
        line = control[0]
        if _WALK_RE.match(line):
            return Bargain(message=message, walk_away=True)
        if _ACCEPT_RE.match(line):
            if state.offer is None or state.offerer == seat:
                raise InvalidMove(f"bargaining: there is no offer from the {self.other(seat)} to accept; make one, e.g. {example}")
            self._check_limit(inst, seat, state.offer, "accept", example)
            return Bargain(message=message, accept=True)
        price = self._parse_price(_OFFER_RE.match(line).group(1), example)  # type: ignore[union-attr]
        self._check_limit(inst, seat, price, "offer", example)
        return Bargain(message=message, price=price)

    def move_grammar(self, state: BargainState, seat: str) -> str:
        """The control line first, then an optional message line (decision first: a guided
        reply cut at its token budget still holds its move): ``OFFER: <price>`` (the seller from its cost, the buyer up to its budget, at
        most 9 digits), ``ACCEPT`` when the other side's standing offer is within one's own
        limit, or ``WALK AWAY``."""
        inst = state.instance
        low, high = (inst.cost, MAX_PRICE) if seat == "seller" else (1, min(inst.budget, MAX_PRICE))
        controls = ['"WALK AWAY"']
        if low <= high:
            controls.append(f'"OFFER: " {int_range(low, high)}')
        if state.offer is not None and state.offerer != seat and low <= state.offer <= high:
            controls.append('"ACCEPT"')
        return grammar(
            'control ("\\n" MESSAGE)?', control=" | ".join(controls), MESSAGE=_GUIDED_MESSAGE
        )

    @staticmethod
    def _parse_price(raw: str, example: str) -> int:
        # Tolerate "$120", "120 dollars", "1,200" and a final full stop; nothing else.
        number = raw.strip().rstrip(".!").strip()
        number = re.sub(r"^\$\s*|\s*(\$|dollars?|usd)$", "", number, flags=re.IGNORECASE).replace(",", "")
        if not re.fullmatch(r"-?[0-9]+", number):
            raise InvalidMove(
                f"bargaining: the price must be a whole number of dollars (digits 0-9), got {excerpt(raw.strip())}; write e.g. {example}"
            )
        if number.startswith("-") or not re.fullmatch(WHOLE_NUMBER, number) or int(number) == 0:
            raise InvalidMove(
                f"bargaining: the price must be a positive whole number of dollars of at most 9 digits, got {excerpt(number)}; write e.g. {example}"
            )
        return int(number)

    @staticmethod
    def _check_limit(inst: BargainInstance, seat: str, price: int, verb: str, example: str) -> None:
        if seat == "seller" and price < inst.cost:
            raise InvalidMove(f"bargaining: you cannot {verb} ${price}: it is below your cost of ${inst.cost}; offer at least ${inst.cost}, e.g. {example}")
        if seat == "buyer" and price > inst.budget:
            raise InvalidMove(f"bargaining: you cannot {verb} ${price}: it is above your budget of ${inst.budget}; offer at most ${inst.budget}, e.g. {example}")

    def apply(self, state: BargainState, moves: Mapping[str, Move]) -> None:
        ((seat, move),) = moves.items()
        assert isinstance(move, Bargain)
        if move.accept:
            state.price = state.offer
        elif move.walk_away:
            state.walked_away = seat
        else:
            state.offer, state.offerer = move.price, seat
        state.log.append(Said(seat=seat, message=move.message, price=move.price, accept=move.accept, walk_away=move.walk_away))
        state.turn += 1

    def is_terminal(self, state: BargainState) -> bool:
        return state.price is not None or state.walked_away is not None or state.turn >= state.instance.turn_limit

    def score(self, state: BargainState) -> Outcome:
        inst = state.instance
        rewards = surplus_shares(inst, state.price) if state.price is not None else {"seller": 0.0, "buyer": 0.0}
        metrics = {
            "agreed": float(state.price is not None),
            "zone_exists": float(inst.zone_exists),
            "walked_away": float(state.walked_away is not None),
            "turns": float(state.turn),
            "score_seller": rewards["seller"],
            "score_buyer": rewards["buyer"],
        }
        if state.price is not None:
            metrics["price"] = float(state.price)
            metrics["price_over_list"] = state.price / inst.list_price
        return in_reward_view(Outcome(rewards=dict(rewards), metrics=metrics), self.reward_view, SIDES)

    def view(self, state: BargainState, seat: str) -> dict[str, Any]:
        """Public facts, the history, the standing offer, and only this side's own limit."""
        inst = state.instance
        view: dict[str, Any] = {
            "seat": seat,
            "item": inst.item,
            "list_price": inst.list_price,
            "turn": state.turn,
            "turn_limit": inst.turn_limit,
            "history": [
                {"seat": s.seat, "message": s.message, "price": s.price, "accept": s.accept, "walk_away": s.walk_away}
                for s in state.log
            ],
        }
        if seat == "seller":
            view["cost"] = inst.cost
        if seat == "buyer":
            view["budget"] = inst.budget
        if seat in SIDES:
            view["their_offer"] = state.offer if state.offerer == self.other(seat) else None
            view["my_offers"] = [s.price for s in state.log if s.seat == seat and s.price is not None]
        return view
