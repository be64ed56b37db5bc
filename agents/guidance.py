"""Constrained decoding: a seat's move grammar becomes a token mask, row by row.

A guided request carries the grammar of the moves its seat may make now (llguidance's Lark
dialect, see :meth:`dialogym.envs.Game.move_grammar`). Each row of a batch gets its own
``llguidance.LLMatcher``; before every decoding step the matchers write one bitmask per row
(in parallel, outside the GIL), the logits of tokens the grammar forbids become ``-inf``,
and the token chosen is fed back to its row's matcher. Once a row's grammar is complete and
admits nothing more, only end-of-sequence is allowed, so a guided reply ends with its move.

The same masks are rebuilt after the fact by :func:`replay_masks` from the grammar and the
generated tokens, so trainers score a guided reply under exactly the distribution it was
sampled from (a token with one legal choice has log-prob 0 and no gradient).

A grammar that is a short list of literal moves (``start: ("[check]" | "[bet]")``:
:func:`literal_moves`) is decoded in the tokenizer's own tokenization of each move only. A
grammar mask alone lets a move be spelled in any tokens that add up to it (``[b`` ``et]``);
sampled hot, those spellings take a large share of the replies (about half at temperature 4 in
Kuhn Poker), and a trainer then moves the probability of spellings greedy decoding never
takes. With one spelling per move, the first token where two moves part is the choice, and
its tempered probabilities are the move's.

llguidance (MIT, the library behind vLLM's ``guidance`` structured-output backend) is a
dependency of dialogym; this module imports it lazily so that unguided play never pays for it.
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

_TOKENIZERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


class GrammarError(ValueError):
    """A move grammar llguidance cannot compile (a bug of the game that wrote it)."""


def _llguidance() -> Any:
    try:
        import llguidance
        import llguidance.hf  # noqa: F401
    except ImportError as err:  # pragma: no cover - a dependency; only a broken install lacks it
        raise ImportError("guided moves need llguidance: pip install llguidance") from err
    return llguidance


def grammar_tokenizer(tokenizer: Any, vocab_size: int, eos_ids: Iterable[int]) -> Any:
    """llguidance's view of a Hugging Face fast tokenizer, built once per tokenizer (~1 s
    for a 49k vocabulary) and cached while the tokenizer lives."""
    llg = _llguidance()
    with _LOCK:
        cached = _TOKENIZERS.get(tokenizer)
        if cached is None or cached[0] != vocab_size:
            eos = sorted(set(eos_ids))
            built = llg.hf.from_tokenizer(tokenizer, n_vocab=vocab_size, eos_token=eos[0] if len(eos) == 1 else eos)
            cached = (vocab_size, built)
            _TOKENIZERS[tokenizer] = cached
        return cached[1]


def matcher(lltokenizer: Any, grammar: str) -> Any:
    """A fresh matcher of ``grammar`` (Lark); :class:`GrammarError` if it does not compile."""
    llg = _llguidance()
    compiled = llg.LLMatcher.grammar_from_lark(grammar)
    found = llg.LLMatcher(lltokenizer, compiled, log_level=0)
    if found.is_error():
        raise GrammarError(f"move grammar does not compile: {found.get_error()}\n--- grammar ---\n{grammar}")
    return found


def check_grammar(grammar: str) -> None:
    """Raise :class:`GrammarError` unless ``grammar`` compiles (no tokenizer needed)."""
    llg = _llguidance()
    compiled = llg.LLMatcher.grammar_from_lark(grammar)
    error = llg.LLMatcher.validate_grammar(compiled)
    if error and not error.startswith("WARNING"):
        raise GrammarError(f"move grammar does not compile: {error}\n--- grammar ---\n{grammar}")


def accepts(grammar: str, text: str, *, prefix: bool = False) -> bool:
    """Whether ``grammar`` accepts the whole of ``text`` or, with ``prefix``, whether ``text``
    is the start of a string it accepts (a reply cut at its token cap). A tokenizer of single
    bytes reads the text, so the check does not depend on how a model would split it."""
    lltokenizer = _byte_tokenizer()
    found = matcher(lltokenizer, grammar)
    ok = found.consume_tokens(lltokenizer.tokenize_str(text)) if text else True
    return bool(ok) and not found.is_error() and (prefix or found.is_accepting())


def _byte_tokenizer() -> Any:
    """The tiny model's tokenizer (one token per byte), as llguidance sees it."""
    global _BYTE_TOKENIZER
    if _BYTE_TOKENIZER is None:
        from .models import tiny_tokenizer

        tok = tiny_tokenizer()
        _BYTE_TOKENIZER = grammar_tokenizer(tok, len(tok), [tok.eos_token_id])
    return _BYTE_TOKENIZER


