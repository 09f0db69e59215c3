"""The GPU check: one command, a few minutes on one GPU, everything a lent device must settle.

    .venv/bin/python benchmarks/gpu_check.py            # on a machine with a CUDA GPU
    .venv/bin/python benchmarks/gpu_check.py --dry-run  # every part at tiny sizes on the CPU (CI runs it)

Parts (each is timed, and one that fails is recorded and the rest goes on):
  1 contract  the default model on CUDA against the CPU on the same real samples: the worst
              deviation of every metric against the precision contract's bounds
  2 eigen     the eigenvalue step at the sizes that matter (n = 576, 1024, 2048, 3584), by way:
              torch eigvalsh float64 batched, looped, through MAGMA, and float32 svdvals of the
              core (with its accuracy against float64); the fastest exact way per size is written
              to the gradspec cache for this device, where eigen_solver=auto reads it
  3 wide      a random 7B-wide model (hidden 3584, MLP 18944, 4 layers), float32 and bfloat16, at
              512 and 2048 tokens: gradspec against its floor (forward and backward alone) and
              against batch-of-one (every .grad, then SVD)
  4 nccl      compute through torchrun with one worker on the nccl backend (gloo on the CPU)
Writes benchmarks/results/gpu.json (gpu_dry_run.json with --dry-run) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch

from gradspec import ComputeConfig, compute
from gradspec.computation.batches import computed_batches
from gradspec.computation.job import plan
from gradspec.distributed import World
from gradspec.model import LoadedModel, find_projections
from gradspec.prompting import Encoded
from gradspec.spectra import spectral_metrics
from gradspec.spectra.singular import smaller_gram
from gradspec.spectra.solvers import SOLVERS, eigenvalues, route_file

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parents[1] / "shared" / "data"
CONTRACT = {"nuclear_norm": 1e-5, "frobenius_norm": 1e-5, "effective_rank": 1e-4, "cosine": 1e-6}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, repeats: int = 2) -> tuple[float, Any]:
    """Best of ``repeats`` wall seconds (the first call also warms up), and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best, out


# -- 1: the precision contract on the device -------------------------------------------------------


def part_contract(dry: bool, device: torch.device) -> dict[str, Any]:
    data = SHARED / "instruction/reward/wiz_10k_highest_200.json"
    if dry or not data.exists():
        data = Path(tempfile.mkdtemp()) / "d.json"
        data.write_text(json.dumps([{"instruction": f"Q{i}?", "output": "an answer " * (3 + i)} for i in range(3)]))
    model = tiny_model_dir() if dry else "default"
    options = dict(template="plain", max_length=64 if dry else 512, limit=3 if dry else 6, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for name, dev in (("cpu", "cpu"), ("device", str(device))):
            runs[name] = compute(ComputeConfig.of(data=data, out=Path(tmp) / name, model=model, device=dev, **options))
        key = ["sample_id", "layer", "module"]
        a, b = (runs[n].df("layer_stats").sort_values(key).reset_index(drop=True) for n in ("cpu", "device"))
        worst = {
            m: float(((a[m] - b[m]).abs() / a[m].abs()).max())
            for m in ("nuclear_norm", "frobenius_norm", "effective_rank")
        }
        skey = ["sample_id", "kind", "module", "layer"]
        ca, cb = (runs[n].df("similarity").sort_values(skey)["cosine"].to_numpy() for n in ("cpu", "device"))
        worst["cosine"] = float(abs(ca - cb).max()) if len(ca) else 0.0
    return {"worst": worst, "bounds": CONTRACT, "within": all(worst[k] <= CONTRACT[k] for k in worst)}


# -- 2: the eigenvalue step ------------------------------------------------------------------------


def svdvals32(core: torch.Tensor) -> torch.Tensor:
    """Squared float32 singular values of the cores, ascending: the candidate outside the contract."""
    return torch.linalg.svdvals(core.float()).double().pow(2).flip(-1)


def part_eigen(dry: bool, device: torch.device) -> dict[str, Any]:
    shapes = [(16, 4), (32, 4)] if dry else [(576, 120), (1024, 112), (2048, 56), (3584, 28)]
    g = torch.Generator(device="cpu").manual_seed(0)
    rows, best = [], {}
    for n, batch in shapes:
        core = torch.randn(batch, n, n - n // 8, generator=g, dtype=torch.float64).to(device)
        gram = smaller_gram(core)
        ways: dict[str, Callable[[], torch.Tensor]] = {s: partial(eigenvalues, gram, s) for s in SOLVERS}
        if device.type != "cuda":
            ways.pop("magma")
        ways["svdvals float32"] = partial(svdvals32, core)
        reference = None
        times: dict[str, float] = {}
        for name, fn in ways.items():
            try:
                seconds, lam = timed(fn, device)
            except RuntimeError as exc:  # a backend missing on this build
                rows.append({"n": n, "batch": batch, "way": name, "error": str(exc).splitlines()[0]})
                continue
            reference = lam if reference is None else reference
            sigma, ref = lam.clamp_min(0).sqrt().flip(-1), reference.clamp_min(0).sqrt().flip(-1)
            got, want = spectral_metrics(sigma)["effective_rank"], spectral_metrics(ref)["effective_rank"]
            row = {"n": n, "batch": batch, "way": name, "seconds": seconds, "per_matrix_ms": 1e3 * seconds / batch}
            rows.append(row | {"effective_rank_rel_error": float(((got - want).abs() / want).max())})
            if name in SOLVERS:
                times[name] = seconds
        if times:
            best[n] = min(times, key=times.get)
    if device.type == "cuda" and best:
        path = route_file(torch.cuda.get_device_name(device))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"device": torch.cuda.get_device_name(device), "eigen": best}, indent=2))
    return {"rows": rows, "fastest": best}


