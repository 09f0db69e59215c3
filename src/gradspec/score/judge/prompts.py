"""The questions put to the judge. Written for gradspec; they ask for what the InsTag and
difficulty columns of the field's data hold: a JSON list of intention tags with explanations,
and a 1-10 rating on the first line followed by a reason.

A user template is any text with ``{instruction}`` where the instruction goes; other braces
are left alone (JSON examples need them).
"""

from __future__ import annotations

from pathlib import Path

from gradspec.data import Record
from gradspec.errors import ConfigError
from gradspec.inputs import read_text

PLACEHOLDER = "{instruction}"

INSTAG = """You label the intentions behind a request that a user sent to an AI assistant.
Find every distinct intention in the request below, at a fine grain (the skills, topics, and \
constraints it asks for), and give each one a short tag and a one-sentence explanation.

Answer with a JSON list and nothing else, in this form:
[{"tag": "tag name", "explanation": "why the request has this intention"}]

Request:
{instruction}"""

DIFFICULTY = """Rate how hard the following instruction is for an AI assistant to answer well, \
from 1 (trivial: a single fact or a short rewrite) to 10 (expert: long, multi-step reasoning \
across several domains).

Write only the rating, a single integer, on the first line. Then explain the rating in two or \
three sentences.

Instruction:
{instruction}"""

DEFAULTS = {"instag": INSTAG, "difficulty": DIFFICULTY}


def load_template(kind: str, path: str | Path | None) -> str:
    """The default template of ``kind``, or the user's from ``path`` (which must hold the placeholder)."""
    if path is None:
        return DEFAULTS[kind]
    p = Path(path)
    text = read_text(p, f"--{kind}-prompt")
    if PLACEHOLDER not in text:
        raise ConfigError(f"--{kind}-prompt {p}: the template has no {PLACEHOLDER} placeholder")
    return text


def instruction_text(record: Record) -> str:
    """What the judge sees of a record: its non-system turns before the response."""
    return "\n\n".join(m.content for m in record.messages if m.role != "system")


def render(template: str, record: Record) -> str:
    return template.replace(PLACEHOLDER, instruction_text(record))
