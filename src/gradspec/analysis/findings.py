"""What a comparison found, in one or two sentences a curator can act on.

For the two metrics the papers read first (nuclear norm and effective rank), per group B against
the baseline A: which way B differs, by how much (the median over modules of the relative
difference), with what certainty (in how many modules the adjusted test passes), how the two
groups' lengths compare, and what equal length did to the difference. Built only from
``summary.csv`` and ``comparison.json``; no number is invented here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gradspec.analysis.beyond import separation
from gradspec.analysis.length import MATCHED_PAIRS, NATURAL, ONE_WINDOW, SMALLER, equal_length
from gradspec.analysis.steps import step_sentences
from gradspec.artifacts import COMPARISON

NAMES = {"nuclear_norm": "nuclear norms", "effective_rank": "effective ranks"}
ALPHA = 0.05
LENGTH_VERBS = ("holds", "disappears", "reverses", "appears")
"""The ``length_control`` verdicts that read as a verb of the difference ("it holds")."""


def counted(n: int, noun: str) -> str:
    """``1 token``, ``3 tokens``: a count with its noun in the right number."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _q_text(q: float) -> str:
    return "q<0.001" if q < 0.001 else f"q={q:.2g}"


def _modules(n: int, total: int) -> str:
    if n == total:
        return {4: "all four modules", 3: "all three modules", 2: "both modules", 1: "the module"}.get(
            n, f"all {n} modules"
        )
    return f"{n} of {total} modules"


def _significant(n: int, k: int) -> str:
    return f"all {k} significant modules" if n == k else f"{n} of the {k} significant modules"


def metric_sentence(rows: pd.DataFrame, metric: str, a: str, b: str, lengths: str, design: str = NATURAL) -> str:
    """One sentence about one metric of one pair of groups compared under ``design``."""
    equal = equal_length(design)
    diff = rows["design_diff"] if equal else rows["diff"]
    rel = diff / rows["mean_a"].abs()
    significant = rows[rows["q_value"] < ALPHA]
    name = NAMES.get(metric, metric.replace("_", " "))
    if significant.empty:
        best = rows["q_value"].min()
        where = "" if equal else " at their natural lengths"  # at equal length, ``lengths`` says how
        certainty = f"smallest {_q_text(float(best))}" if pd.notna(best) else "not tested"
        if "equivalent" not in rows:  # a comparison written before equivalence was read
            return f"{b} and {a} show no significant difference in {name}{where} ({certainty}){lengths}."
        margin = f"±{rows['sesoi'].iloc[0] / abs(rows['mean_a'].iloc[0]) * 100:.0f}% of {a}'s mean"
        same = int(rows["equivalent"].astype(bool).sum())
        if same == len(rows):
            return (
                f"{b} and {a} are equivalent in {name}{where}: the 90% interval of every module's difference lies "
                f"within {margin} ({certainty}){lengths}."
            )
        return (
            f"{b} and {a} show no significant difference in {name}{where} ({certainty}), but that is inconclusive, not "
            f"equivalence: the 90% intervals reach beyond {margin} in {_modules(len(rows) - same, len(rows))}{lengths}."
        )
    sig_rel = rel.loc[significant.index]
    direction = "higher" if np.median(sig_rel) > 0 else "lower"
    agree = int((np.sign(sig_rel) == np.sign(np.median(sig_rel))).sum())
    size = f"{abs(float(np.median(sig_rel))) * 100:.0f}%"
    text = (
        f"{b} has {size} {direction} {name} than {a} ({_q_text(float(significant['q_value'].max()))}, "
        f"{_modules(agree, len(rows))}){lengths}"
    )
    verdicts = Counter(clause for clause in map(length_clause, significant["length_control"].dropna()) if clause)
    if verdicts:
        common, n = verdicts.most_common(1)[0]
        k = len(significant)  # the clause counts the significant modules, not all of them
        text += f"; {common} ({_modules(n, k) if k == len(rows) else _significant(n, k)})"
    return text + "."


