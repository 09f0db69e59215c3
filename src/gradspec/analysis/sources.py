"""The records a run was computed on, found again by ``sample_id`` in its data file.

Keyed by id, not by position: an id is a hash of the record's content, so a file edited since the
run can never pair a sample's gradients with another record's text (a record that changed is simply
not found). The report shows their text; paired comparisons read their prompts and fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gradspec.data import Record, load_dataset
from gradspec.store.query import Run


def data_path(run: Run) -> Path:
    """The data file the run's manifest names."""
    return Path(str((run.manifest.get("data") or {}).get("path", "")))


def sources_of(run: Run) -> dict[str, tuple[Record, Any]]:
    """The run's records by ``sample_id``, each with its row as read (every original field), from its
    data file when that is still where it was (empty otherwise)."""
    data = data_path(run)
    if not data.is_file() and not data.is_dir():
        return {}
    try:
        dataset = load_dataset(data)
    except Exception:  # noqa: BLE001  (a report still renders without text when the data moved or changed)
        return {}
    return {item.sample_id: (item, row.value) for item, row in dataset.with_rows() if isinstance(item, Record)}
