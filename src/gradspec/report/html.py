"""``gradspec report``: one self-contained HTML file (figures embedded as PNG data, inline CSS,
no script) from run folders, comparison folders (``gradspec compare``) and correlation folders
(``gradspec correlate``).

Every piece of text that comes from data, manifests or tables goes through ``html.escape``:
sample text is untrusted and is shown, never run.
"""

from __future__ import annotations

import base64
import html
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from gradspec import __version__
from gradspec.analysis.compare import FIGURE_METRICS, headline, load_comparison
from gradspec.analysis.figures import layerwise_figure, steps_figure
from gradspec.analysis.findings import comparison_findings
from gradspec.analysis.sources import sources_of
from gradspec.analysis.tables import fmt
from gradspec.artifacts import (
    COMPARISON,
    CORRELATION,
    EXPERIMENT,
    KINDS,
    LENGTH_CURVE,
    RUN,
    SELECTION_RESULTS,
    TRAINING,
    TRAINING_SPECTRA,
    identify_as,
)
from gradspec.data import Record
from gradspec.errors import ConfigError, DamagedError, GradspecError, first_line
from gradspec.report.page import GENERATOR, check_page_out, write_page
from gradspec.score.grad_quality import grad_quality
from gradspec.store import Run, open_run
from gradspec.train.results import findings

