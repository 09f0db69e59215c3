"""Token ids and the loss mask of one record.

The ids are those of ``tokenizer(prompt + response)``. Loss is taken on every token from
the response's first token on: the first token whose character span reaches past the prompt.
Position 0 is never predicted, so it never carries loss.

Every cut of the prompt's start (``--prompt-tokens``, ``keep_prompt``, ``prompt_start``) keeps the
tokenizer's leading special tokens (a BOS) and cuts the text tokens after them: a model fed text
without its BOS is another model (Gemma 3's losses and gradients change several-fold), so a cut
that dropped it would measure that other model, not a shorter prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from gradspec.config.prompt import PromptConfig
from gradspec.data.records import Record
from gradspec.errors import first_line
from gradspec.prompting.steps import Step, char_spans, token_steps
from gradspec.prompting.templates import render_prompt


@dataclass(frozen=True)
class Encoded:
    """A record as the model sees it."""

    sample_id: str
    index: int
    input_ids: list[int]
    loss_mask: list[bool]  # loss_mask[t]: token t is a response token that is predicted
    n_prompt_tokens: int
    truncated: bool
    offsets: tuple[tuple[int, int], ...] | None = None
    """Each kept token's character span in the text it was cut from (None from slow tokenizers)."""
    response_start: int = 0
    """Where the response begins in that text: a token's response character is its offset minus this."""
    steps: tuple[Step, ...] = ()
    """The response's steps when they are measured (``compute --steps``)."""

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    @property
    def n_response_tokens(self) -> int:
        return sum(self.loss_mask)

    @property
    def n_positions(self) -> int:
        """Positions whose activations carry gradient: every kept token but the last (it predicts
        nothing kept), prompt positions included: the rank of any projection's gradient is at most this."""
        return self.n_tokens - 1


@dataclass(frozen=True)
class Skipped:
    """A record that leaves no response token to score, and why."""

    sample_id: str
    index: int
    reason: str
    n_tokens: int
    n_prompt_tokens: int


@dataclass(frozen=True)
class Refused:
    """A record the tokenizer raised on: that record is lost, not the run."""

    sample_id: str
    index: int
    reason: str


@dataclass(frozen=True)
class Tokens:
    """``tokenizer(text)``: ids, character spans (None from slow tokenizers), the response's first
    token, and how many special tokens lead the ids (a BOS; never a response token)."""

    ids: list[int]
    offsets: list[tuple[int, int]] | None
    start: int
    lead: int = 0


def leading_special(ids: Sequence[int], tokenizer: Any, start: int) -> int:
    """How many of the first ``start`` (prompt) ids are the tokenizer's special tokens in a row."""
    special = set(getattr(tokenizer, "all_special_ids", None) or ())
    n = 0
    while n < start and ids[n] in special:
        n += 1
    return n


def tokenize(tokenizer: Any, text: str, prompt_chars: int, add_special: bool) -> Tokens:
    """Ids of ``text`` and the index of the response's first token (the first whose span reaches
    past ``prompt_chars``)."""
    try:
        enc = tokenizer(text, add_special_tokens=add_special, return_offsets_mapping=True)
        offsets = [tuple(o) for o in enc["offset_mapping"]]
    except NotImplementedError:  # slow tokenizers have no offsets: count the prompt's own tokens
        ids = tokenizer(text, add_special_tokens=add_special)["input_ids"]
        n_prompt = len(tokenizer(text[:prompt_chars], add_special_tokens=add_special)["input_ids"])
        start = min(n_prompt, len(ids))
        return Tokens(list(ids), None, start, leading_special(ids, tokenizer, start))
    ids = list(enc["input_ids"])
    # Special tokens have empty spans (s == e); they belong to the side they stand on.
    start = next((t for t, (s, e) in enumerate(offsets) if e > prompt_chars and e > s), len(ids))
    return Tokens(ids, offsets, start, leading_special(ids, tokenizer, start))


