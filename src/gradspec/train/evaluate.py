"""Held-out measures of a fine-tune, each kept item by item.

- ``response_loss``: the mean response-token loss on instruction data from other sources than
  the pool (lower is better): does the fine-tune follow instructions it never saw better?
- ``accuracy``: multiple-choice accuracy by log-likelihood on reasoning problems (the choice
  whose tokens the model finds most likely, summed over its tokens, as lm-eval-harness's
  ``acc``); the choices come from the problem's own text (``(A) ...``, ``- option``) or are
  yes/no.
- ``answer_loss``: the loss on the final answer given the problem, for problems with no choices
  (GSM8K's number).
- ``preference_accuracy`` and ``quality_gap`` on judged answers (several answers to each prompt,
  each with a quality, e.g. strong and weak models' answers): does the fine-tune prefer the
  better answer to the same prompt? Response loss on one model's answers sees closeness to that
  model; these see quality, compared over the same first K tokens of every answer, so length
  drops out.

Every number is kept per item too, so methods can be compared item by item.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from torch import nn

from gradspec.config.prompt import PromptConfig
from gradspec.config.train import EvalConfig
from gradspec.data import Record, load_dataset
from gradspec.data.values import lookup, numeric_value
from gradspec.errors import ConfigError
from gradspec.prompting import Encoded, encode_record, encode_records
from gradspec.score.perplexity import response_losses

_LETTER = re.compile(r"\(([A-J])\)")
_NEWLINES = re.compile(r"\\n|\n")  # the fast/slow data writes some newlines as a backslash and an n


@dataclass
class Measured:
    """One measure on one held-out set: its mean, and every item's value (by record index)."""

    set: str
    measure: str
    items: dict[int, float] = field(default_factory=dict)
    skipped: int = 0
    answers: list[dict[str, Any]] = field(default_factory=list)
    """Judged measures: each answer's loss with its prompt, file index, id and quality (the same
    list on both measures of a set), so a reader can re-measure on any subset of the judged
    answers (one judged model left out, say) without training again."""

    @property
    def value(self) -> float:
        return statistics.fmean(self.items.values()) if self.items else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "set": self.set,
            "measure": self.measure,
            "value": self.value,
            "n": len(self.items),
            "skipped": self.skipped,
        }


def choices(instruction: str, answer: str) -> list[str] | None:
    """The answers a problem offers, when its gold answer is one of them; None otherwise."""
    letters = [f"({m})" for m in _LETTER.findall(instruction)]
    if answer in letters:
        return list(dict.fromkeys(letters))
    options = [line.strip()[2:].strip() for line in _NEWLINES.split(instruction) if line.strip().startswith("- ")]
    if answer in options:
        return options
    heads = [o.split(":")[0].strip() for o in options]
    if answer in heads:
        return heads
    if answer.strip().lower() in ("yes", "no"):
        return ["yes", "no"]
    return None


def held_out(path: Path, limit: int) -> list[Record]:
    return [r for r in load_dataset(path, limit=limit).items if isinstance(r, Record)]


def _losses(model: nn.Module, samples: Sequence[Encoded], batch_tokens: int) -> dict[int, float]:
    return response_losses(model, samples, batch_tokens, "", progress=False)


def response_loss(
    model: nn.Module, tok: Any, records: Sequence[Record], prompt: PromptConfig, batch_tokens: int, name: str
) -> Measured:
    out = Measured(name, "response_loss")
    encoded, skipped = encode_records(records, tok, prompt)
    out.skipped = len(skipped)
    out.items = _losses(model, encoded, batch_tokens)
    return out


def reasoning(
    model: nn.Module, tok: Any, records: Sequence[Record], prompt: PromptConfig, batch_tokens: int, name: str
) -> list[Measured]:
    """Accuracy over the problems with choices, answer loss over the others. A problem is scored only
    when every one of its choices is measured whole: a choice cut by max_length is summed over fewer
    tokens (so favoured), one left out (or refused by the tokenizer) lets the others win by default;
    such a problem is counted as skipped."""
    accuracy, answers = Measured(name, "accuracy"), Measured(name, "answer_loss")
    candidates: list[Encoded] = []
    owner: dict[int, tuple[int, str]] = {}  # candidate index -> (problem index, choice)
    plain: list[Encoded] = []
    for r in records:
        instruction = r.messages[-1].content
        options = choices(instruction, r.response.strip())
        if options is None:
            e = encode_record(r, tok, prompt)
            if isinstance(e, Encoded):
                plain.append(e)
            else:
                answers.skipped += 1
            continue
        first = len(owner)
        encoded = [
            encode_record(Record(first + j, f"{r.sample_id}:{first + j}", r.messages, o), tok, prompt)
            for j, o in enumerate(options)
        ]
        whole = [e for e in encoded if isinstance(e, Encoded) and not e.truncated]
        if len(whole) < len(options):
            accuracy.skipped += 1
            continue
        for e, option in zip(whole, options, strict=True):
            candidates.append(e)
            owner[e.index] = (r.index, option)
    losses = _losses(model, candidates, batch_tokens)
    best: dict[int, tuple[float, str]] = {}
    sizes = {e.index: e.n_response_tokens for e in candidates}
    for k, loss in losses.items():
        problem, option = owner[k]
        log_likelihood = -loss * sizes[k]
        if problem not in best or log_likelihood > best[problem][0]:
            best[problem] = (log_likelihood, option)
    gold = {r.index: r.response.strip() for r in records}
    accuracy.items = {p: float(option == gold[p]) for p, (_, option) in best.items()}
    answers.items = _losses(model, plain, batch_tokens)
    return [m for m in (accuracy, answers) if m.items or m.skipped]


