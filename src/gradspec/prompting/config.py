"""Options of the prompting stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Template = Literal["auto", "plain", "chat"]
Truncation = Literal["end", "prompt_start"]


@dataclass(frozen=True)
class PromptConfig:
    """How a record becomes tokens.

    Attributes:
        template: ``plain`` joins the turns and the response with newlines (how base models
            are measured); ``chat`` uses the tokenizer's chat template with the generation
            prompt, then the response; ``auto`` is ``chat`` when the tokenizer has a template.
        system_prompt: a system turn put first when the record has none; ``None`` adds nothing.
        max_length: the most tokens of prompt plus response that are kept.
        truncation: ``end`` cuts the end of the text (the straightforward method, so numbers
            stay comparable); ``prompt_start`` drops the start of the prompt first to keep the
            response.
    """

    template: Template = "auto"
    system_prompt: str | None = None
    max_length: int = 2048
    truncation: Truncation = "end"

    def __post_init__(self) -> None:
        if self.max_length < 2:
            raise ValueError(f"max_length must be at least 2, got {self.max_length}")
        if self.template not in ("auto", "plain", "chat"):
            raise ValueError(f"template must be auto, plain or chat, got {self.template!r}")
        if self.truncation not in ("end", "prompt_start"):
            raise ValueError(f"truncation must be end or prompt_start, got {self.truncation!r}")
