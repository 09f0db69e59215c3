"""What ``compute --steps`` costs, and the two ways to get every step's output gradients.

On real s1.1 R1 traces (the default model, q/k/v/o, CPU):
  sample level   the library's computation of the whole sample (``computed_batches``), as ever
  steps          the same with ``--steps`` (one forward, then one backward per step through the kept
                 graph, each step's spectra and the adding-up check), as ``compute --steps`` runs it
And the choice inside it, on one trace's graph with every projection's output kept:
  repeated       ``torch.autograd.grad`` once per step's loss, ``retain_graph=True`` (what gradspec does)
  batched        one ``torch.autograd.grad(..., is_grads_batched=True)`` over the steps' losses (vmap
                 over backward); where a batching rule is missing it fails or falls back to a loop,
                 and the table says which
Prints a table and writes ``benchmarks/results/steps.json``.

    .venv/bin/python benchmarks/steps.py [--samples 4] [--max-length 512] [--rule paragraph] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import torch

from gradspec import ComputeConfig
from gradspec.capture.batch import collate, forward_token_losses, step_columns
from gradspec.computation.batches import computed_batches
from gradspec.computation.job import plan
from gradspec.data import Record, load_dataset
from gradspec.distributed import World
from gradspec.model import LoadedModel, find_projections, load_model
from gradspec.prompting import Encoded, PromptConfig, encode, with_steps
from speed import SHARED, machine, measure

TRACES = SHARED / "reasoning/s1_R1.json"
MODULES = ["q", "k", "v", "o"]


def traces(loaded: LoadedModel, max_length: int, rule: str, n: int) -> list[Encoded]:
    """The first ``n`` traces that fill ``max_length``, with their steps by ``rule``."""
    prompt = PromptConfig("plain", None, max_length)
    out = []
    for r in load_dataset(TRACES).items:
        e = encode(r, loaded.tokenizer, prompt) if isinstance(r, Record) else None
        if isinstance(e, Encoded) and e.n_tokens == max_length:
            out.append(with_steps(e, r.response, rule))
        if len(out) == n:
            break
    return out


def library(loaded: LoadedModel, samples: list[Encoded], steps: str | None) -> None:
    """The library's computation of ``samples``, one batch of one sample at a time."""
    config = ComputeConfig.of(
        data="unused", out="unused", device="cpu", template="plain", max_length=samples[0].n_tokens,
        modules=MODULES, steps=steps, batch_tokens=samples[0].n_tokens,
    )  # fmt: skip
    for _ in computed_batches(plan(config, loaded, World()), samples):
        pass


def step_losses(loaded: LoadedModel, sample: Encoded) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(each step's share of the loss, (S,); every q/k/v/o output, kept in the graph)."""
    outputs: list[torch.Tensor] = []

    def keep(_module: torch.nn.Module, _inputs: object, out: torch.Tensor) -> torch.Tensor:
        if not out.requires_grad:  # the first projections: nothing before them needs a gradient
            out.requires_grad_(True)
        outputs.append(out)
        return out

    hooks = [t.projection.module.register_forward_hook(keep) for t in find_projections(loaded.model, MODULES)]
    try:
        ids, attn, mask = collate([sample], torch.device("cpu"))
        with torch.enable_grad():
            loaded.model.requires_grad_(False)
            nll, kept, tail = forward_token_losses(loaded.model, ids, attn, mask)
            rows = torch.zeros(len(sample.steps), nll.shape[1])
            for j, step in enumerate(sample.steps):
                rows[j, step_columns(step, tail)] = 1.0
            shares = (rows * (nll * kept)[0]).sum(1) / kept.sum()
    finally:
        for h in hooks:
            h.remove()
    return shares, outputs


def repeated(shares: torch.Tensor, outputs: list[torch.Tensor]) -> None:
    for j in range(len(shares)):
        torch.autograd.grad(shares[j], outputs, retain_graph=True)


def batched(shares: torch.Tensor, outputs: list[torch.Tensor]) -> None:
    eye = torch.eye(len(shares))
    torch.autograd.grad(shares, outputs, grad_outputs=eye, is_grads_batched=True, retain_graph=True)


def strategies(loaded: LoadedModel, sample: Encoded, rounds: int) -> dict[str, object]:
    """Seconds of both ways to get one trace's per-step output gradients, and whether they agree."""
    shares, outputs = step_losses(loaded, sample)
    out: dict[str, object] = {"steps": len(shares)}
    out["repeated_seconds"] = measure(lambda: repeated(shares, outputs), rounds)[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out["batched_seconds"] = measure(lambda: batched(shares, outputs), rounds)[0]
            loop = [torch.autograd.grad(shares[j], outputs[:1], retain_graph=True)[0] for j in range(len(shares))]
            vec = torch.autograd.grad(
                shares, outputs[:1], grad_outputs=torch.eye(len(shares)), is_grads_batched=True, retain_graph=True
            )[0]
            scale = max(float(g.abs().max()) for g in loop) or 1.0
            out["batched_max_difference"] = max(float((vec[j] - g).abs().max()) for j, g in enumerate(loop)) / scale
        except RuntimeError as exc:
            out["batched_error"] = str(exc).splitlines()[0][:200]
    out["batched_warnings"] = sorted({str(w.message).splitlines()[0][:200] for w in caught})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--rule", default="paragraph")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "steps.json"))
    args = ap.parse_args()
    loaded = load_model("default", device="cpu")
    samples = traces(loaded, args.max_length, args.rule, args.samples)
    n_steps = [len(s.steps) for s in samples]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(samples)} s1.1 traces of "
          f"{args.max_length} tokens, {args.rule} steps: {n_steps}")  # fmt: skip
    whole = measure(lambda: library(loaded, samples, None), args.rounds)
    steps = measure(lambda: library(loaded, samples, args.rule), args.rounds)
    tokens = sum(s.n_tokens for s in samples)
    result: dict[str, object] = {
        **machine(),
        "case": f"s1.1 R1 traces, {args.max_length} tokens, --steps {args.rule}",
        "steps_per_trace": n_steps,
        # (No peak memory: in one process the second method reuses what the first freed.)
        "sample_level": {"seconds": whole[0], "tokens_per_second": tokens / whole[0]},
        "steps": {"seconds": steps[0], "tokens_per_second": tokens / steps[0]},
        "cost_ratio": steps[0] / whole[0],
        "per_step_gradients": strategies(loaded, samples[0], args.rounds),
    }
    print(f"{'':<14}{'seconds':>9}{'tokens/s':>10}")
    for name in ("sample_level", "steps"):
        r = result[name]
        print(f"{name:<14}{r['seconds']:>9.2f}{r['tokens_per_second']:>10.0f}")  # type: ignore[index]
    print(f"--steps costs {result['cost_ratio']:.2f}x the sample level "
          f"(mean {sum(n_steps) / len(n_steps):.1f} steps a trace)")  # fmt: skip
    s = result["per_step_gradients"]
    print(
        f"one trace's {s['steps']} steps: repeated backward {s['repeated_seconds']:.2f} s, "  # type: ignore[index]
        f"is_grads_batched {s.get('batched_seconds', float('nan')):.2f} s "  # type: ignore[union-attr]
        f"{s.get('batched_error', '')}"
    )  # type: ignore[union-attr]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
