"""What every judge offers: a name, the settings that change its replies, and ``ask``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

# Called once per prompt, on the caller's thread: (position, reply text or None, error or None).
OnReply = Callable[[int, "str | None", "str | None"], None]


class Judge(Protocol):
    id: str

    @property
    def settings(self) -> dict[str, Any]:
        """Everything besides the prompt that changes a reply (part of the cache key)."""
        ...

    def ask(self, prompts: Sequence[str], on_reply: OnReply, progress: bool) -> None:
        """Ask every prompt once; report each reply or failure through ``on_reply``."""
        ...
