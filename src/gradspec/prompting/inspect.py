"""``gradspec inspect``: the first records of a file as the model sees them, so that nothing the
template, the truncation or a window does to the data is silent."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gradspec.config.prompt import PromptConfig
from gradspec.data import BadRecord, Record
from gradspec.prompting.encode import Encoded, Refused, encode_record
from gradspec.prompting.templates import injected_system_prompt, layout, resolve_template


def inspect_records(items: list[Record | BadRecord], tokenizer: Any, config: PromptConfig) -> dict[str, Any]:
    """The template's layout, any system prompt it injects, and each record's tokens split at the
    boundary where loss starts, with what truncation or a window kept."""
    resolved = replace(config, template=resolve_template(config.template, tokenizer))
    out: dict[str, Any] = {
        "template": resolved.template,
        "layout": layout(tokenizer, resolved),
        "injected_system_prompt": injected_system_prompt(tokenizer, resolved),
        "records": [],
    }
    for item in items:
        row: dict[str, Any] = {"index": item.index, "sample_id": item.sample_id}
        if isinstance(item, BadRecord):
            row |= {"status": "error", "reason": item.reason}
        else:
            enc = encode_record(item, tokenizer, resolved)
            if isinstance(enc, Encoded):
                n = enc.n_prompt_tokens
                row |= {
                    "status": "ok",
                    "n_tokens": enc.n_tokens,
                    "n_prompt_tokens": n,
                    "n_response_tokens": enc.n_response_tokens,
                    "truncated": enc.truncated,
                    "prompt": tokenizer.decode(enc.input_ids[:n]),
                    "response": tokenizer.decode(enc.input_ids[n:]),
                }
            else:
                row |= {"status": "refused" if isinstance(enc, Refused) else "skipped", "reason": enc.reason}
        out["records"].append(row)
    return out


def as_text(report: dict[str, Any]) -> str:
    """The inspection for people: the layout, then each record with the loss boundary marked."""
    lines = [f"template: {report['template']}", f"layout: {report['layout']!r}"]
    if report["injected_system_prompt"]:
        lines.append(
            f"the chat template adds this system prompt to records without one: {report['injected_system_prompt']!r}"
        )
    for r in report["records"]:
        if r["status"] != "ok":
            lines.append(f"\nrecord {r['index']} ({r['sample_id']}): {r['status']}: {r['reason']}")
            continue
        cut = ", truncated" if r["truncated"] else ""
        lines.append(
            f"\nrecord {r['index']} ({r['sample_id']}): {r['n_tokens']} tokens, {r['n_prompt_tokens']} of prompt, "
            f"{r['n_response_tokens']} carrying loss{cut}"
        )
        lines += ["--- prompt (no loss) ---", r["prompt"], "--- response (loss on these tokens) ---", r["response"]]
    return "\n".join(lines)
