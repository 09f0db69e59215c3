"""The factored spectral maths against svdvals of formed matrices, on random factors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_info

from gradspec.spectra import singular_values, spectral_metrics
from gradspec.spectra.routes import gram_sigma_cost, qr_flops, sigma_route
from gradspec.spectra.similarity import ModuleStack, inner
from gradspec.spectra.singular import reduce_factor
from gradspec.spectra.threads import for_each_layer


@pytest.mark.parametrize(
    ("t", "d_in", "d_out"),
    [(5, 40, 30), (40, 30, 20), (25, 30, 20), (20, 20, 20), (1, 8, 8), (64, 96, 24)],
    ids=["T<both", "T>both", "between", "square", "one-token", "gqa-like"],
)
def test_singular_values_match_svdvals(t: int, d_in: int, d_out: int) -> None:
    g = torch.Generator().manual_seed(t * 1000 + d_in)
    x = torch.randn(3, t, d_in, generator=g, dtype=torch.float64)
    d = torch.randn(3, t, d_out, generator=g, dtype=torch.float64)
    got = singular_values(x, d)
    want = torch.linalg.svdvals(d.transpose(-1, -2) @ x)
    k = min(t, d_in, d_out)
    assert got.shape == (3, k)
    torch.testing.assert_close(got, want[:, :k], rtol=1e-10, atol=1e-10)
    formed = singular_values(x, d, x_reduced=x)  # the other route: G formed, no QR
    torch.testing.assert_close(formed, want[:, :k], rtol=1e-10, atol=1e-10)
    # The rest of the formed matrix's spectrum is round-off.
    rest = want[:, k:]
    assert rest.numel() == 0 or float(rest.abs().max()) < 1e-9 * float(want.max())


def test_sigma_route_reduces_only_when_it_pays() -> None:
    assert sigma_route(64, 3584, [3584, 512, 512]) == "reduced"  # a 7B-wide layer, short sample
    assert sigma_route(511, 576, [576, 192, 192]) == "formed"  # the default model at 512 tokens
    assert sigma_route(2048, 576, [576]) == "formed"  # T >= d: nothing to reduce
    assert sigma_route(300, 576, [576, 192, 192]) == "reduced"  # measured 0.77 s against 1.13 s formed
    # Householder QR of a 100 x 10 matrix (R only): 2 m n^2 - 2 n^3 / 3 flops.
    assert qr_flops(100, 10) == pytest.approx(2 * 100 * 10**2 - 2 * 10**3 / 3)
    # The Gram of a 10 x 100 core is 10 x 10: 2 m n b for the product, then the weighted eigensolver.
    assert (
        gram_sigma_cost(10, 100) == gram_sigma_cost(100, 10) == pytest.approx(2 * 10 * 100 * 10 + 4.0 * 4 * 10**3 / 3)
    )


def test_graded_spectrum_keeps_its_small_values() -> None:
    # Singular values from 1 down to 1e-12: the Gram route is exact to ~sqrt(n eps) sigma_1 at
    # the bottom and to round-off at the top. Effective rank weighs the bottom values, so it
    # moves by up to ~4e-7 here (measured), below the ~1e-6 that float32 factors already carry.
    g = torch.Generator().manual_seed(5)
    u, _ = torch.linalg.qr(torch.randn(2, 48, 40, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(2, 64, 40, generator=g, dtype=torch.float64))
    s = torch.logspace(0, -12, 40, dtype=torch.float64).expand(2, 40)
    d = (u * s.unsqueeze(-2)).transpose(-1, -2)  # (2, 40 tokens, 48): Delta
    x = v.transpose(-1, -2)  # (2, 40 tokens, 64): X, orthonormal rows, so G = U S V^T
    for x_reduced in (None, x):
        got = singular_values(x, d, x_reduced=x_reduced)
        assert float((got - s).abs().max()) < 1e-7
        assert float(((got - s).abs() / s)[:, :10].max()) < 1e-10  # top of the spectrum: relative round-off
        want = spectral_metrics(torch.linalg.svdvals(d.transpose(-1, -2) @ x))
        for name, value in spectral_metrics(got).items():
            torch.testing.assert_close(value, want[name], rtol=1e-6, atol=0.0)


def test_layers_on_threads_equal_one_call_and_errors_surface() -> None:
    a = torch.randn(7, 30, 30, dtype=torch.float64)
    a = a @ a.transpose(-1, -2)
    got = torch.empty(7, 30, dtype=torch.float64)
    seen: list[int] = []

    def work(i: int) -> None:
        blas = {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
        seen.append(max(torch.get_num_threads(), *blas))  # torch's and numpy's BLAS both at one
        torch.linalg.eigvalsh(a[i], out=got[i])

    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # layers on two threads, torch single-threaded in each
    try:
        for_each_layer(work, 7, torch.device("cpu"))
        assert torch.get_num_threads() == 2  # restored
        with pytest.raises(ZeroDivisionError):
            for_each_layer(lambda i: 1 // (i - 3), 7, torch.device("cpu"))
    finally:
        torch.set_num_threads(threads)
    assert seen == [1] * 7
    # One call per matrix against one batched call (another LAPACK path on some builds): eigenvalues
    # agree to a float64 backward-error bound, n * eps * ||A||, with a factor 10 of margin.
    bound = 10 * 30 * torch.finfo(torch.float64).eps * float(torch.linalg.matrix_norm(a, 2).max())
    torch.testing.assert_close(got, torch.linalg.eigvalsh(a), rtol=0.0, atol=bound)


def test_reduce_factor_keeps_gram() -> None:
    a = torch.randn(7, 50, dtype=torch.float64)
    r = reduce_factor(a)
    assert r.shape == (7, 7)
    torch.testing.assert_close(r @ r.T, a @ a.T)


def test_low_rank_gradient_has_that_effective_rank() -> None:
    # Two orthogonal directions with equal weight: effective rank exactly 2.
    x = torch.zeros(2, 10, dtype=torch.float64)
    d = torch.zeros(2, 6, dtype=torch.float64)
    x[0, 0] = x[1, 1] = 1.0
    d[0, 0] = d[1, 1] = 3.0
    m = spectral_metrics(singular_values(x, d))
    assert float(m["effective_rank"]) == pytest.approx(2.0)
    assert float(m["nuclear_norm"]) == pytest.approx(6.0)
    assert float(m["stable_rank"]) == pytest.approx(2.0)
    assert float(m["frobenius_norm"]) == pytest.approx(math.sqrt(18))


def test_zero_gradient_has_undefined_ranks() -> None:
    m = spectral_metrics(torch.zeros(4))
    assert float(m["nuclear_norm"]) == 0.0
    assert math.isnan(float(m["effective_rank"])) and math.isnan(float(m["stable_rank"]))


def test_gradients_at_round_off_level_are_zero_relative_to_their_sample() -> None:
    from gradspec.spectra.metrics import ZERO_RTOL, zero_small_gradients

    g = torch.Generator().manual_seed(3)
    big = torch.rand(4, 6, generator=g, dtype=torch.float64) + 0.5  # 4 layers, 6 singular values
    noise = big * 1e-8  # a gradient zero in exact arithmetic, as one CPU's kernels round it
    small = big * 1e-3  # a real, small gradient (the smallest on real data is 6e-3 of the largest)
    edge = big.clone()
    edge[2] = big[2] * (ZERO_RTOL * float(big.square().sum(-1).sqrt().max()) / float(big[2].square().sum().sqrt()))
    out = zero_small_gradients({"v": big, "q": noise, "k": small, "o": edge})
    assert torch.equal(out["v"], big) and torch.equal(out["k"], small)
    assert not out["q"].any() and not out["o"][2].any() and torch.equal(out["o"][[0, 1, 3]], big[[0, 1, 3]])
    metrics = spectral_metrics(out["q"])
    assert (metrics["nuclear_norm"] == 0).all() and metrics["effective_rank"].isnan().all()
    assert zero_small_gradients({"q": torch.zeros(3, 2)})["q"].eq(0).all()  # all zero: nothing to scale by


def test_low_precision_inputs_get_float64_maths() -> None:
    x = torch.randn(6, 16).bfloat16()
    d = torch.randn(6, 12).bfloat16()
    s = singular_values(x, d)
    assert s.dtype == torch.float64
    torch.testing.assert_close(s, torch.linalg.svdvals(d.double().T @ x.double())[:6])


@settings(max_examples=40, deadline=None)
@given(t=st.integers(1, 40), d_in=st.integers(1, 40), d_out=st.integers(1, 40), layers=st.integers(2, 4))
def test_both_inner_product_routes_agree(t: int, d_in: int, d_out: int, layers: int) -> None:
    g = torch.Generator().manual_seed(t + 100 * d_in + 10000 * d_out)
    x = torch.randn(layers, t, d_in, generator=g, dtype=torch.float64)
    d = torch.randn(layers, t, d_out, generator=g, dtype=torch.float64)
    formed, factored = ModuleStack(x, d, "formed"), ModuleStack(x, d, "factored")
    adj = slice(0, -1), slice(1, None)
    want = ((d[:-1].transpose(-1, -2) @ x[:-1]) * (d[1:].transpose(-1, -2) @ x[1:])).sum((-1, -2))
    torch.testing.assert_close(inner(formed, formed, *adj), want)
    torch.testing.assert_close(inner(factored, factored, *adj), want)
    # Singular values on every shape, including T above, between and below the widths.
    s = singular_values(x, d)
    torch.testing.assert_close(s, torch.linalg.svdvals(d.transpose(-1, -2) @ x)[:, : min(t, d_in, d_out)])


@pytest.mark.parametrize("route", ["formed", "factored"])
def test_transposed_same_layer_inner_product(route: str) -> None:
    """q (32x16) and o (16x32): <G_q, G_o^T> by either route equals the formed matrices' dot."""
    from gradspec.spectra.similarity import inner_transposed

    g = torch.Generator().manual_seed(5)
    xq, dq = (
        torch.randn(3, 7, 16, generator=g, dtype=torch.float64),
        torch.randn(3, 7, 32, generator=g, dtype=torch.float64),
    )
    xo, do = (
        torch.randn(3, 7, 32, generator=g, dtype=torch.float64),
        torch.randn(3, 7, 16, generator=g, dtype=torch.float64),
    )
    q, o = ModuleStack(xq, dq, route), ModuleStack(xo, do, route)  # type: ignore[arg-type]
    gq, go = dq.transpose(-1, -2) @ xq, do.transpose(-1, -2) @ xo
    torch.testing.assert_close(inner_transposed(q, o), (gq * go.transpose(-1, -2)).sum((-1, -2)))


