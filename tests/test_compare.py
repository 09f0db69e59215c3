"""``gradspec compare``: the numbers behind every table against direct computations, length
control on constructed data, depth alignment across models, and the files it writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats as sps
from transformers import AutoModelForCausalLM, LlamaConfig

from gradspec import ComputeConfig, PromptConfig, compute
from gradspec.analysis import CompareConfig, compare
from gradspec.analysis.compare import MIN_MATCHED
from gradspec.analysis.curves import curve_differences, on_depth_grid, shape_similarity
from gradspec.analysis.groups import Group
from gradspec.analysis.length import match_by_length, regress_on_length, verdict
from gradspec.analysis.stats import bootstrap_mean_ci, fdr, mann_whitney, partial_spearman
from gradspec.errors import ConfigError

from conftest import byte_tokenizer, write_json
from tiny_models import COMMON


def records(n: int, words: int, seed: int) -> list[dict[str, str]]:
    rng = np.random.default_rng(seed)
    vocab = ["alpha", "beta", "gamma", "delta", "sky", "blue", "sum", "two", "three"]
    return [
        {"instruction": f"Item {i}: explain {rng.choice(vocab)}.", "output": " ".join(rng.choice(vocab, words + i % 3))}
        for i in range(n)
    ]


def run_of(tmp: Path, name: str, recs: list[dict], model: Path) -> Path:
    out = tmp / name
    cfg = ComputeConfig.of(
        data=write_json(tmp / f"{name}.json", recs), out=out, model=str(model),
        prompt=PromptConfig("plain", max_length=96), device="cpu", progress=False,
    )  # fmt: skip
    compute(cfg)
    return out


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("cmp")
    return run_of(tmp, "short", records(8, 3, 0), tiny_llama_dir), run_of(
        tmp, "long", records(8, 12, 1), tiny_llama_dir
    )


def test_compare_tables_equal_direct_computations(tmp_path: Path, two_runs: tuple[Path, Path]) -> None:
    a, b = two_runs
    manifest = compare(CompareConfig([a, b], tmp_path / "cmp", ["A", "B"], n_boot=200))
    out = tmp_path / "cmp"
    for stem in ("layerwise", "summary", "per_layer", "curves"):
        assert (out / f"{stem}.csv").exists() and (out / f"{stem}.md").exists(), stem
    for fig in ("layerwise_nuclear_norm", "difference_effective_rank", "layerwise_adjacent_cosine"):
        assert (out / f"{fig}.png").stat().st_size > 1000 and (out / f"{fig}.svg").exists()

    from gradspec.store import open_run

    stats = {g: open_run(p).df("layer_stats") for g, p in (("A", a), ("B", b))}
    layerwise = pd.read_csv(out / "layerwise.csv")
    row = layerwise[(layerwise.group == "B") & (layerwise.metric == "nuclear_norm") & (layerwise.module == "v")]
    direct = stats["B"][stats["B"].module == "v"].groupby("layer")["nuclear_norm"].mean()
    assert row.sort_values("layer")["mean"].to_numpy() == pytest.approx(direct.to_numpy(), rel=1e-9)
    assert (row.ci_low <= row["mean"]).all() and (row["mean"] <= row.ci_high).all()

    summary = pd.read_csv(out / "summary.csv")
    s = summary[(summary.metric == "effective_rank") & (summary.module == "q")].iloc[0]
    per_a = stats["A"][stats["A"].module == "q"].groupby("sample_id")["effective_rank"].mean()
    per_b = stats["B"][stats["B"].module == "q"].groupby("sample_id")["effective_rank"].mean()
    assert s.mean_a == pytest.approx(per_a.mean()) and s.mean_b == pytest.approx(per_b.mean())
    # One estimand: the headline's test is Welch's t of the difference of means (its q_value); the
    # rank reading (Mann-Whitney U, Cliff's delta) is a column of its own.
    assert s.p_means == pytest.approx(sps.ttest_ind(per_b, per_a, equal_var=False).pvalue)
    assert s.p == pytest.approx(sps.mannwhitneyu(per_b, per_a, alternative="two-sided").pvalue)
    assert -1 <= s.cliffs_delta <= 1 and s.q_value >= s.p_means
    # Each row's verdict follows from that row's own numbers, by the rule compare states: the
    # length-controlled p (the larger of matched and regressed), adjusted over the table as the raw one.
    controlled = np.where(
        np.isnan(summary.p_matched), summary.p_adjusted, np.fmax(summary.p_adjusted, summary.p_matched)
    )
    assert summary.q_controlled.to_numpy() == pytest.approx(fdr(controlled), nan_ok=True)
    for r in summary.itertuples():
        if r.q_value < 0.05 and r.matched_pairs < MIN_MATCHED:
            want = "length control not possible: the groups' lengths barely overlap"
        else:
            want = verdict(r.q_value, r.diff, r.q_controlled, r.diff_adjusted)
        assert r.length_control == want, (r.metric, r.module)
    # B's responses are 4x longer and share no length with A's: most raw differences are
    # significant, and none can be checked at equal length.
    assert (summary.matched_pairs < MIN_MATCHED).all()
    # The manifest says so too.
    assert any("length imbalance: B" in w for w in manifest["warnings"])
    assert manifest["axis"] == "layer" and json.loads((out / "comparison.json").read_text())["baseline"] == "A"


def test_runs_of_different_depth_align_by_relative_depth(tmp_path: Path, two_runs: tuple[Path, Path]) -> None:
    torch.manual_seed(3)
    deep = AutoModelForCausalLM.from_config(LlamaConfig(**{**COMMON, "num_hidden_layers": 5}))
    deep.save_pretrained(tmp_path / "deep", safe_serialization=True)
    byte_tokenizer().save_pretrained(tmp_path / "deep")
    b = run_of(tmp_path, "deep-run", records(6, 3, 0), tmp_path / "deep")
    manifest = compare(CompareConfig([two_runs[0], b], tmp_path / "cmp", ["three", "five"], n_boot=50))
    assert manifest["axis"] == "depth" and not (tmp_path / "cmp/per_layer.csv").exists()
    layerwise = pd.read_csv(tmp_path / "cmp/layerwise.csv")
    five = layerwise[(layerwise.group == "five") & (layerwise.metric == "nuclear_norm") & (layerwise.module == "q")]
    assert sorted(five.depth) == [0, 0.25, 0.5, 0.75, 1.0]
    shapes = pd.read_csv(tmp_path / "cmp/curve_shapes.csv")
    self_rows = shapes[shapes.a == shapes.b]
    assert np.allclose(self_rows.correlation.dropna(), 1.0)


def test_curve_helpers() -> None:
    d = curve_differences(np.array([1.0, 2, 3, 4, 5, 6]), np.array([1.0, 2, 3, 4, 5, 9]))
    assert d["mad_all"] == pytest.approx(0.5) and d["mad_late"] == pytest.approx(1.5) and d["mad_early"] == 0
    assert d["layers_differing_most"][0] == 5 and d["relative_difference"][5] == pytest.approx(0.5)
    # A curve on 3 layers and the same line on 5 layers are the same shape after alignment.
    assert on_depth_grid(np.array([0, 0.5, 1]), np.array([0, 1, 2]))[10] == pytest.approx(1.0)
    sim = shape_similarity(
        {"x": (np.linspace(0, 1, 3), np.array([0, 1, 2.0])), "y": (np.linspace(0, 1, 5), 10 * np.arange(5.0))}
    )
    assert sim[(sim.a == "x") & (sim.b == "y")].correlation.iloc[0] == pytest.approx(1.0)
    assert sim[(sim.a == "x") & (sim.b == "y")].distance.iloc[0] == pytest.approx(0.0, abs=1e-12)


def test_length_control_sees_through_a_length_driven_difference() -> None:
    """Values that depend only on length: the raw groups differ, the matched and adjusted do not."""
    rng = np.random.default_rng(0)
    len_a, len_b = rng.integers(20, 200, 300), rng.integers(100, 1000, 300)
    value = lambda n: np.log(n) + rng.normal(0, 0.3, len(n))  # noqa: E731
    a, b = value(len_a), value(len_b)
    p_raw, _ = mann_whitney(a, b)
    ia, ib = match_by_length(len_a, len_b, 0.05)
    assert len(ia) > 30 and np.all(np.abs(np.log(len_a[ia]) - np.log(len_b[ib])) <= 0.05)
    p_matched, _ = mann_whitney(a[ia], b[ib])
    adjusted = regress_on_length(a, b, len_a, len_b)
    assert (
        p_raw < 1e-10 and p_matched > 0.01 and adjusted.p > 0.01 and adjusted.length_slope == pytest.approx(1, abs=0.1)
    )
    assert verdict(fdr(np.array([p_raw]))[0], b.mean() - a.mean(), max(adjusted.p, p_matched), adjusted.effect) == (
        "disappears under length control"
    )
    # A real group effect on top of length survives.
    b2 = b + 1.0
    kept = regress_on_length(a, b2, len_a, len_b)
    assert kept.p < 1e-6 and kept.effect == pytest.approx(1.0, abs=0.15)
    assert verdict(1e-9, 1.0, kept.p, kept.effect) == "holds under length control"
    assert verdict(0.5, 0.1, 1e-4, 0.3) == "appears under length control"
    assert verdict(0.5, 0.1, 0.2, 0.3) == "no difference"


def test_stats_helpers() -> None:
    x = np.arange(40.0)
    mean, lo, hi = bootstrap_mean_ci(x, 500)
    assert mean[0] == pytest.approx(19.5) and lo[0] < 19.5 < hi[0]
    p, cliff = mann_whitney(np.zeros(5), np.ones(5))
    assert cliff == 1.0 and p < 0.05
    q = fdr(np.array([0.01, 0.04, np.nan, 0.03]))
    assert np.isnan(q[2]) and q[0] == pytest.approx(0.03) and q[1] == pytest.approx(0.04)
    rng = np.random.default_rng(1)
    z = rng.normal(size=400)
    x, y = z + 0.3 * rng.normal(size=400), z + 0.3 * rng.normal(size=400)
    assert sps.spearmanr(x, y).statistic > 0.8  # both follow z ...
    r, _, n = partial_spearman(x, y, z)
    assert n == 400 and abs(r) < 0.2  # ... and with z partialled out little is left
    r_own, p_own, _ = partial_spearman(x + y, y, z)
    assert r_own > 0.5 and p_own < 1e-6
    # Two covariates: the ranks residualised on both covariates' ranks, by hand, with n - 4 degrees of
    # freedom; a constant covariate drops out.
    w = rng.normal(size=400)
    x2, y2 = z + w + 0.3 * rng.normal(size=400), z - w + 0.3 * rng.normal(size=400)
    design = np.column_stack([np.ones(400), sps.rankdata(z), sps.rankdata(w)])
    rx, ry = (sps.rankdata(v) - design @ np.linalg.lstsq(design, sps.rankdata(v), rcond=None)[0] for v in (x2, y2))
    want = float(np.corrcoef(rx, ry)[0, 1])
    r2, p2, _ = partial_spearman(x2, y2, np.column_stack([z, w]))
    assert r2 == pytest.approx(want, rel=1e-9)
    assert p2 == pytest.approx(2 * sps.t.sf(abs(want) * np.sqrt(396 / (1 - want**2)), 396), rel=1e-9)
    assert partial_spearman(x, y, np.column_stack([z, np.ones(400)]))[:2] == pytest.approx(
        partial_spearman(x, y, z)[:2]
    )


def test_compare_refuses_bad_input(tmp_path: Path, two_runs: tuple[Path, Path]) -> None:
    with pytest.raises(ConfigError, match="at least two"):
        CompareConfig([two_runs[0]], tmp_path)
    with pytest.raises(ConfigError, match="2 runs"):
        CompareConfig(list(two_runs), tmp_path, ["only-one"])


def synthetic_group(label: str, values: np.ndarray, lengths: np.ndarray) -> Group:
    """A group of one metric, one module and one layer with the given per-sample values and lengths."""
    from gradspec.analysis.frames import per_sample

    ids = [f"{label}{i}" for i in range(len(values))]
    frame = pd.DataFrame(
        {"group": label, "sample_id": ids, "layer": 0, "depth": 0.0, "module": "q", "metric": "nuclear_norm",
         "value": values}
    )  # fmt: skip
    return Group(label, [], frame, per_sample(frame), pd.Series(lengths, index=ids), 1)


@pytest.mark.parametrize("design", ["one window", "matched pairs"])
@pytest.mark.parametrize(
    ("quality", "want"),
    [(0.0, "equal length by design: disappears"), (0.5, "equal length by design: holds"),
     (0.1, "equal length by design: reverses")],
    ids=["pure length", "pure quality", "reversal"],
)  # fmt: skip
def test_the_equal_length_design_tells_length_from_quality(quality: float, want: str, design: str) -> None:
    """Metric = 8/length + B's quality effect + noise. At natural lengths B is 10x longer, which alone
    makes its metric 0.18 lower; at equal length only the quality is left: none (the raw difference
    disappears), +0.5 (B's raw difference turns positive and holds), +0.1 (raw: B lower; at equal
    length: B higher, a reversal). Equal length two ways: one window of 16 tokens for every sample
    (independent groups, compared unpaired), or truncation-matched pairs whose lengths differ from
    pair to pair (compared pair by pair, so the length every pair shares cancels)."""
    from gradspec.analysis.compare import summary_table

    rng = np.random.default_rng(7)
    n = 40
    la, lb = rng.integers(20, 60, n), rng.integers(200, 600, n)
    metric = lambda lengths, q: 8.0 / lengths + q + rng.normal(0, 0.05, len(lengths))  # noqa: E731
    raw = summary_table(synthetic_group("A", metric(la, 0), la), synthetic_group("B", metric(lb, quality), lb), 0.1)
    assert raw.iloc[0].design == "natural length" and raw.iloc[0].q_value < 1e-3
    lengths = np.full(n, 16) if design == "one window" else np.minimum(la, rng.permutation(lb))
    a, b = synthetic_group("A", metric(lengths, 0), lengths), synthetic_group("B", metric(lengths, quality), lengths)
    reference = {("B", "nuclear_norm", "q"): (float(raw.iloc[0]["diff"]), float(raw.iloc[0].q_value))}
    # Noise of 0.05 on means of 0.2 to 0.5: 40 samples resolve about 10% of the mean, so "disappears"
    # (equivalence) is read against a smallest effect of interest of 20% here.
    row = summary_table(a, b, 0.1, reference, sesoi=0.2).iloc[0]
    assert row.design == f"equal length: {design}" and row.length_control == want
    va, vb = a.samples["value"].to_numpy(), b.samples["value"].to_numpy()
    # One estimand: the test is of the mean difference that the interval describes.
    if design == "one window":  # independent samples: the difference of means and Welch's t test
        assert row.design_diff == pytest.approx(vb.mean() - va.mean())
        assert row.p_design == pytest.approx(sps.ttest_ind(vb, va, equal_var=False).pvalue)
    else:  # the i-th sample of each group has the same length: the pairs, directly
        d = vb - va
        assert row.design_diff == pytest.approx(d.mean()) and row.p_design == pytest.approx(
            sps.ttest_1samp(d, 0).pvalue
        )
    assert row.design_ci_low <= row.design_diff <= row.design_ci_high
    if quality == 0:
        assert row.q_value > 0.05
    # Without a reference the verdict still says which way the design points.
    alone = summary_table(a, b, 0.1, sesoi=0.2).iloc[0].length_control
    assert alone == {0.0: "equal length by design: equivalent to zero", 0.5: "equal length by design: B higher",
                     0.1: "equal length by design: B higher"}[quality]  # fmt: skip
    if quality == 0:  # the same groups, too small to tell: neither a difference nor equivalence
        few = summary_table(
            synthetic_group("A", metric(lengths[:4], 0), lengths[:4]),
            synthetic_group("B", metric(lengths[:4], 0), lengths[:4]),
            0.1,
            reference,
            sesoi=0.01,
        )
        assert few.iloc[0].length_control == "equal length by design: inconclusive"  # fmt: skip


def test_a_window_with_unequal_group_sizes_is_still_equal_length() -> None:
    """At a window some samples of the shorter group are too short and are skipped: the groups
    differ in size but every computed sample has the window's length, so the design holds."""
    from gradspec.analysis.compare import summary_table

    rng = np.random.default_rng(3)
    a = synthetic_group("A", rng.normal(1.0, 0.1, 5), np.full(5, 32))
    b = synthetic_group("B", rng.normal(1.5, 0.1, 12), np.full(12, 32))
    row = summary_table(a, b, 0.1).iloc[0]
    assert row.design == "equal length: one window" and row.n_a == 5 and row.n_b == 12
    assert row.length_control == "equal length by design: B higher" and row.design_diff > 0.3


