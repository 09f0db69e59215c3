"""How the steps of a response differ (``compute --steps``): by position and by kind, read raw, at
equal step length and beyond the step's loss.

A step's gradient grows with its tokens and with how surprising they are, so a kind of step that is
longer or harder to predict looks "bigger" for that reason alone. Each metric (a step's mean over
layers, on the log scale, averaged over the modules) is fitted by least squares on the step's kind
and position, then again with log step tokens, then with log per-token loss too; each coefficient
is a ratio (``exp(b) - 1``, a share) with a 95% interval from resampling whole samples (steps of one
trace are not independent), and a verdict against the smallest effect of interest: a difference
whose interval excludes 0, one equivalent to none (its interval within plus or minus the SESOI), or
inconclusive.

Kinds, by a stated rule on the step's text: ``opening`` (the first step: in R1 traces, the problem
restated), ``revisit`` (a step that opens with a word that goes back over what came before: wait,
alternatively, hmm, hold on, actually, let me check / verify / double-check ...), ``other``.
Position is the step's index over the last index (0 the first step, 1 the last).

Nothing here imports torch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from gradspec.errors import InputError
from gradspec.store import Run

REVISIT = re.compile(
    r"^\W*(?:wait|alternatively|hmm+|hold on|actually|but wait|double[- ]check(?:ing)?"
    r"|let me (?:check|verify|double[- ]check|re-?check|confirm|re-?examine|think again|re-?read)"
    r"|let's (?:check|verify|double[- ]check|confirm))\b",
    re.IGNORECASE,
)
"""What opens a step that revisits: a backtrack, an alternative, or a check of what came before."""
KINDS = ("opening", "revisit", "other")
READINGS = {"raw": (), "equal length": ("log_tokens",), "beyond loss": ("log_tokens", "log_loss")}
"""Each reading and the covariates it holds fixed (beside the kind and the position)."""
TERMS = {"revisit": "revisit vs other steps", "opening": "opening vs other steps", "position": "last vs first step"}


def step_kind(text: str, index: int) -> str:
    """``opening``, ``revisit`` or ``other`` by the rule in the module docstring."""
    if index == 0:
        return "opening"
    return "revisit" if REVISIT.match(text) else "other"


def step_frame(
    run: Run, responses: Mapping[str, str], metrics: Sequence[str] = ("nuclear_norm", "effective_rank")
) -> pd.DataFrame:
    """One row per step of every ok sample: its text, kind, position, tokens, per-token loss, and
    ``log_<metric>`` (the mean over modules of the log of the mean over layers)."""
    stats = run.df("step_stats")
    if stats.empty:
        raise InputError(f"{run.path}: no step_stats; compute the run with --steps RULE to read its steps")
    samples = run.df("samples").set_index("sample_id")
    per_module = stats.groupby(["sample_id", "step", "module"])[list(metrics)].mean().apply(np.log)
    logs = per_module.groupby(["sample_id", "step"]).mean().add_prefix("log_")
    spans = stats.groupby(["sample_id", "step"])[["token_start", "token_end", "char_start", "char_end", "loss"]].first()
    frame = spans.join(logs).reset_index()
    frame["n_steps"] = frame.groupby("sample_id")["step"].transform("max") + 1
    frame["position"] = np.where(frame.n_steps > 1, frame.step / (frame.n_steps - 1).clip(lower=1), 0.0)
    frame["n_tokens"] = frame.token_end - frame.token_start
    n_response = samples.loc[frame.sample_id, "n_response_tokens"].to_numpy(float)
    per_token = frame.loss.to_numpy(float) * n_response / frame.n_tokens.to_numpy(float)
    frame["loss_per_token"] = per_token
    frame["log_tokens"] = np.log(frame.n_tokens.astype(float))
    frame["log_loss"] = np.log(np.maximum(per_token, 1e-12))
    frame["text"] = [responses.get(s, "")[a:b] for s, a, b in zip(frame.sample_id, frame.char_start, frame.char_end)]
    frame["kind"] = [step_kind(t, int(i)) for t, i in zip(frame.text, frame.step)]
    return frame


def _design(frame: pd.DataFrame, covariates: Sequence[str], groups: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    names = ["intercept", "revisit", "opening", "position", *covariates]
    cols = [
        np.ones(len(frame)),
        (frame.kind == "revisit").to_numpy(float),
        (frame.kind == "opening").to_numpy(float),
        frame.position.to_numpy(float),
        *(frame[c].to_numpy(float) for c in covariates),
    ]
    for g in groups[1:]:  # a level per further group (data set): effects are read within each
        names.append(f"group_{g}")
        cols.append((frame["group"] == g).to_numpy(float))
    return np.column_stack(cols), names


def _fit(design: np.ndarray, y: np.ndarray) -> np.ndarray:
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    return beta


def step_effects(
    frame: pd.DataFrame,
    metric: str,
    sesoi: float = 0.1,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Per reading (``READINGS``) and term (``TERMS``): the ratio as a share, its 95% interval from
    resampling samples, and the verdict. ``frame`` is ``step_frame``'s (a ``group`` column, when it
    has one, is held fixed: steps are compared within a data set)."""
    y_all = frame[f"log_{metric}"].to_numpy(float)
    keep = np.isfinite(y_all) & np.isfinite(frame.log_loss.to_numpy(float))
    frame, y = frame[keep].reset_index(drop=True), y_all[keep]
    groups = sorted(frame["group"].unique()) if "group" in frame else []
    ids = frame.sample_id.to_numpy()
    members = [np.flatnonzero(ids == s) for s in pd.unique(ids)]
    rng = np.random.default_rng(seed)
    draws = [np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))]) for _ in range(n_boot)]
    rows = []
    for reading, covariates in READINGS.items():
        design, names = _design(frame, covariates, groups)
        if np.linalg.matrix_rank(design) < design.shape[1]:
            continue
        beta = _fit(design, y)
        boots = np.array([_fit(design[d], y[d]) for d in draws])
        for term, label in TERMS.items():
            k = names.index(term)
            low, high = np.nanquantile(boots[:, k], [0.025, 0.975])
            share, lo, hi = (math.expm1(v) for v in (beta[k], low, high))
            rows.append(
                {
                    "metric": metric,
                    "reading": reading,
                    "term": term,
                    "contrast": label,
                    "share": share,
                    "ci95_low": lo,
                    "ci95_high": hi,
                    "verdict": verdict(lo, hi, sesoi),
                    "n_steps": int((frame.kind == term).sum()) if term in KINDS else len(frame),
                    "n_samples": len(members),
                }
            )
    return pd.DataFrame(rows)


