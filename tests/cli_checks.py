"""What the hostile-input tests check of every refusal, and the small run config they compute with."""

from __future__ import annotations

from pathlib import Path

from gradspec import ComputeConfig, PromptConfig


def one_line_error(result, *expect: str) -> None:  # noqa: ANN001  (click's Result)
    """Exit 2, one line on the output, no traceback, and every expected fragment in it."""
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert len(text.splitlines()) == 1 and "Traceback" not in text, text
    for fragment in expect:
        assert fragment in text, text


def cfg(data: Path, out: Path, model: Path, **kw) -> ComputeConfig:
    """A compute config on the CPU, plain template, 64 tokens, no progress bar."""
    kw.setdefault("prompt", PromptConfig("plain", max_length=64))
    return ComputeConfig.of(data=data, out=out, model=str(model), progress=False, device="cpu", **kw)