def beyond_sentence(
    rows: pd.DataFrame, a: str, b: str, metrics: Sequence[str] = tuple(NAMES), primary: pd.DataFrame | None = None
) -> str | None:
    """Whether the gradient tells B from A better than what a curator has without it: the sample's
    loss and its response and prompt lengths (``analysis/beyond.py``'s table for one pair). With the
    ``primary`` readings (``analysis/primary.py``) the gradient is read once per metric, as the loss
    is, and the best of several readings only against the best of as many under shuffled labels."""
    if rows.empty:
        return None
    first = rows.iloc[0]

    def auc(prefix: str, r: Any = first) -> str:
        return f"{separation(r[prefix]):.2f} [{_band(r, prefix)}]"

    own = rows[rows.metric.isin(metrics)]
    if own.empty:
        return None
    adds = own[own["q_beyond"] < ALPHA]
    text = (
        f"Beyond loss and length: the loss alone tells {b} from {a} with AUROC {auc('auroc_loss')}, response length "
        f"{auc('auroc_response_tokens')}, prompt length {auc('auroc_prompt_tokens')}; "
    )
    if primary is not None and not primary.empty:
        text += primary_clause(primary)
    else:
        best = own.loc[own["auroc"].map(separation).idxmax()]
        text += f"the best gradient reading, {best.metric.replace('_', ' ')} of {best.module}, {auc('auroc', best)}"
    family = f"FDR over all {len(rows)} readings of the beyond table"
    if adds.empty:
        return text + f"; no gradient metric adds to loss and lengths (likelihood-ratio q >= {ALPHA}, {family})."
    top = adds.loc[adds["q_beyond"].idxmin()]
    return text + (
        f"; {len(adds)} of {len(own)} add to loss and lengths (likelihood-ratio q < {ALPHA}, {family}), most "
        f"{top.metric.replace('_', ' ')} of {top.module}: at equal loss and lengths {b} differs by "
        f"{top.adjusted_diff:+.3g} [{top.adjusted_ci_low:+.3g}, {top.adjusted_ci_high:+.3g}]."
    )


def primary_clause(primary: pd.DataFrame) -> str:
    """The primary readings against the loss, and the best reading against its permutation null."""
    parts = []
    for r in primary.itertuples():
        # A bootstrap p is no finer than its resamples: none of n crossing zero is p < 2/n.
        resolution = 2 / getattr(r, "n_boot", 1000)
        p = f"p<{resolution:.2g}" if r.p_vs_loss < resolution else f"p={r.p_vs_loss:.2g}"
        parts.append(
            f"{NAMES.get(r.metric, r.metric)} {separation(r.auroc):.2f} ({r.separation_diff:+.2f} "
            f"[{r.separation_diff_low:+.2f}, {r.separation_diff_high:+.2f}] against the loss, {p})"
        )
    first = primary.iloc[0]
    text = (
        f"the primary gradient readings, named before looking (each log metric averaged over "
        f"{first.reading.split('mean of ', 1)[-1]}), {'; '.join(parts)}"
    )
    if isinstance(first.best_reading, str) and first.best_reading:
        text += (
            f"; the best of the {int(first.n_readings)} module readings, {first.best_reading.replace('_', ' ')} "
            f"{first.best_separation:.2f}, against the best of as many under shuffled labels: "
            f"permutation p={first.p_best_vs_null:.2g}"
        )
    return text


def paired_sentence(rows: pd.DataFrame, metric: str, a: str, b: str) -> str:
    """One sentence on one metric of a paired comparison (``analysis/paired.py``'s table, one pair of
    groups): how many pairs, which way B differs within them, by how much, and what it adds to loss
    and lengths within pairs. The share, the median difference and the sign test are one estimand."""
    first = rows.iloc[0]
    dropped = int(first["dropped_pairs"])
    head = f"Paired by {first['pair_by']} ({counted(int(rows['n_pairs'].max()), 'pair')}" + (
        f"; {dropped} dropped whole because a side was not computed)" if dropped else ")"
    )
    name = NAMES.get(metric, metric.replace("_", " "))
    significant = rows[rows["q_value"] < ALPHA]
    labels = Counter(_named(label, b) for label in rows["label"])
    said = ", ".join(f"{label} in {_modules(n, len(rows))}" for label, n in labels.most_common())
    if significant.empty:
        best = rows["q_value"].min()
        q = _q_text(float(best))
        return (
            f"{head}: {b} and {a} show no significant difference in {name} within pairs (smallest sign-test {q}): "
            f"{said}."
        )
    share = float(np.median(significant["share_b_higher"]))
    rel = float(np.median(significant["rel_median_diff"]))
    adds = int((rows["q_beyond"] < ALPHA).sum())
    way, share = ("higher", share) if rel > 0 else ("lower", 1 - share)
    return (
        f"{head}: {b} has {way} {name} than {a} in {share:.0%} of pairs, a median paired difference of "
        f"{rel * 100:+.1f}% of {a}'s mean (sign test {_q_text(float(significant['q_value'].max()))}): {said}; "
        f"within pairs it adds to loss and lengths in {adds} of {len(rows)} modules (conditional logistic q < {ALPHA})."
    )


def _named(label: str, b: str) -> str:
    """A table's label ("B lower") as a sentence says it, with B's name ("fast lower")."""
    return f"{b} {label[2:]}" if label.startswith("B ") else label


