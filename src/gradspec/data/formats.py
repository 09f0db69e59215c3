"""Recognise the record layouts of post-training data and normalise them to chat turns.

Layouts, tried in this order on each record: chat ``messages`` (role/content), ShareGPT
``conversations`` (from/value), Alpaca (instruction/input/output) and prompt/response.
``--field-map`` renames fields first (``output=answer`` reads the response from ``answer``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gradspec.data.records import Message, Role

# ShareGPT speaker names seen in the wild, mapped to chat roles.
SPEAKERS: dict[str, Role] = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "model": "assistant",
    "system": "system",
}
LAYOUTS = "messages (role/content), conversations (from/value), instruction/output, or prompt/response"


class RecordProblem(ValueError):
    """A record that cannot be used; the message names the field."""


def apply_field_map(raw: Mapping[str, Any], field_map: Mapping[str, str]) -> dict[str, Any]:
    """Return the record with mapped fields under their canonical names."""
    rec = dict(raw)
    for canonical, source in field_map.items():
        if source in raw:
            rec[canonical] = raw[source]
        else:
            rec.pop(canonical, None)
    return rec


def has_layout(rec: Mapping[str, Any]) -> bool:
    """Whether a record carries the fields of any known layout."""
    return (
        "messages" in rec
        or "conversations" in rec
        or ("instruction" in rec and "output" in rec)
        or ("prompt" in rec and "response" in rec)
    )


def to_turns(rec: Mapping[str, Any]) -> tuple[tuple[Message, ...], str]:
    """Split a record into (turns before the response, response text)."""
    if "messages" in rec:
        turns = _turns(
            rec["messages"],
            "messages",
            "role",
            "content",
            lambda r: r if r in ("system", "user", "assistant") else None,
        )
    elif "conversations" in rec:
        turns = _turns(rec["conversations"], "conversations", "from", "value", lambda r: SPEAKERS.get(r.lower()))
    elif "instruction" in rec and "output" in rec:
        instruction = _text(rec, "instruction", allow_empty=True)
        extra = _text(rec, "input", allow_empty=True) if rec.get("input") is not None else ""
        user = f"{instruction}\n{extra}" if extra else instruction
        turns = [Message("user", user), Message("assistant", _text(rec, "output"))]
    elif "prompt" in rec and "response" in rec:
        turns = [Message("user", _text(rec, "prompt", allow_empty=True)), Message("assistant", _text(rec, "response"))]
    else:
        raise RecordProblem(f"no known layout; fields are {sorted(rec)[:20]}; expected {LAYOUTS}; use --field-map")
    if rec.get("system") is not None and not any(m.role == "system" for m in turns):
        turns.insert(0, Message("system", _text(rec, "system", allow_empty=True)))
    *context, last = turns
    if last.role != "assistant":
        raise RecordProblem("the last turn is not an assistant turn, so there is no response to score")
    if not last.content.strip():
        raise RecordProblem("the response (last assistant turn) is empty")
    return tuple(context), last.content


def _text(rec: Mapping[str, Any], field: str, allow_empty: bool = False) -> str:
    value = rec.get(field)
    if value is None:
        raise RecordProblem(f"field '{field}' is missing or null")
    if not isinstance(value, str):
        raise RecordProblem(f"field '{field}' is {type(value).__name__}, not text")
    if not allow_empty and not value.strip():
        raise RecordProblem(f"field '{field}' is empty")
    return _encodable(value, field)


def _encodable(text: str, field: str) -> str:
    """``text`` when it is valid Unicode; a lone surrogate (from a JSON escape like \\ud800) is
    not, and no tokenizer can take it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RecordProblem(
            f"field '{field}' holds text that is not valid Unicode ({exc.reason} at character {exc.start})"
        ) from None
    return text


def _turns(value: Any, field: str, role_key: str, text_key: str, role_of: Any) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise RecordProblem(f"field '{field}' must be a non-empty list of turns")
    turns: list[Message] = []
    for i, turn in enumerate(value):
        if not isinstance(turn, Mapping):
            raise RecordProblem(f"field '{field}[{i}]' is {type(turn).__name__}, not an object")
        speaker = turn.get(role_key)
        role = role_of(speaker) if isinstance(speaker, str) else None
        if role is None:
            raise RecordProblem(f"field '{field}[{i}].{role_key}' has unknown speaker {speaker!r}")
        text = turn.get(text_key)
        if not isinstance(text, str):
            raise RecordProblem(f"field '{field}[{i}].{text_key}' is {type(text).__name__}, not text")
        turns.append(Message(role, _encodable(text, f"{field}[{i}].{text_key}")))
    return turns
