"""Per-sample time, peak memory and storage of gradspec against the batch-of-one method and the floor.

Methods, on the same real samples and the default model (q, k, v, o):
  floor        one forward and backward pass per sample with frozen weights, nothing else (the
               same forward as gradspec's: logits only from the first predicting position)
  gradspec     the library's own computation (``computation.batches.computed_batches``: hooks, exact
               spectra and cosines, table rows), as ``gradspec compute`` runs it, minus file writes
  batch-of-one the paper's method: every parameter's ``.grad`` (the model as loaded for
               training), then ``torch.linalg.svd`` (with U, V) of each q/k/v/o gradient
Cases:
  a  WizardLM (reward-highest), 512 tokens
  b  one random layer as wide as a 7B model (hidden 3584, MLP 18944) at 256 tokens
  c  s1.1 long reasoning samples (R1 responses), 2048 tokens
Storage (with case a, or alone as case s): bytes per sample of a run folder (with
``--spectra``: every singular value, lossless and bfloat16-rounded) against JSON lines holding
every singular value, as the paper's code writes them.
Prints tables and writes ``benchmarks/results/speed.json``.

    .venv/bin/python benchmarks/speed.py [--cases a,b,c] [--samples 6] [--long-samples 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from gradspec import ComputeConfig, compute
from gradspec.capture import Capture, collate, forward_losses
from gradspec.computation.batches import computed_batches
from gradspec.computation.job import Job, plan
from gradspec.data import Record, load_dataset
from gradspec.distributed import World
from gradspec.model import LoadedModel, find_projections, load_model
from gradspec.prompting import Encoded, PromptConfig, encode
from gradspec.spectra import singular_values

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CASES = {
    "a": ("WizardLM reward-highest, 512 tokens", SHARED / "instruction/reward/wiz_10k_highest_200.json", 512),
    "c": ("s1.1 R1 reasoning, 2048 tokens", SHARED / "reasoning/s1_R1.json", 2048),
}
MODULES = ["q", "k", "v", "o"]


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every 5 ms from /proc."""

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    @property
    def mib(self) -> float:
        return (self.peak - self.base) / 2**20


def floor(model, samples) -> None:
    for s in samples:
        ids, attn, mask = collate([s], torch.device("cpu"))
        with Capture(model, []):
            forward_losses(model, ids, attn, mask).sum().backward()


def gradspec_path(job: Job, samples: list[Encoded]) -> None:
    for _ in computed_batches(job, samples):
        pass


def job_of(loaded: LoadedModel, max_length: int, checkpointing: bool = False) -> Job:
    """What ``compute`` resolves for these options (the default CPU batch size, q/k/v/o)."""
    options = dict(template="plain", max_length=max_length, modules=MODULES, checkpointing=checkpointing)
    return plan(ComputeConfig.of(data="unused", out="unused", device="cpu", **options), loaded, World())


def batch_of_one(model, targets, samples) -> None:
    weights = [t.projection.module.weight for t in targets]
    model.requires_grad_(True)
    try:
        for s in samples:
            ids = torch.tensor([s.input_ids])
            logits = model(input_ids=ids).logits[0]
            mask = torch.tensor(s.loss_mask[1:])
            F.cross_entropy(logits[:-1][mask], ids[0, 1:][mask]).backward()
            for w in weights:
                torch.linalg.svd(w.grad, full_matrices=False)
            model.zero_grad(set_to_none=True)
    finally:
        model.requires_grad_(False)


def machine() -> dict[str, object]:
    """What every results file says about where it was measured."""
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def measure(fn: Callable[[], None], repeats: int) -> tuple[float, float]:
    """(best seconds over ``repeats``, peak extra memory in MiB of the first).

    The memory is only right for the first method a process runs (freed memory is reused, not
    returned), so ``model_case`` takes it from a fresh process per method (``--peak``).
    """
    best, mem = float("inf"), 0.0
    for i in range(repeats):
        with PeakRSS() as peak:
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        if i == 0:
            mem = peak.mib
    return best, mem


