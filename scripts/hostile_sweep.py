"""Replay the hostile cases of the reliability passes as a user would type them, and print which held.

Each case runs the real command line (``python -m gradspec``) in a scratch folder, on small files it
writes itself and, where a model is needed, the default model at 64 tokens. A case holds when the
command ends as it should (one line and exit 2 for a refusal, no traceback, bounded time) and its
output says what it should. The unit tests check each fix; this is the end-to-end replay that the
issue's sweep counts come from.

    .venv/bin/python scripts/hostile_sweep.py            # about 4 minutes on 2 cores
    .venv/bin/python scripts/hostile_sweep.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

LIMIT = 120  # seconds a case may take before it counts as a hang


def gs(*args: str, cwd: Path) -> tuple[int, str, float]:
    """(exit code, stdout + stderr, seconds) of one gradspec command; 124 when it hung."""
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "gradspec", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=LIMIT, stdin=subprocess.DEVNULL)  # fmt: skip
    except subprocess.TimeoutExpired:
        return 124, "hung", time.monotonic() - started
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def refused(code: int, out: str, *words: str) -> bool:
    """Exit 2, one error line, no traceback, every word in it."""
    errors = [line for line in out.splitlines() if line.startswith("gradspec: error:")]
    return code == 2 and len(errors) == 1 and "Traceback" not in out and all(w in errors[0] for w in words)


def ran(code: int, out: str, *words: str) -> bool:
    return code == 0 and "Traceback" not in out and all(w in out for w in words)


def records(n: int = 10) -> list[dict]:
    return [{"instruction": f"Question {i}: name a colour.", "output": "Blue is a colour. " * (1 + i % 3),
             "reward": i * 1.5} for i in range(n)]  # fmt: skip


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) if path.suffix == ".jsonl" else json.dumps(rows))
    return path


MODEL = ["--max-length", "64", "--template", "plain", "--no-progress", "--device", "cpu"]


def cases(d: Path) -> dict[str, Callable[[], bool]]:
    data = write(d / "d.json", records())
    fifo = d / "pipe.yaml"
    os.mkfifo(fifo)
    big = records()
    big[3]["reward"] = int("9" * 401)
    big[4]["reward"] = float("nan")
    write(d / "big.jsonl", big)
    own = records()
    own[0]["sample_id"] = "mine-0"
    write(d / "own.json", own)

    def run_folder() -> Path:
        if not (d / "run" / "run.json").exists():
            gs("compute", str(data), "-o", str(d / "run"), "--limit", "3", *MODEL, cwd=d)
        return d / "run"

    def explore_nan() -> bool:
        write(d / "nan.jsonl", [{**r, "ifd": 0.5, "reward": float("nan")} for r in records(3)])
        gs("compute", str(d / "nan.jsonl"), "-o", str(d / "nanrun"), *MODEL, cwd=d)
        code, out, _ = gs(
            "explore", str(d / "nanrun"), "--scored", str(d / "nan.jsonl"), "-o", str(d / "x.html"), cwd=d
        )
        return ran(code, out) and '"reward": "NaN"' in (d / "x.html").read_text()

    def formula_label() -> bool:
        write(d / "b.json", records(6)[3:])
        gs("compute", str(d / "b.json"), "-o", str(d / "runb"), *MODEL, cwd=d)
        label = "-2+3+cmd|' /C calc'!A0"
        code, out, _ = gs("compare", str(run_folder()), str(d / "runb"), "-o", str(d / "cmp"), "--labels",
                          f"a,{label}", "--n-boot", "20", cwd=d)  # fmt: skip
        return ran(code, out) and f"'{label}" in (d / "cmp" / "summary.csv").read_text()

    def hf_over_run() -> bool:
        code, out, _ = gs("filter", str(data), "--where", "reward > 0", "--format", "hf", "--overwrite", "-o",
                          str(run_folder()), cwd=d)  # fmt: skip
        return refused(code, out, "not a datasets folder") and (run_folder() / "run.json").exists()

    def target_corrected() -> bool:
        target = write(d / "t.json", [{"instruction": "x", "output": ""}])
        args = ["score", str(data), "--metrics", "target_similarity", "--target", str(target), "-o",
                str(d / "ts.jsonl"), "--limit", "3", *MODEL]  # fmt: skip
        first = gs(*args, cwd=d)
        write(target, records(2))
        second = gs(*args, cwd=d)
        return refused(*first[:2], "no record can be measured") and ran(*second[:2])

    def steps_dot() -> bool:
        code, out, _ = gs("compute", str(data), "-o", str(d / "dot"), "--steps", ".", "--limit", "2", *MODEL, cwd=d)
        return ran(code, out, "left no step")

    def steps_catastrophic() -> bool:
        write(d / "aaa.json", [{"instruction": "say a", "output": "a" * 40 + "!"}])
        code, out, secs = gs("compute", str(d / "aaa.json"), "-o", str(d / "aaa"), "--steps", "(a|aa)+$", *MODEL,
                             cwd=d)  # fmt: skip
        return ran(code, out, "1 error") and secs < 60

    def callback_into_run() -> bool:
        script = (
            "from gradspec.integrations import GradspecCallback\nfrom gradspec.model import load_model\n"
            "from gradspec.prompting import PromptConfig\nm = load_model('default', device='cpu')\n"
            f"c = GradspecCallback({str(data)!r}, {str(run_folder())!r}, m.tokenizer, prompt=PromptConfig('plain', "
            "max_length=64))\ntry:\n    c.measure(m.model, 0)\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
        )
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=LIMIT).stdout
        return out.startswith("OutputError") and not (run_folder() / "step-000000").exists()

    def train_on_selection() -> bool:
        gs("select", str(data), "--by", "reward", "--top", "3", "-o", str(d / "sel"), cwd=d)
        code, out, _ = gs("train", str(d / "sel"), "-o", str(d / "tr"), *MODEL[:4], cwd=d)
        return refused(code, out, "gradspec output folder")

    def data_root() -> bool:
        (d / "root").mkdir()
        write(d / "root" / "pool.json", records())
        (d / "e.yaml").write_text(
            "name: rooted\ndata_root: nowhere\nselections: [{name: sel, data: pool.json, by: reward, top: 2}]\n"
            "runs: [{name: high, data: '@sel/highest', template: plain, max_length: 64, limit: 1}]\n"
        )
        code, out, _ = gs("experiment", str(d / "e.yaml"), "--data-root", str(d / "root"), "-o", str(d / "eo"), cwd=d)
        return ran(code, out, "0 failed") and (d / "eo/selections/sel/sel_highest_2.json").is_file()

    def select_without_field() -> bool:
        code, out, _ = gs("filter", str(data), "--where", "nosuchfield > 0", "-o", str(d / "n.jsonl"), cwd=d)
        return refused(code, out, "no record has a field 'nosuchfield'")

    def own_id() -> bool:
        code, out, _ = gs("filter", str(d / "own.json"), "--where", "reward > 0", "-o", str(d / "own.jsonl"), cwd=d)
        first = json.loads((d / "own.jsonl").read_text().splitlines()[0]) if code == 0 else {}
        return ran(code, out, "sample_id of their own") and first.get("sample_id") == "mine-0"

    return {
        "filter --recipe /dev/zero": lambda: refused(*gs("filter", str(data), "--recipe", "/dev/zero", "-o",
                                                         str(d / "f.jsonl"), cwd=d)[:2], "not a regular file"),
        "filter --recipe FIFO": lambda: refused(*gs("filter", str(data), "--recipe", str(fifo), "-o",
                                                    str(d / "f.jsonl"), cwd=d)[:2], "not a regular file"),
        "experiment /dev/zero": lambda: refused(*gs("experiment", "/dev/zero", cwd=d)[:2], "not a regular file"),
        "experiment FIFO": lambda: refused(*gs("experiment", str(fifo), cwd=d)[:2], "not a regular file"),
        "filter --where on a 401-digit field": lambda: ran(*gs("filter", str(d / "big.jsonl"), "--where",
                                                               "reward > 1", "-o", str(d / "f2.jsonl"), cwd=d)[:2]),
        "select --by a 401-digit field": lambda: ran(*gs("select", str(d / "big.jsonl"), "--by", "reward", "--top",
                                                         "2", "-o", str(d / "s2"), cwd=d)[:2], "undefined"),
        "explore a record holding NaN": explore_nan,
        "compare label '-2+3+cmd...' in CSV": formula_label,
        "--where on a field no record has": select_without_field,
        "a record's own sample_id": own_id,
        "--format hf --overwrite -o RUN": hf_over_run,
        "--target /dev/zero": lambda: refused(*gs("score", str(data), "--metrics", "target_similarity", "--target",
                                                 "/dev/zero", "-o", str(d / "t0.jsonl"), *MODEL, cwd=d)[:2],
                                              "not a regular file"),
        "--target FIFO": lambda: refused(*gs("score", str(data), "--metrics", "target_similarity", "--target",
                                            str(fifo), "-o", str(d / "t1.jsonl"), *MODEL, cwd=d)[:2],
                                         "not a regular file"),
        "empty target, then corrected": target_corrected,
        "--steps '.'": steps_dot,
        "--steps '(a|aa)+$'": steps_catastrophic,
        "callback into a run folder": callback_into_run,
        "train on a selection folder": train_on_selection,
        "select --name with U+202E": lambda: refused(*gs("select", str(data), "--by", "reward", "--top", "2",
                                                        "--name", "evil\u202egnp", "-o", str(d / "s3"), cwd=d)[:2],
                                                     "not a plain name"),
        "show RUN names its kind": lambda: ran(*gs("show", str(run_folder()), cwd=d)[:2], ": a run:"),
        "experiment --data-root": data_root,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, case in cases(Path(tmp)).items():
            started = time.monotonic()
            try:
                held = bool(case())
            except Exception as exc:  # noqa: BLE001  (a case that breaks is a case that did not hold)
                held, name = False, f"{name} ({type(exc).__name__}: {exc})"
            results.append({"case": name, "held": held, "seconds": round(time.monotonic() - started, 1)})
            print(f"{'held ' if held else 'FAIL '} {results[-1]['seconds']:6.1f} s  {name}", flush=True)
    print(f"{sum(r['held'] for r in results)} of {len(results)} cases held")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    sys.exit(0 if all(r["held"] for r in results) else 1)


if __name__ == "__main__":
    main()
