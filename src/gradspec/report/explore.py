"""``gradspec explore``: one local HTML page to look through a run sample by sample.

A sortable, filterable table of every sample (status, reason, lengths, loss, each module's mean
nuclear norm and effective rank, grad_quality, and every numeric field of a scored file, nested
ones by their dotted path, with its keep, drop_reason and short text fields such as generator to
filter by), sorted by ``--first``'s first column when given, a sparkline of
each sample's layer-wise nuclear norm, and, for the sample clicked, its prompt and response
beside its layer-wise curves. Checked rows export as JSON lines. The page itself (markup, style
and script) is ``explore.html`` next to this file. The data is embedded as JSON
(with ``<``, ``>`` and ``&`` escaped, so no text can end the script element) and every text
from it reaches the page through ``textContent``, never as markup. No network, no library.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from gradspec import __version__
from gradspec.analysis.sources import sources_of
from gradspec.data import load_dataset
from gradspec.data.values import KEEP, finite_number, kept, lookup, number_paths, numeric_value
from gradspec.errors import ConfigError
from gradspec.files import json_text
from gradspec.report.page import GENERATOR, check_page_out, write_page
from gradspec.score.grad_quality import grad_quality
from gradspec.selection.filtering import OWN_ID
from gradspec.store import Run, open_run
from gradspec.store.contract import MODULES

CURVE_METRICS = ("nuclear_norm", "effective_rank")


def shown(value: Any) -> Any:
    """A record's value as the page can hold it: NaN and infinities (which JSON has no word for)
    and integers beyond a double's exact range (which JavaScript would round) become their text."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value).replace("inf", "Infinity").replace("nan", "NaN")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return str(value)
    if isinstance(value, dict):
        return {k: shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shown(v) for v in value]
    return value


Curves = dict[str, dict[str, dict[str, list[float | None]]]]
"""sample_id -> module -> metric -> its value at each layer."""


def layer_curves(run: Run) -> tuple[list[str], Curves]:
    """The run's modules (q, k, v, o, gate, up, down first) and each sample's curves over the layers."""
    stats = run.sql(
        "select sample_id, module, layer, nuclear_norm, effective_rank from layer_stats order by module, layer"
    ).df()
    present = set(stats["module"])
    modules = [m for m in MODULES if m in present] + sorted(present - set(MODULES))
    curves: Curves = {}
    for (sid, module), d in stats.groupby(["sample_id", "module"], sort=False):
        d = d.sort_values("layer")
        curves.setdefault(sid, {})[module] = {m: [finite_number(v) for v in d[m]] for m in CURVE_METRICS}
    return modules, curves


def samples_data(run: Run, scored: Path | None = None, first: Sequence[str] | None = None) -> dict[str, Any]:
    """Everything the page shows, as plain JSON: one entry per sample, in file order, with the
    record as read (every original field, for export) when it is small enough to embed."""
    samples = run.df("samples").sort_values("index")
    modules, curves = layer_curves(run)
    try:
        quality = grad_quality(run).set_index("sample_id")["grad_quality"].to_dict()
    except (ConfigError, ValueError):
        quality = {}
    scores, score_fields, text_fields = scored_columns(scored) if scored is not None else ({}, [], [])
    sources = sources_of(run)
    steps = steps_data(run, modules)
    rows = []
    for s in samples.to_dict("records"):
        sid = s["sample_id"]
        record, original = sources.get(sid, (None, None))
        reason = s["reason"] if isinstance(s["reason"], str) else ""
        means = {
            f"{metric}_{m}": _mean(curves.get(sid, {}).get(m, {}).get(metric, []))
            for m in modules
            for metric in CURVE_METRICS
        }
        rows.append(
            {
                "sample_id": sid, "index": int(s["index"]), "status": s["status"], "reason": reason,
                "n_tokens": finite_number(s["n_tokens"]), "n_response_tokens": finite_number(s["n_response_tokens"]),
                "loss": finite_number(s["loss"]), "grad_quality": finite_number(quality.get(sid)), **means,
                **dict.fromkeys([*score_fields, *text_fields]), **scores.get(sid, {}),
                "prompt": clip(record.messages[-1].content) if record and record.messages else "",
                "response": clip(record.response) if record else "",
                "original": shown(original) if len(json_text(original)) <= MAX_ORIGINAL else None,
                "curves": curves.get(sid, {}),
                "steps": steps.get(sid, []),
            }
        )  # fmt: skip
    columns = ["index", "status", *score_fields, "grad_quality", "n_tokens", "n_response_tokens", "loss"]
    columns += [f"{metric}_{m}" for metric in CURVE_METRICS for m in modules]
    columns += text_fields
    unknown = [c for c in first or () if c not in columns]
    if unknown:
        raise ConfigError(
            f"--first {','.join(unknown)}: no such column"
            + ("" if scored is not None else " (no --scored file given)")
            + f"; columns: {', '.join(columns[:40])}"
        )
    wanted = list(dict.fromkeys(first or ()))
    columns = [*wanted, *(c for c in columns if c not in wanted)]
    return {
        "run": str(run.path),
        "model": run.manifest.get("model", {}).get("name"),
        "modules": modules,
        "columns": columns,
        "text_columns": text_fields,
        "sort": wanted[0] if wanted else "index",
        "samples": rows,
        "step_rule": run.manifest.get("config", {}).get("steps"),
    }