@dataclass(frozen=True)
class Judged:
    """One judged answer: the record, the prompt it answers and its quality."""

    record: Record
    prompt: str
    quality: float


def judged_answers(path: Path, by: str, quality: str, prompts: int) -> list[Judged]:
    """The answers to the file's first ``prompts`` prompts (by ``by``) that hold a quality; refuses a
    file where none does, naming the fields."""
    out: list[Judged] = []
    for item, row in load_dataset(path).with_rows():
        value = row.value if isinstance(row.value, dict) else {}
        key, q = lookup(value, by), numeric_value(lookup(value, quality))
        if isinstance(item, Record) and key is not None and q is not None:
            out.append(Judged(item, str(key), q))
    first = set(list(dict.fromkeys(a.prompt for a in out))[:prompts])  # a file may list answers model by model
    out = [a for a in out if a.prompt in first]
    if not out:
        raise ConfigError(f"{path}: no answer has both a prompt ({by}) and a number as its quality ({quality})")
    return out


def pair_measures(losses: dict[str, list[tuple[float, float]]], name: str) -> list[Measured]:
    """preference_accuracy and quality_gap from {prompt: [(quality, loss), ...]}; a prompt with no two
    answers of unequal quality is counted as skipped (item: the prompt's place in the file)."""
    accuracy, gap = Measured(name, "preference_accuracy"), Measured(name, "quality_gap")
    for item, answers in enumerate(losses.values()):
        pairs = [(a, b) for a in answers for b in answers if a[0] > b[0]]  # (better, worse)
        if not pairs:
            accuracy.skipped += 1
            gap.skipped += 1
            continue
        accuracy.items[item] = statistics.fmean(float(good[1] < bad[1]) for good, bad in pairs)
        middle = statistics.median(q for q, _ in answers)
        above = [loss for q, loss in answers if q > middle]
        below = [loss for q, loss in answers if q < middle]
        if above and below:
            gap.items[item] = statistics.fmean(above) - statistics.fmean(below)
        else:
            gap.skipped += 1
    return [accuracy, gap]


def judged(
    model: nn.Module, tok: Any, answers: Sequence[Judged], prompt: PromptConfig, batch_tokens: int, name: str
) -> list[Measured]:
    """Both judged measures over the answers' first K tokens (``prompt.response_tokens``): an answer with
    fewer than K tokens that fit beside its prompt is left out of its prompt's pairs."""
    records = [replace(a.record, index=i) for i, a in enumerate(answers)]
    encoded, _ = encode_records(records, tok, prompt)
    losses = _losses(model, encoded, batch_tokens)
    by_prompt: dict[str, list[tuple[float, float]]] = {a.prompt: [] for a in answers}
    for i, a in enumerate(answers):
        if i in losses and losses[i] == losses[i]:
            by_prompt[a.prompt].append((a.quality, losses[i]))
    measured = pair_measures(by_prompt, name)
    place = {p: item for item, p in enumerate(by_prompt)}  # the item number pair_measures gives a prompt
    rows = [
        {
            "item": place[a.prompt],
            "prompt": a.prompt,
            "index": a.record.index,
            "sample_id": a.record.sample_id,
            "quality": a.quality,
            "loss": losses.get(i, float("nan")),
        }  # fmt: skip
        for i, a in enumerate(answers)
    ]
    for m in measured:
        m.answers = rows
    return measured


def evaluate(
    model: nn.Module, tokenizer: Any, config: EvalConfig, prompt: PromptConfig, batch_tokens: int
) -> list[Measured]:
    """Every held-out measure of ``config`` for ``model`` (forward passes only)."""
    out: list[Measured] = []
    first = replace(prompt, response_tokens=config.eval_response_tokens)  # the first K tokens (all without K)
    for path in config.eval_instruction:
        out.append(
            response_loss(model, tokenizer, held_out(path, config.eval_limit), first, batch_tokens, Path(path).stem)
        )
    for path in config.eval_reasoning:
        out += reasoning(model, tokenizer, held_out(path, config.eval_limit), prompt, batch_tokens, Path(path).stem)
    for path in config.eval_judged:
        answers = judged_answers(Path(path), config.eval_judged_by, config.eval_judged_quality, config.eval_limit)
        out += judged(model, tokenizer, answers, first, batch_tokens, Path(path).stem)
    return out


def held_out_records(kind: str, path: Path, config: EvalConfig) -> list[Record]:
    """The records a held-out file of ``kind`` (``HELD_OUT``'s keys) is measured on."""
    if kind == "judged":
        return [
            a.record for a in judged_answers(path, config.eval_judged_by, config.eval_judged_quality, config.eval_limit)
        ]
    return held_out(path, config.eval_limit)


def instruction_of(record: Record) -> str:
    """The text a record asks (its last user turn): what must never be shared with a training set."""
    users = [m.content for m in record.messages if m.role == "user"]
    return users[-1] if users else ""
