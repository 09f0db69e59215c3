"""How large the straightforward method's own float32 round-off is, next to gradspec's distance from it.

The precision contract (README) promises gradspec equals autograd's float32 ``.grad`` + SVD within
that method's own round-off. This measures both sides on the real-data cases of
``tests/test_real_model.py`` (default model, first 6 records each):
  reference error  float32 ``.grad`` against the same gradients of a float64 copy of the model
  gradspec error   gradspec's run against the float32 ``.grad`` (what the tests bound)
as the worst relative error of nuclear norm, effective rank and Frobenius norm and the worst
absolute error of a cosine, over 30 layers x q/k/v/o. Prints a table and writes
``benchmarks/results/roundoff.json``. Needs ../shared/data and the default model (~3 min).

    .venv/bin/python benchmarks/roundoff.py
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from gradspec import ComputeConfig, compute  # noqa: E402
from gradspec.data import Record, load_dataset  # noqa: E402
from gradspec.model import find_projections, load_model  # noqa: E402
from gradspec.prompting import Encoded, encode  # noqa: E402
from test_real_model import CASES, deviations  # noqa: E402

from oracles import oracle_cosine, oracle_gradients, oracle_metrics  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
METRICS = ("nuclear_norm", "effective_rank", "frobenius_norm")


def reference_error(loaded, wide, records, prompt) -> dict[str, float]:
    """Worst error of the float32 reference against the float64 model's gradients."""
    narrow_targets, wide_targets = (find_projections(m, ["q", "k", "v", "o"]) for m in (loaded.model, wide))
    n_layers = loaded.model.config.num_hidden_layers
    worst = dict.fromkeys((*METRICS, "cosine"), 0.0)
    for rec in records:
        enc = encode(rec, loaded.tokenizer, prompt)
        if not isinstance(enc, Encoded):
            continue
        g32, g64 = oracle_gradients(loaded.model, narrow_targets, enc), oracle_gradients(wide, wide_targets, enc)
        for key, g in g32.items():
            got, want = oracle_metrics(g), oracle_metrics(g64[key])
            for name in METRICS:
                worst[name] = max(worst[name], abs(got[name] - want[name]) / abs(want[name]))
        pairs = [((i, m), (i + 1, m)) for i in range(n_layers - 1) for m in "qkvo"]
        pairs += [((i, a), (i, b)) for i in range(n_layers) for a, b in (("q", "o"), ("k", "v"))]
        for a, b in pairs:
            err = abs(oracle_cosine(g32[a], g32[b]) - oracle_cosine(g64[a], g64[b]))
            worst["cosine"] = max(worst["cosine"], err)
    return worst


KERNEL_VARIABLES = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
    "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR", "ATEN_CPU_CAPABILITY",
)  # fmt: skip


