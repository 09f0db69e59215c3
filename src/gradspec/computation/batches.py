"""The computation as a generator: pending records in, rows of the run-folder tables out, one
token batch at a time. ``compute`` writes what it yields; the benchmark times it as it is."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from gradspec.capture import run_batch, token_batches
from gradspec.computation.job import Job
from gradspec.computation.rows import DTYPES, Rows, sample_rows
from gradspec.computation.steps import step_batch_rows
from gradspec.data import BadRecord, Record
from gradspec.prompting import Encoded, Refused, Skipped, encode_record, with_steps
from gradspec.spectra import SampleSpectra, sample_spectra
from gradspec.store.rows import sample_row


@dataclass
class Pending:
    """Records still to do: rows that need no model (bad and skipped records), and the encoded rest."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    encoded: list[Encoded] = field(default_factory=list)


@dataclass(frozen=True)
class Computed:
    """The rows of one token batch, and how many samples and tokens it held."""

    rows: Rows
    samples: int
    tokens: int


def encode_pending(job: Job, items: Sequence[Record | BadRecord]) -> Pending:
    """Encode every record; bad records and those with no response token left become rows at once."""
    out = Pending()
    for item in items:
        if isinstance(item, BadRecord):
            out.rows.append(sample_row(item.sample_id, item.index, "error", item.reason))
            continue
        enc = encode_record(item, job.loaded.tokenizer, job.config.prompt)
        if isinstance(enc, Refused):
            out.rows.append(sample_row(item.sample_id, item.index, "error", enc.reason))
            continue
        if isinstance(enc, Skipped):
            out.rows.append(
                sample_row(
                    enc.sample_id,
                    enc.index,
                    "skipped",
                    enc.reason,
                    n_tokens=enc.n_tokens,
                    n_response_tokens=0,
                    n_prompt_tokens=enc.n_prompt_tokens,
                )
            )
            continue
        if job.config.capture.steps is not None:
            try:
                enc = with_steps(enc, item.response, job.config.capture.steps)
            except ValueError as exc:
                out.rows.append(sample_row(item.sample_id, item.index, "error", f"record {item.index}: {exc}"))
                continue
        out.encoded.append(enc)
    return out


def probe_of(job: Job, items: Sequence[Record | BadRecord]) -> SampleSpectra | None:
    """The run's probe: the spectra of its first record (in file order) that encodes and computes to
    finite numbers, whose gradients every sample's are compared with (``probe`` cosines). The same
    record on every rank and every resume, so the cosines do not depend on how the work was split."""
    for item in items:
        if not isinstance(item, Record):
            continue
        enc = encode_record(item, job.loaded.tokenizer, job.config.prompt)
        if not isinstance(enc, Encoded):  # skipped, or refused by the tokenizer: no probe
            continue
        (factors,) = run_batch(job.loaded.model, job.projections, [enc], job.config.capture.checkpointing)
        if not factors.finite():
            continue
        spectral = job.config.spectral
        spectra = sample_spectra(factors, job.modules, job.n_layers, DTYPES[spectral.core_dtype], spectral.eigen_solver)
        return replace(spectra, sample_id=item.sample_id)
    return None


def computed_batches(job: Job, encoded: Sequence[Encoded], probe: SampleSpectra | None = None) -> Iterator[Computed]:
    """Forward and backward each token batch, then the spectra of each sample, as rows (with its
    cosines with ``probe``'s gradients when there is a probe)."""
    spectral = job.config.spectral
    batch_tokens = job.config.capture.batch_tokens
    assert batch_tokens is not None  # resolved by plan()
    for batch in token_batches(encoded, batch_tokens):
        if job.config.capture.steps is not None:
            yield Computed(step_batch_rows(job, batch, probe), len(batch), sum(s.n_tokens for s in batch))
            continue
        rows: Rows = {}
        for enc, factors in zip(
            batch, run_batch(job.loaded.model, job.projections, batch, job.config.capture.checkpointing)
        ):
            made = sample_rows(enc, factors, job.modules, job.n_layers, spectral, probe)
            for table, table_rows in made.items():
                rows.setdefault(table, []).extend(table_rows)
        yield Computed(rows, len(batch), sum(s.n_tokens for s in batch))
