"""Options of the prompting stage: how a record becomes tokens and which of them carry loss."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gradspec.config.fields import Options
from gradspec.errors import ConfigError

Template = Literal["auto", "plain", "chat"]
Truncation = Literal["end", "keep_prompt", "prompt_start"]


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
    """end: cut the end of the text, as the straightforward method does (a prompt that alone fills max_length
    leaves nothing to measure); keep_prompt: cut the response's end, and the prompt's start only when the
    prompt alone leaves the response less than a quarter of max_length (it then keeps that quarter, or the
    whole response when shorter); prompt_start: drop the prompt's start first, down to one token, keeping the
    response (a long response is then measured almost without its prompt)."""

    response_tokens: int | None = field(default=None, metadata={"min": 1})
    """A response window: only the first K response tokens carry loss and the text after them is dropped
    (causal attention means it could not change the gradient); a sample with fewer is skipped. Makes groups
    equal in length by design (default: every response token)."""

    prompt_tokens: int | None = field(default=None, metadata={"min": 1})
    """Keep exactly the last P prompt tokens (a record with fewer is skipped): with --response-tokens K every
    sample has exactly P + K positions, so the prompt's length cannot move its gradient either (every layer
    but the last passes gradient to prompt positions). P counts the text tokens after the tokenizer's leading
    special tokens (a BOS), which are kept before them: a model without its BOS is another model. Default:
    the whole prompt."""

    record_windows: bool = False
    """Give each record its own window from its response_window field (select --match-length truncate writes
    it): every record of a truncation-matched pair is cut to its partner's length."""

    def check(self) -> None:
        if self.prompt_tokens is not None and self.prompt_tokens >= self.max_length:
            raise ConfigError(
                f"--prompt-tokens {self.prompt_tokens} leaves no room for a response in --max-length {self.max_length}"
            )
        if self.prompt_tokens is not None and self.response_tokens is not None:
            if self.prompt_tokens + self.response_tokens > self.max_length:
                raise ConfigError(
                    f"--prompt-tokens {self.prompt_tokens} + --response-tokens {self.response_tokens} exceed "
                    f"--max-length {self.max_length}: every sample must fit whole"
                )
