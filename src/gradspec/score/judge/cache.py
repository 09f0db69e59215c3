"""A persistent store of judge replies, so that no prompt is ever asked twice.

SQLite in the gradspec cache folder (or a path the user gives). Keys hash the judge's name,
its endpoint and generation settings, and the prompt. Only successful replies are stored;
a failure is asked again on the next run.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from gradspec.model.shipped import cache_root


def default_path() -> Path:
    return cache_root() / "judge.sqlite"


def reply_key(judge_id: str, settings: dict[str, object], prompt: str) -> str:
    blob = json.dumps([judge_id, settings, prompt], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


class ReplyCache:
    """Key -> reply text. Written from one thread; each write is committed at once."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, judge TEXT, reply TEXT)")
        self._db.commit()

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        keys = list(keys)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(self._db.execute(f"SELECT key, reply FROM replies WHERE key IN ({marks})", chunk).fetchall())
        return found

    def put(self, key: str, judge_id: str, reply: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO replies VALUES (?, ?, ?)", (key, judge_id, reply))
        self._db.commit()

    def close(self) -> None:
        self._db.close()
