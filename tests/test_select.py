"""``gradspec select``: high/low groups, what is dropped, ties, quantiles, length matching."""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradspec.cli.main import app
from gradspec.data import load_dataset
from gradspec.errors import ConfigError
from gradspec.selection import SelectConfig, select

from conftest import write_json


def rec(i: int, value: object, output: str | None = None, key: str = "reward") -> dict:
    return {"instruction": f"question {i}", "output": output or f"answer {i}", key: value}


def read(path: Path) -> list[dict]:
    return json.loads(path.read_text())


def test_highest_and_lowest_drop_undefined_and_keep_file_order_on_ties(tmp_path: Path) -> None:
    values = [0.5, None, 2.0, float("nan"), 0.5, "high", 2.0, -1.0, True, 0.5]
    data = write_json(tmp_path / "scored.json", [rec(i, v) for i, v in enumerate(values)])
    summary = select(SelectConfig(data, "reward", tmp_path / "out", top=3, bottom=2))
    high, low = read(tmp_path / "out/scored_highest_3.json"), read(tmp_path / "out/scored_lowest_2.json")
    assert [r["instruction"] for r in high] == ["question 2", "question 6", "question 0"]
    assert [r["instruction"] for r in low] == ["question 7", "question 0"]
    assert summary["dropped"]["undefined"] == 4 and summary["candidates"] == 6
    ids = {i.index: i.sample_id for i in load_dataset(data).items}
    assert high[0]["sample_id"] == ids[2]  # the id compute gives the same record
    assert read(tmp_path / "out/scored_selection.json")["groups"]["scored_highest_3"]["max"] == 2.0


def test_ifd_above_one_is_dropped(tmp_path: Path) -> None:
    data = write_json(tmp_path / "d.json", [rec(i, v, key="ifd") for i, v in enumerate([0.2, 1.5, 0.9, 1.0])])
    summary = select(SelectConfig(data, "ifd", tmp_path, top=5, name="wiz"))
    assert [r["ifd"] for r in read(tmp_path / "wiz_highest_5.json")] == [1.0, 0.9, 0.2]
    assert summary["dropped"]["ifd_above_1"] == 1


def test_quantiles_partition_every_candidate_in_order(tmp_path: Path) -> None:
    data = write_json(tmp_path / "d.json", [rec(i, (i * 7) % 10) for i in range(10)])
    select(SelectConfig(data, "reward", tmp_path, quantiles=3))
    parts = [[r["reward"] for r in read(tmp_path / f"d_q{k}of3.json")] for k in (1, 2, 3)]
    assert [len(p) for p in parts] == [4, 3, 3]
    assert sum(parts, []) == sorted(sum(parts, []))


def test_match_length_removes_the_length_gap(tmp_path: Path) -> None:
    """When the score follows length, plain high/low differ in length many times over;
    matched groups have nearly the same length distribution and still differ in score."""
    rng = random.Random(0)
    recs = []
    for i in range(400):
        n_words = rng.randint(1, 300)
        recs.append(rec(i, n_words / 100 + rng.gauss(0, 1), output=" ".join(["word"] * n_words)))
    data = write_json(tmp_path / "d.json", recs)
    plain = select(SelectConfig(data, "reward", tmp_path / "plain", top=50, bottom=50))
    matched = select(SelectConfig(data, "reward", tmp_path / "m", top=50, bottom=50, match_length=True))
    p_hi, p_lo = (plain["groups"][f"d_{g}_50"]["median_length"] for g in ("highest", "lowest"))
    m_hi, m_lo = (matched["groups"][f"d_{g}_50"]["median_length"] for g in ("highest", "lowest"))
    assert p_hi / p_lo > 2
    assert abs(m_hi / m_lo - 1) < 0.1
    hi = [len(r["output"]) for r in read(tmp_path / "m/d_highest_50.json")]
    lo = [len(r["output"]) for r in read(tmp_path / "m/d_lowest_50.json")]
    assert abs(statistics.mean(hi) - statistics.mean(lo)) < 0.1 * statistics.mean(lo)
    assert matched["groups"]["d_highest_50"]["mean"] > matched["groups"]["d_lowest_50"]["mean"] + 1
    assert matched["overlap"] == 0


def test_select_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    data = write_json(tmp_path / "d.json", [rec(0, None)])
    with pytest.raises(ConfigError, match="no record has a usable 'reward'"):
        select(SelectConfig(data, "reward", tmp_path, top=1))
    with pytest.raises(ConfigError, match="--top"):
        SelectConfig(data, "reward", tmp_path)
    with pytest.raises(ConfigError, match="same N"):
        SelectConfig(data, "reward", tmp_path, top=2, bottom=3, match_length=True)


def test_select_cli(tmp_path: Path) -> None:
    data = write_json(tmp_path / "d.json", [rec(i, float(i)) for i in range(6)])
    result = CliRunner().invoke(
        app, ["select", str(data), "--by", "reward", "--top", "2", "--bottom", "2", "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    assert [r["reward"] for r in read(tmp_path / "o/d_highest_2.json")] == [5.0, 4.0]
    bad = CliRunner().invoke(app, ["select", str(data), "--by", "nope", "--top", "2", "-o", str(tmp_path / "o")])
    assert bad.exit_code == 2 and "no record has a usable 'nope'" in bad.output
