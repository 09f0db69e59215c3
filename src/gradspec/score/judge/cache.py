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

from gradspec.errors import ConfigError, first_line
from gradspec.model.shipped import cache_root
from gradspec.secrets import scrub


def default_path() -> Path:
    return cache_root() / "judge.sqlite"


def reply_key(judge_id: str, settings: dict[str, object], prompt: str) -> str:
    blob = json.dumps([judge_id, settings, prompt], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


SQLITE_HEADER = b"SQLite format 3\x00"


def check_cache_file(path: Path) -> None:
    """Refuse a folder, or a file that holds something other than an SQLite database (a data file
    given by mistake), before SQLite touches it."""
    if path.is_dir():
        raise ConfigError(f"--judge-cache {path} is a folder; give a file (e.g. {path / 'judge.sqlite'})")
    if path.is_file() and path.stat().st_size:
        with path.open("rb") as fh:
            if fh.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                raise ConfigError(f"--judge-cache {path} is not an SQLite file; give a new file or a reply cache")


class ReplyCache:
    """Key -> reply text. Written from one thread; each write is committed at once."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        check_cache_file(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, judge TEXT, reply TEXT)")
            columns = [row[1] for row in self._db.execute("PRAGMA table_info(replies)")]
            self._db.commit()
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(
                f"--judge-cache {self.path}: cannot be used as the reply cache ({first_line(exc)})"
            ) from exc
        if columns != ["key", "judge", "reply"]:
            self._db.close()
            raise ConfigError(f"--judge-cache {self.path}: an SQLite file, but not a gradspec reply cache")

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        keys = list(keys)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(self._db.execute(f"SELECT key, reply FROM replies WHERE key IN ({marks})", chunk).fetchall())
        return found

    def put(self, key: str, judge_id: str, reply: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO replies VALUES (?, ?, ?)", (key, judge_id, scrub(reply)))
        self._db.commit()

    def close(self) -> None:
        self._db.close()
