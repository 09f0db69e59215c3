"""Experiment stages: each done once per fingerprint of its inputs and options, and the models
they share, each loaded only when a stage that needs it actually runs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gradspec.config.model import ModelConfig
from gradspec.errors import GradspecError
from gradspec.files import write_json_atomic
from gradspec.model import LoadedModel, load

Say = Callable[[str], None]


class Stages:
    """Markers in ``OUT/.stages``: a stage is done when its marker holds the same fingerprint."""

    def __init__(self, out: Path, say: Say, places: dict[str, Path] | None = None) -> None:
        self.dir = out / ".stages"
        if not self.dir.exists() and (out / ".steps").is_dir():  # its name up to 0.2: kept, renamed
            (out / ".steps").rename(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.say = say
        self.status: dict[str, str] = {}
        # Folders a fingerprint names by label, not path: the experiment's own output (and its data
        # root) may be reached from another working directory, or moved, without redoing a stage.
        self.places = {label: str(path.resolve()) for label, path in (places or {"$OUT": out}).items()}

    def fingerprint(self, spec: Any) -> str:
        text = json.dumps(spec, sort_keys=True, default=str)
        for label, path in sorted(self.places.items(), key=lambda kv: -len(kv[1])):  # the deepest first
            text = text.replace(json.dumps(path)[1:-1], label)
        return hashlib.sha256(text.encode()).hexdigest()

    def done(self, stage: str, spec: Any) -> bool:
        marker = self.dir / f"{stage}.json"
        return marker.exists() and json.loads(marker.read_text()).get("fingerprint") == self.fingerprint(spec)

    def changed(self, stage: str, spec: Any) -> bool:
        """Whether ``stage`` finished before with other inputs or options (its output must be replaced)."""
        marker = self.dir / f"{stage}.json"
        return marker.exists() and json.loads(marker.read_text()).get("fingerprint") != self.fingerprint(spec)

    def finish(self, stage: str, spec: Any) -> None:
        write_json_atomic(self.dir / f"{stage}.json", {"fingerprint": self.fingerprint(spec)})

    def once(self, stage: str, spec: Any, output: Path, action: Callable[[], Any]) -> bool:
        """Run ``action`` unless ``stage`` finished with this ``spec`` and ``output`` is there; whether
        the stage's output is there now (a stage that cannot be done is recorded and the rest goes on)."""
        if self.done(stage, spec) and output.exists():
            self.status[stage] = "skipped"
            return True
        self.say(stage)
        try:
            action()
        except GradspecError as exc:
            self.say(f"  {stage} not done: {exc}")
            self.status[stage] = f"failed: {exc}"
            return False
        self.finish(stage, spec)
        self.status[stage] = "done"
        return True


class Models:
    """Each model loaded once for the whole experiment, and only when a stage needs it."""

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress
        self._loaded: dict[ModelConfig, LoadedModel] = {}

    def get(self, config: ModelConfig) -> LoadedModel:
        if config not in self._loaded:
            self._loaded[config] = load(config, progress=self.progress)
        return self._loaded[config]
