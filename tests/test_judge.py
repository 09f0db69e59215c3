"""The judge: reply parsers on the stored replies, and the HTTP client against a loopback server."""

from __future__ import annotations

import glob
import json
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradspec.errors import ConfigError
from gradspec.score import ScoreConfig, score
from gradspec.score.judge import ReplyCache, make_judge
from gradspec.score.judge.parse import ParseError, parse_difficulty, parse_instag

from conftest import save_tiny, write_json
from judge_server import judge_server

KEY = "sk-test-not-a-real-key-1234"


@pytest.mark.shared_data
def test_stored_replies_reparse_to_the_stored_counts_and_levels(shared_data: Path) -> None:
    """All 30 files: every raw_instag gives the stored instag; every raw_diff with a bare rating on
    its first line gives the stored diff; the stored data has no diff exactly where the first line
    is labelled ("Difficulty Score: 6"), which we read and flag."""
    files = sorted(glob.glob(str(shared_data / "instruction" / "*" / "*.json")))
    assert len(files) == 30
    n = labelled = 0
    for f in files:
        for i, r in enumerate(json.loads(Path(f).read_text())):
            n += 1
            assert parse_instag(r["raw_instag"]).count == r["instag"], (f, i)
            level = parse_difficulty(r["raw_diff"])
            if "diff" in r:
                assert (level.value, level.how) == (r["diff"], "bare"), (f, i)
            else:
                labelled += 1
                assert level.how == "labelled", (f, i)
    assert n == 6000 and labelled > 0


def test_instag_parser_reads_fences_bad_escapes_and_broken_json() -> None:
    assert parse_instag('[{"tag": "a", "explanation": "x"}]').tags == ("a",)
    fenced = parse_instag('Sure!\n```json\n[{"tag": "a", "explanation": "x"}, {"tag": "b"}]\n```\nDone.')
    assert (fenced.tags, fenced.how) == (("a", "b"), "json")
    latex = parse_instag(r'[{"tag": "Math", "explanation": "uses \(x^2\)"}]')
    assert (latex.count, latex.how) == (1, "repaired")
    broken = parse_instag('[{"tag": "a", "explanation": "x" "oops"}, {"tag": "b", "explanation": "y"}]')
    assert (broken.tags, broken.how) == (("a", "b"), "regex")
    for bad in ("", "no tags here", "[1, 2, 3]", '{"tag": 5}', "[" * 100_000):
        with pytest.raises(ParseError):
            parse_instag(bad)


def test_difficulty_parser_reads_only_the_first_line() -> None:
    assert parse_difficulty("7\nbecause").value == 7
    assert parse_difficulty("\n\n  10 \nx").how == "bare"
    for labelled in ("Difficulty Score: 6", "**6**", "6/10", "Rating: 6 out of 10."):
        assert parse_difficulty(labelled) == parse_difficulty("Score - 6").__class__(6, "labelled")
    for bad in ("", "0", "11", "I would say 7", "Reason first\n7", "7.5"):
        with pytest.raises(ParseError):
            parse_difficulty(bad)


@given(st.text(max_size=3000))
def test_parsers_never_crash_on_any_text(text: str) -> None:
    for parse in (parse_instag, parse_difficulty):
        try:
            parse(text)
        except ParseError:
            pass


def _records(markers: list[str]) -> list[dict[str, str]]:
    return [{"instruction": f"What is {i} + {i}? {m}", "output": str(2 * i)} for i, m in enumerate(markers)]


MARKERS = ["", "[R429x2]", "[R500]", "[SLOW]", "[MALFORMED]", "[ALWAYS503]", "[E400]", "[PROSE]", ""]


def _score(data: Path, out: Path, url: str, cache: Path, metrics: tuple[str, ...]) -> dict:
    cfg = ScoreConfig.of(
        data=data,
        out=out,
        metrics=metrics,
        judge="openai:test-judge",
        judge_base_url=url,
        judge_cache=cache,
        judge_timeout=1.5,  # far above a good reply's time on a loaded CI machine
        judge_backoff=0.01,
        judge_retries=3,
        progress=False,
    )
    return score(cfg)


