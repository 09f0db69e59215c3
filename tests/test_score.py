"""``gradspec score``: IFD, reward and length against straightforward batch-of-one computations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForSequenceClassification

from gradspec.data import load_dataset
from gradspec.errors import ConfigError, ModelError
from gradspec.model import load_model
from gradspec.prompting import PromptConfig
from gradspec.score import ScoreConfig, score

from conftest import byte_tokenizer, write_json
from helpers import PPL_RTOL, RefusingTokenizer, close_fields
from tiny_models import COMMON

RECORDS = [
    {"instruction": "Name a colour.", "output": "Blue, like the sky on a clear day."},
    {"instruction": "Add 2 and 3.", "output": "2 + 3 = 5"},
    {"instruction": "Say hi " * 40, "output": "hi"},  # the prompt fills max_length below
    {"instruction": "Empty answer", "output": ""},
    {
        "instruction": "Write a haiku about rain.",
        "output": "Soft rain on the roof\nthe gutters hum a low tune\nsleep comes with the drops",
    },
]


def oracle_ppl(model, ids: list[int], start: int) -> float:
    """exp(HF's own mean loss) with labels masked before ``start``: batch of one."""
    labels = torch.tensor([ids])
    labels[0, :start] = -100
    with torch.no_grad():
        return math.exp(float(model(input_ids=torch.tensor([ids]), labels=labels).loss))


def oracle_ifd(model, tok, instruction: str, output: str, max_length: int) -> tuple[float, float, float] | None:
    """Cherry LLM's recipe with the plain template: count the prompt's own tokens."""
    prompt = instruction + "\n"
    ids = tok(prompt + output)["input_ids"][:max_length]
    start = len(tok(prompt)["input_ids"])
    if start >= len(ids):
        return None
    alone = tok(output)["input_ids"][: max_length - start + 1]
    cond, solo = oracle_ppl(model, ids, start), oracle_ppl(model, alone, 1)
    return cond / solo, cond, solo


def check_ifd(rows: list[dict], records: list[dict], model, tok, max_length: int, rel: float) -> int:
    checked = 0
    for row, rec in zip(rows, records):
        want = oracle_ifd(model, tok, rec["instruction"], rec["output"], max_length)
        if want is None:
            assert row["ifd"] is None and "prompt fills the max length" in row["score_errors"]["ifd"]
            continue
        got = (row["ifd"], row["ppl_conditioned"], row["ppl_response"])
        assert got == pytest.approx(want, rel=rel), rec["instruction"][:30]
        assert (row["ifd"] > 1) == ("ifd_above_1" in (row["score_flags"] or []))
        checked += 1
    return checked


def test_ifd_and_length_on_a_tiny_model_equal_batch_of_one(tmp_path: Path, tiny_llama_dir: Path) -> None:
    out = tmp_path / "s.jsonl"
    data = write_json(tmp_path / "d.json", [*RECORDS, {"instruction": "no output"}])
    cfg = ScoreConfig.of(
        data=data,
        out=out,
        metrics=("ifd", "length"),
        model=str(tiny_llama_dir),
        prompt=PromptConfig("plain", max_length=64),
        batch_tokens=200,
        progress=False,
    )
    summary = score(cfg)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6 and [r["sample_id"] for r in rows] == [i.sample_id for i in load_dataset(data).items]
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    tok = byte_tokenizer()
    assert check_ifd(rows[:3] + rows[4:5], RECORDS[:3] + RECORDS[4:5], model, tok, 64, 1e-5) == 3
    assert rows[3]["ifd"] is None and "'output' is empty" in rows[3]["score_errors"]["ifd"]
    assert rows[5]["ifd"] is None and "output" in rows[5]["score_errors"]["ifd"]
    assert summary["metrics"]["ifd"] == {"scored": 3, "failed": 3, "reasons": summary["metrics"]["ifd"]["reasons"]}
    # Lengths count what the model sees, untruncated: the byte tokenizer has one token per byte.
    assert rows[1]["n_response_tokens"] == len(RECORDS[1]["output"].encode())
    assert rows[2]["n_prompt_tokens"] == len(tok(RECORDS[2]["instruction"] + "\n")["input_ids"]) > 64
    assert rows[4]["n_response_chars"] == len(RECORDS[4]["output"])


def test_a_kept_metric_is_read_back_and_one_kept_under_its_former_names_is_scored_again(
    tmp_path: Path, tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from gradspec.score import SCORERS

    out = tmp_path / "s.jsonl"
    data = write_json(tmp_path / "d.json", RECORDS[:3])
    cfg = ScoreConfig.of(data=data, out=out, metrics=("length",), model=str(tiny_llama_dir),
                         prompt=PromptConfig("plain", max_length=64), progress=False)  # fmt: skip
    score(cfg)
    first = out.read_text()
    kept = tmp_path / "s.jsonl.score" / "length.jsonl"
    rows = [json.loads(line) for line in kept.read_text().splitlines()]
    monkeypatch.setitem(SCORERS, "length", replace(SCORERS["length"], score=None))  # reading back computes nothing
    score(cfg)
    assert out.read_text() == first
    monkeypatch.undo()
    # As version 0.2 kept it: the counts under the names of the --prompt-tokens/--response-tokens options.
    former = [{**r, "fields": {k.removeprefix("n_"): v for k, v in r["fields"].items()}} for r in rows]
    kept.write_text("".join(json.dumps(r) + "\n" for r in former))
    score(cfg)
    again = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["n_response_tokens"] for r in again] == [len(r["output"].encode()) for r in RECORDS[:3]]
    assert not any("response_tokens" in r for r in again)


def test_a_record_the_tokenizer_refuses_fails_its_ifd_and_length_only(tmp_path: Path, tiny_llama_dir: Path) -> None:
    from dataclasses import replace

    from gradspec.score.context import ScoreContext
    from gradspec.score.ifd import ifd_scores
    from gradspec.score.length import length_scores

    data = write_json(tmp_path / "d.json", [RECORDS[0], {"instruction": "bad\x00", "output": "x y"}, RECORDS[1]])
    cfg = ScoreConfig.of(data=data, out=tmp_path / "s.jsonl", metrics=("ifd", "length"), model=str(tiny_llama_dir),
                         prompt=PromptConfig("plain", max_length=64), batch_tokens=200, progress=False)  # fmt: skip
    loaded = load_model(str(tiny_llama_dir), device="cpu")
    ctx = ScoreContext(cfg, load_dataset(data), replace(loaded, tokenizer=RefusingTokenizer(loaded.tokenizer)))
    records = ctx.dataset.items
    ifd, lengths = ifd_scores(ctx, records), length_scores(ctx, records)
    assert ifd[1].error == lengths[1].error == "record 1: cannot be tokenised (ValueError: NUL byte in text)"
    assert lengths[1].fields["n_prompt_tokens"] is None and lengths[1].fields["n_response_chars"] == 3
    plain = ScoreContext(cfg, load_dataset(data), loaded)
    # Without the refused record the batches have other shapes, so the IFDs agree within round-off only.
    alone = ifd_scores(plain, records)
    assert all(close_fields(ifd[i].fields, alone[i].fields, PPL_RTOL) for i in (0, 2)), (ifd, alone)
    assert lengths[2].fields == length_scores(plain, records)[2].fields and lengths[2].error is None


@pytest.mark.real_model
@pytest.mark.shared_data
def test_ifd_on_real_samples_equals_batch_of_one(tmp_path: Path, shared_data: Path, default_model) -> None:
    src = json.loads((shared_data / "instruction/ifd_gpt2/wiz_10k_lowest_200.json").read_text())[:5]
    recs = [{"instruction": r["instruction"], "output": r["output"]} for r in src]
    out = tmp_path / "s.json"
    cfg = ScoreConfig.of(
        data=write_json(tmp_path / "d.json", recs),
        out=out,
        metrics=("ifd",),
        prompt=PromptConfig("plain", max_length=256),
        progress=False,
    )
    score(cfg, loaded=default_model)
    rows = json.loads(out.read_text())
    assert check_ifd(rows, recs, default_model.model, default_model.tokenizer, 256, 1e-3) >= 4


def save_reward_model(path: Path, labels: int = 1) -> Path:
    torch.manual_seed(1)
    cfg = LlamaConfig(**COMMON, num_labels=labels, pad_token_id=byte_tokenizer().pad_token_id)
    model = LlamaForSequenceClassification(cfg)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0, 0.3)
    model.save_pretrained(path, safe_serialization=True)
    byte_tokenizer().save_pretrained(path)
    return path


