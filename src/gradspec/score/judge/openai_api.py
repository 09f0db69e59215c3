"""A judge behind any OpenAI-compatible chat-completions endpoint.

Concurrency through a thread pool; retries with exponential backoff (and the server's
``Retry-After``, bounded) on 429, 408, 409, 5xx, timeouts, dropped connections and replies
that are not the protocol's JSON. Other 4xx answers fail at once. The timeout is a deadline
for the whole reply (a server that trickles its answer is cut off when it passes), and a body
is read up to a bounded size. The key comes only from ``OPENAI_API_KEY`` and is sent only as a
header: it is never part of a name, a setting, a cache key, a log line or a manifest, and
anything in a server's answer that looks like it is redacted before it is kept or shown.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import httpx
from tqdm.auto import tqdm

from gradspec.errors import ConfigError
from gradspec.score.judge.base import OnReply
from gradspec.secrets import KEY_VARIABLE, redact

OPENAI_URL = "https://api.openai.com/v1"
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_BODY_BYTES = 4 << 20


class JudgeFailure(Exception):
    """A prompt that got no usable reply; the message says why (never the key)."""


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.wait = wait


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def _content(body: bytes) -> str:
    """The reply text of a 200 answer; ``_Retry`` when the body is not the protocol's."""
    try:
        content = json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError, RecursionError) as exc:
        text = body[:80].decode("utf-8", errors="replace")
        raise _Retry(f"malformed reply ({type(exc).__name__}): {text!r}") from exc
    if not isinstance(content, str):
        raise _Retry(f"malformed reply: content is {type(content).__name__}")
    return content


@dataclass
class OpenAIJudge:
    """``--judge openai:MODEL``."""

    model: str
    base_url: str = OPENAI_URL
    concurrency: int = 8
    max_retries: int = 5
    timeout: float = 60.0
    backoff: float = 1.0
    max_backoff: float = 30.0
    max_tokens: int = 1024
    temperature: float = 0.0

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.id = f"openai:{self.model}"
        self._key = os.environ.get(KEY_VARIABLE) or None
        if self._key is None and self.base_url == OPENAI_URL:
            raise ConfigError(
                "--judge openai: set the OPENAI_API_KEY environment variable (keys are never taken as options)"
            )

    @property
    def settings(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "max_tokens": self.max_tokens, "temperature": self.temperature}

    def redact(self, text: str) -> str:
        """``text`` with the key, and anything shaped like a key or a bearer token, replaced."""
        return redact(text, self._key)

    def _post(self, client: httpx.Client, prompt: str) -> str:
        payload = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        deadline = time.monotonic() + self.timeout
        body = bytearray()
        try:
            with client.stream("POST", "/chat/completions", json=payload) as response:
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY_BYTES:
                        raise _Retry(f"reply body over {MAX_BODY_BYTES} bytes")
                    if time.monotonic() > deadline:
                        raise _Retry(f"no whole reply within {self.timeout:g} s")
        except httpx.TimeoutException as exc:
            raise _Retry(f"timed out after {self.timeout:g} s") from exc
        except httpx.TransportError as exc:
            raise _Retry(f"connection failed ({type(exc).__name__})") from exc
        if response.status_code in RETRY_STATUS:
            raise _Retry(f"HTTP {response.status_code}", _retry_after(response))
        if response.status_code != 200:
            text = bytes(body[:120]).decode("utf-8", errors="replace")
            raise JudgeFailure(f"HTTP {response.status_code}: {text!r}")
        return _content(bytes(body))

    def ask_one(self, client: httpx.Client, prompt: str) -> str:
        """One prompt, retried; raises ``JudgeFailure`` when every attempt failed."""
        reason = ""
        for attempt in range(self.max_retries + 1):
            try:
                return self._post(client, prompt)
            except _Retry as exc:
                reason = str(exc)
                if attempt == self.max_retries:
                    break
                wait = exc.wait if exc.wait is not None else self.backoff * 2**attempt * (0.5 + random.random())
                time.sleep(min(wait, self.max_backoff))
        raise JudgeFailure(f"gave up after {self.max_retries + 1} attempts; last: {reason}")

    def ask(self, prompts: Sequence[str], on_reply: OnReply, progress: bool = True) -> None:
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        bar = tqdm(total=len(prompts), desc=f"judge {self.id}", unit="prompt", disable=not progress)
        with (
            httpx.Client(base_url=self.base_url, headers=headers, timeout=self.timeout) as client,
            ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool,
        ):
            futures = {pool.submit(self.ask_one, client, p): i for i, p in enumerate(prompts)}
            for future in as_completed(futures):
                try:
                    reply = future.result()
                except JudgeFailure as exc:
                    on_reply(futures[future], None, self.redact(str(exc)))
                else:  # a server may echo the request's headers in a reply too
                    on_reply(futures[future], self.redact(reply), None)
                bar.update(1)
        bar.close()
