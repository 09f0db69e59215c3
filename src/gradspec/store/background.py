"""Parts written on a background thread, so computing the next batch never waits on disk.

At most one part is in flight: a second ``submit`` first waits for the one before (memory
stays bounded and parts land in order), and a write that failed raises at the next
``submit`` or at ``close``, never silently. Each part is atomic on its own (``RunFolder``),
so a crash while one is in flight loses at most that part, which resume recomputes.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

from gradspec.store.folder import RunFolder


class BackgroundWriter:
    """``with BackgroundWriter(run) as w: w.submit(rows)``; leaving the block waits for the last part."""

    def __init__(self, run: RunFolder) -> None:
        self.run = run
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="gradspec-writer")
        self._pending: Future[str] | None = None

    def submit(self, rows: Mapping[str, list[dict[str, Any]]]) -> None:
        self.wait()
        self._pending = self._pool.submit(self.run.write_part, rows)

    def wait(self) -> None:
        """Block until the part in flight is on disk; re-raise its error if it failed."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)