def test_judge_survives_a_misbehaving_server_and_never_asks_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    data = write_json(tmp_path / "d.json", [*_records(MARKERS), "not an object", _records([""])[0]])
    cache, out = tmp_path / "judge.sqlite", tmp_path / "scored.jsonl"
    with judge_server(stall=4.0) as (url, state):
        _score(data, out, url, cache, ("instag", "difficulty"))
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == 11  # one output per input record, in order
        assert [r.get("instruction") for r in rows[:9]] == [r["instruction"] for r in _records(MARKERS)]
        ok = [0, 1, 2, 3, 4, 8]
        for i in ok:
            assert (rows[i]["instag"], rows[i]["tags"], rows[i]["difficulty"]) == (2, ["Math", "Brevity"], 3), i
            assert rows[i]["score_errors"] is None
        for i, why in ((5, "gave up after 4 attempts; last: HTTP 503"), (6, "HTTP 400")):
            assert rows[i]["instag"] is None and rows[i]["difficulty"] is None
            assert why in rows[i]["score_errors"]["instag"] and why in rows[i]["score_errors"]["difficulty"]
        # A reply in the wrong format keeps its text, has no value, and says why.
        assert rows[7]["instag"] is None and rows[7]["raw_instag"].startswith("I would rather")
        assert "no JSON list of tags" in rows[7]["score_errors"]["instag"]
        assert rows[9]["score_errors"]["instag"].startswith("d.json: record 9: is str")
        # Record 10 repeats record 0's question: asked once, answered for both.
        assert rows[10]["instag"] == 2 and rows[10]["sample_id"] == rows[0]["sample_id"] + "-1"
        # Requests per prompt: failures retried as scripted, each question asked once (record 10 too).
        expected = {"R429x2": 3, "R500": 2, "SLOW": 2, "MALFORMED": 2, "ALWAYS503": 4, "E400": 1, "PROSE": 1}
        per_marker = {m.strip("[]") or f"plain{i}": 0 for i, m in enumerate(MARKERS)}
        for prompt, n in state.calls.items():
            marker = next((k for k in expected if f"[{k}]" in prompt), None)
            per_marker[marker or f"plain{0 if 'What is 0 +' in prompt else 8}"] += n
        assert per_marker == {**{k: 2 * v for k, v in expected.items()}, "plain0": 2, "plain8": 2}
        assert state.auth == {f"Bearer {KEY}"}

        # Again: only the two prompts that never got a reply are asked (E400 once, ALWAYS503 four times).
        before = dict(state.calls)
        _score(data, out, url, cache, ("instag", "difficulty"))
        asked = {p: n - before.get(p, 0) for p, n in state.calls.items() if n != before.get(p, 0)}
        assert sorted(asked.values()) == [1, 1, 4, 4] and all("[E400]" in p or "[ALWAYS503]" in p for p in asked)
    assert KEY not in out.read_text() and KEY.encode() not in cache.read_bytes()


def test_reuse_raw_reparses_without_a_judge(tmp_path: Path) -> None:
    recs = [
        {"instruction": "a", "output": "b", "raw_instag": '[{"tag": "x"}, {"tag": "y"}]', "raw_diff": "4\nok"},
        {"instruction": "c", "output": "d", "raw_instag": "garbage", "raw_diff": "Score: 9"},
        {"instruction": "e", "output": "f"},
    ]
    out = tmp_path / "s.json"
    score(
        ScoreConfig.of(
            data=write_json(tmp_path / "d.json", recs), out=out, metrics=("instag", "difficulty"), reuse_raw=True
        )
    )
    rows = json.loads(out.read_text())
    assert [(r["instag"], r["difficulty"]) for r in rows] == [(2, 4), (None, 9), (None, None)]
    assert rows[1]["score_flags"] == ["difficulty_labelled"]
    assert "no raw_instag to reuse and no --judge" in rows[2]["score_errors"]["instag"]


def test_openai_judge_needs_the_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        make_judge("openai:gpt-4o-mini")
    with pytest.raises(ConfigError, match="openai:MODEL"):
        make_judge("gpt-4o-mini")


def test_openai_judge_names_the_extra_when_httpx_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setitem(sys.modules, "httpx", None)  # import httpx now raises ImportError
    with pytest.raises(
        ConfigError, match=r"^--judge openai:m needs the httpx package: pip install 'gradspec\[judge\]'$"
    ):
        make_judge("openai:m")


def test_local_judge_runs_offline_and_its_replies_are_cached(tmp_path: Path) -> None:
    """A tiny random model answers nonsense: the records say so, keep the text, and the
    second run asks nothing (the cache has every reply)."""
    model = save_tiny(tmp_path / "m")
    data = write_json(tmp_path / "d.json", _records(["", ""]))
    cache = tmp_path / "c.sqlite"
    cfg = ScoreConfig.of(
        data=data,
        out=tmp_path / "s.jsonl",
        metrics=("difficulty",),
        judge=f"hf:{model}",
        judge_cache=cache,
        judge_max_tokens=8,
        progress=False,
    )
    score(cfg)
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert all(isinstance(r["raw_diff"], str) for r in rows)
    assert all((r["difficulty"] is None) == bool(r["score_errors"]) for r in rows)
    stored = ReplyCache(cache)
    assert len(stored.get_many([k for (k,) in stored._db.execute("select key from replies")])) == 2
    stored.close()
    import gradspec.score.judge.local as local

    def no_generation(*args: object, **kwargs: object) -> None:
        raise AssertionError("asked again")

    original = local.LocalJudge.ask
    local.LocalJudge.ask = no_generation  # type: ignore[method-assign]
    try:
        score(cfg)
    finally:
        local.LocalJudge.ask = original  # type: ignore[method-assign]


def test_a_judge_none_of_whose_replies_parse_fails_the_command(tmp_path: Path) -> None:
    """A tiny random model cannot follow the format: the scores are recorded as failed, and the
    command says so and exits 1 instead of passing in silence."""
    from click.testing import CliRunner

    from gradspec.cli.main import app

    model = save_tiny(tmp_path / "m")
    data = write_json(tmp_path / "d.json", _records(["", ""]))
    args = ["score", str(data), "-o", str(tmp_path / "s.jsonl"), "--metrics", "difficulty", "--judge", f"hf:{model}"]
    result = CliRunner().invoke(app, [*args, "--judge-cache", str(tmp_path / "c.sqlite"), "--judge-max-tokens", "8",
                                      "--no-progress"])  # fmt: skip
    assert result.exit_code == 1 and "no reply of --judge hf:" in result.output, result.output
    assert (tmp_path / "s.jsonl").exists()  # what was asked is kept
