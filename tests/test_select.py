"""``gradspec select``: high/low groups, what is dropped, ties, quantiles, length matching."""

from __future__ import annotations

import json
import math
import random
import statistics
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradspec.cli.main import app
from gradspec.config.fields import flatten
from gradspec.config.selection import Size
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


def test_a_random_draw_is_named_random_and_has_no_key_statistics(tmp_path: Path) -> None:
    """--by random: the group is NAME_random_N (a draw has no highest), still @sel/highest to an experiment,
    and its summary carries no mean or range of the random keys it was drawn by."""
    data = write_json(tmp_path / "scored.json", [rec(i, float(i)) for i in range(10)])
    summary = select(SelectConfig(data, "random", tmp_path / "out", top=4, seed=3))
    assert summary["files"]["random"] == summary["files"]["highest"] == "scored_random_4.json"
    assert len(read(tmp_path / "out/scored_random_4.json")) == 4
    stats = summary["groups"]["scored_random_4"]
    assert stats["n"] == 4 and not {"mean", "min", "max"} & set(stats)


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
    matched = select(SelectConfig(data, "reward", tmp_path / "m", top=50, bottom=50, match_length="bins"))
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
        SelectConfig(data, "reward", tmp_path, top=2, bottom=3, match_length="bins")


def test_select_cli(tmp_path: Path) -> None:
    data = write_json(tmp_path / "d.json", [rec(i, float(i)) for i in range(6)])
    result = CliRunner().invoke(
        app, ["select", str(data), "--by", "reward", "--top", "2", "--bottom", "2", "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    assert [r["reward"] for r in read(tmp_path / "o/d_highest_2.json")] == [5.0, 4.0]
    bad = CliRunner().invoke(app, ["select", str(data), "--by", "nope", "--top", "2", "-o", str(tmp_path / "o")])
    assert bad.exit_code == 2 and "no record has a usable 'nope'" in bad.output


def test_truncation_matching_gives_identical_lengths_and_keeps_every_short_record(tmp_path: Path) -> None:
    rng = random.Random(1)
    recs = []
    for i in range(120):
        n = rng.randint(5, 400)
        recs.append({**rec(i, n / 50 + rng.gauss(0, 1)), "n_response_tokens": n})  # the score follows length
    data = write_json(tmp_path / "d.json", recs)
    for pairing in ("rank", "random"):
        out = tmp_path / pairing
        summary = select(
            SelectConfig(data, "reward", out, top=30, bottom=30, match_length="truncate", pairing=pairing, seed=4)
        )
        high, low = read(out / "d_highest_30.json"), read(out / "d_lowest_30.json")
        assert sorted(r["response_window"] for r in high) == sorted(r["response_window"] for r in low)
        shorter = low if summary["length_design"]["shorter_group"] == "lowest" else high
        assert all(r["response_window"] <= r["n_response_tokens"] for r in high + low)  # the length score stays
        # A window is the shorter length of its pair: never more than the record's own length.
        assert sum(r["response_window"] == r["n_response_tokens"] for r in shorter) >= 15
        assert summary["length_design"]["pairs"] == 30 and summary["length_design"]["pairing"] == pairing
        assert [r["reward"] for r in high] == sorted((r["reward"] for r in high), reverse=True)  # still the top 30
        assert all("source_index" in r for r in high)
    # by rank, the shorter group is never cut at all
    rank_high, rank_low = read(tmp_path / "rank/d_highest_30.json"), read(tmp_path / "rank/d_lowest_30.json")
    summary = json.loads((tmp_path / "rank/d_selection.json").read_text())
    shorter = rank_low if summary["length_design"]["shorter_group"] == "lowest" else rank_high
    assert all(r["response_window"] == r["n_response_tokens"] for r in shorter)
    with pytest.raises(ConfigError, match="needs token lengths"):
        select(SelectConfig(write_json(tmp_path / "n.json", [rec(i, i) for i in range(10)]), "reward", tmp_path / "n",
                            top=3, bottom=3, match_length="truncate"))  # fmt: skip


def test_truncation_matched_windows_fit_beside_each_prompt(tmp_path: Path) -> None:
    """With the runs' max length, no pair's window overflows either member's room (else the run would
    skip that member and break the pair); records without n_prompt_tokens keep their whole length."""
    rng = random.Random(2)
    recs = [
        {**rec(i, float(i)), "n_response_tokens": rng.randint(50, 600), "n_prompt_tokens": rng.randint(5, 150)}
        for i in range(60)
    ]
    data = write_json(tmp_path / "d.json", recs)
    select(SelectConfig(data, "reward", tmp_path / "o", top=20, bottom=20, match_length="truncate", max_length=512))
    chosen = read(tmp_path / "o/d_highest_20.json") + read(tmp_path / "o/d_lowest_20.json")
    assert all(r["n_prompt_tokens"] + r["response_window"] <= 512 for r in chosen)
    assert any(r["n_prompt_tokens"] + r["response_window"] == 512 for r in chosen)  # cut to the room, not below
    select(SelectConfig(data, "reward", tmp_path / "w", top=20, bottom=20, match_length="truncate"))
    unbounded = read(tmp_path / "w/d_highest_20.json") + read(tmp_path / "w/d_lowest_20.json")
    assert any(r["n_prompt_tokens"] + r["response_window"] > 512 for r in unbounded)


def test_a_pair_that_cannot_fit_is_dropped_and_counted_never_given_an_empty_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recs = [{**rec(i, float(i)), "n_response_tokens": 40, "n_prompt_tokens": 20} for i in range(8)]
    recs[0]["n_prompt_tokens"] = recs[7]["n_prompt_tokens"] = 300  # their prompts alone fill --max-length
    data = write_json(tmp_path / "d.json", recs)
    summary = select(SelectConfig(data, "reward", tmp_path / "o", top=4, bottom=4, match_length="truncate",
                                  max_length=256))  # fmt: skip
    chosen = read(tmp_path / "o/d_highest_4.json") + read(tmp_path / "o/d_lowest_4.json")
    assert all(r["response_window"] >= 1 for r in chosen) and len(chosen) < 8
    design = summary["length_design"]
    assert design["pairs_dropped"] >= 1 and design["pairs"] * 2 == len(chosen)
    assert "pair(s) dropped" in capsys.readouterr().err


def test_percent_sizes_thresholds_keep_column_random_and_the_fields_listed(tmp_path: Path) -> None:
    data = write_json(tmp_path / "d.json", [{**rec(i, float(i)), "other": i % 3} for i in range(20)])
    summary = select(SelectConfig.of(data=data, by="reward", out_dir=tmp_path / "a", top="25%", minimum=4.0))
    assert summary["candidates"] == 16 and summary["dropped"]["out_of_range"] == 4
    assert [r["reward"] for r in read(tmp_path / "a/d_highest_4.json")] == [19.0, 18.0, 17.0, 16.0]
    kept = select(SelectConfig.of(data=data, by="reward", out_dir=tmp_path / "k", maximum=9.5, keep_column=True))
    rows = [json.loads(line) for line in (tmp_path / "k" / kept["files"]["kept"]).read_text().splitlines()]
    assert [r["keep"] for r in rows] == [True] * 10 + [False] * 10 and [r["source_index"] for r in rows] == list(
        range(20)
    )
    drawn = [
        select(SelectConfig.of(data=data, by="random", out_dir=tmp_path / f"r{s}", top=5, seed=s)) for s in (1, 1, 2)
    ]
    picks = [
        [r["source_index"] for r in read(tmp_path / f"r{s}" / d["files"]["highest"])] for s, d in zip((1, 1, 2), drawn)
    ]
    assert picks[0] == picks[1] != picks[2]
    bad = CliRunner().invoke(app, ["select", str(data), "--by", "nope", "--top", "2", "-o", str(tmp_path / "o")])
    assert bad.exit_code == 2 and "numeric fields in the file: reward, other" in bad.output
    cli = CliRunner().invoke(
        app, ["select", str(data), "--by", "reward", "--top", "10%", "--min", "3", "-o", str(tmp_path / "c")]
    )
    assert cli.exit_code == 0 and (tmp_path / "c/d_highest_2.json").exists(), cli.output


def sized(i: int, value: float, response: int, prompt: int) -> dict:
    return {**rec(i, value), "n_response_tokens": response, "n_prompt_tokens": prompt}


def test_a_token_budget_counts_the_tokens_that_fit(tmp_path: Path) -> None:
    # max length 100: record 1's prompt fills it (no token fits), record 2 fits 40 of its 90 tokens
    rows = [sized(0, 9.0, 30, 10), sized(1, 8.0, 50, 100), sized(2, 7.0, 90, 60), sized(3, 6.0, 20, 10),
            sized(4, 5.0, 35, 10), sized(5, 4.0, 10, 10)]  # fmt: skip
    data = write_json(tmp_path / "d.json", rows)
    summary = select(SelectConfig.of(data=data, by="reward", out_dir=tmp_path / "o", top="95 tokens", max_length=100))
    got = [r["source_index"] for r in read(tmp_path / "o" / summary["files"]["highest"])]
    assert got == [0, 2, 3]  # 30 + 40 + 20 = 90; record 4's 35 would pass 95, record 1 has none that fits
    assert summary["files"]["highest"] == "d_highest_95tokens.json"
    assert summary["groups"]["d_highest_95tokens"]["tokens_that_fit"] == 90
    # The most-fitting-tokens baseline ranks by what fits, not by the whole response.
    most = select(SelectConfig.of(data=data, by="fitting_tokens", out_dir=tmp_path / "f", top=2, max_length=100))
    assert [r["source_index"] for r in read(tmp_path / "f" / most["files"]["highest"])] == [2, 4]
    with pytest.raises(ConfigError, match="give --max-length"):
        SelectConfig.of(data=data, by="reward", out_dir=tmp_path / "x", top="95 tokens").check()
    with pytest.raises(ConfigError, match="token budget"):
        SelectConfig.of(data=data, by="reward", out_dir=tmp_path / "x", top="lots of tokens").check()


def test_a_file_scored_before_the_rename_selects_as_one_scored_after(tmp_path: Path) -> None:
    """Files scored by 0.2 hold the counts as response_tokens/prompt_tokens (the window options'
    names): a budget, --by fitting_tokens and --by n_response_tokens read them the same."""
    rows = [sized(0, 9.0, 30, 10), sized(1, 8.0, 50, 100), sized(2, 7.0, 90, 60), sized(3, 6.0, 20, 10)]
    former = [{k.removeprefix("n_"): v for k, v in r.items()} for r in rows]
    picks = []
    for name, records in (("new", rows), ("former", former)):
        data = write_json(tmp_path / f"{name}.json", records)
        for by, top in (("reward", "95 tokens"), ("fitting_tokens", 2), ("n_response_tokens", 2)):
            summary = select(SelectConfig.of(data=data, by=by, out_dir=tmp_path / name, top=top, max_length=100))
            group = read(tmp_path / name / summary["files"]["highest"])
            picks.append((name, by, [r["source_index"] for r in group], summary["length_unit"]))
    assert [p[1:] for p in picks[:3]] == [p[1:] for p in picks[3:]], picks
    assert [p[2] for p in picks[:3]] == [[0, 2, 3], [2, 0], [2, 1]] and picks[3][3] == "tokens"


@pytest.mark.parametrize(
    ("given", "unit", "text", "records_of_40"),
    [(64, "records", 64, 64), ("64", "records", 64, 64), (" 25 % ", "percent", "25%", 10),
     ("12.5%", "percent", "12.5%", 5), ("16000 tokens", "tokens", "16000 tokens", None),
     ("1 token", "tokens", "1 tokens", None)],
)  # fmt: skip
def test_a_size_is_read_once_and_written_back_as_given(
    tmp_path: Path, given: object, unit: str, text: object, records_of_40: int | None
) -> None:
    """However the config is built (Python, YAML, command line), --top holds a ``Size``; its manifest
    value is the canonical text (an int for a count), and a share means a count only among candidates."""
    for config in (
        SelectConfig(tmp_path / "d.json", "reward", tmp_path, top=given, max_length=100),  # type: ignore[arg-type]
        SelectConfig.of(data=tmp_path / "d.json", by="reward", out_dir=tmp_path, top=given, max_length=100),
    ):
        assert isinstance(config.top, Size) and config.top.unit == unit
        assert flatten(config)["top"] == text and Size.parse(text) == config.top
        if records_of_40 is None:
            assert config.top.budget == config.top.amount
            with pytest.raises(ValueError, match="a token budget, not a count"):
                config.top.records(40)
        else:
            assert config.top.budget is None and config.top.records(40) == records_of_40


@pytest.mark.parametrize("bad", [-1, True, "0%", "101%", "0 tokens", "lots", 2.5])
def test_a_size_that_is_not_one_is_refused_naming_the_option(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ConfigError, match=r"^--bottom (must be 0 or more|expects a count)"):
        SelectConfig(tmp_path / "d.json", "reward", tmp_path, top=1, bottom=bad)  # type: ignore[arg-type]


def test_residualised_and_stratified_scores_leave_length_out(tmp_path: Path) -> None:
    rng = random.Random(3)
    rows = []
    for i in range(60):
        response, prompt = rng.randint(5, 400), rng.randint(5, 80)
        quality = 1.0 if i % 5 == 0 else 0.0  # what length does not explain
        value = 2.0 * math.log(response) - 0.5 * math.log(prompt) + quality + rng.gauss(0, 0.01)
        rows.append(sized(i, value, response, prompt))
    data = write_json(tmp_path / "d.json", rows)
    raw = select(SelectConfig.of(data=data, by="reward", out_dir=tmp_path / "a", top=12))
    res = select(SelectConfig.of(data=data, by="reward", out_dir=tmp_path / "b", top=12, residualise=True))
    pick = lambda d, s: {r["source_index"] for r in read(tmp_path / d / s["files"]["highest"])}  # noqa: E731
    assert pick("b", res) == {i for i in range(60) if i % 5 == 0}  # exactly the records with quality
    assert pick("a", raw) != pick("b", res)
    strat = select(SelectConfig.of(data=data, by="reward", out_dir=tmp_path / "c", top=12, strata=4))
    lengths = sorted(r["n_response_tokens"] for r in rows)
    quartile = lambda n: sum(n > lengths[k * 15 - 1] for k in (1, 2, 3))  # noqa: E731
    chosen = [r for r in read(tmp_path / "c" / strat["files"]["highest"])]
    assert sorted(quartile(r["n_response_tokens"]) for r in chosen) == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3


def test_numbers_written_as_text_rank_as_numbers(tmp_path: Path) -> None:
    data = write_json(tmp_path / "d.json", [rec(i, v) for i, v in enumerate(["2.06", " 63.58", "n/a", "inf", 5])])
    summary = select(SelectConfig.of(data=data, by="reward", out_dir=tmp_path / "o", top=5))
    assert [r["reward"] for r in read(tmp_path / "o" / summary["files"]["highest"])] == [" 63.58", 5, "2.06"]
    assert summary["dropped"]["undefined"] == 2


def test_select_without_by_lists_what_it_can_rank_by(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gradspec.cli.main import app

    data = write_json(
        tmp_path / "scored.json", [{**rec(i, float(i)), "scores": {"Q": {"score": 1.0}}} for i in range(3)]
    )
    result = CliRunner().invoke(app, ["select", str(data), "--top", "1", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--by is required; numeric fields of" in result.output
    assert "reward" in result.output and "scores.Q.score" in result.output
