"""Every supported architecture against autograd .grad + svdvals, and batch invariance."""

from __future__ import annotations

import pytest
import torch

from gradspec.capture import collate, forward_losses, per_sample_loss, run_batch
from gradspec.model import find_projections
from gradspec.model.adapters.registry import decoder_layers
from gradspec.spectra import sample_spectra
from gradspec.spectra.precision import BOUNDS, NORM_RTOL

from helpers import compare_to_oracle, factors_close, random_samples
from oracles import oracle_gradients, oracle_loss
from tiny_models import tiny_model

# The tiny models run in float64, but Hugging Face keeps float32 islands (RMSNorm and rotary
# embeddings cast to float32), where a 1e-16 difference between the padded and the unpadded path
# (or another CPU's kernels) can flip a float32 rounding. So the bounds are the precision contract's
# (``gradspec.spectra.precision``), the same as on real models; what they measure under several
# kernel configurations is in benchmarks/results/roundoff.json. A real mistake is off by far more
# (test_a_one_token_mistake_is_far_outside_the_bounds).
TOL = NORM_RTOL  # gradients G and losses, relative


def modules_of(targets):
    return list(dict.fromkeys(t.name for t in targets))


def test_padded_batch_matches_oracle(arch: str) -> None:
    model = tiny_model(arch)
    targets = find_projections(model, None)
    samples = random_samples([13, 40, 6, 27])
    factors = run_batch(model, targets, samples)
    failures = []
    for sample, f in zip(samples, factors):
        spectra = sample_spectra(f, modules_of(targets), model.config.num_hidden_layers)
        grads = oracle_gradients(model, targets, sample)
        assert len(grads) == len(targets)
        failures += [f"{sample.sample_id} {line}" for line in compare_to_oracle(spectra, grads, BOUNDS)]
        want = oracle_loss(model, sample)
        if abs(f.loss - want) > TOL * abs(want):
            failures.append(f"{sample.sample_id} loss: ours {f.loss:.10g} oracle {want:.10g}")
    assert not failures, "\n".join(failures)


def test_batch_of_one_equals_batch_of_many(arch: str) -> None:
    model = tiny_model(arch, seed=3)
    targets = find_projections(model, None)
    samples = random_samples([9, 31, 18, 31, 5], seed=7)
    together = run_batch(model, targets, samples)
    reversed_order = run_batch(model, targets, samples[::-1])[::-1]
    for sample, many, rev in zip(samples, together, reversed_order):
        (one,) = run_batch(model, targets, [sample])
        assert one.n_positions == many.n_positions == rev.n_positions
        assert abs(one.loss - many.loss) <= TOL * abs(one.loss)
        assert not factors_close(many, one, TOL), factors_close(many, one, TOL)
        assert not factors_close(rev, one, TOL)


def test_checkpointing_gives_the_same_factors(arch: str) -> None:
    """Decoder layers recomputed during backward: the same losses and gradients, recorded once."""
    model = tiny_model(arch, seed=4)
    targets = find_projections(model, None)
    samples = random_samples([17, 8, 25], seed=2)
    plain = run_batch(model, targets, samples)
    again = run_batch(model, targets, samples, checkpointing=True)
    for a, b in zip(plain, again):
        assert a.loss == pytest.approx(b.loss, rel=1e-12) and a.x.keys() == b.x.keys()
        assert not factors_close(a, b, TOL)
    assert all("forward" not in vars(layer) for layer in decoder_layers(model))  # restored


def test_fused_parts_have_expected_shapes(arch: str) -> None:
    model = tiny_model(arch)
    targets = find_projections(model, None)
    (f,) = run_batch(model, targets, random_samples([11]))
    for t in targets:
        x, d = f.x[(t.layer, t.name)], f.delta[(t.layer, t.name)]
        assert x.shape[1] == t.projection.d_in and d.shape[1] == t.projection.d_out
    shapes = {t.name: (t.projection.d_out, t.projection.d_in) for t in targets if t.layer == 0}
    cfg = model.config
    if arch not in ("gpt2", "gpt_neox"):
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        assert shapes["q"][0] == cfg.num_attention_heads * head_dim
        assert shapes["k"][0] == shapes["v"][0] == cfg.num_key_value_heads * head_dim
        assert shapes["gate"] == shapes["up"]


def test_loss_matches_plain_cross_entropy() -> None:
    model = tiny_model("llama")
    targets = find_projections(model, ["q"])
    samples = random_samples([20, 8])
    for s, f in zip(samples, run_batch(model, targets, samples)):
        logits = model(input_ids=torch.tensor([s.input_ids])).logits[0]
        mask = torch.tensor(s.loss_mask[1:])
        want = torch.nn.functional.cross_entropy(logits[:-1][mask], torch.tensor(s.input_ids[1:])[mask])
        assert f.loss == pytest.approx(float(want), rel=TOL)


def test_logits_are_made_only_from_the_first_predicting_position() -> None:
    model = tiny_model("llama")
    samples = random_samples([21, 12])  # responses start at tokens 7 and 4
    ids, attn, mask = collate(samples, torch.device("cpu"))
    widths: list[int] = []
    handle = model.lm_head.register_forward_hook(lambda _m, _a, out: widths.append(out.shape[1]))
    got = forward_losses(model, ids, attn, mask)
    handle.remove()
    assert widths == [21 - 3]  # token 4 is predicted by position 3: positions 0-2 make no logits
    want = per_sample_loss(model(input_ids=ids, attention_mask=attn).logits, ids, mask)
    torch.testing.assert_close(got, want, rtol=TOL, atol=0.0)  # lm_head on fewer rows: another matmul shape


