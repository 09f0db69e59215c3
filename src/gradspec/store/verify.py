"""``gradspec verify``: everything that can be wrong with a run folder, one line each.

Checks the manifest, that every part reads, that nothing foreign or half-written lies among
the tables, that every sample has exactly one row, that statistics exist only for ok samples
and for each of them in full, and that the manifest's counts are the folder's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gradspec.data import load_dataset
from gradspec.data.load import file_sha256
from gradspec.errors import GradspecError
from gradspec.files import WriterLock
from gradspec.store.contract import STATUSES, TABLES
from gradspec.store.layout import (
    LOCK,
    OTHER_RUN,
    QUARANTINE,
    TEMP,
    bad_parts,
    foreign_entries,
    part_files,
    read_manifest,
    run_id_of,
)
from gradspec.store.query import Run

REQUIRED = ("config", "model", "data", "modules", "counts")
"""Manifest fields every finished run has."""
ROUNDOFF = 1e-5
"""Slack on the bounds a statistic cannot cross in exact arithmetic (|cos| <= 1, rank <= dimension)."""


def verify(path: str | Path) -> list[str]:
    """The problems of the run at ``path`` (empty when there are none)."""
    p = Path(path)
    try:
        manifest = read_manifest(p)
    except GradspecError as exc:  # damaged, or not a run's manifest: that is the one problem
        return [str(exc)]
    problems: list[str] = []
    busy = [f.name for f in sorted(p.iterdir()) if LOCK.match(f.name) and WriterLock.held(f)]
    if busy:
        problems.append(f"being written by a gradspec process now ({', '.join(busy)}); verify it once it finishes")
    missing = [k for k in REQUIRED if k not in manifest]
    if missing:
        problems.append(f"run.json lacks {', '.join(missing)}: not a run that finished its start")
    bad = bad_parts(p, run_id_of(manifest))
    for name, (why, files) in bad.items():
        shown = ", ".join(str(f.relative_to(p)) for f in files)
        fix = (
            "move it out of the tables"
            if why == OTHER_RUN
            else f"gradspec compute moves it to {QUARANTINE}/ and redoes it"
        )
        problems.append(f"part {name} {why} ({shown}); {fix}")
    problems += [f"{entry}: not written by gradspec" for entry in foreign_entries(p)]
    for table in TABLES:
        folder = p / table
        temps = [f.name for f in folder.iterdir() if TEMP.match(f.name)] if folder.is_dir() else []
        problems += [f"{table}/{t}: left by an interrupted write (gradspec compute removes it)" for t in temps]
    done = {f.stem for f in part_files(p, "samples")}
    for table in TABLES[1:]:
        for f in part_files(p, table):
            if f.stem not in done:
                problems.append(
                    f"{table}/{f.name}: its samples part is missing (an interrupted write; compute removes it)"
                )
    run = Run(p)
    problems += _rows(run, manifest, counts_too=not bad)  # a bad part's samples are missing anyway
    problems += _values(run, manifest)
    if not busy and not bad:  # a bad part's samples are missing, said above
        problems += _completeness(run, manifest)
    return problems


def _rows(run: Run, manifest: dict[str, Any], counts_too: bool) -> list[str]:
    out: list[str] = []
    for sid, n in run.sql("select sample_id, count(*) from samples group by 1 having count(*) > 1").fetchall():
        out.append(f"sample {sid} has {n} rows in samples (two writers at once?)")
    for status, n in run.sql(
        f"select status, count(*) from samples where status not in {STATUSES} group by 1"
    ).fetchall():
        out.append(f"{n} samples have the unknown status {status!r}")
    ok = "(select sample_id from samples where status = 'ok')"
    for table in TABLES[1:]:
        n = run.scalar(f"select count(*) from {table} where sample_id not in {ok}")
        if n:
            out.append(f"{table}: {n} rows belong to no ok sample")
    modules = manifest.get("modules") or []
    layers = manifest.get("model", {}).get("num_layers")
    if layers and modules:
        want = int(layers) * len(modules)
        short = run.sql(
            f"select s.sample_id, count(l.sample_id) from samples s left join layer_stats l using (sample_id) "
            f"where s.status = 'ok' group by 1 having count(l.sample_id) <> {want}"
        ).fetchall()
        out += [f"sample {sid}: {n} layer_stats rows, {want} expected" for sid, n in short[:20]]
        if len(short) > 20:
            out.append(f"... and {len(short) - 20} more samples with missing or extra layer_stats rows")
    counts = dict(run.sql("select status, count(*) from samples group by 1").fetchall())
    stored = (manifest.get("counts") or {}) if counts_too else {}
    for status in STATUSES:
        if status in stored and stored[status] != counts.get(status, 0):
            out.append(f"run.json counts {stored[status]} {status} samples, the folder holds {counts.get(status, 0)}")
    return out


def _completeness(run: Run, manifest: dict[str, Any]) -> list[str]:
    """Every record of the data has its row, and only those (when the data file is there to check)."""
    data = manifest.get("data") or {}
    expected = data.get("n_records")
    ids = {sid for (sid,) in run.sql("select distinct sample_id from samples").fetchall()}
    out = []
    if isinstance(expected, int) and len(ids) < expected:
        out.append(f"incomplete: {len(ids)} of {expected} records have a row (interrupted? compute resumes it)")
    source = Path(str(data.get("path", "")))
    if source.is_file() and data.get("sha256") and file_sha256(source) == data["sha256"]:
        limit = (manifest.get("options") or {}).get("limit")
        known = {item.sample_id for item in load_dataset(source, limit=limit if isinstance(limit, int) else None).items}
        strangers = sorted(ids - known)
        if strangers:
            out.append(f"{len(strangers)} samples are not records of {source} (e.g. {strangers[0]})")
    return out


def _values(run: Run, manifest: dict[str, Any]) -> list[str]:
    """Statistics that no gradient can have: not finite, negative norms, ranks outside [1, rank
    bound], cosines beyond 1. A zero gradient's ranks are null (undefined), never a number."""
    shapes = manifest.get("shapes") or {}
    dims = " ".join(
        f"when '{m}' then {min(int(v) for v in shape)}"
        for m, shape in shapes.items()
        if isinstance(shape, list) and shape and all(isinstance(v, int) for v in shape)
    )
    positions = "coalesce(s.n_positions, s.n_tokens)"  # runs written before n_positions: a looser bound
    bound = f"least({positions}, case l.module {dims} else {positions} end)" if dims else positions
    slack = 1 + ROUNDOFF
    checks = {
        "a norm that is not finite or negative": " or ".join(
            f"not isfinite(l.{m}) or l.{m} < 0" for m in ("nuclear_norm", "frobenius_norm", "spectral_norm")
        ),
        "a rank below 1 or above the gradient's rank bound": " or ".join(
            f"(l.{m} is not null and (not isfinite(l.{m}) or l.{m} < {1 - ROUNDOFF} or l.{m} > {slack} * {bound}))"
            for m in ("effective_rank", "stable_rank")
        ),
        "a zero gradient with a rank": "l.nuclear_norm = 0 and l.effective_rank is not null",
    }
    out = []
    for what, condition in checks.items():
        n = run.scalar(f"select count(*) from layer_stats l join samples s using (sample_id) where {condition}")
        if n:
            out.append(f"layer_stats: {n} rows with {what}")
    n = run.scalar(
        f"select count(*) from similarity where not isfinite(cosine) or abs(cosine) > {slack}"  # null: a zero gradient
    )
    if n:
        out.append(f"similarity: {n} cosines that are not finite or beyond 1 in size")
    n = run.scalar(
        "select count(*) from samples where status = 'ok' and (loss is null or not isfinite(loss) or loss < 0)"
    )
    if n:
        out.append(f"samples: {n} ok samples with a loss that is not a finite number >= 0")
    return out


def summary(path: str | Path) -> str:
    """One line about a run that verified clean."""
    run = Run(path)
    counts = dict(run.sql("select status, count(*) from samples group by 1").fetchall())
    parts = len(run.files("samples"))
    quarantined = len(list((Path(path) / QUARANTINE).rglob("*.parquet")))
    text = ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES)
    extra = f"; {quarantined} damaged part files kept in {QUARANTINE}/" if quarantined else ""
    return f"{path}: verified: {sum(counts.values())} samples ({text}) in {parts} parts{extra}"
