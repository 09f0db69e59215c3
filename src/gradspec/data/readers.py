"""Read a data file into raw rows, whatever its container format.

Supported: JSON list, JSONL, Parquet, CSV, and a local Hugging Face ``datasets`` folder
(``save_to_disk`` output, read through pyarrow so ``datasets`` is not required) or a folder
of such files. A broken JSONL line becomes one error row (the rest is kept); a file that
cannot be read at all raises ``DataFileError`` with a one-line reason.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gradspec.errors import DataFileError, first_line

SUFFIXES = (".json", ".jsonl", ".ndjson", ".parquet", ".csv", ".arrow")
MAX_DEPTH = 100
"""Records nested deeper than this are refused: real records are a few levels deep, and deep
nesting only costs time and stack (Python's JSON reader gives up near 1,000 levels)."""
DATASETS_METADATA = ("dataset_info.json", "state.json", "dataset_dict.json")  # save_to_disk's, not data


@dataclass(frozen=True)
class RawRow:
    """One record as read: its position, and either the parsed value or why it failed to parse."""

    index: int
    value: Any = None
    error: str | None = None
    raw_text: str | None = None


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(:[\w.-]+)?$")


def is_hub_id(path: str | Path) -> bool:
    """``owner/name`` (or ``owner/name:split``) that is not a file or folder here: a hub dataset id."""
    return not Path(path).exists() and bool(HUB_ID.match(str(path)))


def read_hub(spec: str) -> list[RawRow]:
    """The rows of a hub dataset (``owner/name``, split ``train`` unless ``owner/name:split`` says
    another), through ``datasets.load_dataset``; a one-line error when it cannot be had."""
    name, _, split = spec.partition(":")
    try:
        import datasets
    except ImportError as exc:
        raise DataFileError(
            f"{spec}: no such file here; to read it as a hub dataset id, install datasets "
            "(pip install 'gradspec[datasets]')"
        ) from exc
    try:
        table = datasets.load_dataset(name, split=split or "train")
    except Exception as exc:  # noqa: BLE001  (no network, no such dataset, no such split: all one line)
        raise DataFileError(
            f"{spec}: no such file here, and it could not be loaded as a hub dataset ({type(exc).__name__}: "
            f"{first_line(exc)}); is the hub reachable? (HF_DATASETS_OFFLINE=1 reads only the local hub cache)"
        ) from exc
    return _rows(list(table))


def read_rows(path: str | Path) -> list[RawRow]:
    """Read every record of ``path`` in file order (a hub dataset id when there is no such file)."""
    p = Path(path)
    if is_hub_id(path):
        return read_hub(str(path))
    if not p.exists():
        raise DataFileError(f"{p}: no such file or folder")
    if p.is_dir():
        return _read_folder(p)
    if not p.is_file():  # a pipe would hang the read, a device never end it
        raise DataFileError(f"{p}: not a regular file (a pipe or a device); give a data file")
    suffix = p.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            return _read_jsonl(p)
        if suffix == ".json":
            return _read_json(p)
        if suffix == ".parquet":
            return _rows(pq.read_table(p).to_pylist())
        if suffix == ".csv":
            return _read_csv(p)
        if suffix == ".arrow":
            return _rows(_read_arrow(p).to_pylist())
    except DataFileError:
        raise
    except (OSError, pa.ArrowException, UnicodeDecodeError, csv.Error) as exc:
        raise DataFileError(f"{p}: cannot be read as {suffix[1:]} ({first_line(exc)})") from exc
    except RecursionError as exc:
        raise DataFileError(f"{p}: nested too deeply to read (more than about {MAX_DEPTH} levels)") from exc
    raise DataFileError(f"{p}: unknown file type '{suffix}'; use one of {', '.join(SUFFIXES)} or a datasets folder")


def depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply lists and objects nest in ``value``, counting no further than ``limit + 1``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, level)
            if level > limit:
                return level
            stack.extend((v, level + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


RESPONSE_FIELDS = frozenset({"output", "response", "messages", "conversations"})
MAX_DIGITS = 4000
"""Longest integer a record may hold: Python refuses to read longer ones (4,300 digits) as numbers."""


class HugeNumber(str):
    """An integer literal too long to read as a number; the record holding it becomes an error row."""


class _Numbers:
    """``parse_int`` for ``json.loads``: integers as ints, too-long ones as ``HugeNumber`` (noted)."""

    def __init__(self) -> None:
        self.seen = False

    def __call__(self, text: str) -> int | HugeNumber:
        if len(text) > MAX_DIGITS:
            self.seen = True
            return HugeNumber(text)
        return int(text)


def _huge(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, HugeNumber):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _rows(values: list[Any], huge: bool = False, name: str = "") -> list[RawRow]:
    """Rows of parsed values; with ``huge``, those holding a too-long integer are error rows."""
    rows = []
    for i, v in enumerate(values):
        if huge and _huge(v):
            error = f"{name}: record {i}: holds an integer of more than {MAX_DIGITS} digits"
            rows.append(RawRow(index=i, error=error, raw_text=json.dumps(v, ensure_ascii=False)[:1000]))
        else:
            rows.append(RawRow(index=i, value=v))
    return rows


def _read_bytes(p: Path) -> bytes:
    data = p.read_bytes()
    if b"\x00" in data[:4096]:
        raise DataFileError(f"{p}: looks like a binary file, not text JSON")
    return data.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark


def _read_json(p: Path) -> list[RawRow]:
    data = _read_bytes(p)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataFileError(f"{p}:{line}: not valid UTF-8 text (byte {exc.start}); save the file as UTF-8") from exc
    huge = _Numbers()
    try:
        value = json.loads(text, parse_int=huge)
    except json.JSONDecodeError as exc:
        # A .json file holding JSON lines (one object per line) is common enough to accept; text
        # after a whole JSON list is not, and would otherwise be misread line by line.
        if exc.msg == "Extra data" and text.lstrip().startswith("{"):
            objects = _concatenated(text, huge)
            return _rows(objects, huge.seen, p.name) if objects is not None else _read_jsonl(p)
        if exc.msg == "Extra data":
            raise DataFileError(
                f"{p}:{exc.lineno}:{exc.colno}: unexpected text after the JSON list ends; remove it "
                "(the file must hold one JSON list, or one JSON object per line)"
            ) from exc
        raise DataFileError(f"{p}:{exc.lineno}: invalid JSON ({exc.msg}); the file must hold one JSON list") from exc
    if isinstance(value, dict):
        # {"data": [...]} and similar wrappers; an object with a response of its own is one record,
        # whatever lists it holds (its messages, its tags).
        lists = [v for v in value.values() if isinstance(v, list)]
        if len(lists) == 1 and not RESPONSE_FIELDS & set(value):
            value = lists[0]
        else:
            return _rows([value], huge.seen, p.name)
    if not isinstance(value, list):
        raise DataFileError(f"{p}: expected a JSON list of records, found {type(value).__name__}")
    return _rows(value, huge.seen, p.name)


def _concatenated(text: str, parse_int: _Numbers) -> list[Any] | None:
    """Objects written one after another (pretty-printed, so not one per line), or None when the
    text is not that: JSON lines with a broken line are then read line by line."""
    decoder = json.JSONDecoder(parse_int=parse_int)
    values: list[Any] = []
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return values
        try:
            value, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            return None
        values.append(value)


def _read_jsonl(p: Path) -> list[RawRow]:
    """One record per line; a line that is not UTF-8, not JSON or nested too deeply is an error row."""
    rows: list[RawRow] = []
    for lineno, raw in enumerate(_read_bytes(p).splitlines(), start=1):
        if not raw.strip():
            continue  # blank lines are not records
        line = raw.decode("utf-8", errors="replace")
        where = f"{p.name}:{lineno}"
        huge = _Numbers()
        try:
            value = json.loads(raw.decode("utf-8"), parse_int=huge)
        except UnicodeDecodeError as exc:
            problem = f"{where}: not valid UTF-8 (byte {exc.start} of the line)"
            rows.append(RawRow(len(rows), error=problem, raw_text=line))
        except json.JSONDecodeError as exc:
            rows.append(RawRow(len(rows), error=f"{where}: invalid JSON ({exc.msg})", raw_text=line))
        except RecursionError:
            rows.append(RawRow(len(rows), error=f"{where}: nested too deeply to read", raw_text=line[:1000]))
        else:
            if huge.seen and _huge(value):
                problem = f"{where}: holds an integer of more than {MAX_DIGITS} digits"
                rows.append(RawRow(len(rows), error=problem, raw_text=line[:1000]))
            else:
                rows.append(RawRow(len(rows), value=value))
    return rows


def _read_csv(p: Path) -> list[RawRow]:
    csv.field_size_limit(1 << 30)  # the module's default (131,072 characters) refuses long answers
    with p.open(newline="", encoding="utf-8-sig") as f:
        return _rows(list(csv.DictReader(f)))


def _read_arrow(p: Path) -> pa.Table:
    # datasets.save_to_disk writes the IPC stream format; plain Arrow files use the file format.
    with p.open("rb") as f:
        try:
            return pa.ipc.open_stream(f).read_all()
        except pa.ArrowInvalid:
            f.seek(0)
            return pa.ipc.open_file(f).read_all()


def gradspec_marker(f: Path) -> bool:
    """Whether ``f`` is the marker of a gradspec output folder (a small JSON object of kind
    ``gradspec-...``): a selection folder holds one beside its group files, which it is not one of."""
    if f.suffix.lower() != ".json" or f.stat().st_size > 1 << 20:
        return False
    try:
        value = json.loads(f.read_bytes())
    except (ValueError, RecursionError):
        return False
    return isinstance(value, dict) and str(value.get("kind", "")).startswith("gradspec")


def _read_folder(p: Path) -> list[RawRow]:
    """A ``save_to_disk`` folder (or DatasetDict, taking ``train``) or a folder of data files."""
    if (p / "dataset_dict.json").exists():
        splits = json.loads((p / "dataset_dict.json").read_text()).get("splits", [])
        if not splits:
            raise DataFileError(f"{p}: dataset_dict.json lists no splits")
        return _read_folder(p / ("train" if "train" in splits else splits[0]))
    if (p / "state.json").exists():
        return _concatenate([_rows(_read_arrow(f).to_pylist()) for f in saved_files(p)])
    files = sorted(
        f for f in p.iterdir() if f.is_file() and f.suffix.lower() in SUFFIXES and f.name not in DATASETS_METADATA
    )
    if not files:
        raise DataFileError(f"{p}: folder holds no data files ({', '.join(SUFFIXES)})")
    marker = next((f for f in files if gradspec_marker(f)), None)
    if marker is not None:
        data = [f.name for f in files if f != marker]
        raise DataFileError(
            f"{p}: a gradspec output folder ({marker.name} says so), not one data set; give one of its files"
            + (f": {', '.join(data[:6])}" if data else "")
        )
    return _concatenate([read_rows(f) for f in files])


def saved_files(p: Path) -> list[Path]:
    """The Arrow files a ``save_to_disk`` folder holds, in order, as its ``state.json`` lists them:
    never a glob, since ``load_from_disk(p).filter()`` or ``.map()`` leave ``cache-*.arrow`` files
    (indices, other columns) in the same folder."""
    state = p / "state.json"
    try:
        listed = json.loads(state.read_text(encoding="utf-8"))["_data_files"]
        names = [entry["filename"] for entry in listed]
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise DataFileError(f"{state}: not a datasets state file (no _data_files[].filename: {exc})") from exc
    files = []
    for name in names:
        f = p / str(name)
        if f.parent.resolve() != p.resolve() or not f.is_file():
            raise DataFileError(f"{state}: _data_files lists {name!r}, which is not a file in {p}")
        files.append(f)
    if not files:
        raise DataFileError(f"{state}: _data_files lists no files")
    return files


def _concatenate(parts: list[list[RawRow]]) -> list[RawRow]:
    """Rows of several files as one data set, numbered from 0."""
    values: list[Any] = []
    for part in parts:
        for row in part:
            values.append(row.value if row.error is None else row)
    return [
        RawRow(index=i, error=v.error, raw_text=v.raw_text) if isinstance(v, RawRow) else RawRow(index=i, value=v)
        for i, v in enumerate(values)
    ]
