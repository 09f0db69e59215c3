"""What ``score`` has finished, kept beside its output so that running it again resumes.

``OUT.score/`` holds the options the scores depend on (``identity.json``) and one file per
finished metric (its fields, error and flags for every record). A metric already finished for
every record is read back, not computed again. A metric whose records are scored one by one
(``Scorer.per_record``) also keeps each finished part (``METRIC.partN.jsonl``) until the metric
is whole, so an interrupted score resumes within it; judge replies are cached one by one on top
of that. Running again with other options is refused with the differences, as ``compute`` does,
unless ``--overwrite``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from gradspec.artifacts import SCORE_STATE
from gradspec.config.fields import plain, split_identity
from gradspec.config.score import SCORE_METRICS, ScoreConfig
from gradspec.data.load import file_sha256
from gradspec.errors import ConfigError, DamagedError, OutputError, first_line
from gradspec.files import WriterLock, write_json_atomic, write_records
from gradspec.inputs import check_input
from gradspec.score.outcome import Scored
from gradspec.store.folder import config_differences

STATE_KIND = SCORE_STATE.tag
IDENTITY = SCORE_STATE.marker
LOCK = ".lock"
PART = re.compile(r"(?P<metric>[a-z_]+)\.part(?P<n>[0-9]+)\.jsonl")
"""A finished part of a metric not yet finished for every record."""


def metric_file(name: str) -> str | None:
    """The metric a file of the state holds (whole or a part of it), None for any other name."""
    part = PART.fullmatch(name)
    metric = part["metric"] if part else name.removesuffix(".jsonl") if name.endswith(".jsonl") else None
    return metric if metric in SCORE_METRICS else None


def own_files(folder: Path) -> tuple[list[Path], list[str]]:
    """(files of a score state folder gradspec wrote, names of everything else in it)."""
    ours, others = [], []
    for entry in sorted(folder.iterdir()):
        name = entry.name
        mine = name in (IDENTITY, LOCK) or metric_file(name) is not None
        mine = mine or (name.startswith(".") and name.endswith(".tmp"))  # a write cut short
        (ours.append(entry) if mine and entry.is_file() and not entry.is_symlink() else others.append(name))
    return ours, others


class ScoreState:
    def __init__(self, config: ScoreConfig, data_sha256: str) -> None:
        out = Path(config.out)
        self.dir = out.with_name(out.name + ".score")
        identity = {k: v for k, v in split_identity(config)[0].items() if k != "metrics"}
        self.identity = plain({"kind": STATE_KIND, **identity, "data_sha256": data_sha256})
        if config.target is not None:  # a target file edited in place must not resume stale similarities
            self.identity["target_sha256"] = file_sha256(check_input(config.target, "--target"))
        if self.dir.is_symlink() or (self.dir.exists() and not self.dir.is_dir()):
            raise OutputError(f"{self.dir} is not a folder gradspec made; move it away to score into {out}")
        self.dir.mkdir(parents=True, exist_ok=True)
        _, others = own_files(self.dir)
        if others:  # checked before the lock file is made: nothing is added to someone else's folder
            raise ConfigError(
                f"{self.dir} holds files gradspec did not write ({', '.join(others[:5])}); gradspec keeps the "
                "state of a score there: move them away"
                + (" (--overwrite never deletes them)" if config.overwrite else "")
            )
        self.lock = WriterLock(
            self.dir / LOCK, f"{out} is being scored by another gradspec process; wait for it or choose another --out"
        )
        try:
            self._start(config, out)
        except BaseException:
            self.lock.release()
            raise

    def _start(self, config: ScoreConfig, out: Path) -> None:
        """Resume (the same options), start over (``--overwrite``: only gradspec's own files go), or refuse."""
        stored = self._stored()
        if config.overwrite:
            for f in own_files(self.dir)[0]:
                if f.name != LOCK:
                    f.unlink()
        elif stored is not None and self._kept_any():
            diffs = config_differences(stored, self.identity)
            if diffs:
                raise ConfigError(
                    f"{out} was scored with other options ({'; '.join(diffs)}); use --overwrite to score it again "
                    "or another --out"
                )
        elif stored is None and out.exists():
            raise OutputError(f"{out} exists and was not written by a score that can resume; use --overwrite")
        write_json_atomic(self.dir / IDENTITY, self.identity)

    def _kept_any(self) -> bool:
        """Whether any metric was kept under the stored options: a score that failed before keeping
        one (an empty target, a typo in a path) leaves only its options, which bind nothing."""
        return any(f.suffix == ".jsonl" for f in own_files(self.dir)[0])

    def _stored(self) -> dict[str, Any] | None:
        """The options the folder's scores were made with (None when it holds none)."""
        file = self.dir / IDENTITY
        if not file.exists():
            return None
        try:
            stored = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise DamagedError(f"{file}: damaged ({first_line(exc)}); use --overwrite to score again") from exc
        if not isinstance(stored, dict):
            raise DamagedError(f"{file}: damaged (not a JSON object); use --overwrite to score again")
        stored.setdefault("kind", STATE_KIND)  # written before the kind was
        return stored

    def release(self) -> None:
        self.lock.release()

    def finished(self, metric: str, indices: set[int], fields: tuple[str, ...]) -> dict[int, Scored] | None:
        """A metric's results when it was finished for every one of ``indices``, holding the metric's
        present fields, and none of them failed for a passing reason (a judge that did not answer
        is asked again); else None."""
        path = self.dir / f"{metric}.jsonl"
        if not path.exists():
            return None
        results = _read(path)
        renamed = any(not set(fields) <= set(s.fields) for s in results.values())  # kept by an older version
        if renamed or not indices <= set(results) or any(s.transient for s in results.values()):
            return None
        return results

    def part_files(self, metric: str) -> dict[int, Path]:
        """A metric's kept parts by number."""
        found = (PART.fullmatch(p.name) for p in self.dir.iterdir())
        return {int(m["n"]): self.dir / m.group(0) for m in found if m and m["metric"] == metric}

    def parts(self, metric: str, fields: tuple[str, ...]) -> dict[int, Scored]:
        """The results of a metric's finished parts (an interrupted score's), less passing failures."""
        results: dict[int, Scored] = {}
        for _, path in sorted(self.part_files(metric).items()):
            results.update(_read(path))
        return {i: s for i, s in results.items() if not s.transient and set(fields) <= set(s.fields)}

    def keep_part(self, metric: str, results: dict[int, Scored]) -> None:
        """Keep one finished part of a metric (written whole or not at all)."""
        _write(self.dir / f"{metric}.part{max(self.part_files(metric), default=0) + 1}.jsonl", results)

    def keep(self, metric: str, results: dict[int, Scored]) -> None:
        """Keep a metric finished for every record; its parts are no longer needed."""
        _write(self.dir / f"{metric}.jsonl", results)
        for path in self.part_files(metric).values():
            path.unlink()


def _read(path: Path) -> dict[int, Scored]:
    """A kept metric or part of one (written whole by gradspec: anything else is damage)."""
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return {r["index"]: Scored(r["fields"], r["error"], tuple(r["flags"]), r["transient"]) for r in rows}
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise DamagedError(f"{path}: damaged ({first_line(exc)}); use --overwrite to score again") from exc


def _write(path: Path, results: dict[int, Scored]) -> None:
    rows: list[dict[str, Any]] = [
        {"index": i, "fields": s.fields, "error": s.error, "flags": list(s.flags), "transient": s.transient}
        for i, s in sorted(results.items())
    ]
    write_records(path, rows)