def _band(row: Any, prefix: str) -> str:
    """An AUROC's interval as a separation (whichever way), low to high."""
    low, high = row[f"{prefix}_low"], row[f"{prefix}_high"]
    if pd.isna(low) or pd.isna(high):
        return "no interval"
    if row[prefix] >= 0.5:
        return f"{low:.2f}, {high:.2f}"
    return f"{1 - high:.2f}, {1 - low:.2f}"


def length_clause(verdict: str) -> str | None:
    """What a ``length_control`` verdict says about a significant difference, as a clause."""
    if verdict.startswith("equal length by design: "):
        word = verdict.removeprefix("equal length by design: ")
        if word == "inconclusive":
            return "against natural lengths it is inconclusive: neither held nor equivalent to zero"
        if word == SMALLER:
            return "significant but smaller than the margin: its 90% interval lies within it, so it does not hold"
        return f"against natural lengths it {word}" if word in LENGTH_VERBS else None
    if verdict.startswith("length control not possible"):
        return (
            "the groups' lengths barely overlap, so length cannot be held fixed here: compute both at one "
            "--response-tokens window, or truncation-matched"
        )
    if verdict.endswith("under length control"):
        return f"it {verdict.removesuffix(' under length control')} with length matched or regressed out"
    return None


def sentences(
    summary: pd.DataFrame,
    manifest: dict[str, Any],
    metrics: Sequence[str] = tuple(NAMES),
    beyond: pd.DataFrame | None = None,
    primary: pd.DataFrame | None = None,
) -> list[str]:
    """The comparison's findings, one sentence per group and metric, then (with ``beyond``, the
    comparison's beyond table) one on what the gradient adds to loss and lengths."""
    groups = {g["label"]: g for g in manifest.get("groups", [])}
    out = []
    for (a, b), pair in summary.groupby(["a", "b"], sort=False):
        la = groups.get(a, {}).get("median_response_tokens")
        lb = groups.get(b, {}).get("median_response_tokens")
        design = pair["design"].iloc[0] if "design" in pair else NATURAL
        lengths = ""
        if design == MATCHED_PAIRS:
            lengths = f", at equal length by design ({int(pair['n_a'].max())} pairs of the same response length)"
        elif design == ONE_WINDOW:
            window = groups.get(a, {}).get("response_tokens")
            at = f"{counted(window, 'response token')} each" if window else "one response length"
            lengths = (
                f", at equal length by design ({at}; {int(pair['n_a'].max())} and {int(pair['n_b'].max())} samples)"
            )
        elif la and lb:
            ratio = lb / la
            if ratio > 1.5 or ratio < 1 / 1.5:
                lengths = (
                    f", but {b}'s responses are {ratio:.2g}x as long as {a}'s (median {lb:.0f} vs {la:.0f} tokens)"
                )
        for metric in metrics:
            rows = pair[pair["metric"] == metric]
            if not rows.empty:
                out.append(metric_sentence(rows.reset_index(drop=True), metric, a, b, lengths, design))
        if beyond is not None and not beyond.empty:
            mine = None if primary is None or primary.empty else primary[(primary.a == a) & (primary.b == b)]
            said = beyond_sentence(beyond[(beyond.a == a) & (beyond.b == b)], a, b, metrics, mine)
            if said:
                out.append(said)
    return out


def paired_sentences(paired: pd.DataFrame, metrics: Sequence[str] = tuple(NAMES)) -> list[str]:
    """One sentence per pair of groups and metric of a comparison's paired table."""
    out = []
    for (a, b), pair in paired.groupby(["a", "b"], sort=False):
        for metric in metrics:
            rows = pair[pair["metric"] == metric]
            if not rows.empty:
                out.append(paired_sentence(rows.reset_index(drop=True), metric, a, b))
    return out


def comparison_findings(folder: str | Path) -> list[str]:
    """The sentences of a comparison folder, from its marker, summary, paired and beyond tables."""
    from gradspec.analysis.compare import load_comparison

    summary = pd.read_csv(COMPARISON.file(folder, "summary"))
    beyond_file = COMPARISON.file(folder, "beyond")
    beyond = pd.read_csv(beyond_file) if beyond_file.exists() else None
    primary_file = COMPARISON.file(folder, "primary")
    primary = pd.read_csv(primary_file) if primary_file.exists() else None
    paired_file = COMPARISON.file(folder, "paired")
    paired = paired_sentences(pd.read_csv(paired_file)) if paired_file.exists() else []
    steps_file = COMPARISON.file(folder, "steps")
    steps = step_sentences(pd.read_csv(steps_file)) if steps_file.exists() else []
    return sentences(summary, load_comparison(folder), beyond=beyond, primary=primary) + paired + steps