_BYTE_TOKENIZER: Any = None


_LITERAL = r'"(?:[^"\\\n]|\\.)*"'
_LITERAL_LIST = re.compile(rf"\s*start\s*:\s*\(?\s*({_LITERAL}(?:\s*\|\s*{_LITERAL})*)\s*\)?\s*")
#: a longer list is left to the grammar mask alone (the per-row bookkeeping grows with it)
MAX_LITERAL_MOVES = 64


def literal_moves(grammar: str) -> list[str] | None:
    """The moves of a grammar that is one alternation of string literals (``start: ("[check]"
    | "[bet]")``), in order; None for any other grammar (or more than :data:`MAX_LITERAL_MOVES`)."""
    found = _LITERAL_LIST.fullmatch(grammar)
    if found is None:
        return None
    moves = [json.loads(text) for text in re.findall(_LITERAL, found.group(1))]
    return moves if 0 < len(moves) <= MAX_LITERAL_MOVES else None


def unpack(bitmask: Any, vocab_size: int) -> Any:
    """llguidance's packed int32 bitmask (rows, ceil(V/32)) as a bool tensor (rows, V)."""
    import torch

    shifts = torch.arange(32, dtype=torch.int32, device=bitmask.device)
    bits = (bitmask.unsqueeze(-1) >> shifts) & 1
    return bits.reshape(bitmask.shape[0], -1)[:, :vocab_size].bool()


