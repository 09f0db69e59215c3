"""Options of the prompting stage: how a record becomes tokens and which of them carry loss."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gradspec.config.fields import Options

Template = Literal["auto", "plain", "chat"]
Truncation = Literal["end", "prompt_start"]


@dataclass(frozen=True)
class PromptConfig(Options):
    """How a record becomes tokens."""

    template: Template = "auto"
    """plain: the turns and the response joined by newlines (how base models are measured); chat: the
    tokenizer's chat template with the generation prompt, then the response (it may add the model's default
    system prompt); auto: chat when the tokenizer has a template."""

    system_prompt: str | None = None
    """A system turn put first in records that have none (default: none added)."""

    max_length: int = field(default=2048, metadata={"min": 2})
    """Most tokens of prompt plus response that are kept."""

    truncation: Truncation = "end"
    """end: cut the end of the text, as the straightforward method does; prompt_start: drop the start of the
    prompt first, keeping the response."""

    response_tokens: int | None = field(default=None, metadata={"min": 1})
    """A response window: only the first K response tokens carry loss and the text after them is dropped
    (causal attention means it could not change the gradient); a sample with fewer is skipped. Makes groups
    equal in length by design (default: every response token)."""

    record_windows: bool = False
    """Give each record its own window from its response_window field (select --match-length truncate writes
    it): every record of a truncation-matched pair is cut to its partner's length."""
