"""What exact targeted selection (``score --metrics target_similarity``) costs, next to a plain run.

On natural-pool answers (the default model, q/k/v/o, CPU), per record:
  gradient       forward and backward of a token batch, the per-sample factors (``run_batch``)
  sample level   that plus each sample's spectra and cosines, what ``compute`` does per record
  target         that gradient plus the cosine with a target's mean gradient from the factors
                 (sum((Delta Gbar) * X) per projection, the factored norm): what target_similarity
                 does per record once the target's mean gradient is formed
  target mean    forming the mean gradient (one Delta^T X per target record and projection)
The methods run interleaved, round after round, so a machine shared with other work slows them
alike and the ratios hold. Prints a table and writes ``benchmarks/results/target.json``.

    .venv/bin/python benchmarks/target.py [--records 8] [--max-length 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

from gradspec import ComputeConfig
from gradspec.capture import run_batch, token_batches
from gradspec.computation.batches import computed_batches
from gradspec.computation.job import plan
from gradspec.data.records import Message, Record
from gradspec.distributed import World
from gradspec.model import LoadedModel, find_projections, load_model
from gradspec.prompting import Encoded, PromptConfig, encode
from gradspec.spectra.target import TargetGradient, target_cosines
from speed import SHARED, machine

POOL = SHARED / "natural/alpaca_eval_outputs_600.json"
MODULES = ["q", "k", "v", "o"]


def answers(loaded: LoadedModel, max_length: int, n: int, reference: bool) -> list[Encoded]:
    """The first ``n`` answers (the reference model's, or the others') that fill ``max_length``."""
    prompt = PromptConfig("chat", None, max_length)
    out = []
    for i, r in enumerate(json.loads(POOL.read_text())):
        if (r["generator"] == "gpt4_1106_preview") != reference:
            continue
        e = encode(Record(i, f"r{i}", (Message("user", r["instruction"]),), r["output"]), loaded.tokenizer, prompt)
        if isinstance(e, Encoded) and e.n_tokens == max_length:
            out.append(e)
        if len(out) == n:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "target.json"))
    args = ap.parse_args()
    loaded = load_model("default", device="cpu")
    model = loaded.model
    targets = find_projections(model, MODULES)
    n_layers = int(model.config.num_hidden_layers)
    records = answers(loaded, args.max_length, args.records, reference=False)
    aims = answers(loaded, args.max_length, args.records, reference=True)
    batch_tokens = 512  # the CPU default

    def gradient() -> None:
        for batch in token_batches(records, batch_tokens):
            run_batch(model, targets, batch)

    config = ComputeConfig.of(data="unused", out="unused", device="cpu", template="chat", max_length=args.max_length,
                              modules=MODULES, batch_tokens=batch_tokens)  # fmt: skip
    job = plan(config, loaded, World())

    def sample_level() -> None:
        for _ in computed_batches(job, records):
            pass

    def mean_gradient() -> dict:
        mean = TargetGradient()
        for batch in token_batches(aims, batch_tokens):
            for f in run_batch(model, targets, batch):
                mean.add(f)
        return mean.mean()

    gbar = mean_gradient()
    norms = {k: float(g.norm()) for k, g in gbar.items()}

    def target() -> None:
        for batch in token_batches(records, batch_tokens):
            for f in run_batch(model, targets, batch):
                target_cosines(f, gbar, norms, n_layers)

    methods: dict[str, Callable[[], object]] = {
        "gradient": gradient, "sample_level": sample_level, "target": target, "target_mean": mean_gradient,
    }  # fmt: skip
    best = {name: float("inf") for name in methods}
    for _ in range(args.rounds):  # interleaved: whatever else the machine does slows every method alike
        for name, fn in methods.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    per_record = {name: seconds / args.records for name, seconds in best.items()}
    result = {
        **machine(),
        "case": f"{args.records} natural-pool answers and {len(aims)} reference answers, {args.max_length} tokens, "
        f"chat template, q/k/v/o",
        "seconds_per_record": per_record,
        "target_over_gradient": per_record["target"] / per_record["gradient"],
        "target_over_sample_level": per_record["target"] / per_record["sample_level"],
        "target_mean_over_gradient": per_record["target_mean"] / per_record["gradient"],
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {result['case']}")
    print(f"{'':<14}{'s/record':>10}")
    for name, seconds in per_record.items():
        print(f"{name:<14}{seconds:>10.3f}")
    print(f"target similarity costs {result['target_over_gradient']:.2f}x a gradient pass and "
          f"{result['target_over_sample_level']:.2f}x a sample-level run per record")  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