@pytest.mark.parametrize("t", [12, 40], ids=["reduced", "formed"])
def test_gpu_way_of_batching_eigenvalues_gives_the_same_numbers(t: int) -> None:
    from gradspec.spectra.sample import input_group_spectra

    g = torch.Generator().manual_seed(t)
    xs = list(torch.randn(4, t, 32, generator=g))
    deltas = {"q": list(torch.randn(4, t, 32, generator=g)), "k": list(torch.randn(4, t, 8, generator=g))}
    per_layer, batched = (
        input_group_spectra(xs, deltas, batched_eigen=b, core_dtype=torch.float64) for b in (False, True)
    )
    for m in deltas:
        want = torch.linalg.svdvals(torch.stack(deltas[m]).double().transpose(-1, -2) @ torch.stack(xs).double())
        k = min(t, 32, len(deltas[m][0][0]))
        torch.testing.assert_close(per_layer[m][0], want[:, :k], rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(batched[m][0], per_layer[m][0], rtol=1e-9, atol=1e-9)  # two LAPACKs
    assert per_layer["q"][1].route == ("formed" if t == 40 else "factored")  # G kept only when formed for sigma


def test_float32_cores_stay_within_the_precision_contract_and_a_float32_gram_would_not() -> None:
    """The contract: relative 1e-5 on nuclear and Frobenius norms, 1e-4 on effective rank. Cores
    formed in float32 (as autograd forms .grad) stay inside it; a Gram matrix in float32 does not:
    it loses the small singular values that effective rank weighs."""
    from gradspec.spectra.sample import input_group_spectra

    g = torch.Generator().manual_seed(11)
    t, d = 96, 128
    u, _ = torch.linalg.qr(torch.randn(4, d, t, generator=g, dtype=torch.float64))
    scales = torch.logspace(0, -6, t, dtype=torch.float64)
    xs = [x.float() for x in (u * scales).transpose(-1, -2)]  # graded spectra, float32 factors
    deltas = {"q": [dd.float() for dd in torch.randn(4, t, d, generator=g, dtype=torch.float64)]}
    exact = {dt: input_group_spectra(xs, deltas, core_dtype=dt)["q"][0] for dt in (torch.float32, torch.float64)}
    want = torch.linalg.svdvals(torch.stack(deltas["q"]).double().transpose(-1, -2) @ torch.stack(xs).double())
    for dt, sigma in exact.items():
        got, ref = spectral_metrics(sigma), spectral_metrics(want[:, :t])
        for name, bound in (("nuclear_norm", 1e-5), ("frobenius_norm", 1e-5), ("effective_rank", 1e-4)):
            rel = float(((got[name] - ref[name]).abs() / ref[name]).max())
            assert rel < bound / 10, (dt, name, rel)  # with a margin of ten
    core = torch.stack(deltas["q"]).transpose(-1, -2) @ torch.stack(xs)  # float32 G
    gram32 = core @ core.transpose(-1, -2)
    sigma32 = torch.linalg.eigvalsh(gram32).flip(-1)[:, :t].clamp_min(0).sqrt().double()
    rel = float(((spectral_metrics(sigma32)["effective_rank"] - spectral_metrics(want[:, :t])["effective_rank"]).abs()
                 / spectral_metrics(want[:, :t])["effective_rank"]).max())  # fmt: skip
    assert rel > 1e-4, f"a float32 Gram stayed within the contract ({rel:.2g}): the refusal would need a new look"


def test_eigen_solvers_agree_and_auto_reads_the_measured_routes(tmp_path, monkeypatch) -> None:
    from gradspec.spectra import solvers

    g = torch.Generator().manual_seed(2)
    core = torch.randn(5, 12, 9, generator=g, dtype=torch.float64)
    gram = core @ core.transpose(-1, -2)
    batched = solvers.eigenvalues(gram, "batched")
    torch.testing.assert_close(solvers.eigenvalues(gram, "looped"), batched, rtol=1e-12, atol=1e-12)
    assert (
        solvers.choose("auto", torch.device("cpu"), 12) == "batched"
        and solvers.choose("looped", torch.device("cpu"), 12) == "looped"
    )
    monkeypatch.setenv("GRADSPEC_CACHE", str(tmp_path))
    solvers.measured.cache_clear()
    path = solvers.route_file("Some GPU / 80GB")
    path.parent.mkdir(parents=True)
    path.write_text('{"eigen": {"576": "looped", "3584": "magma", "9": "bogus"}}')
    assert solvers.measured("Some GPU / 80GB") == {576: "looped", 3584: "magma"}
    solvers.measured.cache_clear()