def environment() -> dict[str, object]:
    """What picks this process's kernels: the variables above, torch's threads and vector unit."""
    import os

    import torch

    return {
        "variables": {k: os.environ[k] for k in KERNEL_VARIABLES if k in os.environ},
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def tiny_deviations() -> dict[str, dict[str, float]]:
    """Per tiny architecture (float64 weights, Hugging Face's float32 islands), the worst distance of
    gradspec from the oracle (padded batches and response windows, as ``tests/test_exactness.py``
    checks them) and of a batch from batches of one."""
    from dataclasses import replace

    from gradspec.capture import run_batch
    from gradspec.data import Message
    from gradspec.prompting import PromptConfig
    from gradspec.spectra import METRICS as ALL_METRICS
    from gradspec.spectra import sample_spectra

    from conftest import byte_tokenizer
    from helpers import deviation, factor_differences, oracle_differences, random_samples
    from tiny_models import CONFIGS, tiny_model

    out: dict[str, dict[str, float]] = {}
    for arch in sorted(CONFIGS):
        worst = dict.fromkeys((*ALL_METRICS, "cosine", "batch_vs_one"), 0.0)
        model = tiny_model(arch, seed=3)
        targets = find_projections(model, None)
        modules = list(dict.fromkeys(t.name for t in targets))
        layers = model.config.num_hidden_layers

        def measure(spectra, grads, worst: dict[str, float] = worst) -> None:  # noqa: ANN001
            for _, metric, ours, want in oracle_differences(spectra, grads):
                worst[metric] = max(worst[metric], deviation(metric, ours, want))

        samples = random_samples([9, 31, 18, 31, 5, 40, 13], seed=7)
        for sample, many in zip(samples, run_batch(model, targets, samples)):
            (one,) = run_batch(model, targets, [sample])
            worst["batch_vs_one"] = max(worst["batch_vs_one"], *factor_differences(many, one).values())
            measure(sample_spectra(many, modules, layers), oracle_gradients(model, targets, sample))
        record = Record(0, "w", (Message("user", "Count for me please."),), "one two three four five six seven")
        whole = encode(record, byte_tokenizer(), PromptConfig("plain"))
        for k in (1, 6, 17):
            (f,) = run_batch(
                model, targets, [encode(record, byte_tokenizer(), PromptConfig("plain", response_tokens=k))]
            )
            mask = [m and t < whole.n_prompt_tokens + k for t, m in enumerate(whole.loss_mask)]
            measure(
                sample_spectra(f, modules, layers), oracle_gradients(model, targets, replace(whole, loss_mask=mask))
            )
        out[arch] = worst
    return out


def real_deviations() -> list[dict[str, object]]:
    loaded = load_model("default", device="cpu")
    wide = copy.deepcopy(loaded.model).double()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in sorted(CASES):
            rel, prompt = CASES[case]
            path = DATA / rel
            records = [r for r in load_dataset(path, limit=6).items if isinstance(r, Record)]
            config = ComputeConfig.of(data=path, out=Path(tmp) / case, prompt=prompt, limit=6, progress=False)
            run = compute(config, loaded)
            ours = {k: float(v) for k, v in deviations(run, loaded, records, prompt).items()}
            row: dict[str, object] = {"case": case, "gradspec_vs_reference": ours}
            if prompt.response_tokens is not None:
                whole = deviations(run, loaded, records, prompt, whole_text=True)
                row["gradspec_vs_whole_text_reference"] = {k: float(v) for k, v in whole.items()}
            row["reference_vs_float64"] = reference_error(loaded, wide, records, prompt)
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="as-is", help="name of this kernel configuration in the results file")
    parser.add_argument("--part", choices=("real", "tiny", "both"), default="both")
    args = parser.parse_args()
    out = ROOT / "benchmarks" / "results" / "roundoff.json"
    results = json.loads(out.read_text()) if out.exists() else {}
    runs = results.get("runs", {})
    entry = dict(runs.get(args.label, {}), environment=environment())
    if args.part in ("tiny", "both"):
        entry["tiny"] = tiny_deviations()
        names = list(next(iter(entry["tiny"].values())))
        print(f"{'architecture':<12} " + " ".join(f"{k:>15}" for k in names))
        for arch, worst in entry["tiny"].items():
            print(f"{arch:<12} " + " ".join(f"{v:>15.2e}" for v in worst.values()))
    if args.part in ("real", "both") and DATA.is_dir():
        entry["real"] = real_deviations()
        print(f"{'case':<20} {'quantity':<16} {'reference vs float64':>21} {'gradspec vs reference':>22}")
        for row in entry["real"]:
            for name in (*METRICS, "cosine"):
                ref, ours = row["reference_vs_float64"][name], row["gradspec_vs_reference"][name]
                print(f"{row['case']:<20} {name:<16} {ref:>21.2e} {ours:>22.2e}")
    runs[args.label] = entry
    out.write_text(json.dumps({"command": "benchmarks/roundoff.py --label L", "runs": runs}, indent=2) + "\n")
    print(f"wrote {out} ({args.label}: {entry['environment']})")


if __name__ == "__main__":
    main()