def methods(loaded: LoadedModel, samples: list[Encoded]) -> dict[str, Callable[[], None]]:
    model = loaded.model
    targets = find_projections(model, MODULES)
    n = samples[0].n_tokens if samples else 512
    plain, checkpointed = job_of(loaded, n), job_of(loaded, n, checkpointing=True)
    return {
        "floor": lambda: floor(model, samples),
        "gradspec": lambda: gradspec_path(plain, samples),
        "batch_of_one": lambda: batch_of_one(model, targets, samples),
        "gradspec_checkpointing": lambda: gradspec_path(checkpointed, samples),
    }


def peak_in_fresh_process(key: str, method: str, n: int) -> float:
    """Peak extra resident memory (MiB) of one method on ``n`` samples, in a new process."""
    out = subprocess.run(
        [sys.executable, __file__, "--peak", f"{key}:{method}:{n}"], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def real_samples(loaded: LoadedModel, path: Path, max_length: int, n: int) -> list[Encoded]:
    prompt = PromptConfig("plain", None, max_length)
    out = []
    for r in load_dataset(path).items:
        e = encode(r, loaded.tokenizer, prompt) if isinstance(r, Record) else None
        if isinstance(e, Encoded) and e.n_tokens == max_length:  # full-length samples only
            out.append(e)
        if len(out) == n:
            break
    return out


def storage(loaded: LoadedModel, path: Path, max_length: int, n: int) -> dict[str, float]:
    """Bytes per sample: run folder without spectra, with every singular value (lossless, and
    rounded to bfloat16 precision), and JSON lines holding every singular value."""
    variants: dict[str, dict[str, object]] = {
        "run_folder": {"spectra": False},
        "run_folder_with_spectra": {"spectra": True},
        "run_folder_with_spectra_bfloat16": {"spectra": True, "spectra_precision": "bfloat16"},
    }
    sizes: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key, options in variants.items():
            out = Path(tmp) / key
            prompt = PromptConfig("plain", None, max_length)
            run = compute(
                ComputeConfig.of(data=path, out=out, prompt=prompt, limit=n, progress=False, **options), loaded
            )
            n_ok = run.manifest["counts"]["ok"]
            sizes[key] = sum(f.stat().st_size for f in out.rglob("*.parquet")) / max(n_ok, 1)
            if key == "run_folder_with_spectra":
                rows = run.df("spectra")
    lines = []
    for sid, group in rows.groupby("sample_id"):
        record = {"sample_id": sid}
        for r in group.itertuples():
            record[f"layer{r.layer}.{r.module}"] = [float(v) for v in r.singular_values]
        lines.append(json.dumps(record))
    json_bytes = sum(len(line) + 1 for line in lines) / max(len(lines), 1)
    return {
        **{f"{k}_bytes_per_sample": v for k, v in sizes.items()},
        "singular_values_per_sample": len(rows) and sum(len(v) for v in rows["singular_values"]) / len(lines),
        "json_lines_all_singular_values_bytes_per_sample": json_bytes,
        "ratio_with_spectra_to_json_lines": sizes["run_folder_with_spectra"] / json_bytes,
        "ratio_with_spectra_bfloat16_to_json_lines": sizes["run_folder_with_spectra_bfloat16"] / json_bytes,
    }


def model_case(loaded: LoadedModel, key: str, n: int, rounds: int = 2) -> dict[str, object]:
    label, path, max_length = CASES[key]
    samples = real_samples(loaded, path, max_length, n)
    run = methods(loaded, samples)
    names = ["floor", "gradspec", "batch_of_one"] + (["gradspec_checkpointing"] if key == "c" else [])
    # Long samples (c) also show what activation checkpointing saves in memory and costs in time.
    # Rounds interleave the methods, and each keeps its best round: this shared machine's speed
    # drifts by 10-20% over minutes, which would otherwise land on whichever method ran then.
    best = dict.fromkeys(names, float("inf"))
    for _ in range(rounds):
        for name in names:
            best[name] = min(best[name], measure(run[name], 1)[0])
    results = {name: (secs, peak_in_fresh_process(key, name, 1)) for name, secs in best.items()}
    per = {k: v[0] / len(samples) for k, v in results.items()}
    out = {
        "case": label,
        "samples": len(samples),
        "rounds": rounds,
        "tokens_per_sample": max_length,
        "seconds_per_sample": per,
        "peak_extra_mib_one_sample_fresh_process": {k: v[1] for k, v in results.items()},
        "gradspec_speedup_vs_batch_of_one": per["batch_of_one"] / per["gradspec"],
        "gradspec_vs_floor": per["gradspec"] / per["floor"],
    }
    print(f"\n({key}) {label}: {len(samples)} samples")
    print(f"{'method':<24}{'s/sample':>10}{'vs floor':>10}{'peak MiB':>10}")
    for name, secs in per.items():
        print(f"{name:<24}{secs:>10.2f}{secs / per['floor']:>10.2f}{results[name][1]:>10.0f}")
    print(f"gradspec: {out['gradspec_speedup_vs_batch_of_one']:.2f}x faster than batch-of-one")
    return out


def wide_layer(t: int = 256, d: int = 3584, d_mlp: int = 18944) -> dict[str, object]:
    """(b) q-like (3584 x 3584) and down-like (3584 x 18944) gradients at 256 tokens."""
    g = torch.Generator().manual_seed(0)
    out: dict[str, object] = {"case": f"random layer, hidden {d}, MLP {d_mlp}, {t} tokens", "seconds": {}}
    for name, d_in, d_out in (("q 3584x3584", d, d), ("down 3584x18944", d_mlp, d)):
        x = torch.randn(1, t, d_in, generator=g)
        delta = torch.randn(1, t, d_out, generator=g)
        ours = measure(lambda x=x, delta=delta: singular_values(x, delta), 2)
        full = measure(lambda x=x, delta=delta: torch.linalg.svd(delta[0].T @ x[0], full_matrices=False), 1)
        out["seconds"][name] = {"gradspec": ours[0], "batch_of_one_svd": full[0], "speedup": full[0] / ours[0]}
        out["seconds"][name]["peak_extra_mib"] = {"gradspec": ours[1], "batch_of_one_svd": full[1]}
    print(f"\n(b) {out['case']} (singular values of one gradient)")
    for name, r in out["seconds"].items():
        print(f"  {name:<18} gradspec {r['gradspec']:.3f} s, svd of formed G {r['batch_of_one_svd']:.2f} s: "
              f"{r['speedup']:.0f}x")  # fmt: skip
    return out


def peak_main(spec: str) -> None:
    """``--peak KEY:METHOD:N``: run one method once in this fresh process and print its peak MiB."""
    key, method, n = spec.split(":")
    loaded = load_model("default", device="cpu")
    samples = real_samples(loaded, CASES[key][1], CASES[key][2], int(n))
    fn = methods(loaded, samples)[method]
    print(measure(fn, 1)[1])


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--peak":
        peak_main(sys.argv[2])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="a,b,c", help="a, b, c, and s (storage alone; a measures it too)")
    ap.add_argument("--samples", type=int, default=6, help="samples of case a")
    ap.add_argument("--long-samples", type=int, default=2, help="samples of case c")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each method keeps its best")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "speed.json"))
    args = ap.parse_args()
    cases = args.cases.split(",")
    out = Path(args.out)
    # Cases not run now keep their last results in the file.
    result: dict[str, object] = json.loads(out.read_text()) if out.exists() else {}
    result |= machine()
    loaded = load_model("default", device="cpu") if {"a", "c", "s"} & set(cases) else None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, q/k/v/o, default model")
    if "a" in cases:
        result["a"] = model_case(loaded, "a", args.samples, args.rounds)
    if "a" in cases or "s" in cases:
        result["storage"] = storage(loaded, CASES["a"][1], CASES["a"][2], args.samples)
        s = result["storage"]
        print(f"storage per sample: run folder {s['run_folder_bytes_per_sample'] / 1024:.0f} KiB, with every "
              f"singular value {s['run_folder_with_spectra_bytes_per_sample'] / 1024:.0f} KiB (bfloat16-rounded "
              f"{s['run_folder_with_spectra_bfloat16_bytes_per_sample'] / 1024:.0f} KiB); JSON lines "
              f"{s['json_lines_all_singular_values_bytes_per_sample'] / 1024:.0f} KiB (ratios "
              f"{s['ratio_with_spectra_to_json_lines']:.3f}, "
              f"{s['ratio_with_spectra_bfloat16_to_json_lines']:.3f})")  # fmt: skip
    if "b" in cases:
        result["b"] = wide_layer()
    if "c" in cases:
        result["c"] = model_case(loaded, "c", args.long_samples, args.rounds)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
