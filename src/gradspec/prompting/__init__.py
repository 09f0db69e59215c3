"""Prompting stage: records to token ids and response-loss masks."""

from gradspec.config.prompt import PromptConfig
from gradspec.prompting.encode import Encoded, Skipped, encode, with_steps
from gradspec.prompting.templates import render_prompt, resolve_template

__all__ = ["Encoded", "PromptConfig", "Skipped", "encode", "render_prompt", "resolve_template", "with_steps"]
