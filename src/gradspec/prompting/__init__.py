"""Prompting stage: records to token ids and response-loss masks."""

from gradspec.config.prompt import PromptConfig
from gradspec.prompting.encode import Encoded, Refused, Skipped, encode, encode_record, encode_records, with_steps
from gradspec.prompting.templates import render_prompt, resolve_template

__all__ = [
    "Encoded",
    "PromptConfig",
    "Refused",
    "Skipped",
    "encode",
    "encode_record",
    "encode_records",
    "render_prompt",
    "resolve_template",
    "with_steps",
]
