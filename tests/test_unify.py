"""Quality scores joined with gradient metrics on sample_id: correlations and grad_quality."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from gradspec import ComputeConfig, PromptConfig, compute
from gradspec.analysis.unify import correlate
from gradspec.errors import ConfigError
from gradspec.score.grad_quality import grad_quality
from gradspec.selection import SelectConfig, select

from conftest import write_json


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("unify")
    rng = np.random.default_rng(0)
    recs = []
    for i in range(12):
        words = " ".join(rng.choice(["red", "green", "blue", "seven", "eight"], 2 + 3 * (i % 4)))
        recs.append({"instruction": f"Say some words ({i}).", "output": words, "reward": float(rng.normal())})
    recs[3]["reward"] = None  # undefined: left out of every correlation
    data = write_json(tmp / "scored.json", recs)
    cfg = ComputeConfig.of(
        data=data,
        out=tmp / "run",
        model=str(tiny_llama_dir),
        prompt=PromptConfig("plain", max_length=64),
        progress=False,
    )
    compute(cfg)
    return data, tmp / "run"


def test_correlations_equal_spearman_on_joined_samples(tmp_path: Path, scored_run: tuple[Path, Path]) -> None:
    from gradspec.store import open_run

    data, run_dir = scored_run
    run = open_run(run_dir)
    result = correlate(run, data, tmp_path)
    assert result["joined_samples"] == 12 and result["quality_fields"] == ["reward"]
    table = pd.read_csv(tmp_path / "correlations.csv")
    row = table[(table.module == "q") & (table.gradient_metric == "nuclear_norm")].iloc[0]
    stats = run.df("layer_stats")
    per_sample = stats[stats.module == "q"].groupby("sample_id")["nuclear_norm"].mean()
    from gradspec.data import load_dataset

    ds = load_dataset(data)
    rewards = {item.sample_id: json.loads(data.read_text())[item.index]["reward"] for item in ds.items}
    pairs = [(rewards[s], v) for s, v in per_sample.items() if rewards[s] is not None]
    want = sps.spearmanr(*zip(*pairs))
    assert row.n == 11 and row.rho == pytest.approx(want.statistic) and row.p == pytest.approx(want.pvalue)
    assert not np.isnan(row.rho_length_partialled)
    layers = pd.read_csv(tmp_path / "correlations_by_layer.csv")
    assert set(layers.layer) == {0, 1, 2}
    assert (tmp_path / "correlation_by_layer_reward.png").exists()


def test_grad_quality_follows_its_definition_and_drives_select(tmp_path: Path, scored_run: tuple[Path, Path]) -> None:
    from gradspec.store import open_run

    data, run_dir = scored_run
    run = open_run(run_dir)
    gq = grad_quality(run).set_index("sample_id")
    stats = run.df("layer_stats")
    sizes = run.df("samples").set_index("sample_id")["n_response_tokens"]
    terms = []
    for module in ("q", "k", "v", "o"):
        per = stats[stats.module == module].groupby("sample_id")[["effective_rank", "nuclear_norm"]].mean()
        log_len = np.log(sizes.loc[per.index].to_numpy(float))
        parts = []
        for col in ("effective_rank", "nuclear_norm"):
            y = np.log(per[col].to_numpy())
            slope, intercept = np.polyfit(log_len, y, 1)
            resid = y - (slope * log_len + intercept)
            parts.append(pd.Series(resid / resid.std(ddof=1), index=per.index))
        terms.append((parts[0] - parts[1]) / 2)
    want = pd.concat(terms, axis=1).mean(axis=1)
    assert gq.loc[want.index, "grad_quality"].to_numpy() == pytest.approx(want.to_numpy(), rel=1e-6, abs=1e-9)

    summary = select(SelectConfig(data, "grad_quality", tmp_path, top=3, bottom=3, run=run_dir))
    top = json.loads((tmp_path / "scored_highest_3.json").read_text())
    assert [r["sample_id"] for r in top] == list(want.sort_values(ascending=False).index[:3])
    assert top[0]["grad_quality"] == pytest.approx(want.max())
    assert summary["candidates"] == 12
    # Without --run the records must carry the score themselves (score --metrics grad_quality writes it).
    with pytest.raises(ConfigError, match="give --run"):
        select(SelectConfig(data, "grad_quality", tmp_path, top=1))


def test_within_blocks_each_prompt_is_read_alone(tmp_path: Path, tiny_llama_dir: Path) -> None:
    """Four prompts, six answers each, of rising length; a quality field that rises with the answer's
    length within every prompt but whose level differs by prompt: the mean within-block rho of the
    response length with it is 1 over 4 blocks, and each block's rho equals scipy's on its own."""
    from gradspec.analysis.within import block_rhos

    recs = []
    for p in range(4):
        for k in range(6):
            recs.append(
                {
                    "instruction": f"Prompt {p}: count.",
                    "output": " ".join(["one"] * (1 + 2 * k)),
                    "prompt_id": p,
                    "reward": 10.0 * (3 - p) + k,
                    "win_text": f"{10.0 * (3 - p) + k:.2f}",  # a number as text, as the pool's
                    "mixed": float((5 * k + p) % 6),  # a field length does not decide
                    "n_response_tokens": 1 + 2 * k,  # a scored length, named like the run's own column
                }
            )
    data = write_json(tmp_path / "pool.json", recs)
    compute(ComputeConfig.of(data=data, out=tmp_path / "run", model=str(tiny_llama_dir), progress=False,
                             prompt=PromptConfig("plain", max_length=64)))  # fmt: skip
    from gradspec.store import open_run

    run = open_run(tmp_path / "run")
    correlate(run, data, tmp_path / "c", ["reward", "win_text", "mixed", "n_response_tokens"], within="prompt_id")
    within = pd.read_csv(tmp_path / "c" / "within.csv")
    for field in ("reward", "win_text"):
        length = within[(within.reading == "n_response_tokens") & (within.quality == field)].iloc[0]
        assert length.blocks == 4 and length.mean_rho == pytest.approx(1.0) and length.share_positive == 1.0
    # Over all 16 records the prompt levels run against the lengths: the pooled rho is far from 1.
    sizes = run.df("samples").set_index("sample_id")["n_response_tokens"]
    ids = [r.sample_id for r in __import__("gradspec").data.load_dataset(data).items]
    pooled = sps.spearmanr([sizes[i] for i in ids], [r["reward"] for r in recs]).statistic
    assert pooled < 0.5
    nuclear = within[(within.reading == "nuclear_norm") & (within.module == "q")].iloc[0]
    frame = run.df("layer_stats").query("module == 'q'").groupby("sample_id")["nuclear_norm"].mean()
    table = pd.DataFrame({"block": [r["prompt_id"] for r in recs], "value": [frame[i] for i in ids],
                          "reward": [r["reward"] for r in recs]})  # fmt: skip
    assert nuclear.mean_rho == pytest.approx(block_rhos(table, "block", "value", "reward").mean())
    # Beyond the loss and the length: each block's partial rho, those two partialled out, averaged.
    samples = run.df("samples").set_index("sample_id")
    table = table.assign(loss=[samples.loss[i] for i in ids], tokens=[samples.n_response_tokens[i] for i in ids],
                         mixed=[r["mixed"] for r in recs])  # a field length does not decide  # fmt: skip
    partial = block_rhos(table, "block", "value", "mixed", ("loss", "tokens"))
    mixed = within[(within.reading == "nuclear_norm") & (within.module == "q") & (within.quality == "mixed")].iloc[0]
    assert len(partial) == mixed.blocks_beyond >= 1 and mixed.mean_rho_beyond == pytest.approx(partial.mean())
    loss_row = within[(within.reading == "loss") & (within.quality == "reward")].iloc[0]
    assert np.isnan(loss_row.mean_rho_beyond)  # the loss is not read beyond itself
    from gradspec.experiment.summary import within_lines
    from gradspec.report import write_report

    said = within_lines(within)
    assert "within blocks, n_response_tokens against reward: mean rho +1.000" in " ".join(said)
    # The scored length is read apart from the run's (which it equals here, as a word is a byte each way).
    scored = within[(within.reading == "n_response_tokens") & (within.quality == "n_response_tokens_scored")]
    assert scored.iloc[0].mean_rho == pytest.approx(1.0)
    assert "Within blocks" in write_report([tmp_path / "c"], tmp_path / "r.html").read_text()
    with pytest.raises(ConfigError, match="no record of .* has a field 'generator'"):
        correlate(run, data, tmp_path / "d", ["reward"], within="generator")
    assert not (tmp_path / "d").exists()  # refused before anything was written
