"""``gradspec verify``: everything that can be wrong with a run folder, one line each.

Checks the manifest, that every part reads, that nothing foreign or half-written lies among
the tables, that every sample has exactly one row, that statistics exist only for ok samples
and for each of them in full, and that the manifest's counts are the folder's.
"""

from __future__ import annotations

from pathlib import Path

from gradspec.errors import ConfigError
from gradspec.store.contract import STATUSES, TABLES
from gradspec.store.layout import QUARANTINE, TEMP, damaged_names, foreign_entries, part_files, read_manifest
from gradspec.store.query import Run


def verify(path: str | Path) -> list[str]:
    """The problems of the run at ``path`` (empty when there are none)."""
    p = Path(path)
    try:
        manifest = read_manifest(p)
    except ConfigError as exc:
        return [str(exc)]
    problems: list[str] = []
    damaged = damaged_names(p)
    for name, files in damaged.items():
        shown = ", ".join(str(f.relative_to(p)) for f in files)
        problems.append(
            f"part {name} does not read ({shown}); gradspec compute moves it to {QUARANTINE}/ and redoes it"
        )
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
    problems += _rows(run, manifest, counts_too=not damaged)  # a damaged part's samples are missing anyway
    return problems


def _rows(run: Run, manifest: dict, counts_too: bool) -> list[str]:
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


def summary(path: str | Path) -> str:
    """One line about a run that verified clean."""
    run = Run(path)
    counts = dict(run.sql("select status, count(*) from samples group by 1").fetchall())
    parts = len(run.files("samples"))
    quarantined = len(list((Path(path) / QUARANTINE).rglob("*.parquet")))
    text = ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES)
    extra = f"; {quarantined} damaged part files kept in {QUARANTINE}/" if quarantined else ""
    return f"{path}: verified: {sum(counts.values())} samples ({text}) in {parts} parts{extra}"
