"""Templates, the response boundary, truncation and skipped records."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradspec.data import Message, Record
from gradspec.errors import ConfigError
from gradspec.prompting import (
    Encoded,
    PromptConfig,
    Refused,
    Skipped,
    encode,
    encode_record,
    encode_records,
    render_prompt,
)

from conftest import byte_tokenizer
from helpers import RefusingTokenizer


def rec(instruction: str, response: str, index: int = 0) -> Record:
    return Record(index, f"id{index}", (Message("user", instruction),), response)


def test_plain_template_is_instruction_newline_response(tokenizer) -> None:
    r = rec("Say hi", "hi there")
    prompt, special = render_prompt(r, tokenizer, PromptConfig("plain"))
    assert prompt == "Say hi\n" and special
    enc = encode(r, tokenizer, PromptConfig("plain"))
    assert isinstance(enc, Encoded)
    assert enc.input_ids == tokenizer("Say hi\nhi there")["input_ids"]
    # Byte tokens: the response starts right after the 7 prompt bytes.
    assert enc.n_prompt_tokens == 7
    assert enc.loss_mask == [False] * 7 + [True] * 8
    assert enc.n_response_tokens == 8


def test_chat_template_with_system_prompt(tokenizer) -> None:
    r = rec("Say hi", "hi")
    cfg = PromptConfig("chat", system_prompt="You are a helpful assistant.")
    prompt, special = render_prompt(r, tokenizer, cfg)
    assert prompt == "<|system|>\nYou are a helpful assistant.</s>\n<|user|>\nSay hi</s>\n<|assistant|>\n"
    assert not special
    enc = encode(r, tokenizer, cfg)
    assert tokenizer.decode([t for t, m in zip(enc.input_ids, enc.loss_mask) if m]) == "hi"
    assert render_prompt(r, tokenizer, PromptConfig("auto"))[0].startswith("<|user|>")


def test_chat_needs_a_template() -> None:
    with pytest.raises(ConfigError, match="no chat template"):
        render_prompt(rec("a", "b"), byte_tokenizer(chat=False), PromptConfig("chat"))
    assert render_prompt(rec("a", "b"), byte_tokenizer(chat=False), PromptConfig("auto"))[0] == "a\n"


def test_multibyte_boundary(tokenizer) -> None:
    enc = encode(rec("é", "ü"), tokenizer, PromptConfig("plain"))
    # 'é' is two byte tokens, '\n' one; the response 'ü' is two tokens.
    assert enc.loss_mask == [False, False, False, True, True]


def test_prompt_filling_max_length_is_skipped(tokenizer) -> None:
    out = encode(rec("x" * 50, "answer", index=3), tokenizer, PromptConfig("plain", max_length=20))
    assert isinstance(out, Skipped)
    assert "record 3" in out.reason and "prompt fills the max length" in out.reason
    assert out.n_tokens == 51 + 6


def test_end_truncation_cuts_response_end(tokenizer) -> None:
    enc = encode(rec("abc", "0123456789"), tokenizer, PromptConfig("plain", max_length=8))
    assert enc.n_tokens == 8 and enc.truncated and enc.n_response_tokens == 4


def test_prompt_start_truncation_keeps_the_response(tokenizer) -> None:
    enc = encode(rec("x" * 50, "answer"), tokenizer, PromptConfig("plain", max_length=20, truncation="prompt_start"))
    assert isinstance(enc, Encoded)
    assert tokenizer.decode(enc.input_ids[-6:]) == "answer" and enc.n_response_tokens == 6


def test_empty_prompt_never_predicts_position_zero(tokenizer) -> None:
    enc = encode(rec("", "ab"), tokenizer, PromptConfig("plain"))
    # prompt is "\n": one token; then 'a', 'b' are predicted
    assert enc.loss_mask == [False, True, True]


@settings(max_examples=80, deadline=None)
@given(
    st.text(max_size=60),
    st.text(min_size=1, max_size=60),
    st.integers(2, 64),
    st.sampled_from(["end", "prompt_start"]),
    st.sampled_from(["plain", "chat"]),
)
def test_random_text_encodes_consistently(instruction, response, max_length, truncation, template) -> None:
    out = encode(rec(instruction, response), byte_tokenizer(), PromptConfig(template, None, max_length, truncation))
    if isinstance(out, Skipped):
        assert out.reason
        return
    assert len(out.input_ids) == len(out.loss_mask) <= max_length
    assert not out.loss_mask[0] and out.n_response_tokens >= 1
    first = out.loss_mask.index(True)
    assert all(out.loss_mask[first:])  # the response is one contiguous tail


def test_a_response_window_keeps_the_prompt_and_the_first_k_response_tokens(tokenizer) -> None:
    r = rec("Say hi", "hi there, how are you?")
    enc = encode(r, tokenizer, PromptConfig("plain", response_tokens=5))
    assert isinstance(enc, Encoded)
    assert enc.input_ids == tokenizer("Say hi\nhi there, how are you?")["input_ids"][: 7 + 5]
    assert enc.loss_mask == [False] * 7 + [True] * 5 and enc.n_response_tokens == 5 and not enc.truncated
    short = encode(rec("Say hi", "hi", index=4), tokenizer, PromptConfig("plain", response_tokens=5))
    assert isinstance(short, Skipped) and short.reason == "record 4: response has 2 tokens, fewer than the window of 5"
    squeezed = encode(
        rec("x" * 30, "y" * 20, index=5), tokenizer, PromptConfig("plain", max_length=32, response_tokens=8)
    )
    assert isinstance(squeezed, Skipped) and "only 1 of its 8 window tokens fit in max_length 32" in squeezed.reason
    kept = encode(
        rec("x" * 30, "y" * 20),
        tokenizer,
        PromptConfig("plain", max_length=32, truncation="prompt_start", response_tokens=8),
    )
    assert isinstance(kept, Encoded) and kept.n_tokens == 32 and kept.n_response_tokens == 8


def test_record_windows_take_each_records_own_budget(tokenizer) -> None:
    r = Record(0, "a", (Message("user", "Q"),), "0123456789", window=4)
    on = encode(r, tokenizer, PromptConfig("plain", record_windows=True))
    assert isinstance(on, Encoded) and on.n_response_tokens == 4
    assert encode(r, tokenizer, PromptConfig("plain")).n_response_tokens == 10  # off by default
    both = encode(r, tokenizer, PromptConfig("plain", record_windows=True, response_tokens=3))
    assert both.n_response_tokens == 3  # the smaller window wins
    none = encode(rec("Q", "0123"), tokenizer, PromptConfig("plain", record_windows=True))
    assert isinstance(none, Skipped) and "no response_window field" in none.reason
    zero = Record(7, "z", (Message("user", "Q"),), "0123", window_problem="its response_window is 0, not ...")
    skipped = encode(zero, tokenizer, PromptConfig("plain", record_windows=True))
    assert isinstance(skipped, Skipped) and skipped.reason.startswith("record 7: its response_window is 0")


def test_a_records_window_field_is_read_and_a_bad_value_named(tmp_path) -> None:
    from gradspec.data import load_dataset

    from conftest import write_json

    records = [
        {"instruction": "a", "output": "b", "response_window": 3},
        {"instruction": "c", "output": "d", "response_window": 0},
        {"instruction": "e", "output": "f", "response_tokens": 9, "response_tokens_untruncated": 20},  # older
        {"instruction": "g", "output": "h", "response_tokens": 9},  # a length score, not a window
    ]
    items = load_dataset(write_json(tmp_path / "d.json", records)).items
    assert [i.window for i in items] == [3, None, 9, None]
    assert items[1].window_problem == "its response_window is 0, not a number of tokens >= 1"


def test_prompt_tokens_keep_the_prompts_end_and_skip_shorter_prompts(tokenizer) -> None:
    long = rec("The question is long enough to cut here", "short answer")
    enc = encode(long, tokenizer, PromptConfig("plain", prompt_tokens=6))
    whole = encode(long, tokenizer, PromptConfig("plain"))
    assert enc.n_prompt_tokens == 6 and enc.input_ids == whole.input_ids[whole.n_prompt_tokens - 6 :]
    short = encode(rec("Hi", "there", index=3), tokenizer, PromptConfig("plain", prompt_tokens=6))
    assert isinstance(short, Skipped) and short.reason == "record 3: prompt has 3 tokens, fewer than --prompt-tokens 6"
    with pytest.raises(ConfigError, match="exceed --max-length 10"):
        PromptConfig("plain", max_length=10, prompt_tokens=6, response_tokens=5)


def test_keep_prompt_cuts_the_response_first_and_the_prompt_only_when_it_fills_the_length(tokenizer) -> None:
    fits = encode(rec("p" * 10, "r" * 40), tokenizer, PromptConfig("plain", max_length=32, truncation="keep_prompt"))
    assert fits.n_prompt_tokens == 11 and fits.n_tokens == 32  # the whole prompt ("p" * 10 and a newline)
    long = encode(rec("p" * 60, "r" * 40), tokenizer, PromptConfig("plain", max_length=32, truncation="keep_prompt"))
    assert long.n_tokens == 32 and long.n_response_tokens == 8  # a quarter of 32 for the response
    start = encode(rec("p" * 60, "r" * 40), tokenizer, PromptConfig("plain", max_length=32, truncation="prompt_start"))
    assert start.n_prompt_tokens == 1  # the other rule: the response first
    end = encode(rec("p" * 60, "r" * 40), tokenizer, PromptConfig("plain", max_length=32))
    assert isinstance(end, Skipped)  # cutting the end leaves no response token


def test_a_record_the_tokenizer_refuses_costs_that_record_only(tokenizer) -> None:
    """compute, the scorers, train and its evaluation, and inspect encode through encode_record /
    encode_records: a tokenizer that raises on one record leaves the others measured and names the record
    and the error."""
    picky = RefusingTokenizer(tokenizer)
    records = [rec("Say hi", "hi", 0), rec("bad\x00", "x", 1), rec("a" * 50, "b", 2), rec("Again", "yes", 3)]
    cfg = PromptConfig("plain", max_length=20)
    ok, bad = encode_records(records, picky, cfg)
    assert [e.index for e in ok] == [0, 3]
    assert bad[1] == "record 1: cannot be tokenised (ValueError: NUL byte in text)"
    assert bad[2].startswith("record 2") and "prompt fills" in bad[2]  # skipped: too long, with its reason
    assert isinstance(encode_record(records[1], picky, cfg), Refused)
    assert isinstance(encode_record(records[2], picky, cfg), Skipped)


def test_inspect_shows_a_refused_record_and_goes_on(tokenizer) -> None:
    from gradspec.prompting.inspect import as_text, inspect_records

    report = inspect_records([rec("bad\x00", "x", 0), rec("Say hi", "hi", 1)], RefusingTokenizer(tokenizer),
                             PromptConfig("plain", max_length=20))  # fmt: skip
    refused, ok = report["records"]
    assert refused["status"] == "refused" and "cannot be tokenised (ValueError" in refused["reason"]
    assert ok["status"] == "ok" and ok["n_response_tokens"] == 2
    assert "record 0 (id0): refused: record 0: cannot be tokenised" in as_text(report)


def test_every_cut_of_the_prompt_keeps_the_bos() -> None:
    tok = byte_tokenizer(adds_bos=True)
    record = rec("a long instruction that will not fit whole", "and its answer")
    whole = encode(record, tok, PromptConfig("plain"))
    ids, start, bos = whole.input_ids, whole.n_prompt_tokens, tok.bos_token_id
    assert ids[0] == bos
    # prompt_start: the BOS, then the last 19 tokens (the whole response and the prompt's end).
    cut = encode(record, tok, PromptConfig("plain", max_length=20, truncation="prompt_start"))
    assert cut.input_ids == [bos, *ids[-19:]] and cut.truncated
    # keep_prompt: the BOS, the prompt's last 14 tokens, the response's first 5 (a quarter of 20).
    cut = encode(record, tok, PromptConfig("plain", max_length=20, truncation="keep_prompt"))
    assert cut.input_ids == [bos, *ids[start - 14 : start + 5]] and cut.n_response_tokens == 5


def test_prompt_tokens_count_the_text_after_the_bos() -> None:
    tok = byte_tokenizer(adds_bos=True)
    short = encode(rec("abc", "the answer"), tok, PromptConfig("plain", prompt_tokens=4))
    assert short.input_ids[0] == tok.bos_token_id and short.n_prompt_tokens == 5  # BOS + "abc\n"
    refused = encode(rec("ab", "the answer"), tok, PromptConfig("plain", prompt_tokens=4))
    assert "prompt has 3 tokens after 1 leading special token(s), fewer than --prompt-tokens 4" in refused.reason
