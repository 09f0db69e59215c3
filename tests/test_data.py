"""Reading every container format and record layout; one item per record, never a silent drop."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradspec.data import BadRecord, Record, load_dataset, parse_field_map
from gradspec.errors import DataFileError

from conftest import write_json

ALPACA = [
    {"instruction": "Add 2 and 3.", "input": "", "output": "5"},
    {"instruction": "Translate", "input": "bonjour", "output": "hello"},
]


def only_records(items):
    assert all(isinstance(i, Record) for i in items), [i for i in items if isinstance(i, BadRecord)]
    return items


def test_json_list_alpaca(tmp_path: Path) -> None:
    ds = load_dataset(write_json(tmp_path / "a.json", ALPACA))
    a, b = only_records(ds.items)
    assert (a.index, b.index) == (0, 1)
    assert a.messages[0].content == "Add 2 and 3." and a.response == "5"
    assert b.messages[0].content == "Translate\nbonjour"
    assert len(ds.sha256) == 64


def test_jsonl_skips_blank_lines_and_keeps_bad_lines(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps(ALPACA[0]) + "\n\n   \n{not json\n" + json.dumps(ALPACA[1]) + "\n")
    items = load_dataset(p).items
    assert [type(i).__name__ for i in items] == ["Record", "BadRecord", "Record"]
    assert [i.index for i in items] == [0, 1, 2]
    assert "d.jsonl:4: invalid JSON" in items[1].reason


def test_parquet_csv_and_datasets_folder(tmp_path: Path) -> None:
    table = pa.Table.from_pylist(ALPACA)
    pq.write_table(table, tmp_path / "d.parquet")
    (tmp_path / "d.csv").write_text("instruction,input,output\nAdd 2 and 3.,,5\nTranslate,bonjour,hello\n")
    folder = tmp_path / "saved"
    folder.mkdir()
    with pa.OSFile(str(folder / "data-00000-of-00001.arrow"), "wb") as sink:  # save_to_disk's layout
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    (folder / "dataset_info.json").write_text("{}")
    (folder / "state.json").write_text('{"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}')
    for path in (tmp_path / "d.parquet", tmp_path / "d.csv", folder):
        items = only_records(load_dataset(path).items)
        assert [r.response for r in items] == ["5", "hello"], path
        assert items[1].messages[0].content == "Translate\nbonjour"


def test_a_datasets_folder_after_filter_and_map_reads_what_state_json_lists(tmp_path: Path) -> None:
    """load_from_disk(...).filter() and .map() leave cache-*.arrow files in the folder (an indices
    column, new columns): the reader takes what state.json lists, and the records round-trip."""
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "saved"
    rows = [{**ALPACA[i % 2], "x": i} for i in range(8)]
    datasets.Dataset.from_list(rows).save_to_disk(str(folder))
    loaded = datasets.load_from_disk(str(folder))
    loaded.filter(lambda r: r["x"] > 2)  # in place: a cache file of indices beside the data
    loaded.map(lambda r: {"y": 2 * r["x"]})
    assert len(list(folder.glob("cache-*.arrow"))) == 2
    items = only_records(load_dataset(folder).items)
    assert [r.response for r in items] == [rows[i]["output"] for i in range(8)]
    kept = loaded.filter(lambda r: r["x"] > 2)
    kept.save_to_disk(str(tmp_path / "kept"))
    assert len(only_records(load_dataset(tmp_path / "kept").items)) == 5
    (folder / "state.json").write_text('{"_data_files": [{"filename": "../elsewhere.arrow"}]}')
    with pytest.raises(DataFileError, match="state.json: _data_files lists '../elsewhere.arrow'"):
        load_dataset(folder)
    (folder / "state.json").write_text("{}")
    with pytest.raises(DataFileError, match="not a datasets state file"):
        load_dataset(folder)


def test_sharegpt_messages_and_prompt_response(tmp_path: Path) -> None:
    records = [
        {
            "conversations": [
                {"from": "system", "value": "Be brief."},
                {"from": "human", "value": "Hi"},
                {"from": "gpt", "value": "Hello"},
                {"from": "human", "value": "2+2?"},
                {"from": "gpt", "value": "4"},
            ]
        },
        {"messages": [{"role": "user", "content": "Name a colour"}, {"role": "assistant", "content": "Blue"}]},
        {"prompt": "Capital of France?", "response": "Paris"},
    ]
    a, b, c = only_records(load_dataset(write_json(tmp_path / "m.json", records)).items)
    assert [m.role for m in a.messages] == ["system", "user", "assistant", "user"] and a.response == "4"
    assert b.messages[0].content == "Name a colour" and b.response == "Blue"
    assert c.messages[0].role == "user" and c.response == "Paris"


def test_field_map(tmp_path: Path) -> None:
    p = write_json(tmp_path / "q.json", [{"question": "Why?", "answer": "Because."}])
    (rec,) = only_records(load_dataset(p, parse_field_map("instruction=question,output=answer")).items)
    assert rec.messages[0].content == "Why?" and rec.response == "Because."
    with pytest.raises(ValueError, match="unknown field 'answer'"):
        parse_field_map("answer=output")


def test_wrong_field_names_list_what_the_file_has(tmp_path: Path) -> None:
    p = write_json(tmp_path / "w.json", [{"question": "Why?", "answer": "Because."}])
    with pytest.raises(DataFileError, match=r"w\.json.*\['answer', 'question'\].*--field-map"):
        load_dataset(p)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"instruction": "x", "output": None}, "field 'output' is missing or null"),
        ({"instruction": "x", "output": "   "}, "field 'output' is empty"),
        ({"instruction": "x", "output": 5}, "field 'output' is int, not text"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "not an assistant turn"),
        ({"conversations": [{"from": "robot", "value": "hi"}]}, "unknown speaker 'robot'"),
        (["a", "list"], "is list, not an object"),
    ],
)
def test_bad_records_become_error_items(tmp_path: Path, record: object, reason: str) -> None:
    p = write_json(tmp_path / "b.json", [ALPACA[0], record])
    good, bad = load_dataset(p).items
    assert isinstance(good, Record) and isinstance(bad, BadRecord)
    assert bad.index == 1 and "b.json: record 1" in bad.reason and reason in bad.reason


@pytest.mark.parametrize(
    ("content", "message"),
    [("[", "invalid JSON"), ("[]", "holds no records"), ("42", "expected a JSON list")],
)
def test_unusable_files_raise_one_line(tmp_path: Path, content: str, message: str) -> None:
    p = tmp_path / "x.json"
    p.write_text(content)
    with pytest.raises(DataFileError, match=message) as info:
        load_dataset(p)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="no such file"):
        load_dataset(tmp_path / "nope.json")


def test_sample_ids_are_stable_and_unique(tmp_path: Path) -> None:
    p = write_json(tmp_path / "d.json", [ALPACA[0], ALPACA[1], ALPACA[0]])
    ids = [i.sample_id for i in load_dataset(p).items]
    assert len(set(ids)) == 3 and ids[2] == f"{ids[0]}-1"
    reordered = write_json(tmp_path / "e.json", [{"output": "5", "input": "", "instruction": "Add 2 and 3."}])
    assert load_dataset(reordered).items[0].sample_id == ids[0]  # key order does not matter
    assert [i.sample_id for i in load_dataset(p, limit=2).items] == ids[:2]


def test_sample_id_hashes_the_conversation_not_added_fields(tmp_path: Path) -> None:
    """Scores added to a record do not change its id; a carried id is kept only when it fits."""
    p = write_json(tmp_path / "d.json", [ALPACA[0], ALPACA[1], ALPACA[0]])
    ids = [i.sample_id for i in load_dataset(p).items]
    scored = [dict(r, sample_id=i, reward=0.5) for r, i in zip([ALPACA[0], ALPACA[1], ALPACA[0]], ids)]
    assert [i.sample_id for i in load_dataset(write_json(tmp_path / "s.json", scored)).items] == ids
    # A subset that holds only the repeat keeps the repeat's id.
    assert load_dataset(write_json(tmp_path / "sub.json", scored[2:])).items[0].sample_id == ids[2]
    # An id that does not match the content, or one already taken, is not trusted.
    forged = [dict(ALPACA[1], sample_id=ids[0]), dict(ALPACA[0], sample_id=ids[0]), dict(ALPACA[0], sample_id=ids[0])]
    got = [i.sample_id for i in load_dataset(write_json(tmp_path / "f.json", forged)).items]
    assert got == [ids[1], ids[0], ids[2]]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
FIELDS = ["instruction", "input", "output", "prompt", "response", "messages", "conversations", "system", "x"]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES), JSON_VALUES), min_size=1, max_size=6))
def test_random_records_never_crash(records: list[dict]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = write_json(Path(d) / "r.json", records)
        try:
            items = load_dataset(p).items
        except DataFileError as exc:
            assert "--field-map" in str(exc)
            return
        assert len(items) == len(records)
        assert [i.index for i in items] == list(range(len(records)))


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".parquet", ".csv", ".arrow"])
def test_binary_bytes_are_a_one_line_file_error(tmp_path: Path, suffix: str) -> None:
    p = tmp_path / f"blob{suffix}"
    p.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(DataFileError) as info:
        load_dataset(p)
    assert str(p) in str(info.value) and "\n" not in str(info.value)


def test_huge_and_exotic_text_is_kept_as_text(tmp_path: Path) -> None:
    huge = "ß🙂\u202e\x00\ud7ff" * 50_000
    p = write_json(tmp_path / "u.json", [{"instruction": huge, "output": "中文 עברית \u0301"}])
    (rec,) = only_records(load_dataset(p).items)
    assert rec.messages[0].content == huge and rec.response == "中文 עברית \u0301"
