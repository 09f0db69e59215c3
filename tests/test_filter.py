"""``gradspec filter``: rules over any field, every original field kept, the reason each record was
dropped, unscored records told from low ones, per-rule counts, and the outputs other tools read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradspec.cli.main import app
from gradspec.config.filtering import FilterConfig
from gradspec.errors import ConfigError
from gradspec.selection.filtering import filter_records

from cli_checks import one_line_error
from conftest import write_json

runner = CliRunner()


def pool() -> list[dict]:
    out = []
    for i in range(10):
        rec = {"instruction": f"q{i}", "output": f"a{i}", "tags": ["x", f"t{i}"], "reward": i - 3.0, "ifd": 0.1 * i,
               "effective_rank": float(10 + i)}  # fmt: skip
        out.append(rec)
    out[2]["reward"] = None
    out[2]["score_errors"] = {"reward": "record 2: prompt fills the max length (300 prompt tokens, max_length 256)"}
    return out


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rules_keep_every_field_and_say_why_each_record_went(tmp_path: Path) -> None:
    data = write_json(tmp_path / "scored.json", pool())
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("rules:\n  - reward > 0\n  - ifd < 0.85\n")
    summary = filter_records(
        FilterConfig.of(data=data, out=tmp_path / "kept.jsonl", recipe=recipe, where=("effective_rank >= p10",))
    )
    out = rows(tmp_path / "kept.jsonl")
    assert [r["keep"] for r in out] == [i in (4, 5, 6, 7, 8) for i in range(10)]
    assert out[4]["tags"] == ["x", "t4"] and out[4]["instruction"] == "q4" and "sample_id" in out[4]  # nothing lost
    assert out[0]["drop_reason"] == "reward > 0: reward is -3"
    assert out[9]["drop_reason"] == "ifd < 0.85: ifd is 0.9"
    assert out[2]["drop_reason"] == (
        "not scored: reward undefined (record 2: prompt fills the max length (300 prompt tokens, max_length 256))"
    )
    assert summary["kept"] == 5 and summary["not_scored"] == 1
    by_rule = {r["rule"]: r for r in summary["rules"]}
    # An unscored record is not counted as a rule's drop, but on its own (the rule cannot read it).
    assert by_rule["reward > 0"]["drops_alone"] == 3 and by_rule["reward > 0"]["drops_in_turn"] == 3
    assert by_rule["reward > 0"]["not_scored_alone"] == 1 and by_rule["reward > 0"]["not_scored_in_turn"] == 1
    # drop_rule: what dropped a record without its value, a category to count by.
    assert [r["drop_rule"] for r in out[:4]] == ["reward > 0", "reward > 0", "not scored: reward", "reward > 0"]
    assert out[9]["drop_rule"] == "ifd < 0.85" and out[4]["drop_rule"] is None
    assert by_rule["ifd < 0.85"]["drops_alone"] == 1 and by_rule["ifd < 0.85"]["drops_in_turn"] == 1
    assert by_rule["effective_rank >= p10"]["threshold"] == pytest.approx(10.9)
    assert (
        by_rule["effective_rank >= p10"]["drops_alone"] == 1 and by_rule["effective_rank >= p10"]["drops_in_turn"] == 0
    )


def test_the_cli_prints_the_counts_and_refuses_bad_rules(tmp_path: Path) -> None:
    data = write_json(tmp_path / "scored.json", pool())
    out = tmp_path / "kept.json"
    result = runner.invoke(app, ["filter", str(data), "-o", str(out), "--where", "reward > 0", "--where", "ifd<0.5"])
    assert result.exit_code == 0, result.output
    assert "1 of 10 records kept, 9 dropped (1 of them not scored" in result.output
    assert "reward > 0: drops 3 alone, 3 after the rules before it; cannot read 1 (not scored)" in result.output
    assert [r["instruction"] for r in json.loads(out.read_text()) if r["keep"]] == ["q4"]  # a JSON list, as asked
    one_line_error(runner.invoke(app, ["filter", str(data), "-o", str(tmp_path / "x.json"), "--where", "reward"]),
                   "write FIELD OP VALUE")  # fmt: skip
    one_line_error(runner.invoke(app, ["filter", str(data), "-o", str(out), "--where", "ifd < 1"]), "exists")
    with pytest.raises(ConfigError, match="give --where"):
        FilterConfig.of(data=data, out=out)


def test_a_datasets_folder_reloads_with_the_schema_and_the_columns(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    data = write_json(tmp_path / "scored.json", pool())
    filter_records(FilterConfig.of(data=data, out=tmp_path / "hf", where=("reward > 0",), format="hf"))
    back = datasets.load_from_disk(str(tmp_path / "hf"))
    assert len(back) == 10 and {"instruction", "output", "reward", "keep", "drop_reason"} <= set(back.column_names)
    assert back[5]["keep"] is True and back[0]["drop_reason"] == "reward > 0: reward is -3"


def test_the_opendataarena_layout_is_odas_pointwise_scores_both_ways(tmp_path: Path) -> None:
    """--format oda writes ODA's pointwise_scores.jsonl: {"id": line index, "scores": {"Scorer": {"score": x}}}
    for every numeric field, the verdict as one more scorer. A file in ODA's documented layout (scores
    alone, or merged into the records) filters and selects by a nested score."""
    from gradspec.config.selection import SelectConfig
    from gradspec.selection import select

    data = write_json(tmp_path / "scored.json", pool())
    filter_records(
        FilterConfig.of(data=data, out=tmp_path / "oda.jsonl", where=("reward > 0", "ifd < 2"), format="oda")
    )
    out = rows(tmp_path / "oda.jsonl")
    assert set(out[0]) == {"id", "scores"} and [r["id"] for r in out] == list(range(10))
    assert out[0]["scores"]["reward"] == {"score": -3.0} and out[0]["scores"]["effective_rank"] == {"score": 10.0}
    assert out[0]["scores"]["GradspecFilter"] == {"score": 0, "drop_reason": "reward > 0: reward is -3"}
    assert "reward" not in out[2]["scores"] and out[9]["scores"]["GradspecFilter"]["score"] == 1
    # ODA's own file, as its scorers write it: no text, an id and nested scores.
    oda = tmp_path / "pointwise_scores.jsonl"
    scorers = [{"DeitaQScorer": {"score": float(i)}, "TokenLengthScorer": {"instruction_tokens": 15, "score": 100 + i}}
               for i in range(6)]  # fmt: skip
    oda.write_text("".join(json.dumps({"id": i, "scores": s}) + "\n" for i, s in enumerate(scorers)))
    kept = filter_records(FilterConfig.of(data=oda, out=tmp_path / "k.jsonl", where=("scores.DeitaQScorer > 2",)))
    assert kept["kept"] == 3 and kept["not_scored"] == 0
    assert [r["keep"] for r in rows(tmp_path / "k.jsonl")] == [False, False, False, True, True, True]
    back = tmp_path / "back.jsonl"
    filter_records(FilterConfig.of(data=oda, out=back, where=("scores.DeitaQScorer.score > 2",), format="oda"))
    again = rows(back)
    assert [r["id"] for r in again] == list(range(6)) and again[1]["scores"]["TokenLengthScorer"] == {
        "instruction_tokens": 15, "score": 101}  # fmt: skip
    # Merged into the records (the pool a curator selects from): --by reads the nested score.
    merged = [{**r, "scores": {"DeitaQScorer": {"score": 10.0 - i}}} for i, r in enumerate(pool())]
    summary = select(SelectConfig.of(data=write_json(tmp_path / "m.json", merged), by="scores.DeitaQScorer",
                                     out_dir=tmp_path / "sel", top=2))  # fmt: skip
    top = json.loads((tmp_path / "sel" / summary["files"]["highest"]).read_text())
    assert [r["instruction"] for r in top] == ["q0", "q1"]


def test_filter_then_select_never_brings_a_dropped_record_back(tmp_path: Path) -> None:
    """select leaves out what filter dropped (keep false), says how many, and --kept-only writes the kept
    records alone, as they were."""
    from gradspec.config.selection import SelectConfig
    from gradspec.selection import select

    data = write_json(tmp_path / "scored.json", pool())
    filter_records(FilterConfig.of(data=data, out=tmp_path / "f.jsonl", where=("reward > 0",)))
    marked = rows(tmp_path / "f.jsonl")
    dropped = {r["instruction"] for r in marked if not r["keep"]}
    assert len(dropped) == 4  # rewards -3, -2, 0 and the unscored one
    summary = select(SelectConfig.of(data=tmp_path / "f.jsonl", by="effective_rank", out_dir=tmp_path / "s",
                                     top="100%"))  # fmt: skip
    chosen = json.loads((tmp_path / "s" / summary["files"]["highest"]).read_text())
    assert summary["candidates"] == 6 and summary["dropped"]["not_kept"] == 4
    assert {r["instruction"] for r in chosen}.isdisjoint(dropped) and len(chosen) == 6
    every = select(SelectConfig.of(data=tmp_path / "f.jsonl", by="effective_rank", out_dir=tmp_path / "e",
                                   top="100%", ignore_keep=True))  # fmt: skip
    assert every["candidates"] == 10
    only = filter_records(FilterConfig.of(data=data, out=tmp_path / "only.jsonl", where=("reward > 0",),
                                          kept_only=True))  # fmt: skip
    written = rows(tmp_path / "only.jsonl")
    assert only["written"] == 6 and only["dropped"] == 4 and len(written) == 6
    assert all("keep" not in r and "drop_reason" not in r for r in written)
    assert [r["instruction"] for r in written] == [r["instruction"] for r in marked if r["keep"]]
    bad = write_json(tmp_path / "bad.json", [{**pool()[0], "keep": "maybe"}])
    with pytest.raises(ConfigError, match="bad.json: record 0: field 'keep' is 'maybe'"):
        select(SelectConfig.of(data=bad, by="reward", out_dir=tmp_path / "b", top=1))


def test_select_says_why_a_record_is_not_kept_and_never_calls_unscored_low(tmp_path: Path) -> None:
    from gradspec.config.selection import SelectConfig
    from gradspec.selection import select

    data = write_json(tmp_path / "scored.json", pool())
    summary = select(SelectConfig.of(data=data, by="reward", out_dir=tmp_path / "o", top=3, keep_column=True))
    out = rows(tmp_path / "o" / summary["files"]["kept"])
    assert [r["keep"] for r in out] == [i >= 7 for i in range(10)]
    assert out[2]["drop_reason"].startswith("not scored: reward undefined (record 2: prompt fills")
    assert out[0]["drop_reason"] == "not in the highest 3 by reward" and out[9]["drop_reason"] is None


def test_push_to_hub_is_called_with_the_records_and_fails_in_one_line_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets = pytest.importorskip("datasets")
    data = write_json(tmp_path / "scored.json", pool())
    pushed: list[tuple[str, int]] = []
    monkeypatch.setattr(datasets.Dataset, "push_to_hub", lambda self, repo: pushed.append((repo, len(self))))
    filter_records(FilterConfig.of(data=data, out=tmp_path / "k.jsonl", where=("reward > 0",), push_to_hub="me/kept"))
    assert pushed == [("me/kept", 10)]
    monkeypatch.undo()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    args = ["filter", str(data), "-o", str(tmp_path / "k2.jsonl"), "--where", "reward > 0", "--push-to-hub", "me/kept"]
    one_line_error(runner.invoke(app, args), "--push-to-hub me/kept: not pushed")
    assert (tmp_path / "k2.jsonl").exists()  # the file is written whatever the hub does
    with pytest.raises(ConfigError, match="owner/name"):
        FilterConfig.of(data=data, out=tmp_path / "x.jsonl", where=("reward > 0",), push_to_hub="no slash")


def test_a_recipe_is_read_within_the_same_bounds_as_an_experiment(tmp_path: Path) -> None:
    data = write_json(tmp_path / "scored.json", pool())
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(9)
    ) + "rules: [reward > 0]\n")  # fmt: skip
    with pytest.raises(ConfigError, match="--recipe .*bomb.yaml: expands to more than"):
        filter_records(FilterConfig.of(data=data, out=tmp_path / "k.jsonl", recipe=bomb))


# Hostile and careless use ---------------------------------------------------------------------------


def test_a_rule_on_a_field_no_record_has_or_beyond_any_float_is_refused(tmp_path: Path) -> None:
    data = write_json(tmp_path / "scored.json", pool())
    one_line_error(runner.invoke(app, ["filter", str(data), "--where", "rewrd > 0", "-o", str(tmp_path / "a.jsonl")]),
                   "no record has a field 'rewrd'", "reward")  # fmt: skip
    huge = "reward > " + "9" * 401
    one_line_error(runner.invoke(app, ["filter", str(data), "--where", huge, "-o", str(tmp_path / "b.jsonl")]),
                   "beyond any float")  # fmt: skip
    assert not (tmp_path / "a.jsonl").exists() and not (tmp_path / "b.jsonl").exists()


def test_an_integer_of_hundreds_of_digits_is_not_scored_in_filter_and_select(tmp_path: Path) -> None:
    records = pool()
    records[4]["reward"] = int("9" * 401)
    data = tmp_path / "big.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "f.jsonl"
    result = runner.invoke(app, ["filter", str(data), "--where", "reward > 0", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert rows(out)[4]["drop_reason"] == "not scored: reward undefined" and rows(out)[4]["reward"] == int("9" * 401)
    chosen = runner.invoke(app, ["select", str(data), "--by", "reward", "--top", "2", "-o", str(tmp_path / "s")])
    assert chosen.exit_code == 0 and "undefined 2" in chosen.output, chosen.output


def test_a_records_own_sample_id_is_kept_and_ours_is_written_beside_it(tmp_path: Path) -> None:
    records = pool()
    records[0]["sample_id"] = "mine-0"
    data = write_json(tmp_path / "scored.json", records)
    out = tmp_path / "f.jsonl"
    result = runner.invoke(app, ["filter", str(data), "--where", "ifd > 0.5", "-o", str(out)])
    assert result.exit_code == 0 and "1 records carry a sample_id of their own" in result.output, result.output
    written = rows(out)
    assert written[0]["sample_id"] == "mine-0" and len(written[0]["gradspec_sample_id"]) >= 16
    assert "gradspec_sample_id" not in written[1]


def test_a_second_filter_on_the_same_out_is_refused_while_the_first_writes(tmp_path: Path) -> None:
    from gradspec.errors import OutputError
    from gradspec.files import WriterLock

    data = write_json(tmp_path / "scored.json", pool())
    out = tmp_path / "f.jsonl"
    with WriterLock(tmp_path / ".f.jsonl.lock", "held"), pytest.raises(OutputError, match="being written by another"):
        filter_records(FilterConfig.of(data=data, out=out, where=("reward > 0",)))
    assert not out.exists()
    filter_records(FilterConfig.of(data=data, out=out, where=("reward > 0",)))  # once it is free
    assert len(rows(out)) == 10


def test_a_datasets_folder_is_written_whole_or_not_at_all_and_never_over_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets = pytest.importorskip("datasets")
    from gradspec.errors import OutputError

    data = write_json(tmp_path / "scored.json", pool())
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    with pytest.raises(OutputError, match="not a datasets folder"):
        filter_records(FilterConfig.of(data=data, out=run, where=("reward > 0",), format="hf", overwrite=True))
    assert sorted(p.name for p in run.iterdir()) == ["run.json"]
    out = tmp_path / "hf"
    filter_records(FilterConfig.of(data=data, out=out, where=("reward > 0",), format="hf"))

    def full_disk(self: object, path: str, **_: object) -> None:
        Path(path).mkdir(parents=True)
        (Path(path) / "data-00000-of-00001.arrow").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(datasets.Dataset, "save_to_disk", full_disk)
    with pytest.raises(OSError, match="No space left") as info:
        filter_records(FilterConfig.of(data=data, out=out, where=("reward > 5",), format="hf", overwrite=True))
    monkeypatch.undo()
    assert info.value.filename == str(out)  # the message names the output it could not write
    assert len(datasets.load_from_disk(str(out))) == 10  # the earlier folder, whole
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".hf")) == [".hf.lock"]  # no half folder


def test_filter_writes_into_a_folder_it_makes(tmp_path: Path) -> None:
    data = write_json(tmp_path / "scored.json", pool())
    out = tmp_path / "new" / "deeper" / "kept.jsonl"
    result = runner.invoke(app, ["filter", str(data), "--where", "reward > 0", "-o", str(out)])
    assert result.exit_code == 0 and "Exception ignored" not in result.output, result.output
    assert len(rows(out)) == 10
