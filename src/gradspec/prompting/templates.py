"""Render a record's turns into prompt text; the response text is appended unchanged.

The prompt/response split is kept as text so that the token boundary can be found from
character offsets of ``tokenizer(prompt + response)``, the ids the straightforward method uses.
"""

from __future__ import annotations

from typing import Any

from gradspec.config.prompt import PromptConfig, Template
from gradspec.data.records import Message, Record
from gradspec.errors import ConfigError


def resolve_template(template: Template, tokenizer: Any) -> Template:
    """``auto`` becomes ``chat`` when the tokenizer carries a chat template, else ``plain``."""
    has_chat = bool(getattr(tokenizer, "chat_template", None))
    if template == "auto":
        return "chat" if has_chat else "plain"
    if template == "chat" and not has_chat:
        raise ConfigError("--template chat: this tokenizer has no chat template; use --template plain")
    return template


def turns_with_system(record: Record, system_prompt: str | None) -> list[Message]:
    """The record's context turns, with ``system_prompt`` first when it has no system turn."""
    turns = list(record.messages)
    if system_prompt is not None and not any(m.role == "system" for m in turns):
        turns.insert(0, Message("system", system_prompt))
    return turns


def render_prompt(record: Record, tokenizer: Any, config: PromptConfig) -> tuple[str, bool]:
    """Return (prompt text, whether tokenising should add the tokenizer's special tokens).

    ``plain``: every context turn's text, each followed by a newline (instruction, newline,
    response). ``chat``: the chat template with the generation prompt; it already holds the
    special tokens it wants, so none are added on top.
    """
    template = resolve_template(config.template, tokenizer)
    turns = turns_with_system(record, config.system_prompt)
    if template == "plain":
        return "".join(f"{m.content}\n" for m in turns), True
    prompt = tokenizer.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in turns], add_generation_prompt=True, tokenize=False
    )
    return prompt, False


INSTRUCTION, RESPONSE, SYSTEM = "{instruction}", "{response}", "{system}"


def layout(tokenizer: Any, config: PromptConfig) -> str:
    """What the model sees for a one-turn record, with placeholders: the template made visible."""
    probe = Record(0, "layout", (Message("user", INSTRUCTION),), RESPONSE)
    prompt, _ = render_prompt(probe, tokenizer, config)
    return prompt + RESPONSE


def injected_system_prompt(tokenizer: Any, config: PromptConfig) -> str | None:
    """The system prompt a chat template adds by itself to records that have none (SmolLM2's names
    the model), found by rendering a record with and without a system turn; None when there is none."""
    if resolve_template(config.template, tokenizer) != "chat" or config.system_prompt is not None:
        return None
    without = layout(tokenizer, config)
    probe = Record(0, "layout", (Message("system", SYSTEM), Message("user", INSTRUCTION)), RESPONSE)
    with_system = render_prompt(probe, tokenizer, config)[0]
    if SYSTEM not in with_system:
        return None
    before = with_system[: with_system.index(SYSTEM)]
    after = with_system[with_system.index(SYSTEM) + len(SYSTEM) : with_system.index(INSTRUCTION)]
    if not without.startswith(before) or after not in without[len(before) :]:
        return None
    injected = without[len(before) : len(before) + without[len(before) :].index(after)]
    return injected or None
