"""What ``score`` has finished, kept beside its output so that running it again resumes.

``OUT.score/`` holds the options the scores depend on (``identity.json``) and one file per
finished metric (its fields, error and flags for every record). A metric already finished for
every record is read back, not computed again; judge replies are cached one by one on top of
that. Running again with other options is refused with the differences, as ``compute`` does,
unless ``--overwrite``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from gradspec.config.fields import plain, split_identity
from gradspec.config.score import ScoreConfig
from gradspec.errors import ConfigError
from gradspec.files import write_json_atomic, write_records
from gradspec.score.outcome import Scored
from gradspec.store.folder import config_differences


class ScoreState:
    def __init__(self, config: ScoreConfig, data_sha256: str) -> None:
        out = Path(config.out)
        self.dir = out.with_name(out.name + ".score")
        identity = {k: v for k, v in split_identity(config)[0].items() if k != "metrics"}
        self.identity = plain({**identity, "data_sha256": data_sha256})
        if config.overwrite:
            shutil.rmtree(self.dir, ignore_errors=True)
        elif (self.dir / "identity.json").exists():
            stored = json.loads((self.dir / "identity.json").read_text())
            diffs = config_differences(stored, self.identity)
            if diffs:
                raise ConfigError(
                    f"{out} was scored with other options ({'; '.join(diffs)}); use --overwrite to score it again "
                    "or another --out"
                )
        elif out.exists():
            raise ConfigError(f"{out} exists and was not written by a score that can resume; use --overwrite")
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.dir / "identity.json", self.identity)

    def finished(self, metric: str, indices: set[int]) -> dict[int, Scored] | None:
        """A metric's results when it was finished for every one of ``indices`` and none of them
        failed for a passing reason (a judge that did not answer is asked again); else None."""
        path = self.dir / f"{metric}.jsonl"
        if not path.exists():
            return None
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        results = {r["index"]: Scored(r["fields"], r["error"], tuple(r["flags"]), r["transient"]) for r in rows}
        if not indices <= set(results) or any(s.transient for s in results.values()):
            return None
        return results

    def keep(self, metric: str, results: dict[int, Scored]) -> None:
        rows: list[dict[str, Any]] = [
            {"index": i, "fields": s.fields, "error": s.error, "flags": list(s.flags), "transient": s.transient}
            for i, s in sorted(results.items())
        ]
        write_records(self.dir / f"{metric}.jsonl", rows)