# -- 3: a 7B-wide model end to end ----------------------------------------------------------------


def wide_model(dry: bool, dtype: torch.dtype, device: torch.device) -> LoadedModel:
    from transformers import AutoModelForCausalLM, LlamaConfig

    sizes = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2, vocab_size=512)
    if not dry:
        sizes = dict(hidden_size=3584, intermediate_size=18944, num_attention_heads=28, num_key_value_heads=4,
                     vocab_size=152064)  # fmt: skip
    config = LlamaConfig(num_hidden_layers=4, max_position_embeddings=4096, **sizes)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).to(device, dtype).eval()
    model.requires_grad_(False)
    return LoadedModel(model, None, "wide-random", "random", device)


def samples(tokens: int, n: int, vocab: int) -> list[Encoded]:
    g = torch.Generator().manual_seed(tokens)
    return [Encoded(f"s{i}", i, torch.randint(3, vocab, (tokens,), generator=g).tolist(),
                    [t >= tokens // 4 for t in range(tokens)], tokens // 4, False) for i in range(n)]  # fmt: skip


def floor_pass(model: torch.nn.Module, batch: list[Encoded], device: torch.device) -> None:
    """Forward and backward of each sample alone, weights frozen: what any method must at least do."""
    from gradspec.capture import Capture, collate, forward_losses

    for s in batch:
        ids, attn, mask = collate([s], device)
        with Capture(model, []):
            forward_losses(model, ids, attn, mask).sum().backward()


def gradspec_pass(job: Any, batch: list[Encoded]) -> None:
    for _ in computed_batches(job, batch):
        pass


def batch_of_one_pass(model: torch.nn.Module, batch: list[Encoded], device: torch.device) -> None:
    """The straightforward method: every parameter's .grad, then the SVD of each q/k/v/o gradient."""
    weights = [t.projection.module.weight for t in find_projections(model, ["q", "k", "v", "o"])]
    model.requires_grad_(True)
    try:
        for s in batch:
            ids = torch.tensor([s.input_ids], device=device)
            logits = model(input_ids=ids).logits[0].float()
            mask = torch.tensor(s.loss_mask[1:], device=device)
            torch.nn.functional.cross_entropy(logits[:-1][mask], ids[0, 1:][mask]).backward()
            for w in weights:
                torch.linalg.svd(w.grad.float(), full_matrices=False)
            model.zero_grad(set_to_none=True)
    finally:
        model.requires_grad_(False)


def part_wide(dry: bool, device: torch.device) -> dict[str, Any]:
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        loaded = wide_model(dry, dtype, device)
        options = ComputeConfig.of(data="unused", out="unused", device=str(device), template="plain")
        for tokens in (32, 64) if dry else (512, 2048):
            batch = samples(tokens, 2, loaded.model.config.vocab_size)
            job = plan(options, loaded, World())
            ways = {
                "floor": partial(floor_pass, loaded.model, batch, device),
                "gradspec": partial(gradspec_pass, job, batch),
                "batch_of_one": partial(batch_of_one_pass, loaded.model, batch, device),
            }
            times = {name: timed(fn, device)[0] / len(batch) for name, fn in ways.items()}
            rows.append({"dtype": str(dtype).removeprefix("torch."), "tokens": tokens, "seconds_per_sample": times,
                         "vs_batch_of_one": times["batch_of_one"] / times["gradspec"],
                         "floor_throughput_share": times["floor"] / times["gradspec"]})  # fmt: skip
        del loaded
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return {"rows": rows}


# -- 4: torchrun with one worker --------------------------------------------------------------------


def part_nccl(dry: bool, device: torch.device) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "d.json"
        data.write_text(json.dumps([{"instruction": f"Q{i}?", "output": "yes " * (2 + i)} for i in range(4)]))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=1", "-m", "gradspec",
               "compute", str(data), "--out", str(Path(tmp) / "run"), "--model", tiny_model_dir(), "--template",
               "plain", "--max-length", "64", "--no-progress", "--device", "auto"]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        manifest = json.loads((Path(tmp) / "run" / "run.json").read_text()) if done.returncode == 0 else {}
    backend = "nccl" if device.type == "cuda" else "gloo"
    return {"backend": backend, "returncode": done.returncode, "seconds": time.perf_counter() - started,
            "counts": manifest.get("counts"), "stderr_tail": done.stderr[-600:] if done.returncode else ""}  # fmt: skip


_TINY: dict[str, str] = {}


def tiny_model_dir() -> str:
    """A tiny random Llama with a tokenizer (from the default model), saved once for parts 1 and 4."""
    if "path" not in _TINY:
        from transformers import AutoModelForCausalLM, LlamaConfig

        from gradspec.config.model import ModelConfig
        from gradspec.model.loading import load_tokenizer

        tok = load_tokenizer(ModelConfig())
        folder = Path(tempfile.mkdtemp(prefix="gradspec-gpu-check-"))
        torch.manual_seed(0)
        config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                             num_key_value_heads=2, vocab_size=len(tok), max_position_embeddings=256)  # fmt: skip
        AutoModelForCausalLM.from_config(config).save_pretrained(folder, safe_serialization=True)
        tok.save_pretrained(folder)
        _TINY["path"] = str(folder)
    return _TINY["path"]


PARTS = {"contract": part_contract, "eigen": part_eigen, "wide": part_wide, "nccl": part_nccl}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="every part at tiny sizes on the CPU")
    ap.add_argument("--parts", default=",".join(PARTS), help="comma-separated of " + ", ".join(PARTS))
    ap.add_argument("--out", default=None, help="results file [default: benchmarks/results/gpu.json]")
    args = ap.parse_args()
    dry = args.dry_run
    if not dry and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; use --dry-run to rehearse on the CPU", file=sys.stderr)
        return 2
    device = torch.device("cpu" if dry else "cuda")
    out = Path(args.out or ROOT / "results" / ("gpu_dry_run.json" if dry else "gpu.json"))
    result: dict[str, Any] = {
        "dry_run": dry, "torch": torch.__version__, "machine": platform.machine(),
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
    }  # fmt: skip
    started = time.perf_counter()
    for name in args.parts.split(","):
        t0 = time.perf_counter()
        try:
            result[name] = PARTS[name](dry, device)
        except Exception as exc:  # noqa: BLE001  (one part that fails must not cost the others)
            result[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]}
        result[name]["part_seconds"] = round(time.perf_counter() - t0, 1)
        print(f"{name:>9}: {result[name]['part_seconds']:7.1f} s  " + summary(name, result[name]), flush=True)
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {out} ({result['total_seconds']} s)")
    return 1 if any("error" in v for v in result.values() if isinstance(v, dict)) else 0


def summary(name: str, part: dict[str, Any]) -> str:
    if "error" in part:
        return "error: " + part["error"][:200]
    if name == "contract":
        return (
            f"within contract: {part['within']} (worst {', '.join(f'{k} {v:.1e}' for k, v in part['worst'].items())})"
        )
    if name == "eigen":
        return "fastest exact way per size: " + ", ".join(f"{n}: {w}" for n, w in part["fastest"].items())
    if name == "wide":
        return "; ".join(f"{r['dtype']} {r['tokens']} tok: {r['vs_batch_of_one']:.1f}x batch-of-one, "
                         f"{r['floor_throughput_share']:.0%} of floor" for r in part["rows"])  # fmt: skip
    return f"{part['backend']}: exit {part['returncode']}, counts {part['counts']}"


if __name__ == "__main__":
    sys.exit(main())