def test_reward_is_batched_exactly_and_failures_stay_null(tmp_path: Path) -> None:
    rm_dir = save_reward_model(tmp_path / "rm")
    out = tmp_path / "s.parquet"
    data = write_json(tmp_path / "d.json", [*RECORDS[:2], RECORDS[4], {"instruction": "x", "output": None}])
    score(
        ScoreConfig.of(
            data=data, out=out, metrics=("reward",), reward_model=str(rm_dir), reward_batch_size=3, progress=False
        )
    )
    import pyarrow.parquet as pq

    rows = pq.read_table(out).to_pylist()
    rm = load_model(str(rm_dir), device="cpu", head="reward")
    tok = rm.tokenizer
    for row, rec in zip(rows[:3], [*RECORDS[:2], RECORDS[4]]):
        chat = [{"role": "user", "content": rec["instruction"]}, {"role": "assistant", "content": rec["output"]}]
        ids = tok(tok.apply_chat_template(chat, tokenize=False), add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            want = float(rm.model(input_ids=torch.tensor([ids])).logits[0, 0])
        assert row["reward"] == pytest.approx(want, rel=1e-5, abs=1e-6)
    assert len({r["reward"] for r in rows[:3]}) == 3
    assert rows[3]["reward"] is None and "output" in rows[3]["score_errors"]["reward"]


def test_reward_model_with_many_outputs_is_refused(tmp_path: Path) -> None:
    rm_dir = save_reward_model(tmp_path / "rm", labels=3)
    cfg = ScoreConfig.of(
        data=write_json(tmp_path / "d.json", RECORDS[:1]),
        out=tmp_path / "s.json",
        metrics=("reward",),
        reward_model=str(rm_dir),
    )
    with pytest.raises(ModelError, match="3 outputs"):
        score(cfg)


def test_score_options_are_checked(tmp_path: Path) -> None:
    d = tmp_path / "d.json"
    with pytest.raises(ConfigError, match="unknown bogus"):
        ScoreConfig.of(data=d, out=tmp_path / "s.json", metrics=("bogus",))
    with pytest.raises(ConfigError, match="--reward-model"):
        ScoreConfig.of(data=d, out=tmp_path / "s.json", metrics=("reward",))
    with pytest.raises(ConfigError, match="--judge"):
        ScoreConfig.of(data=d, out=tmp_path / "s.json", metrics=("instag",))
    with pytest.raises(ConfigError, match=r"\.jsonl"):
        ScoreConfig.of(data=d, out=tmp_path / "s.txt", metrics=("ifd",))


def test_one_list_of_metric_names_feeds_the_registry_the_command_line_and_the_experiment_checks() -> None:
    """ScoreMetric (config/score.py) is the list: every name in it has a scorer, no scorer is outside it,
    and --help and an experiment's score list read it."""
    from click.testing import CliRunner

    from gradspec.cli.main import app
    from gradspec.config.fields import leaf_map
    from gradspec.config.score import SCORE_METRICS, ScoreConfig
    from gradspec.config.types import item_type, literal_choices
    from gradspec.score import SCORERS
    from gradspec.score.registry import register_scorer

    assert set(SCORERS) == set(SCORE_METRICS)
    shown = " ".join(CliRunner().invoke(app, ["score", "--help"], terminal_width=400).output.split())
    assert all(name in shown for name in SCORE_METRICS)
    listed = literal_choices(item_type(leaf_map(ScoreConfig)["metrics"].type))  # what experiments check against
    assert set(listed or ()) == set(SCORE_METRICS)
    with pytest.raises(ValueError, match="add it to ScoreMetric"):
        register_scorer("not_a_metric", ("x",), needs_model=False)(lambda ctx, records: {})