def test_no_weight_gradient_is_ever_made() -> None:
    model = tiny_model("llama")
    targets = find_projections(model, None)
    run_batch(model, targets, random_samples([15, 9]))
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())


def test_a_response_window_is_exactly_the_gradient_of_the_first_k_response_tokens(tmp_path, arch: str) -> None:
    """The window drops the text after K response tokens; the oracle keeps the whole text and
    takes the loss over the same K tokens only: causal attention makes the two the same."""
    from dataclasses import replace

    from gradspec.data import Message, Record
    from gradspec.prompting import PromptConfig, encode

    from conftest import byte_tokenizer

    model = tiny_model(arch, seed=5)
    targets = find_projections(model, None)
    tok = byte_tokenizer()
    record = Record(0, "w", (Message("user", "Count for me please."),), "one two three four five six seven")
    whole = encode(record, tok, PromptConfig("plain"))
    for k in (1, 6, 17):
        windowed = encode(record, tok, PromptConfig("plain", response_tokens=k))
        assert windowed.n_response_tokens == k and windowed.n_tokens == whole.n_prompt_tokens + k
        (f,) = run_batch(model, targets, [windowed])
        spectra = sample_spectra(f, modules_of(targets), model.config.num_hidden_layers)
        mask = [m and t < whole.n_prompt_tokens + k for t, m in enumerate(whole.loss_mask)]
        oracle_sample = replace(whole, loss_mask=mask)  # the whole text, loss on the first k only
        grads = oracle_gradients(model, targets, oracle_sample)
        failures = compare_to_oracle(spectra, grads, BOUNDS)
        assert not failures, "\n".join(failures)
        assert abs(f.loss - oracle_loss(model, oracle_sample)) <= TOL * abs(f.loss)


def test_a_one_token_mistake_is_far_outside_the_bounds(arch: str) -> None:
    """The bounds leave no room for a real mistake: the loss over one response token more (a mask
    off by one) moves the numbers by a hundred times the bound or more."""
    from dataclasses import replace

    model = tiny_model(arch, seed=5)
    targets = find_projections(model, None)
    (sample,) = random_samples([30], seed=4)
    (f,) = run_batch(model, targets, [sample])
    spectra = sample_spectra(f, modules_of(targets), model.config.num_hidden_layers)
    first = sample.loss_mask.index(True)
    shifted = replace(sample, loss_mask=[m or t == first - 1 for t, m in enumerate(sample.loss_mask)])
    loose = {k: 100 * v for k, v in BOUNDS.items()}
    assert compare_to_oracle(spectra, oracle_gradients(model, targets, shifted), loose)


def test_equal_positions_are_exactly_the_gradient_of_the_cut_text(arch: str) -> None:
    """--prompt-tokens P with --response-tokens K: the last P prompt tokens and the first K response
    tokens of the whole text, exactly P + K positions, equal to the .grad of that same cut text."""
    from gradspec.data import Message, Record
    from gradspec.prompting import PromptConfig, encode

    from conftest import byte_tokenizer

    model = tiny_model(arch, seed=6)
    targets = find_projections(model, None)
    tok = byte_tokenizer()
    record = Record(0, "w", (Message("user", "Please count the words that follow me."),), "one two three four five")
    whole = encode(record, tok, PromptConfig("plain"))
    for p, k in ((4, 3), (11, 9), (1, 1)):
        cut = encode(record, tok, PromptConfig("plain", prompt_tokens=p, response_tokens=k))
        assert cut.n_tokens == p + k and cut.n_prompt_tokens == p and cut.n_response_tokens == k
        assert cut.input_ids == whole.input_ids[whole.n_prompt_tokens - p : whole.n_prompt_tokens + k]
        assert cut.n_positions == p + k - 1 and not cut.truncated
        (f,) = run_batch(model, targets, [cut])
        spectra = sample_spectra(f, modules_of(targets), model.config.num_hidden_layers)
        failures = compare_to_oracle(spectra, oracle_gradients(model, targets, cut), BOUNDS)
        assert not failures, "\n".join(failures)


def test_equal_positions_keep_the_bos_and_are_exactly_its_gradient() -> None:
    """A tokenizer that puts a BOS first (Gemma's): --prompt-tokens P keeps it, then the last P text
    tokens of the prompt and the first K of the response, and equals the .grad of those same ids."""
    from gradspec.data import Message, Record
    from gradspec.prompting import PromptConfig, encode

    from conftest import byte_tokenizer

    model = tiny_model("gemma3_text", seed=6)
    targets = find_projections(model, None)
    tok = byte_tokenizer(adds_bos=True)
    bos = tok.bos_token_id
    record = Record(0, "w", (Message("user", "Please count the words that follow me."),), "one two three four five")
    whole = encode(record, tok, PromptConfig("plain"))
    assert whole.input_ids[0] == bos and whole.input_ids.count(bos) == 1
    for p, k in ((4, 3), (8, 16), (1, 1)):
        cut = encode(record, tok, PromptConfig("plain", prompt_tokens=p, response_tokens=k))
        start = whole.n_prompt_tokens
        assert cut.input_ids == [bos, *whole.input_ids[start - p : start + k]]  # BOS, then P text tokens, then K
        assert cut.n_prompt_tokens == p + 1 and cut.n_response_tokens == k and not cut.truncated
        (f,) = run_batch(model, targets, [cut])
        spectra = sample_spectra(f, modules_of(targets), model.config.num_hidden_layers)
        failures = compare_to_oracle(spectra, oracle_gradients(model, targets, cut), BOUNDS)
        assert not failures, "\n".join(failures)
