"""Hostile data and experiment files end as error rows or one line, bounded in time and memory:
wrappers that are records, integers too long to read, surrogates outside the text, objects
written one after another, long CSV fields, pipes and devices, alias bombs and huge grids.

Every file is made here, at test time.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import FrozenInstanceError
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from gradspec.cli.main import app
from gradspec.data import BadRecord, Record, load_dataset
from gradspec.errors import ConfigError, DataFileError, InputError, reason_kind
from gradspec.experiment import load_experiment

from cli_checks import one_line_error
from conftest import write_json

runner = CliRunner()


# Data files ------------------------------------------------------------------------------------------


def test_an_object_with_a_response_is_one_record_whatever_list_it_holds(tmp_path: Path) -> None:
    record = {"instruction": "q", "output": "a", "tags": [{"instruction": "evil", "output": "injected"}]}
    items = load_dataset(write_json(tmp_path / "one.json", record)).items
    assert len(items) == 1 and isinstance(items[0], Record) and items[0].response == "a"
    chat = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    items = load_dataset(write_json(tmp_path / "chat.json", chat)).items
    assert len(items) == 1 and items[0].response == "hello"
    wrapped = {"data": [{"instruction": "a", "output": "b"}, {"instruction": "c", "output": "d"}]}
    assert [i.response for i in load_dataset(write_json(tmp_path / "w.json", wrapped)).items] == ["b", "d"]


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_an_integer_too_long_to_read_is_an_error_row(tmp_path: Path, suffix: str) -> None:
    good = '{"instruction": "q", "output": "a"}'
    huge = '{"instruction": "q2", "output": "b", "id": ' + "9" * 5000 + "}"
    path = tmp_path / f"d{suffix}"
    path.write_text(f"{good}\n{huge}\n{good.replace('q', 'q3')}\n" if suffix == ".jsonl" else f"[{good}, {huge}]")
    items = load_dataset(path).items
    assert isinstance(items[0], Record) and isinstance(items[1], BadRecord)
    assert "more than 4000 digits" in items[1].reason and path.name in items[1].reason
    for command in (
        ["inspect", str(path)],
        ["select", str(path), "--by", "id", "--top", "1", "-o", str(tmp_path / "o")],
    ):
        result = runner.invoke(app, command)
        assert "Traceback" not in result.output and "ValueError" not in result.output, result.output


def test_surrogates_in_keys_and_other_fields_are_written_back_as_escapes(tmp_path: Path) -> None:
    from gradspec.config.selection import SelectConfig
    from gradspec.score import ScoreConfig, score
    from gradspec.selection import select

    path = tmp_path / "d.jsonl"
    path.write_text(
        '{"instruction": "q", "output": "a", "note": "\\ud800", "\\udfff": 1, "reward": 1}\n'
        '{"instruction": "r", "output": "b", "reward": 2}\n'
    )
    score(ScoreConfig.of(data=path, out=tmp_path / "s.jsonl", metrics=("difficulty",), reuse_raw=True, progress=False))
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows[0]["note"] == "\ud800" and rows[0]["\udfff"] == 1
    summary = select(SelectConfig.of(data=path, by="reward", out_dir=tmp_path / "o", top=2, keep_column=True))
    assert summary["groups"]["d_highest_2"]["n"] == 2
    kept = (tmp_path / "o" / "d_kept.jsonl").read_text(encoding="utf-8")
    assert "\\ud800" in kept


def test_pretty_printed_objects_one_after_another_are_records(tmp_path: Path) -> None:
    objects = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(3)]
    path = tmp_path / "d.json"
    path.write_text("\n".join(json.dumps(o, indent=2) for o in objects))
    items = load_dataset(path).items
    assert [i.response for i in items] == ["a0", "a1", "a2"]


def test_a_csv_field_longer_than_the_csv_modules_limit_reads(tmp_path: Path) -> None:
    long = "word " * 40_000
    path = tmp_path / "d.csv"
    pd.DataFrame([{"instruction": "q", "output": long}]).to_csv(path, index=False)
    assert load_dataset(path).items[0].response == long


def test_a_pipe_or_a_device_as_data_is_one_line_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    started = time.monotonic()
    for source in (fifo, Path("/dev/zero")):
        with pytest.raises(DataFileError, match="not a regular file"):
            load_dataset(source)
    one_line_error(runner.invoke(app, ["inspect", str(fifo)]), "not a regular file")
    assert time.monotonic() - started < 10


def test_failure_kinds_keep_digits_inside_names_and_show_a_real_record() -> None:
    from gradspec.errors import grouped

    reasons = [
        f"d.json: record {i}: prompt fills the max length ({300 + i} prompt tokens, max_length 256)" for i in (4, 9)
    ]
    assert grouped([*reasons, "d.json: record 2: field 'output' is missing"]) == [
        (2, "d.json: record 4: prompt fills the max length (304 prompt tokens, max_length 256) (and 1 more like it)"),
        (1, "d.json: record 2: field 'output' is missing"),
    ]
    reason = "wiz_10k_highest_200.json: record 12: prompt fills the max length (300 prompt tokens, max_length 256)"
    assert reason_kind(reason) == (
        "wiz_10k_highest_200.json: record N: prompt fills the max length (N prompt tokens, max_length N)"
    )


def test_an_instag_reply_with_more_tags_than_anyone_asks_for_is_not_a_count() -> None:
    from gradspec.score.judge.parse import MAX_TAGS, ParseError, parse_instag

    reply = " ".join(f'{{"tag": "t{i}", "explanation": "x"}},' for i in range(500))  # not a JSON list: the regex path
    with pytest.raises(ParseError, match=f"more than {MAX_TAGS}"):
        parse_instag(reply)


def test_labels_that_a_spreadsheet_would_run_are_written_inert(tmp_path: Path) -> None:
    from gradspec.analysis.tables import write_table

    labels = ['=HYPERLINK("http://x")', "+1x", "@a", "plain", "-x", "-2+3+cmd|' /C calc'!A0", "\tx", "-1.5"]
    frame = pd.DataFrame({"group": labels, "diff": [-1.5, 2, 3, 4, 5, 6, 7, 8], "=b": 0})
    csv, md = write_table(frame, tmp_path / "t")
    back = pd.read_csv(csv, dtype={"group": str})
    guarded = ["'" + label for label in labels[:-1] if label != "plain"]
    assert back.group.tolist() == guarded[:3] + ["plain"] + guarded[3:] + ["-1.5"]  # a number as text stays
    assert back["diff"].tolist() == [-1.5, 2, 3, 4, 5, 6, 7, 8] and list(back.columns) == ["group", "diff", "'=b"]


# Experiment files --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: &a [*a]\n", "refers to itself"),
        ("name: x\nruns: &r [{name: a, data: d.json, extra: *r}]\n", "refers to itself"),
        ("- " * 200 + "x\n", "nested deeper than"),
    ],
)
def test_recursive_and_deep_yaml_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_experiment(path)


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\nname: x\n")
    started = time.monotonic()
    with pytest.raises(ConfigError, match="expands to more than"):
        load_experiment(path)
    assert time.monotonic() - started < 5


def test_a_huge_grid_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    spec = {
        "name": "x",
        "grid": {v: list(range(300)) for v in "abc"},
        "runs": [{"name": "{a}-{b}-{c}", "data": "d.json"}],
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(spec))
    started = time.monotonic()
    with pytest.raises(ConfigError, match="more than 10,000 entries"):
        load_experiment(path)
    assert time.monotonic() - started < 10


def test_an_experiment_resumes_from_another_working_directory(
    tmp_path: Path, tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gradspec.experiment import run_experiment

    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    recs = [{"instruction": f"task {i}", "output": "w " * (i + 1), "reward": i} for i in range(8)]
    write_json(root / "data" / "pool.json", recs)
    spec = {
        "name": "moves", "data_root": "data", "model": str(tiny_llama_dir), "template": "plain", "max_length": 48,
        "device": "cpu", "progress": False,
        "selections": [{"name": "sel", "data": "pool.json", "by": "reward", "top": 3, "bottom": 3}],
        "runs": [{"name": "high", "data": "@sel/highest"}, {"name": "low", "data": "@sel/lowest"}],
        "comparisons": [{"name": "c", "runs": ["low", "high"], "n_boot": 20, "figures": False}],
    }  # fmt: skip
    (root / "exp.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.chdir(root)
    first = run_experiment(load_experiment("exp.yaml"), "out", say=lambda _: None)
    assert all(v == "done" for v in first["stages"].values()), first["stages"]
    monkeypatch.chdir(tmp_path)
    again = run_experiment(load_experiment("project/exp.yaml"), "project/out", say=lambda _: None)
    assert all(v == "skipped" for v in again["stages"].values()), again["stages"]
    moved = tmp_path / "elsewhere"
    (root / "out").rename(moved)
    third = run_experiment(load_experiment("project/exp.yaml"), moved, say=lambda _: None)
    done = {k for k, v in third["stages"].items() if v != "skipped"}
    assert not {k for k in done if k.startswith(("select", "compute"))}, third["stages"]


def test_data_root_on_the_command_line_is_where_every_data_path_starts(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_json(elsewhere / "pool.json", [{"instruction": "a", "output": "b", "reward": 1}])
    spec = {
        "name": "rooted", "data_root": "no-such-folder",
        "selections": [{"name": "sel", "data": "pool.json", "by": "reward", "top": 1}],
        "runs": [{"name": "high", "data": "@sel/highest"}, {"name": "plain", "data": "pool.json"}],
    }  # fmt: skip
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(spec))
    exp = load_experiment(path, data_root=elsewhere)
    assert exp.data_root == elsewhere.resolve()
    assert exp.selections[0].data == elsewhere.resolve() / "pool.json"
    assert [r.data for r in exp.runs][1] == elsewhere.resolve() / "pool.json"
    assert load_experiment(path).data_root == (tmp_path / "no-such-folder").resolve()  # the file's own otherwise
    with pytest.raises(FrozenInstanceError):
        exp.data_root = tmp_path  # type: ignore[misc]
    result = runner.invoke(
        app, ["experiment", str(path), "--data-root", str(tmp_path / "missing"), "-o", str(tmp_path / "o")]
    )
    # The command line's root is where the experiment looks: its steps fail there, each saying where.
    assert result.exit_code == 1 and f"{tmp_path / 'missing' / 'pool.json'}: no such file" in result.output


# Special files as any input, and outputs that cannot be written ------------------------------------------


def test_a_pipe_or_a_device_as_a_recipe_experiment_or_target_is_one_line_at_once(
    tmp_path: Path, tiny_llama_dir: Path
) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    data = write_json(tmp_path / "d.json", [{"instruction": "a", "output": "b", "reward": 1}])
    started = time.monotonic()
    for special in (fifo, Path("/dev/zero")):
        for args in (
            ["filter", str(data), "--recipe", str(special), "-o", str(tmp_path / "f.jsonl")],
            ["experiment", str(special), "-o", str(tmp_path / "e")],
            ["score", str(data), "--metrics", "target_similarity", "--target", str(special), "--model",
             str(tiny_llama_dir), "-o", str(tmp_path / "t.jsonl"), "--no-progress"],
        ):  # fmt: skip
            one_line_error(runner.invoke(app, args), str(special), "not a regular file")
    assert time.monotonic() - started < 30  # each refused before a read, not after a timeout


def test_a_text_input_larger_than_its_cap_is_refused_unread(tmp_path: Path) -> None:
    from gradspec.inputs import read_text

    big = tmp_path / "recipe.yaml"
    big.write_bytes(b"rules: []\n" + b"#" * 2048)
    with pytest.raises(InputError, match="larger than"):
        read_text(big, "--recipe", limit=1024)
    assert read_text(big, "--recipe").startswith("rules")


def test_a_full_disk_names_the_output_it_could_not_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_json(tmp_path / "d.json", [{"instruction": "a", "output": "b", "reward": 1}])

    def full(self: Path, *_: object, **__: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    out = tmp_path / "f.json"
    one_line_error(runner.invoke(app, ["filter", str(data), "--where", "reward > 0", "-o", str(out)]),
                   f"{out}: No space left on device")  # fmt: skip


def test_a_record_with_nan_or_infinity_is_shown_in_the_explorer_as_text(tmp_path: Path, tiny_llama_dir: Path) -> None:
    from gradspec import compute

    from cli_checks import cfg

    data = tmp_path / "d.jsonl"
    data.write_text(
        '{"instruction": "a", "output": "b c", "ifd": 0.5, "reward": NaN, "big": -Infinity, "n": ' + "9" * 30 + "}\n"
    )
    compute(cfg(data, tmp_path / "run", tiny_llama_dir))
    result = runner.invoke(
        app, ["explore", str(tmp_path / "run"), "--scored", str(data), "-o", str(tmp_path / "x.html")]
    )
    assert result.exit_code == 0, result.output
    page = (tmp_path / "x.html").read_text()
    assert '"reward": "NaN"' in page and '"big": "-Infinity"' in page and '"n": "' + "9" * 30 + '"' in page


def test_a_gradspec_output_folder_is_not_read_as_data(tmp_path: Path) -> None:
    from gradspec.config.selection import SelectConfig
    from gradspec.selection import select

    data = write_json(tmp_path / "d.json", [{"instruction": f"q{i}", "output": "a", "reward": i} for i in range(6)])
    select(SelectConfig(data, "reward", tmp_path / "sel", top=2, bottom=2))
    with pytest.raises(DataFileError, match="a gradspec output folder .*give one of its files: d_highest_2.json"):
        load_dataset(tmp_path / "sel")
    one_line_error(runner.invoke(app, ["inspect", str(tmp_path / "sel")]), "gradspec output folder")
