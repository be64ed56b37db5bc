"""Buyer-seller bargaining, after Fu et al. 2023, "Improving Language Model Negotiation with
Self-Play and In-Context Learning from AI Feedback".

One item. The seller has a private cost, the buyer a private budget. They alternate,
seller first; a reply is a short message with one control line:

- ``OFFER: <price>`` — a price in whole dollars; the seller may not offer below its cost,
  the buyer not above its budget;
- ``ACCEPT`` — accept the other side's standing offer (ends the game with a deal).

With no deal when the turn limit is reached, both score 0. A deal at price ``p`` pays the
seller ``(p - cost) / (budget - cost)`` and the buyer ``(budget - p) / (budget - cost)``:
each side's share of the surplus. Because offers outside one's own limit are rule errors,
every deal lies in the zone of agreement. On ``hard`` the zone is narrow, and in about one
instance in five there is none (budget < cost): walking away is then right.

``dialogym/BargainingCritic-v0`` adds a ``critic`` seat (as in Fu et al.): after every
buyer turn the critic reads the public dialogue and writes ``FEEDBACK: <advice>``, which
the seller sees at its next turn. The critic's reward is the seller's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import Game, Instance, InvalidMove, Move, Outcome, quote

ITEMS = ("a used bicycle", "a vintage camera", "an oak bookshelf", "a road atlas collection", "a ceramic teapot set")
TURN_LIMITS = {"easy": 10, "hard": 8}
_OFFER_RE = re.compile(r"^\s*OFFER\s*:\s*\$?\s*(\S+?)\s*$", re.IGNORECASE | re.MULTILINE)
_ACCEPT_RE = re.compile(r"^\s*ACCEPT\s*\.?\s*$", re.IGNORECASE | re.MULTILINE)
_FEEDBACK_RE = re.compile(r"^\s*FEEDBACK\s*:\s*(.+)$", re.IGNORECASE | re.DOTALL)


class BargainInstance(Instance):
    item: str
    cost: int
    budget: int
    list_price: int
    turn_limit: int

    @property
    def zone_exists(self) -> bool:
        return self.budget > self.cost


class Bargain(Move):
    message: str
    price: int | None = None
    accept: bool = False


class Feedback(Move):
    advice: str


@dataclass
class BargainState:
    instance: BargainInstance
    turn: int = 0  # seller and buyer turns so far
    offer: int | None = None
    offerer: str | None = None
    price: int | None = None  # agreed price
    log: list[tuple[str, str]] = field(default_factory=list)
    feedback: str | None = None
    critic_due: bool = False


RULES = {
    "seller": "You are the SELLER of {item} (listed at ${list_price}). It cost you ${cost}: never sell below that. Get the highest price you can.",
    "buyer": "You are the BUYER of {item} (listed at ${list_price}). Your budget is ${budget}: never pay more. Pay as little as you can.",
}
FORMAT = """The seller and buyer take turns ({limit} turns in total); with no deal at the end, neither gains anything.
Write a short message and ONE control line:
  OFFER: <price in whole dollars>
  ACCEPT            (accept the other side's standing offer; this ends the game)"""


class BargainingGame(Game[BargainInstance, BargainState]):
    roles: tuple[str, ...] = ("seller", "buyer")
    instance_cls = BargainInstance
    levels = tuple(TURN_LIMITS)
    max_reply_tokens = 96

    def generate_instance(self, rng: np.random.Generator, level: str) -> BargainInstance:
        cost = int(rng.integers(20, 200))
        if level == "easy":
            budget = cost + int(rng.integers(cost // 4 + 5, cost + 10))
        else:
            budget = cost + int(rng.integers(-cost // 8, cost // 3 + 2))
        list_price = max(cost, budget) + int(rng.integers(5, 40))
        return BargainInstance(
            level=level, item=str(rng.choice(ITEMS)), cost=cost, budget=budget,
            list_price=list_price, turn_limit=TURN_LIMITS[level],
        )

    def initial_state(self, instance: BargainInstance) -> BargainState:
        return BargainState(instance=instance)

    def to_move(self, state: BargainState) -> list[str]:
        if self.is_terminal(state):
            return []
        if state.critic_due and "critic" in self.roles:
            return ["critic"]
        return [("seller", "buyer")[state.turn % 2]]

    def prompt(self, state: BargainState, seat: str) -> str:
        inst = state.instance
        if seat == "critic":
            return self._critic_prompt(state)
        other = "buyer" if seat == "seller" else "seller"
        parts = []
        if state.turn < 2:
            parts.append(RULES[seat].format(item=inst.item, list_price=inst.list_price, cost=inst.cost, budget=inst.budget))
            parts.append(FORMAT.format(limit=inst.turn_limit))
        if state.log and state.log[-1][0] == other:
            parts.append(f"The {other} says:\n{quote(state.log[-1][1])}")
        if seat == "seller" and state.feedback:
            parts.append(f"Your coach's feedback:\n{quote(state.feedback)}")
        if state.offer is not None and state.offerer == other:
            parts.append(f"Standing offer by the {other}: ${state.offer}.")
        parts.append(f"Turn {state.turn + 1} of {inst.turn_limit}. Your reply:")
        return "\n\n".join(parts)

    def _critic_prompt(self, state: BargainState) -> str:
        dialogue = "\n".join(f"{seat}:\n{quote(text)}" for seat, text in state.log)
        return (
            f"You coach the SELLER of {state.instance.item} (listed at ${state.instance.list_price}). "
            "Read the dialogue so far and give the seller one short piece of advice for a higher price.\n\n"
            f"{dialogue}\n\nReply with one line: FEEDBACK: <advice>"
        )

    def parse_move(self, state: BargainState, seat: str, text: str) -> Move:
        if seat == "critic":
            match = _FEEDBACK_RE.match(text.strip())
            if not match or not match.group(1).strip():
                raise InvalidMove('reply with one line "FEEDBACK: <advice>", e.g. "FEEDBACK: concede in smaller steps"')
            return Feedback(advice=match.group(1).strip()[:500])
        offers, accepts = _OFFER_RE.findall(text), _ACCEPT_RE.findall(text)
        if len(offers) + len(accepts) != 1:
            raise InvalidMove('write exactly one control line: "OFFER: <price>" or "ACCEPT", e.g. "OFFER: 120"')
        lines = text.strip().splitlines()
        message = "\n".join(x for x in lines if not (_OFFER_RE.match(x) or _ACCEPT_RE.match(x))).strip()
        inst = state.instance
        if accepts:
            if state.offer is None or state.offerer == seat:
                raise InvalidMove('there is no offer from the other side to accept; make one, e.g. "OFFER: 120"')
            self._check_limit(seat, state.offer, inst, "accept")
            return Bargain(message=message, accept=True)
        raw = offers[0].replace(",", "")
        if not re.fullmatch(r"\d{1,7}", raw):
            raise InvalidMove(f'the price must be a whole number of dollars, got {offers[0]!r}; write e.g. "OFFER: 120"')
        price = int(raw)
        self._check_limit(seat, price, inst, "offer")
        return Bargain(message=message, price=price)

    @staticmethod
    def _check_limit(seat: str, price: int, inst: BargainInstance, verb: str) -> None:
        if seat == "seller" and price < inst.cost:
            raise InvalidMove(f"you cannot {verb} ${price}: it is below your cost of ${inst.cost}")
        if seat == "buyer" and price > inst.budget:
            raise InvalidMove(f"you cannot {verb} ${price}: it is above your budget of ${inst.budget}")

    def apply(self, state: BargainState, moves: Mapping[str, Move]) -> None:
        ((seat, move),) = moves.items()
        if isinstance(move, Feedback):
            state.feedback, state.critic_due = move.advice, False
            return
        assert isinstance(move, Bargain)
        shown = move.message
        if move.accept:
            state.price = state.offer
            shown = (shown + "\n" if shown else "") + f"(accepts ${state.offer})"
        else:
            state.offer, state.offerer = move.price, seat
            shown = (shown + "\n" if shown else "") + f"(offers ${move.price})"
        state.log.append((seat, shown))
        state.turn += 1
        state.critic_due = seat == "buyer" and state.price is None and state.turn < state.instance.turn_limit

    def is_terminal(self, state: BargainState) -> bool:
        return state.price is not None or state.turn >= state.instance.turn_limit

    def score(self, state: BargainState) -> Outcome:
        inst = state.instance
        rewards = {seat: 0.0 for seat in self.roles}
        metrics = {"agreed": float(state.price is not None), "zone_exists": float(inst.zone_exists), "turns": float(state.turn)}
        if state.price is not None:
            surplus = inst.budget - inst.cost
            rewards["seller"] = (state.price - inst.cost) / surplus if surplus else 0.5
            rewards["buyer"] = (inst.budget - state.price) / surplus if surplus else 0.5
            metrics["price"] = float(state.price)
            metrics["seller_share"] = rewards["seller"]
        if "critic" in self.roles:
            rewards["critic"] = rewards["seller"]
        return Outcome(rewards=rewards, metrics=metrics)

    def view(self, state: BargainState, seat: str) -> dict[str, Any]:
        inst = state.instance
        view: dict[str, Any] = {"seat": seat, "turn": state.turn, "turn_limit": inst.turn_limit, "list_price": inst.list_price}
        if seat == "seller":
            view["cost"] = inst.cost
        if seat == "buyer":
            view["budget"] = inst.budget
        if seat != "critic":
            view["their_offer"] = state.offer if state.offerer not in (None, seat) else None
            view["my_offers"] = [int(t.split("(offers $")[1].rstrip(")")) for s, t in state.log if s == seat and "(offers $" in t]
        else:
            view["log"] = list(state.log)
        return view


class BargainingWithCriticGame(BargainingGame):
    roles = ("seller", "buyer", "critic")


# -- scripted players --------------------------------------------------------------------
def conceding_seller(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Opens at the list price and concedes 30% of the way to the buyer's offer (or to
    its cost) each turn; accepts an offer at or above what it would ask next."""
    cost, theirs, mine = view["cost"], view["their_offer"], view["my_offers"]
    last = mine[-1] if mine else view["list_price"]
    floor = theirs if theirs is not None and theirs >= cost else cost
    ask = max(cost, round(last - 0.3 * (last - floor))) if mine else view["list_price"]
    last_turn = view["turn"] >= view["turn_limit"] - 2
    if theirs is not None and theirs >= cost and (theirs >= ask or last_turn):
        return "Fine, it's yours.\nACCEPT"
    return f"I can do ${ask}.\nOFFER: {ask}"


def conceding_buyer(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Opens at 60% of its budget and concedes 30% of the way toward the seller's ask (or
    its budget) each turn; accepts an ask at or below what it would offer next."""
    budget, theirs, mine = view["budget"], view["their_offer"], view["my_offers"]
    last = mine[-1] if mine else round(0.6 * budget)
    ceiling = theirs if theirs is not None and theirs <= budget else budget
    bid = min(budget, round(last + 0.3 * (ceiling - last))) if mine else round(0.6 * budget)
    last_turn = view["turn"] >= view["turn_limit"] - 2
    if theirs is not None and theirs <= budget and (theirs <= bid or last_turn):
        return "Deal.\nACCEPT"
    return f"How about ${bid}?\nOFFER: {bid}"


def template_critic(view: dict[str, Any], rng: np.random.Generator) -> str:
    tips = ("concede in smaller steps", "anchor near the list price", "point out the item's condition before conceding")
    return f"FEEDBACK: {tips[int(rng.integers(len(tips)))]}"


PLAYERS = {"conceding": {"seller": conceding_seller, "buyer": conceding_buyer, "critic": template_critic}}


def register_games() -> None:
    from ..registry import register

    register("dialogym/Bargaining-v0", BargainingGame, players={"conceding": {k: v for k, v in PLAYERS["conceding"].items() if k != "critic"}}, level="easy")
    register("dialogym/BargainingCritic-v0", BargainingWithCriticGame, players=PLAYERS, level="easy")
