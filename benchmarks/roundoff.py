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

import copy
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from gradspec import ComputeConfig, compute  # noqa: E402
from gradspec.data import Record, load_dataset  # noqa: E402
from gradspec.model import find_targets, load_model  # noqa: E402
from gradspec.prompting import Encoded, encode  # noqa: E402
from test_real_model import CASES, deviations  # noqa: E402

from oracles import oracle_cosine, oracle_gradients, oracle_metrics  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
METRICS = ("nuclear_norm", "effective_rank", "frobenius_norm")


def reference_error(loaded, wide, records, prompt) -> dict[str, float]:
    """Worst error of the float32 reference against the float64 model's gradients."""
    narrow_targets, wide_targets = (find_targets(m, ["q", "k", "v", "o"]) for m in (loaded.model, wide))
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


def main() -> None:
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
            ref = reference_error(loaded, wide, records, prompt)
            rows.append({"case": case, "reference_vs_float64": ref, "gradspec_vs_reference": ours})
    print(f"{'case':<20} {'quantity':<16} {'reference vs float64':>21} {'gradspec vs reference':>22}")
    for row in rows:
        for name in (*METRICS, "cosine"):
            ref, ours = row["reference_vs_float64"][name], row["gradspec_vs_reference"][name]
            print(f"{row['case']:<20} {name:<16} {ref:>21.2e} {ours:>22.2e}")
    out = ROOT / "benchmarks" / "results" / "roundoff.json"
    out.write_text(json.dumps({"command": "benchmarks/roundoff.py", "cases": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