EXCERPT = 300
CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.86em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; vertical-align: top; }
th { background: #f0f0f0; } td.text { text-align: left; white-space: pre-wrap; max-width: 40em; }
figure { margin: 1em 0; display: inline-block; vertical-align: top; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; } details { margin: 0.6em 0; }
nav.toc { background: #f7f7f7; padding: 0.4em 1em; } nav.toc li { margin: 0.1em 0; }
p.finding { font-size: 1.05em; background: #eef5ff; border-left: 4px solid #3a6fb0; padding: 0.4em 0.8em; }
.warning { background: #fff4e0; border-left: 4px solid #e69500; padding: 0.4em 0.8em; margin: 0.3em 0; }
.meta { color: #555; font-size: 0.9em; }
"""


def esc(value: object) -> str:
    """Text for the page, escaped; an undefined value (None, NaN) is an empty cell, not the word."""
    if value is None:
        return ""
    return html.escape(fmt(value) if not isinstance(value, str) else value, quote=True)


def table(df: pd.DataFrame, text_columns: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for col, value in zip(df.columns, row):
            cls = ' class="text"' if col in text_columns else ""
            cells.append(f"<td{cls}>{esc(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure(png: Path, caption: str) -> str:
    """A figure at its own size (at most the page's width), never stretched."""
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def figures(pngs: Sequence[Path], main: int = 2) -> str:
    """The first ``main`` figures shown, the rest behind one click (the report stays short)."""
    shown = [figure(p, p.stem.replace("_", " ")) for p in pngs[:main]]
    rest = [figure(p, p.stem.replace("_", " ")) for p in pngs[main:]]
    more = f"<details><summary>{len(rest)} more figures</summary>{''.join(rest)}</details>" if rest else ""
    return "".join(shown) + more


def warnings_html(warnings: Sequence[str]) -> str:
    return "".join(f'<div class="warning">{esc(w)}</div>' for w in warnings)


def excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT else text[:EXCERPT] + " ..."


def model_name(manifest: dict[str, Any]) -> str:
    """The model as people know it (its name, not the spec it was asked by), with its shape."""
    model = manifest.get("model", {})
    name = model.get("name") or model.get("spec")
    return f"{name} ({model.get('architecture')}, {model.get('num_layers')} layers, {model.get('dtype')})"


def texts_of(run: Run) -> dict[str, Record]:
    """The run's records by ``sample_id`` (``sources_of`` without the rows)."""
    return {sid: record for sid, (record, _) in sources_of(run).items()}


def extreme_samples(run: Run, n: int = 3) -> pd.DataFrame:
    """The samples with the highest and lowest grad_quality: the gradient's own score with response
    length taken out (a raw nuclear-norm ranking would list the shortest answers), with their text."""
    try:
        scores = grad_quality(run)
    except ConfigError:
        return pd.DataFrame()
    if len(scores) < 4:
        return pd.DataFrame()
    index = run.df("samples").set_index("sample_id")["index"]
    scores = scores.assign(index=index.loc[scores.sample_id].to_numpy()).sort_values("grad_quality")
    picked = pd.concat([scores.tail(n).iloc[::-1].assign(rank="highest"), scores.head(n).assign(rank="lowest")])
    texts = texts_of(run)
    picked["prompt"] = [excerpt(texts[i].messages[-1].content) if i in texts else "" for i in picked["sample_id"]]
    picked["response"] = [excerpt(texts[i].response) if i in texts else "" for i in picked["sample_id"]]
    return picked[
        ["rank", "index", "n_response_tokens", "grad_quality", "nuclear_norm", "effective_rank", "prompt", "response"]
    ]


def run_section(path: Path, workdir: Path) -> str:
    run = open_run(path)
    m = run.manifest
    counts, timing = m.get("counts", {}), m.get("timing", {})
    n = {k: counts.get(k, 0) for k in ("ok", "skipped", "error")}
    same_layer = m.get("similarity", {}).get("same_layer", {})
    meta = pd.DataFrame(
        [
            ("model", model_name(m)),
            ("data", m.get("data", {}).get("path")),
            ("template", m.get("config", {}).get("template")),
            ("max length", m.get("config", {}).get("max_length")),
            ("samples", f"{n['ok']} ok, {n['skipped']} skipped, {n['error']} error"),
            ("compute seconds", timing.get("compute_seconds")),
            ("same-layer similarity", "; ".join(f"{k}: {v}" for k, v in same_layer.items())),
        ],
        columns=["", "value"],
    )  # fmt: skip
    warnings = [f"{n} sample(s) {status}: {reason}" for status, n, reason in run.failure_summary()]
    warnings += run.read_warnings()
    means = run.sql(
        "select module, avg(nuclear_norm) as nuclear_norm, avg(effective_rank) as effective_rank, "
        "avg(frobenius_norm) as frobenius_norm, avg(stable_rank) as stable_rank from layer_stats "
        "where sample_id in (select sample_id from samples where status = 'ok') group by module order by module"
    ).df()
    parts = [f"<h2>Run: {esc(path.name)}</h2>", table(meta, ["value"]), warnings_html(warnings)]
    parts += ["<h3>Means over samples and layers</h3>", table(means)]
    if counts.get("ok"):
        pngs = layerwise_figure({path.name: run}, workdir / f"{len(list(workdir.iterdir()))}-layerwise")
        parts.append(figure(pngs[0], "layer-wise nuclear norm and effective rank (mean, 95% bootstrap band)"))
        extremes = extreme_samples(run)
        if not extremes.empty:
            parts += ["<h3>Samples with the highest and lowest grad_quality (length taken out)</h3>"]
            parts.append(table(extremes, ["prompt", "response"]))
    return "\n".join(parts)


def ordered_figures(path: Path) -> list[Path]:
    """A comparison's figures, the papers' first metrics first (nuclear norm, effective rank)."""
    order = {m: i for i, m in enumerate(FIGURE_METRICS)}

    def key(png: Path) -> tuple[int, int, str]:
        kind, _, metric = png.stem.partition("_")
        return (order.get(metric, len(order)), 0 if kind == "layerwise" else 1, png.stem)

    return sorted(path.glob("*.png"), key=key)


def comparison_section(path: Path) -> str:
    m = load_comparison(path)
    names = {g["label"]: g for g in m["groups"]}
    groups = pd.DataFrame(
        [
            {"group": g["label"], "model": g.get("model_name") or g["model"], "layers": g["num_layers"],
             "template": g["template"], "window": g.get("response_tokens"), "ok": (g.get("counts") or {}).get("ok"),
             "median response tokens": g["median_response_tokens"], "data": g["data"]}
            for g in names.values()
        ]
    )  # fmt: skip
    summary = pd.read_csv(COMPARISON.file(path, "summary"))
    parts = [f"<h2>Comparison: {esc(path.name)}</h2>"]
    parts += [f'<p class="finding">{esc(sentence)}</p>' for sentence in comparison_findings(path)]
    parts += [f'<p class="meta">baseline: {esc(m["baseline"])}</p>', table(groups, ["data", "model"])]
    parts.append(warnings_html(m["warnings"]))
    parts += ["<h3>Headline: mean over layers, B vs A</h3>", table(headline(summary))]
    parts.append(
        '<p class="meta">q_value: the p-value adjusted (Benjamini-Hochberg) over modules and metrics; '
        "Cliff's delta of B over A; length_control: what happens to the difference at equal length "
        "(by design, or with length matched or regressed out).</p>"
    )
    if COMPARISON.file(path, "curves").exists():
        curves = pd.read_csv(COMPARISON.file(path, "curves"))
        keep = curves[curves.metric == "nuclear_norm"][
            ["a", "b", "module", "mad_all", "mad_early", "mad_middle", "mad_late", "layers_differing_most"]
        ]
        parts += ["<h3>Nuclear-norm curve differences</h3>", table(keep)]
    if COMPARISON.file(path, "curve_shapes").exists():
        shapes = pd.read_csv(COMPARISON.file(path, "curve_shapes"))
        shapes = shapes[(shapes.a < shapes.b) & shapes.metric.isin(["nuclear_norm", "effective_rank"])]
        parts += ["<h3>Similarity of curve shapes (relative depth)</h3>", table(shapes)]
    if COMPARISON.file(path, "steps").exists():
        kinds = pd.read_csv(COMPARISON.file(path, "steps"))
        keep = "group metric reading contrast share ci95_low ci95_high verdict n_steps n_samples".split()
        parts += ["<h3>Step kinds within each group (compute --steps)</h3>", table(kinds[keep])]
        parts.append(
            "<p class=\"meta\">share: the ratio of a step kind's metric to the other steps' (the last step's to "
            "the first's), raw, at equal step length and beyond the step's loss, with 95% intervals from resampling "
            "samples; verdicts against the comparison's SESOI.</p>"
        )
    parts.append(figures(ordered_figures(path), main=4))  # layer-wise and difference, nuclear norm and effective rank
    return "\n".join(parts)


def length_curve_section(path: Path) -> str:
    rows = pd.read_csv(LENGTH_CURVE.file(path, "table"))
    main = rows[rows.metric.isin(["nuclear_norm", "effective_rank", "nuclear_norm_sum"])]
    keep = ["window", "a", "b", "metric", "module", "n_a", "rel_diff", "rel_ci_low", "rel_ci_high", "q_value"]
    parts = [f"<h2>Length-response curve: {esc(path.name)}</h2>"]
    parts.append(
        '<p class="meta">The same groups at several response windows K: at each K both groups have exactly '
        "K response tokens per sample, so each difference is free of length by design; rel_diff is B minus A "
        "relative to A, paired by length, with its 95% interval.</p>"
    )
    parts.append(table(main[keep]))
    parts.append(figures(sorted(path.glob("*.png"))))
    return "\n".join(parts)


def selection_section(path: Path) -> str:
    rows = pd.read_csv(SELECTION_RESULTS.file(path, "table"))
    rates = identify_as(path, SELECTION_RESULTS).marker.get("config", {}).get("learning_rates") or []
    at = f" at learning rate {' and '.join(f'{r:g}' for r in rates)}" if rates else ""
    parts = [f"<h2>Selection that pays{esc(at)}: {esc(path.name)}</h2>"]
    parts.append(
        '<p class="meta">Each method selected the same number of records, or of response tokens, from one pool; a '
        "model was fine-tuned on each selection (one or several seeds) and measured on held-out sets no "
        "selection could have seen. "
        "Intervals: bootstrap over held-out items (averaged over seeds); p_items: Wilcoxon over items; "
        "p_seeds: the seed means against the baseline's draws, read against the draws' own spread; percentile: "
        "the share of the baseline's draws a method beats; q_items, q_seeds: "
        "their Benjamini-Hochberg q-values over every method and measure. A verdict needs both below 0.05.</p>"
    )
    said = findings(rows)
    if said:
        parts.append("<ul>" + "".join(f"<li>{esc(line)}</li>" for line in said) + "</ul>")
    first = [c for c in ("method", "set", "measure", "verdict") if c in rows]
    parts.append(table(rows[first + [c for c in rows.columns if c not in first]]))
    parts.append(figures(sorted(path.glob("*.png"))))
    return "\n".join(parts)


def correlation_section(path: Path) -> str:
    table_ = pd.read_csv(CORRELATION.file(path, "table"))
    main = table_[table_.gradient_metric.isin(["nuclear_norm", "effective_rank"])]
    parts = [f"<h2>Quality scores and gradients: {esc(path.name)}</h2>", table(main)]
    within_file = CORRELATION.file(path, "within")
    if within_file.exists():
        parts.append(
            '<h3>Within blocks</h3><p class="meta">Per block (records that share a field, e.g. the answers to one '
            "prompt) the Spearman rho of each reading with each quality field; the mean over blocks with a 95% "
            "interval resampling blocks, the Wilcoxon p of the blocks' rhos, the share of blocks with rho &gt; 0.</p>"
        )
        parts.append(table(pd.read_csv(within_file)))
    parts.append(figures(sorted(path.glob("*.png"))))
    return "\n".join(parts)


def training_section(path: Path) -> str:
    """One fine-tune (gradspec train): what it trained on, with what recipe, its loss and held-out results."""
    marker = identify_as(path, TRAINING).marker
    recipe = marker.get("recipe") or {}
    losses = marker.get("losses") or []
    parts = [f"<h2>Fine-tune: {esc(path.name)}</h2>"]
    parts.append(
        f'<p class="meta">{esc(marker.get("tokens_trained"))} response tokens in {esc(marker.get("steps"))} '
        f"optimiser steps; recipe: {esc(', '.join(f'{k} {v}' for k, v in recipe.items()))}. The training loss is "
        "each step's own records, so it is not a curve of one quantity; the held-out results are.</p>"
    )
    results = pd.DataFrame(marker.get("results") or [])
    if not results.empty:
        parts.append(table(results))
    if losses:
        parts.append(table(pd.DataFrame(losses)))
    return "\n".join(parts)


def training_spectra_section(path: Path, workdir: Path) -> str:
    """A probe set's spectra across training steps (GradspecCallback's folder)."""
    marker = identify_as(path, TRAINING_SPECTRA).marker
    runs = {int(step): open_run(path / f"step-{int(step):06d}") for step in marker.get("steps", [])}
    parts = [f"<h2>Spectra over training: {esc(path.name)}</h2>"]
    parts.append(
        f'<p class="meta">The probe set {esc(marker.get("config", {}).get("probe"))}, measured at steps '
        f"{esc(', '.join(map(str, runs)))} (mean over its samples, per layer).</p>"
    )
    if runs:
        pngs = steps_figure(runs, workdir / f"{len(list(workdir.iterdir()))}-steps")
        parts.append(figure(pngs[0], "nuclear norm and effective rank per layer, one line per training step"))
    return "\n".join(parts)


SECTIONS: dict[str, Callable[[Path, Path], str]] = {
    RUN.name: run_section,
    COMPARISON.name: lambda path, _: comparison_section(path),
    LENGTH_CURVE.name: lambda path, _: length_curve_section(path),
    CORRELATION.name: lambda path, _: correlation_section(path),
    SELECTION_RESULTS.name: lambda path, _: selection_section(path),
    TRAINING_SPECTRA.name: training_spectra_section,
    TRAINING.name: lambda path, _: training_section(path),
}
"""What the report shows for each kind of output folder, by the kind's name."""


def section(item: Path, workdir: Path) -> str:
    """The report's section on one input folder, by its kind (its marker)."""
    found = identify_as(item, *(KINDS[name] for name in SECTIONS))
    return SECTIONS[found.kind.name](found.path, workdir)


EXPERIMENT_PARTS = ("comparisons", "correlations", "trainings")
"""An experiment's folders of findings, in the order its own report shows them (its runs, selections
and single fine-tunes stay out: give them by name to see them)."""


def expanded(item: Path) -> list[Path]:
    """An input as report reads it: an experiment folder is its comparisons, correlations and training
    summaries; any other folder is itself."""
    if not (item / EXPERIMENT.marker).is_file():
        return [item]
    found = [
        folder
        for part in EXPERIMENT_PARTS
        for folder in sorted((item / part).glob("*"))
        if folder.is_dir()
        and any((folder / k.marker).is_file() for k in (COMPARISON, LENGTH_CURVE, CORRELATION, SELECTION_RESULTS))
    ]
    if not found:
        raise ConfigError(f"{item}: an experiment with no comparison, correlation or training summary yet to report")
    return found


def write_report(inputs: Sequence[str | Path], out: str | Path, title: str = "gradspec report") -> Path:
    """Write the report; each input is a run, a comparison or a correlation folder."""
    check_page_out(out)
    sections = []
    with tempfile.TemporaryDirectory() as tmp:
        for item in (folder for given in map(Path, inputs) for folder in expanded(given)):
            try:
                sections.append(section(item, Path(tmp)))
            # What a damaged file raises as it is read: text that does not parse (JSON, CSV, Parquet are
            # ValueErrors) or a table without a column it must have. A TypeError or AttributeError is a
            # bug in gradspec and propagates as one.
            except (ValueError, KeyError) as exc:
                if isinstance(exc, GradspecError):
                    raise
                raise DamagedError(f"{item}: its files are damaged ({type(exc).__name__}: {first_line(exc)})") from exc
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    anchored = [s.replace("<h2>", f'<h2 id="s{i}">', 1) for i, s in enumerate(sections)]
    titles = [
        html.unescape(s.split("<h2>", 1)[1].split("</h2>", 1)[0]) if "<h2>" in s else f"section {i}"
        for i, s in enumerate(sections)
    ]
    toc = "".join(f'<li><a href="#s{i}">{esc(t)}</a></li>' for i, t in enumerate(titles))
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">{GENERATOR}<title>{esc(title)}</title>'
        f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>"
        f'<p class="meta">gradspec {esc(__version__)}, {esc(stamp)}</p>'
        f'<nav class="toc"><ol>{toc}</ol></nav>' + "\n".join(anchored) + "</body></html>\n"
    )
    return write_page(out, page)