def verdict(low: float, high: float, sesoi: float) -> str:
    """``differs`` (the interval excludes 0; "within the SESOI" when it also lies inside plus or minus
    ``sesoi``: real but too small to act on), ``equivalent`` (within plus or minus ``sesoi``, 0
    included) or ``inconclusive``."""
    if low > 0 or high < 0:
        return "differs" if high >= sesoi or low <= -sesoi else "differs, within the SESOI"
    if -sesoi < low and high < sesoi:
        return "equivalent"
    return "inconclusive"


def has_steps(run: Run) -> bool:
    """Whether the run was computed with ``--steps`` (its step_stats table holds rows)."""
    return bool(run.files("step_stats"))


def group_step_effects(
    label: str, runs: Sequence[Run], metrics: Sequence[str], sesoi: float, n_boot: int, seed: int
) -> pd.DataFrame:
    """``step_effects`` of one compared group (its runs pooled, each run's data set held fixed), with
    the group's label; the responses come from each run's own data file."""
    from gradspec.data import Record, load_dataset

    frames = []
    for i, run in enumerate(runs):
        responses = {
            r.sample_id: r.response for r in load_dataset(run.manifest["data"]["path"]).items if isinstance(r, Record)
        }
        frames.append(step_frame(run, responses, metrics).assign(group=str(i)))
    frame = pd.concat(frames, ignore_index=True)
    return pd.concat([step_effects(frame, m, sesoi, n_boot, seed) for m in metrics], ignore_index=True).assign(
        group=label
    )


def step_sentences(table: pd.DataFrame) -> list[str]:
    """One sentence per group and metric: how revisit and opening steps, and the last step, differ
    from the others at equal step length and beyond the step's loss."""
    out = []
    for (group, metric), d in table.groupby(["group", "metric"], sort=False):
        parts = []
        for term, label in TERMS.items():
            rows = d[(d.term == term) & (d.reading == "beyond loss")]
            if rows.empty:
                continue
            r = rows.iloc[0]
            parts.append(
                f"{label} {100 * r.share:+.0f}% [{100 * r.ci95_low:+.0f}, {100 * r.ci95_high:+.0f}] ({r.verdict})"
            )
        if parts:
            n = int(d.n_samples.iloc[0])
            out.append(
                f"{group}, steps of {n} samples, {metric.replace('_', ' ')} at equal step length and beyond "
                f"the step's loss: " + "; ".join(parts) + "."
            )
    return out


__all__ = [
    "KINDS",
    "READINGS",
    "REVISIT",
    "TERMS",
    "group_step_effects",
    "has_steps",
    "step_effects",
    "step_frame",
    "step_kind",
    "step_sentences",
    "verdict",
]
