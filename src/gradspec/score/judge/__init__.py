"""LLM judges for InsTag and difficulty: prompts, clients, the reply cache, and reply parsing.

The OpenAI-compatible client needs httpx, the ``judge`` extra; it loads only when asked for."""

from __future__ import annotations

from typing import Any

from gradspec.errors import ConfigError
from gradspec.extras import require
from gradspec.score.judge.base import Judge
from gradspec.score.judge.cache import ReplyCache
from gradspec.score.judge.local import LocalJudge
from gradspec.score.judge.parse import parse_difficulty, parse_instag
from gradspec.score.judge.scores import judged_scores


def make_judge(spec: str, base_url: str | None = None, device: str = "auto", **options: Any) -> Judge:
    """``openai:MODEL`` (any OpenAI-compatible endpoint) or ``hf:default`` / ``hf:PATH`` (local).

    ``options`` go to the judge's constructor (``OpenAIJudge``: concurrency, max_retries,
    timeout, backoff, max_tokens; ``LocalJudge``: max_tokens, batch_size).
    """
    kind, _, name = spec.partition(":")
    try:
        if kind == "openai" and name:
            require("httpx", "judge", f"--judge {spec}")
            from gradspec.score.judge.openai_api import OpenAIJudge

            where: dict[str, Any] = {"base_url": base_url} if base_url else {}
            return OpenAIJudge(name, **where, **options)
        if kind == "hf" and name:
            return LocalJudge(name, device=device, **options)
    except TypeError as exc:
        raise ConfigError(f"--judge {spec}: {exc}") from exc
    raise ConfigError(f"--judge {spec!r}: give openai:MODEL or hf:default or hf:PATH")


__all__ = [
    "Judge",
    "LocalJudge",
    "ReplyCache",
    "judged_scores",
    "make_judge",
    "parse_difficulty",
    "parse_instag",
]