# Text far longer than max_length tokens is cut in characters before it is tokenised (a 50 MB
# record would otherwise be tokenised whole to keep 64 tokens). The cut keeps CHARS_PER_TOKEN
# characters per token and a margin; tokenisation is local, so tokens far from a cut are the
# ones the whole text gives. The kept tokens are checked to lie at least MARGIN characters from
# every cut, and the whole text is tokenised when they do not, so the ids never change.
CHARS_PER_TOKEN = 32
MARGIN = 1024


def _kept(tok: Tokens, config: PromptConfig, window: int | None) -> tuple[int, int]:
    """[first, end) of the ids kept after the leading special tokens (``tok.lead``, always kept: the
    kept ids are ``ids[:lead] + ids[first:end]``): the response window and the last ``prompt_tokens``
    text tokens first, then ``max_length``: cutting the text's end (``end``); the response's end, and
    the prompt's start only for a quarter of ``max_length`` of response (``keep_prompt``); or the
    prompt's start, keeping one prompt token (``prompt_start``)."""
    lead = tok.lead
    room = config.max_length - lead  # what the leading tokens leave
    end = len(tok.ids) if window is None else min(len(tok.ids), tok.start + window)
    first = lead if config.prompt_tokens is None else max(tok.start - config.prompt_tokens, lead)
    if end - first > room:
        if config.truncation == "prompt_start":
            first = max(first, min(end - room, max(tok.start - 1, lead)))
        elif config.truncation == "keep_prompt":
            share = min(end - tok.start, max(1, config.max_length // 4))  # the response's share at least
            first = max(first, tok.start + share - room)
    return first, max(first, min(end, first + room))


def response_window(record: Record, config: PromptConfig) -> int | None:
    """How many response tokens carry loss: ``response_tokens``, the record's own ``response_window``
    (``record_windows``), the smaller of the two, or None for all of them."""
    own = record.window if config.record_windows else None
    given = [w for w in (config.response_tokens, own) if w is not None]
    return min(given) if given else None


def _cut(prompt: str, response: str, config: PromptConfig) -> tuple[str, int, int | None, int | None] | None:
    """A text far longer than ``max_length`` tokens cut in characters: (text, prompt characters
    in it, ``head``: 0 when the start was cut, ``tail``: where the end was cut); None when short."""
    budget = config.max_length * CHARS_PER_TOKEN + MARGIN
    if len(prompt) + len(response) <= 2 * budget:
        return None
    if config.truncation != "end" or config.prompt_tokens is not None:  # the prompt's end, the response's start
        kept_prompt, kept_response = prompt[-budget:], response[:budget]
        text = kept_prompt + kept_response
        head = 0 if len(kept_prompt) < len(prompt) else None
        return text, len(kept_prompt), head, len(text) if len(kept_response) < len(response) else None
    text = (prompt + response)[: 2 * budget]  # the text's start is kept
    return text, min(len(prompt), len(text)), None, len(text)


def _tokens_near_cuts(tok: Tokens, first: int, kept: int, head: int | None, tail: int | None) -> bool:
    """Whether a kept token lies within MARGIN characters of a cut (or cannot be placed)."""
    if tok.offsets is None or kept == 0:
        return True
    spans = [(s, e) for s, e in tok.offsets[first : first + kept] if e > s]  # special tokens have no span
    if not spans:
        return True
    if head is not None and spans[0][0] < head + MARGIN:
        return True
    return tail is not None and spans[-1][1] > tail - MARGIN


def encode(record: Record, tokenizer: Any, config: PromptConfig) -> Encoded | Skipped:
    """Tokenise a record, keep its response window and truncate it to ``config.max_length``."""
    if config.record_windows and record.window is None:
        why = record.window_problem or "no response_window field (select --match-length truncate writes it)"
        reason = f"record {record.index}: {why} (--record-windows)"
        return Skipped(record.sample_id, record.index, reason, 0, 0)
    window = response_window(record, config)
    prompt, add_special = render_prompt(record, tokenizer, config)
    tok: Tokens | None = None
    cut = _cut(prompt, record.response, config)
    if cut is not None:
        text, prompt_chars, head, tail = cut
        short = tokenize(tokenizer, text, prompt_chars, add_special)
        first, end = _kept(short, config, window)
        fits = window is None or len(short.ids) - short.start >= window
        if fits and not _tokens_near_cuts(short, first, end - first, head, tail):
            tok = short
    was_cut = tok is not None
    response_start = cut[1] if cut is not None and was_cut else len(prompt)
    if tok is None:
        tok = tokenize(tokenizer, prompt + record.response, len(prompt), add_special)
    n_total = len(tok.ids)
    if config.prompt_tokens is not None and tok.start - tok.lead < config.prompt_tokens:
        after = f" after {tok.lead} leading special token(s)" if tok.lead else ""
        reason = (
            f"record {record.index}: prompt has {tok.start - tok.lead} tokens{after}, fewer than --prompt-tokens "
            f"{config.prompt_tokens}"
        )
        return Skipped(record.sample_id, record.index, reason, n_total, tok.start)
    first, end = _kept(tok, config, window)
    kept = [*range(tok.lead), *range(first, end)]  # the leading special tokens, then the kept span
    ids, n_prompt = [tok.ids[t] for t in kept], tok.lead + tok.start - first
    if window is not None and n_total - tok.start < window:
        reason = f"record {record.index}: response has {n_total - tok.start} tokens, fewer than the window of {window}"
        return Skipped(record.sample_id, record.index, reason, n_total, tok.start)
    if window is not None and end - tok.start < window:
        reason = (
            f"record {record.index}: only {max(end - tok.start, 0)} of its {window} window tokens fit in "
            f"max_length {config.max_length} ({tok.start} prompt tokens)"
        )
        return Skipped(record.sample_id, record.index, reason, n_total, tok.start)
    mask = [t >= max(n_prompt, 1) for t in range(len(ids))]
    if not any(mask):
        if n_prompt >= len(ids):
            reason = (
                f"record {record.index}: prompt fills the max length ({'at least ' if was_cut else ''}{n_prompt} "
                f"prompt tokens, max_length {config.max_length}); no response token left"
            )
        else:
            reason = f"record {record.index}: response has no token that can be predicted"
        return Skipped(record.sample_id, record.index, reason, n_total, n_prompt)
    kept_text = n_total if window is None else min(n_total, tok.start + window)
    # Prompt tokens dropped by --prompt-tokens are a design, not a truncation.
    by_design = 0 if config.prompt_tokens is None else max(tok.start - config.prompt_tokens, tok.lead) - tok.lead
    truncated = kept_text - by_design > config.max_length or (was_cut and window is None)
    offsets = tuple(tok.offsets[t] for t in kept) if tok.offsets is not None else None
    return Encoded(
        record.sample_id, record.index, ids, mask, min(n_prompt, len(ids)), truncated, offsets, response_start
    )


def encode_record(record: Record, tokenizer: Any, config: PromptConfig) -> Encoded | Skipped | Refused:
    """``encode``, with a tokenizer's exception on this record as the record's reason."""
    try:
        return encode(record, tokenizer, config)
    except Exception as exc:  # noqa: BLE001  (one record the tokenizer cannot take costs that record only)
        why = f"record {record.index}: cannot be tokenised ({type(exc).__name__}: {first_line(exc)})"
        return Refused(record.sample_id, record.index, why)


def encode_records(
    records: Sequence[Record], tokenizer: Any, config: PromptConfig
) -> tuple[list[Encoded], dict[int, str]]:
    """(the records that can be measured, encoded; {index: why} for each of the others)."""
    ok: list[Encoded] = []
    bad: dict[int, str] = {}
    for record in records:
        enc = encode_record(record, tokenizer, config)
        if isinstance(enc, Encoded):
            ok.append(enc)
        else:
            bad[record.index] = enc.reason
    return ok, bad


def with_steps(enc: Encoded, response: str, rule: str) -> Encoded:
    """``enc`` with its response's steps by ``rule`` (see ``prompting.steps``); it needs the tokens'
    character offsets, which slow tokenizers do not give (ValueError)."""
    if enc.offsets is None:
        raise ValueError("--steps needs each token's character span, which this (slow) tokenizer does not give")
    return replace(
        enc, steps=tuple(token_steps(char_spans(response, rule), enc.offsets, enc.response_start, enc.loss_mask))
    )
