"""Per-sample time of gradspec against the batch-of-one method and the forward/backward floor.

On the same real samples and the default model:
  gradspec     hooks + factored spectra + cosines (what ``gradspec compute`` runs, minus I/O)
  batch-of-one every projection's ``.grad``, then ``torch.linalg.svd`` (with U, V) of each
  floor        one forward and backward pass per sample with frozen weights, nothing else
Prints a table and writes ``benchmarks/results/speed.json``.

    .venv/bin/python benchmarks/speed.py [--samples 6] [--max-length 512]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gradspec.capture import Capture, default_batch_tokens, per_sample_loss, run_batch, token_batches
from gradspec.data import Record, load_dataset
from gradspec.model import find_targets, load_model
from gradspec.prompting import Encoded, PromptConfig, encode
from gradspec.spectra import sample_spectra

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "instruction" / "reward" / "wiz_10k_highest_200.json"


def floor(model, samples) -> None:
    for s in samples:
        ids = torch.tensor([s.input_ids])
        with Capture(model, []):
            per_sample_loss(
                model(input_ids=ids, use_cache=False).logits, ids, torch.tensor([s.loss_mask])
            ).sum().backward()


def gradspec_path(model, targets, samples, modules, n_layers, batch_tokens) -> None:
    for batch in token_batches(samples, batch_tokens):
        for f in run_batch(model, targets, batch):
            if f.finite():
                sample_spectra(f, modules, n_layers)


def batch_of_one(model, targets, samples) -> None:
    weights = [t.projection.module.weight for t in targets]
    for w in weights:
        w.requires_grad_(True)
    try:
        for s in samples:
            ids = torch.tensor([s.input_ids])
            logits = model(input_ids=ids).logits[0]
            mask = torch.tensor(s.loss_mask[1:])
            F.cross_entropy(logits[:-1][mask], ids[0, 1:][mask]).backward()
            for w in weights:
                torch.linalg.svd(w.grad, full_matrices=False)
                w.grad = None
    finally:
        for w in weights:
            w.requires_grad_(False)


def wide_layer(t: int = 256, d: int = 3584) -> dict[str, float]:
    """One q-like projection as wide as a 7B model: factored singular values vs a full SVD of G."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, t, d, generator=g)
    delta = torch.randn(1, t, d, generator=g)
    from gradspec.spectra import singular_values

    ours = timed(lambda: singular_values(x, delta))
    full = timed(lambda: torch.linalg.svd(delta[0].T @ x[0], full_matrices=False), repeats=1)
    return {"gradspec (QR core, float64)": ours, "svd of formed G (float32, U and V)": full}


def timed(fn, repeats: int = 2) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=6)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--batch-tokens", type=int, default=default_batch_tokens("cpu"))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "speed.json"))
    args = ap.parse_args()
    loaded = load_model("default", device="cpu")
    model = loaded.model
    targets = find_targets(model, ["q", "k", "v", "o"])
    prompt = PromptConfig("plain", None, args.max_length)
    samples = []
    for r in load_dataset(DATA).items:
        e = encode(r, loaded.tokenizer, prompt) if isinstance(r, Record) else None
        if isinstance(e, Encoded):
            samples.append(e)
        if len(samples) == args.samples:
            break
    n_layers = model.config.num_hidden_layers
    modules = ["q", "k", "v", "o"]
    tokens = sum(s.n_tokens for s in samples)
    rows = {
        "floor (fwd+bwd, frozen)": timed(lambda: floor(model, samples)),
        "gradspec": timed(lambda: gradspec_path(model, targets, samples, modules, n_layers, args.batch_tokens)),
        "batch-of-one (.grad + svd)": timed(lambda: batch_of_one(model, targets, samples), repeats=1),
    }
    print(
        f"{len(samples)} WizardLM samples, {tokens} tokens (max {args.max_length}), q/k/v/o, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(f"{'method':<30}{'s/sample':>10}{'tokens/s':>10}{'vs floor':>10}")
    for name, secs in rows.items():
        per = secs / len(samples)
        print(f"{name:<30}{per:>10.3f}{tokens / secs:>10.0f}{secs / rows['floor (fwd+bwd, frozen)']:>10.2f}")
    speedup = rows["batch-of-one (.grad + svd)"] / rows["gradspec"]
    print(f"gradspec is {speedup:.2f}x faster than batch-of-one")
    wide = wide_layer()
    print("one 3584 x 3584 projection gradient at 256 tokens (singular values only, no model):")
    for name, secs in wide.items():
        print(f"  {name:<40}{secs:>8.3f} s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "case": "default model, WizardLM reward-highest, plain template",
                "samples": len(samples),
                "tokens": tokens,
                "max_length": args.max_length,
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "machine": platform.processor() or platform.machine(),
                "seconds": rows,
                "speedup_vs_batch_of_one": speedup,
                "wide_layer_3584_T256_seconds": wide,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
