"""Read judge replies: untrusted text, so every step is bounded and nothing is evaluated.

InsTag replies are a JSON list of ``{"tag", "explanation"}`` objects, often inside a code
fence and sometimes with LaTeX backslashes that are not valid JSON escapes; difficulty replies
carry a 1-10 rating on their first line. Both parsers say how they read a reply, so a value
read by a fallback can be told apart.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

MAX_REPLY_CHARS = 32_768  # longer replies are cut before they are parsed, stored or cached
MAX_TAGS = 200
MAX_TAG_CHARS = 200


def capped(reply: str) -> str:
    """A reply as gradspec keeps it: at most ``MAX_REPLY_CHARS`` characters, a cut said so."""
    if len(reply) <= MAX_REPLY_CHARS:
        return reply
    return reply[:MAX_REPLY_CHARS] + f"\n[gradspec: reply cut at {MAX_REPLY_CHARS} of {len(reply)} characters]"


_FENCE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)\n?\s*```", re.S)
_BAD_ESCAPE = re.compile(r'\\(?!["\\/bfnrtu])')
_TAG_FIELD = re.compile(r'"tag"\s*:\s*"((?:[^"\\\n]|\\.){0,500})"')
# "7", "**7**", "7/10", "Difficulty Score: 7", "Score - 7", "Rating: 7 out of 10."
_BARE = re.compile(r"\s*(\d{1,2})\s*")
_LABELLED = re.compile(
    r"\W*(?:[A-Za-z][A-Za-z ]{0,40}?\s*[:\-=]\s*)?\**\s*(\d{1,2})\s*\**\s*(?:(?:/|out of)\s*10)?\s*[.*]*\s*"
)


@dataclass(frozen=True)
class Tags:
    """An InsTag reply read: the tags in order, and how (``json``, ``repaired`` or ``regex``)."""

    tags: tuple[str, ...]
    how: str

    @property
    def count(self) -> int:
        return len(self.tags)


@dataclass(frozen=True)
class Level:
    """A difficulty reply read: 1-10, and how (``bare`` first line, or ``labelled``)."""

    value: int
    how: str


class ParseError(ValueError):
    """A reply that does not hold what was asked for; the message says what it held."""


def _preview(text: str) -> str:
    return repr(text[:60] + ("..." if len(text) > 60 else ""))


def _json_body(text: str) -> str:
    fenced = _FENCE.search(text)
    if fenced:
        return fenced.group(1).strip()
    start, end = text.find("["), text.rfind("]")
    return text[start : end + 1] if 0 <= start < end else text


def _tags_of(value: object) -> tuple[str, ...] | None:
    if not isinstance(value, list) or len(value) > MAX_TAGS:
        return None
    tags = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("tag"), str):
            return None
        tags.append(entry["tag"].strip()[:MAX_TAG_CHARS])
    return tuple(tags)


def parse_instag(reply: str) -> Tags:
    """The tags of an InsTag reply; raises ``ParseError`` when it holds none."""
    text = reply[:MAX_REPLY_CHARS].strip()
    body = _json_body(text)
    for how, candidate in (("json", body), ("repaired", _BAD_ESCAPE.sub(r"\\\\", body))):
        try:
            tags = _tags_of(json.loads(candidate))
        except (ValueError, RecursionError):
            continue
        if tags is not None:
            return Tags(tags, how)
    found = _TAG_FIELD.findall(body)
    if len(found) > MAX_TAGS:  # no instruction has that many intentions: a count cut to 200 would be a number made up
        raise ParseError(f"{len(found)} tags in the reply, more than {MAX_TAGS}: not a tag list")
    if found:
        return Tags(tuple(t.strip()[:MAX_TAG_CHARS] for t in found), "regex")
    raise ParseError(f"no JSON list of tags in the reply {_preview(text)}")


def parse_difficulty(reply: str) -> Level:
    """The 1-10 rating on a difficulty reply's first non-empty line; raises ``ParseError``."""
    text = reply[:MAX_REPLY_CHARS]
    first = next((line for line in text.splitlines() if line.strip()), "")[:200]
    for how, pattern in (("bare", _BARE), ("labelled", _LABELLED)):
        m = pattern.fullmatch(first)
        if m:
            value = int(m.group(1))
            if 1 <= value <= 10:
                return Level(value, how)
            raise ParseError(f"rating {value} on the first line is outside 1-10")
    raise ParseError(f"no 1-10 rating on the first line {_preview(first)}")
