"""Keeping the judge's API key out of everything gradspec writes or prints.

The key is read from ``OPENAI_API_KEY`` only and sent only as a header. A server may still echo
it (an error page repeating the request's headers), so every text that comes back from a judge
passes through ``redact`` before anything keeps, parses, cuts or shows it; and every file writer
and error line passes through ``scrub``, which removes the key itself wherever it appears.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

KEY_VARIABLE = "OPENAI_API_KEY"
REDACTED = "[redacted]"
# Shapes of secrets in a server's text: OpenAI-style keys, bearer tokens, and the value of an
# Authorization or api-key header or field, quoted or not.
SECRET_SHAPES = re.compile(
    r"(?i)(?P<prefix>(?:authorization|api[-_]key)[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token)\s+)?|bearer\s+)"
    r"(?P<value>[^\s\"',}\]]+)"
    r"|sk-[A-Za-z0-9_\-]{4,}"
)


def api_key() -> str | None:
    return os.environ.get(KEY_VARIABLE) or None


def scrub(text: str, key: str | None = None) -> str:
    """``text`` without the API key (the one given, or the environment's)."""
    key = key if key is not None else api_key()
    return text.replace(key, REDACTED) if key and key in text else text


def redact(text: str, key: str | None = None) -> str:
    """``text`` from a judge with the key, and anything shaped like a key or a token, replaced."""
    return scrub(SECRET_SHAPES.sub(lambda m: (m.group("prefix") or "") + REDACTED, text), key)


def scrub_value(value: Any, key: str | None = None) -> Any:
    """``value`` (records, nested lists and mappings) with the key removed from every text in it."""
    key = key if key is not None else api_key()
    if not key:
        return value
    if isinstance(value, str):
        return scrub(value, key)
    if isinstance(value, Mapping):
        return {scrub(k, key) if isinstance(k, str) else k: scrub_value(v, key) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_value(v, key) for v in value]
    return value