class RowMasks:
    """One matcher per row of a batch (``None``: that row is unconstrained).

    ``allowed()`` gives the (rows, V) bool mask of the next step; ``advance(tokens)`` feeds
    each live row the token it got. Rows whose grammar is complete and admits nothing more
    allow only end-of-sequence; a row stops being tracked once ``advance`` is told it ended.
    """

    def __init__(self, lltokenizer: Any, grammars: Sequence[str | None], vocab_size: int, eos_ids: Iterable[int]) -> None:
        import torch

        llg = _llguidance()
        self.vocab_size = vocab_size
        self.eos_ids = sorted(set(eos_ids))
        self.matchers = [matcher(lltokenizer, g) if g is not None else None for g in grammars]
        self.live = [m is not None for m in self.matchers]
        #: per row, the token spellings of a literal list's moves (None: the mask alone), and
        #: the tokens the row has had
        self.spellings = [_spellings(lltokenizer, g) if g is not None else None for g in grammars]
        self.written: list[list[int]] = [[] for _ in grammars]
        self.bitmask = torch.full(((len(grammars)), (vocab_size + 31) // 32), -1, dtype=torch.int32)
        self.executor = llg.LLExecutor() if any(self.live) else None

    @property
    def any_guided(self) -> bool:
        return any(m is not None for m in self.matchers)

    def allowed(self) -> Any:
        """Bool mask (rows, V): True where the row's grammar allows the token now."""
        import llguidance.torch as llt

        self.bitmask.fill_(-1)
        rows = [(m, i) for i, m in enumerate(self.matchers) if m is not None and self.live[i]]
        if rows:
            llt.fill_next_token_bitmask_par(self.executor, rows, self.bitmask)
        mask = unpack(self.bitmask, self.vocab_size)
        for _, i in rows:
            m = self.matchers[i]
            if m.is_stopped() or not mask[i].any():
                # complete: the move is written; end the reply
                mask[i] = False
                mask[i, self.eos_ids] = True
            elif m.is_accepting():
                mask[i, self.eos_ids] = True
            spellings = self.spellings[i]
            if spellings is not None and not m.is_stopped():
                done = tuple(self.written[i])
                following = sorted({s[len(done)] for s in spellings if len(s) > len(done) and s[: len(done)] == done})
                if following:  # else the move is written: the mask already ends the reply
                    mask[i] = False
                    mask[i, following] = True
                    if done in spellings:  # a move that is the start of another
                        mask[i, self.eos_ids] = True
        return mask

    def advance(self, tokens: Sequence[int], ended: Sequence[bool]) -> None:
        """Feed row ``i`` its token ``tokens[i]``; rows with ``ended[i]`` stop being tracked."""
        for i, m in enumerate(self.matchers):
            if m is None or not self.live[i]:
                continue
            if ended[i] or tokens[i] in self.eos_ids:
                self.live[i] = False
                continue
            if not m.consume_token(int(tokens[i])):
                raise GrammarError(f"row {i}: token {tokens[i]} rejected by its grammar: {m.get_error()}")
            self.written[i].append(int(tokens[i]))


def _spellings(lltokenizer: Any, grammar: str) -> set[tuple[int, ...]] | None:
    """The tokenizer's own token ids of each move of a literal list (:func:`literal_moves`)."""
    moves = literal_moves(grammar)
    return None if moves is None else {tuple(lltokenizer.tokenize_str(move)) for move in moves}


@dataclass(frozen=True)
class Choice:
    """A literal list's moves (:func:`literal_moves`) decoded as one choice: every move's
    spelling starts with ``prefix`` (tokens the mask forces), the next token tells the moves
    apart, and ``rest[token]`` is what the mask then forces: the rest of that move.

    Under :class:`RowMasks` such a reply has one step with a choice; at every other step one
    token is allowed (log-prob 0), end of sequence last. A decoder that knows this may append
    ``prefix`` to the prompt, run the model once for the choice and write the rest without
    running it again (jump-forward decoding): the same tokens, log-probs and draws.
    """

    prefix: tuple[int, ...]
    rest: dict[int, tuple[int, ...]]

    @property
    def longest(self) -> int:
        """Tokens of the longest reply, end of sequence included."""
        return len(self.prefix) + 1 + max(map(len, self.rest.values())) + 1


def choice_of(lltokenizer: Any, grammar: str) -> Choice | None:
    """The :class:`Choice` of a literal-list grammar whose moves' spellings part at one
    token and no move's text starts another's; None for any other grammar (decoded step
    by step under :class:`RowMasks`)."""
    moves = literal_moves(grammar)
    if moves is None or len(set(moves)) < 2:
        return None
    if any(a != b and b.startswith(a) for a in moves for b in moves):
        return None  # a complete move the grammar may extend: the step after it is a choice
    spellings = {tuple(lltokenizer.tokenize_str(move)) for move in moves}
    width = 0
    first = next(iter(spellings))
    while all(len(s) > width + 1 and s[width] == first[width] for s in spellings):
        width += 1
    rest = {s[width]: s[width + 1 :] for s in spellings if len(s) > width}
    if len(rest) != len(spellings):
        return None
    return Choice(prefix=first[:width], rest=rest)


def replay_masks(lltokenizer: Any, grammar: str, token_ids: Sequence[int], vocab_size: int, eos_ids: Iterable[int]) -> Any:
    """The (len(token_ids), V) bool masks a guided reply was sampled under, rebuilt from its
    grammar and tokens: row ``t`` is the mask before token ``t`` was chosen."""
    import torch

    rows = RowMasks(lltokenizer, [grammar], vocab_size, eos_ids)
    out = torch.zeros((len(token_ids), vocab_size), dtype=torch.bool)
    for t, token in enumerate(token_ids):
        out[t] = rows.allowed()[0]
        if not out[t, int(token)]:
            raise GrammarError(f"token {token} at position {t} is not allowed by the recorded grammar")
        rows.advance([int(token)], [False])
    return out
