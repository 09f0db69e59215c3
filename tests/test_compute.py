"""The whole pipeline on a tiny model folder: the run-folder contract, resume, and numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from gradspec import ComputeConfig, PromptConfig, compute
from gradspec.config.fields import leaf_map
from gradspec.data import load_dataset
from gradspec.errors import ConfigError
from gradspec.model import find_projections, load_model
from gradspec.prompting import encode
from gradspec.spectra.precision import NORM_RTOL

from conftest import save_tiny, write_json
from oracles import oracle_cosine, oracle_gradients, oracle_metrics

RECORDS = [
    {"instruction": "Add two and three.", "input": "", "output": "Two plus three is five."},
    {"instruction": "x" * 200, "input": "", "output": "too long a prompt"},  # skipped at max 64
    {"instruction": "Name a colour.", "input": "", "output": None},  # error
    {"conversations": [{"from": "human", "value": "Hi!"}, {"from": "gpt", "value": "Hello, how can I help?"}]},
    {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4, of course."}]},
    {"instruction": "Say a long thing.", "input": "", "output": "word " * 30},
]


def cfg(data: Path, out: Path, model: Path, **kw) -> ComputeConfig:
    kw.setdefault("prompt", PromptConfig("plain", max_length=64))
    return ComputeConfig.of(data=data, out=out, model=str(model), progress=False, device="cpu", **kw)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_json(tmp_path / "data.json", RECORDS)


def test_run_folder_contract(tmp_path: Path, data: Path, tiny_llama_dir: Path) -> None:
    run = compute(cfg(data, tmp_path / "run", tiny_llama_dir, spectra=True, batch_tokens=128))
    m = json.loads((tmp_path / "run" / "run.json").read_text())
    assert set(m["timing"]) >= {"load_seconds", "compute_seconds"}
    assert m["counts"] == {"ok": 4, "skipped": 1, "error": 1, "total": 6}
    samples = run.df("samples").sort_values("index")
    assert list(samples["index"]) == list(range(6))
    assert list(samples["status"]) == ["ok", "skipped", "error", "ok", "ok", "ok"]
    assert "prompt fills the max length" in samples.iloc[1]["reason"]
    assert "field 'output' is missing or null" in samples.iloc[2]["reason"]
    assert samples.iloc[1][["loss"]].isna().all()
    (error,), (skipped,) = (
        [s for s in run.failure_summary() if s[0] == kind] for kind in ("error", "skipped")
    )  # each reason with its real record, so it can be found
    assert error == ("error", 1, "data.json: record 2: field 'output' is missing or null")
    assert skipped[:2] == ("skipped", 1) and skipped[2].startswith("record 1: prompt fills the max length (")
    stats = run.df("layer_stats")
    assert set(stats.columns) >= {
        "sample_id",
        "layer",
        "module",
        "nuclear_norm",
        "effective_rank",
        "frobenius_norm",
        "spectral_norm",
        "stable_rank",
    }
    assert len(stats) == 4 * 3 * 4  # ok samples x layers x q,k,v,o
    sims = run.df("similarity")
    assert set(sims["kind"]) == {"adjacent", "distant", "same_layer", "probe"}
    assert set(sims[sims.kind == "same_layer"]["module"]) == {"q*o", "k*v"}
    # per ok sample: adjacent 4 modules x 2, distant (two apart) 4 x 1, same layer 2 x 3; probe 4 x 3 for every
    # sample but the probe itself
    assert len(sims) == 4 * (4 * 2 + 4 * 1 + 2 * 3) + 3 * (4 * 3)
    probe_ids = set(sims.sample_id) - set(sims[sims.kind == "probe"].sample_id)
    assert len(probe_ids) == 1
    spectra = run.df("spectra")
    assert len(spectra) == len(stats)
    row = spectra.iloc[0]
    match = stats[(stats.sample_id == row.sample_id) & (stats.layer == row.layer) & (stats.module == row.module)]
    assert sum(row.singular_values) == pytest.approx(float(match.nuclear_norm.iloc[0]), rel=1e-5)


def test_numbers_equal_the_oracle(tmp_path: Path, data: Path, tiny_llama_dir: Path) -> None:
    run = compute(cfg(data, tmp_path / "run", tiny_llama_dir, modules=None))
    loaded = load_model(str(tiny_llama_dir), device="cpu")
    targets = find_projections(loaded.model, None)
    stats = run.df("layer_stats").set_index(["sample_id", "layer", "module"])
    sims = run.df("similarity").set_index(["sample_id", "kind", "module", "layer"])
    checked = 0
    probe = None  # the first record that computes: every sample's gradients are compared with its
    for item in load_dataset(data).items:
        enc = (
            encode(item, loaded.tokenizer, PromptConfig("plain", max_length=64)) if hasattr(item, "response") else None
        )
        if enc is None or not hasattr(enc, "loss_mask"):
            continue
        grads = oracle_gradients(loaded.model, targets, enc)
        is_probe, probe = probe is None, probe or grads
        compared = set(sims.reset_index().query("kind == 'probe'").sample_id)
        assert (enc.sample_id in compared) != is_probe  # the probe is not compared with itself
        for (layer, module), g in grads.items():
            if not is_probe:
                cos = sims.loc[(enc.sample_id, "probe", module, layer), "cosine"]
                assert cos == pytest.approx(oracle_cosine(g, probe[(layer, module)]), abs=1e-4)
            if layer + 2 < loaded.model.config.num_hidden_layers:
                cos = sims.loc[(enc.sample_id, "distant", module, layer), "cosine"]
                assert cos == pytest.approx(oracle_cosine(g, grads[(layer + 2, module)]), abs=1e-4)
        for (layer, module), g in grads.items():
            want = oracle_metrics(g)
            got = stats.loc[(enc.sample_id, layer, module)]
            for name, value in want.items():
                assert got[name] == pytest.approx(value, rel=1e-4), (layer, module, name)
            if layer + 1 < loaded.model.config.num_hidden_layers:
                cos = sims.loc[(enc.sample_id, "adjacent", module, layer), "cosine"]
                assert cos == pytest.approx(oracle_cosine(g, grads[(layer + 1, module)]), abs=1e-4)
        cos = sims.loc[(enc.sample_id, "same_layer", "q*o", 1), "cosine"]
        assert cos == pytest.approx(oracle_cosine(grads[(1, "q")], grads[(1, "o")]), abs=1e-4)
        checked += 1
    assert checked == 4
    assert set(run.df("layer_stats")["module"]) == {"q", "k", "v", "o", "gate", "up", "down"}


def test_resume_adds_nothing_and_redoes_a_lost_part(tmp_path: Path, data: Path, tiny_llama_dir: Path) -> None:
    out = tmp_path / "run"
    first = compute(cfg(data, out, tiny_llama_dir, flush_every=1, batch_tokens=64))
    before = first.df("layer_stats").sort_values(["sample_id", "layer", "module"]).reset_index(drop=True)
    parts = sorted((out / "samples").glob("*.parquet"))
    compute(cfg(data, out, tiny_llama_dir, flush_every=1, batch_tokens=64))
    assert sorted((out / "samples").glob("*.parquet")) == parts  # nothing recomputed
    # Lose the samples part of one computed sample, as a crash before its last rename would.
    lost = next(p for p in parts if pq.read_table(p).column("status").to_pylist() == ["ok"])
    lost.unlink()
    again = compute(cfg(data, out, tiny_llama_dir, flush_every=1, batch_tokens=64))
    after = again.df("layer_stats").sort_values(["sample_id", "layer", "module"]).reset_index(drop=True)
    assert len(again.df("samples")) == 6 and again.df("samples")["sample_id"].is_unique
    assert after[["sample_id", "layer", "module"]].equals(before[["sample_id", "layer", "module"]])
    # The lost sample was recomputed in a batch of its own (other shapes, other padding): equal within
    # the precision contract's bound, not bit for bit.
    assert torch.allclose(
        torch.tensor(after["nuclear_norm"].values), torch.tensor(before["nuclear_norm"].values), rtol=NORM_RTOL
    )


def test_limit_then_more_resumes(tmp_path: Path, data: Path, tiny_llama_dir: Path) -> None:
    out = tmp_path / "run"
    assert len(compute(cfg(data, out, tiny_llama_dir, limit=2)).df("samples")) == 2
    assert len(compute(cfg(data, out, tiny_llama_dir)).df("samples")) == 6


def test_other_options_refused(tmp_path: Path, data: Path, tiny_llama_dir: Path) -> None:
    out = tmp_path / "run"
    compute(cfg(data, out, tiny_llama_dir, limit=1))
    with pytest.raises(ConfigError, match="max_length: run has 64, this command has 32"):
        compute(cfg(data, out, tiny_llama_dir, prompt=PromptConfig("plain", max_length=32)))
    run = compute(cfg(data, out, tiny_llama_dir, prompt=PromptConfig("plain", max_length=32), overwrite=True, limit=1))
    assert run.manifest["config"]["max_length"] == 32


def test_gemma3_compares_q_with_o_transposed(tmp_path: Path, data: Path) -> None:
    model = save_tiny(tmp_path / "g3", "gemma3_text")
    run = compute(cfg(data, tmp_path / "run", model))
    note = run.manifest["similarity"]["same_layer"]["q*o"]
    assert note.startswith("cosine of G_q and G_o transposed: q is 32x16 and o is 16x32")
    assert run.manifest["similarity"]["same_layer"]["k*v"].startswith("cosine of the flattened")
    assert set(run.df("similarity").query("kind == 'same_layer'")["module"]) == {"q*o", "k*v"}


def test_bfloat16_model_keeps_float64_spectra(tmp_path: Path, data: Path, tiny_llama_dir: Path) -> None:
    run = compute(cfg(data, tmp_path / "run", tiny_llama_dir, dtype="bfloat16", spectra=True))
    assert run.manifest["model"]["dtype"] == "bfloat16"
    stats = run.df("layer_stats")
    assert len(stats) == 4 * 3 * 4 and stats[["nuclear_norm", "effective_rank"]].notna().all().all()
    full = compute(cfg(data, tmp_path / "run32", tiny_llama_dir))
    merged = stats.merge(full.df("layer_stats"), on=["sample_id", "layer", "module"], suffixes=("_bf16", "_f32"))
    rel = (merged.nuclear_norm_bf16 - merged.nuclear_norm_f32).abs() / merged.nuclear_norm_f32
    assert rel.median() < 0.05  # bf16 model noise, not a broken path


def test_nan_loss_is_an_error_never_a_number(tmp_path: Path, data: Path) -> None:
    from conftest import byte_tokenizer
    from tiny_models import tiny_model

    model = tiny_model("llama")
    with torch.no_grad():
        model.model.norm.weight.fill_(float("nan"))
    model.save_pretrained(tmp_path / "nan-model")
    byte_tokenizer().save_pretrained(tmp_path / "nan-model")
    run = compute(cfg(data, tmp_path / "run", tmp_path / "nan-model"))
    samples = run.df("samples")
    assert set(samples["status"]) == {"error", "skipped"}
    assert samples[samples.status == "error"]["reason"].str.contains("loss is nan|field 'output'").all()
    assert len(run.df("layer_stats")) == 0 and len(run.df("similarity")) == 0
    assert run.manifest["counts"]["error"] == 5


def test_memory_budget_batch_size_grows_with_memory_and_shrinks_with_the_model() -> None:
    from transformers import LlamaConfig

    from gradspec.capture.budget import bytes_per_token, memory_batch_tokens

    small = LlamaConfig(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, vocab_size=49152)
    big = LlamaConfig(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, vocab_size=152064)
    assert bytes_per_token(big) > 5 * bytes_per_token(small)
    gib = 1 << 30
    assert memory_batch_tokens(80 * gib, small) > memory_batch_tokens(8 * gib, small) >= 256
    assert memory_batch_tokens(80 * gib, big) < memory_batch_tokens(80 * gib, small)
    assert memory_batch_tokens(80 * gib, big) % 256 == 0 and memory_batch_tokens(1, big) == 256
    # 60% of 80 GiB over the estimate for a 7B-wide model: a few thousand tokens per batch.
    assert 2048 <= memory_batch_tokens(80 * gib, big, dtype_bytes=2) <= 32768


def test_device_map_placement_gives_the_same_numbers(tmp_path: Path, data: Path, tiny_llama_dir: Path) -> None:
    # accelerate's placement hooks around every layer (here one layer offloaded to disk and
    # loaded back for each forward, the way a too-large model runs) must not change a number.
    plain = compute(cfg(data, tmp_path / "plain", tiny_llama_dir, modules=None))
    layout = {"model.embed_tokens": "cpu", "model.layers.0": "cpu", "model.layers.1": "disk", "model.layers.2": "cpu"}
    layout |= {"model.norm": "cpu", "model.rotary_emb": "cpu", "lm_head": "cpu"}
    placed = load_model(str(tiny_llama_dir), device="cpu", device_map=layout)
    assert placed.model.model.layers[1].self_attn.q_proj.weight.device.type == "meta"  # really offloaded
    assert placed.describe()["device_map"] == {"cpu": 6, "disk": 1}
    run = compute(cfg(data, tmp_path / "placed", tiny_llama_dir, modules=None), placed)
    key = ["sample_id", "layer", "module"]
    a, b = (r.df("layer_stats").sort_values(key).reset_index(drop=True) for r in (plain, run))
    assert len(a) == 4 * 3 * 7
    for name in ("nuclear_norm", "effective_rank", "frobenius_norm", "spectral_norm"):
        assert b[name].to_numpy() == pytest.approx(a[name].to_numpy(), rel=1e-5)
    skey = ["sample_id", "kind", "module", "layer"]
    ca, cb = (r.df("similarity").sort_values(skey)["cosine"].to_numpy() for r in (plain, run))
    assert cb == pytest.approx(ca, abs=1e-6)
    auto = compute(cfg(data, tmp_path / "auto", tiny_llama_dir, device_map="auto"))
    assert json.loads((tmp_path / "auto" / "run.json").read_text())["options"]["device_map"] == "auto"
    assert auto.manifest["counts"]["ok"] == 4
    with pytest.raises(ConfigError, match="--device-map must be one of"):
        cfg(data, tmp_path / "bad", tiny_llama_dir, device_map="everywhere")


def test_bfloat16_spectra_are_rounded_within_their_bound_and_metrics_stay_exact(
    tmp_path: Path, data: Path, tiny_llama_dir: Path
) -> None:
    exact = compute(cfg(data, tmp_path / "exact", tiny_llama_dir, spectra=True))
    rounded = compute(cfg(data, tmp_path / "bf16", tiny_llama_dir, spectra=True, spectra_precision="bfloat16"))
    key = ["sample_id", "layer", "module"]
    a, b = (r.df("spectra").sort_values(key).reset_index(drop=True) for r in (exact, rounded))
    want = torch.tensor([v for row in a["singular_values"] for v in row])
    got = torch.tensor([v for row in b["singular_values"] for v in row])
    assert len(got) == len(want) > 100
    assert torch.equal(got, got.bfloat16().float())  # every stored value is a bfloat16 value
    assert float(((got - want).abs() / want.clamp_min(1e-30)).max()) <= 2.0**-8  # 8 significant bits
    assert not torch.equal(got, want)  # and they were rounded
    sa, sb = (r.df("layer_stats").sort_values(key)["nuclear_norm"].to_numpy() for r in (exact, rounded))
    assert (sa == sb).all()  # metrics come from the exact values (one batch plan, the same kernels: bit for bit)
    with pytest.raises(ConfigError, match="spectra_precision"):
        compute(cfg(data, tmp_path / "bf16", tiny_llama_dir, spectra=True))
    with pytest.raises(ConfigError, match="--spectra-precision must be one of"):
        cfg(data, tmp_path / "x", tiny_llama_dir, spectra_precision="float8")


def test_a_changed_option_is_refused_before_the_model_loads(
    tmp_path: Path, data: Path, tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    compute(cfg(data, out, tiny_llama_dir, limit=1))
    import gradspec.computation.run as computation

    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr(computation, "load", no_loading)
    with pytest.raises(ConfigError, match="max_length: run has 64, this command has 32"):
        compute(cfg(data, out, tiny_llama_dir, prompt=PromptConfig("plain", max_length=32)))
    m = json.loads((out / "run.json").read_text())
    assert m["kind"] == "gradspec-run" and m["format"] == 2
    assert set(m["config"]) | set(m["options"]) >= set(leaf_map(ComputeConfig)) - {"data", "out"}