def steps_data(run: Run, modules: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """sample_id -> its steps (``compute --steps``), in order: character span in the response, token
    span, loss, the mean over layers and modules of each curve metric (what the page shades a step
    by), and its layer curves per module (4 significant digits: the page draws them, it does not
    compute with them). Empty for a run without steps."""
    if not run.files("step_stats"):
        return {}
    frame = run.sql(
        "select sample_id, step, char_start, char_end, token_start, token_end, loss, module, layer, "
        "nuclear_norm, effective_rank from step_stats order by sample_id, step, module, layer"
    ).df()
    out: dict[str, list[dict[str, Any]]] = {}
    for (sid, step), d in frame.groupby(["sample_id", "step"], sort=True):
        head = d.iloc[0]
        entry: dict[str, Any] = {
            "step": int(step), "char_start": int(head["char_start"]), "char_end": int(head["char_end"]),
            "tokens": [int(head["token_start"]), int(head["token_end"])], "loss": finite_number(head["loss"]),
        }  # fmt: skip
        for metric in CURVE_METRICS:
            entry[metric] = _mean([finite_number(v) for v in d[metric]])
        entry["curves"] = {
            m: {metric: [_short(v) for v in g.sort_values("layer")[metric]] for metric in CURVE_METRICS}
            for m, g in d.groupby("module", sort=False)
            if m in modules
        }
        out.setdefault(str(sid), []).append(entry)
    return out


def _short(value: Any) -> float | None:
    number = finite_number(value)
    return None if number is None else float(f"{number:.4g}")


MAX_ORIGINAL = 1 << 20
"""Characters of a record's original JSON the page embeds for export; a larger one exports as what
the page shows, with its sample_id."""


RUN_COLUMNS = frozenset({"index", "status", "reason", "n_tokens", "n_response_tokens", "loss", "grad_quality"})
"""Columns the run itself gives; a scored field of the same name is shown as ``NAME (scored)``."""
NOT_SHOWN = frozenset({
    "sample_id", "gradspec_sample_id", "source_index", "id", "instruction", "input", "output", "prompt", "response",
    "messages", "conversations", "system", "text", "score_errors",
})  # fmt: skip
"""Fields of a scored file that are ids or the sample's own text (the page shows the text already)."""
MAX_LABEL = 80
"""A string field is a column to filter by (generator, dataset, drop_reason) when its values are this short."""


def scored_columns(scored: Path) -> tuple[dict[str, dict[str, Any]], list[str], list[str]]:
    """sample_id -> values, the numeric columns and the text columns of a scored file: every field that
    holds a number (nested ones by dotted path, numbers written as text too), ``keep`` as true or false,
    and short text fields (generator, drop_reason) that the page's filter searches."""
    values: dict[str, dict[str, Any]] = {}
    numeric: dict[str, None] = {}
    text: dict[str, None] = {}
    for item, row in load_dataset(scored).with_rows():
        record = row.value
        if not isinstance(record, dict):
            continue
        sid = str(record.get(OWN_ID, record.get("sample_id", item.sample_id)))
        got: dict[str, Any] = {}
        for path in number_paths(record):
            if path.split(".")[0] not in NOT_SHOWN and path != KEEP:
                got[path] = finite_number(lookup(record, path))
        for key, value in record.items():
            if key in NOT_SHOWN or key in got or key == KEEP:
                continue
            if isinstance(value, str) and numeric_value(value) is not None:
                got[key] = numeric_value(value)  # "2.06": a number a CSV or a JSON string holds
            elif isinstance(value, str) and len(value) <= MAX_LABEL:
                text[key] = None
                got[key] = value
        if KEEP in record:
            got[KEEP] = kept(record[KEEP])
            text[KEEP] = None
        numeric.update((k, None) for k in got if k not in text)
        values[sid] = {(f"{k} (scored)" if k in RUN_COLUMNS else k): v for k, v in got.items()}
    named = [f"{k} (scored)" if k in RUN_COLUMNS else k for k in numeric]
    texts = [k for k in text if k not in numeric]
    return values, named, texts


MAX_TEXT = 20_000
"""Characters of a prompt or response the page shows: enough to read, and a 40 MB record does not
make an 80 MB page (its original, for export, is embedded only up to ``MAX_ORIGINAL``)."""


def clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit:,} more characters not shown]"


def _mean(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return sum(defined) / len(defined) if defined else None


def embed(data: dict[str, Any]) -> str:
    """JSON safe inside a script element: no ``</script>``, ``<!--`` or entity can come out of it."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def write_explorer(
    run_path: str | Path, out: str | Path, scored: str | Path | None = None, first: Sequence[str] | None = None
) -> Path:
    check_page_out(out)
    run = open_run(run_path)
    data = samples_data(run, Path(scored) if scored is not None else None, first)
    page = (files("gradspec.report") / "explore.html").read_text(encoding="utf-8")
    page = page.replace("__GENERATOR__", GENERATOR).replace("__VERSION__", __version__)
    return write_page(out, page.replace("__DATA__", embed(data)))