@pytest.mark.parametrize(
    ("effect", "raw", "want"),
    [(0.02, -0.3, "smaller than the margin"), (0.02, 0.3, "smaller than the margin"), (0.4, 0.3, "holds"),
     (0.0, 0.3, "disappears")],
    ids=["tiny, raw other way", "tiny, raw same way", "large", "none"],
)  # fmt: skip
def test_a_label_never_says_more_than_its_interval(effect: float, raw: float, want: str) -> None:
    """One window, 400 samples a group, noise 0.05 on a mean of 1 and a margin of 10% (0.1): a 2% shift
    is significant, but its 90% interval lies inside the margin, so it is "smaller than the margin",
    never "holds" (nor "reverses"); a 40% shift holds; no shift is equivalent to zero."""
    from gradspec.analysis.compare import summary_table
    from gradspec.analysis.findings import length_clause

    rng = np.random.default_rng(3)
    n, lengths = 400, np.full(400, 16)
    a = synthetic_group("A", 1.0 + rng.normal(0, 0.05, n), lengths)
    b = synthetic_group("B", 1.0 + effect + rng.normal(0, 0.05, n), lengths)
    reference = {("B", "nuclear_norm", "q"): (raw, 1e-6)}
    row = summary_table(a, b, 0.1, reference, sesoi=0.1).iloc[0]
    assert row.length_control == f"equal length by design: {want}", row
    inside = -row.sesoi < row.ci90_low and row.ci90_high < row.sesoi
    assert inside == (want in ("smaller than the margin", "disappears"))
    if want == "holds":
        assert row.q_value < 0.05 and not inside and (row.ci90_low > 0 or row.ci90_high < 0)
    if want == "smaller than the margin":
        assert row.q_value < 0.05 and "does not hold" in length_clause(row.length_control)
