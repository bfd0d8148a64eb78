"""The blockwise Gaussian-potential kernel against the float64 definitions it replaces."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alignuniform.core import kernel as _kernel
from alignuniform.core.kernel import log_mean_potential, pair_count, pool_log_means


def pdist_definition(x: torch.Tensor, t: float) -> torch.Tensor:
    """The official two-liner: log mean_{i<j} exp(-t ||x_i - x_j||^2)."""
    return torch.pdist(x, p=2).pow(2).mul(-t).exp().mean().log()


def cdist_definition(x: torch.Tensor, y: torch.Tensor, t: float) -> torch.Tensor:
    """log mean_{i,j} exp(-t ||x_i - y_j||^2)."""
    return torch.cdist(x, y, p=2).pow(2).mul(-t).exp().mean().log()


def sphere(n: int, d: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """n points uniform on S^{d-1}."""
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1).to(dtype)


def relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    """|value - reference| / |reference| (a reference of exactly 0 needs an exact 0)."""
    return abs(value.item() - reference.item()) / max(abs(reference.item()), 1e-300)


sizes = st.integers(2, 3000)
dims = st.integers(1, 512)
temperatures = st.floats(1e-6, 10.0)
tiles_per_side = st.integers(1, 24)  # block_size = ceil(n / tiles): ragged tiles, bounded count


def block_for(n: int, tiles: int) -> int:
    return max(2, -(-n // tiles))


seeds = st.integers(0, 2**31 - 1)


@settings(max_examples=10, deadline=None)
@given(n=sizes, d=dims, t=temperatures, tiles=tiles_per_side, seed=seeds)
@example(n=3000, d=512, t=10.0, tiles=7, seed=1)  # the largest corner, every run
@example(n=2, d=1, t=1e-6, tiles=1, seed=2)  # the smallest
def test_value_equals_definition_float64(n, d, t, tiles, seed):
    x = sphere(n, d, seed)
    value = log_mean_potential(x, t=t, block_size=block_for(n, tiles))
    assert value.dtype == torch.float64
    assert relative_error(value, pdist_definition(x, t)) <= 1e-6


@settings(max_examples=10, deadline=None)
@given(n=sizes, d=dims, t=temperatures, tiles=tiles_per_side, seed=seeds)
@example(n=3000, d=512, t=10.0, tiles=7, seed=1)  # the largest corner, every run
@example(n=2, d=1, t=1e-6, tiles=1, seed=2)  # the smallest
def test_value_equals_definition_float32(n, d, t, tiles, seed):
    x = sphere(n, d, seed, torch.float32)
    value = log_mean_potential(x, t=t, block_size=block_for(n, tiles))
    assert value.dtype == torch.float32
    assert relative_error(value, pdist_definition(x.double(), t)) <= 1e-5


@settings(max_examples=10, deadline=None)
@given(
    n=st.integers(2, 400),
    d=st.integers(1, 64),
    t=st.floats(1e-3, 10.0),
    tiles=tiles_per_side,
    seed=seeds,
)
def test_gradient_is_the_full_gradient_of_the_definition(n, d, t, tiles, seed):
    # radii in [0.5, 1.5]: off the sphere the radial part of the gradient must be right too
    g = torch.Generator().manual_seed(seed)
    x = sphere(n, d, seed) * (0.5 + torch.rand(n, 1, generator=g, dtype=torch.float64))
    ours = x.clone().requires_grad_()
    reference = x.clone().requires_grad_()
    log_mean_potential(ours, t=t, block_size=block_for(n, tiles)).backward()
    pdist_definition(reference, t).backward()
    scale = reference.grad.abs().max()
    assert torch.allclose(ours.grad, reference.grad, rtol=1e-6, atol=1e-9 * float(scale))


@settings(max_examples=10, deadline=None)
@given(
    n=st.integers(1, 300),
    m=st.integers(1, 300),
    d=st.integers(1, 64),
    t=st.floats(1e-3, 10.0),
    tiles=tiles_per_side,
    seed=seeds,
)
def test_two_sets_value_and_gradients_equal_definition(n, m, d, t, tiles, seed):
    x = sphere(n, d, seed).requires_grad_()
    y = sphere(m, d, seed + 1).requires_grad_()
    value = log_mean_potential(x, y, t=t, block_size=block_for(max(n, m), tiles))
    grads = torch.autograd.grad(value, (x, y))
    reference = cdist_definition(x, y, t)
    reference_grads = torch.autograd.grad(reference, (x, y))
    assert relative_error(value, reference) <= 1e-6
    for ours, expected in zip(grads, reference_grads, strict=True):
        assert torch.allclose(ours, expected, rtol=1e-6, atol=1e-12)


def test_gradcheck_one_set_and_two_sets():
    x = (1.3 * sphere(11, 4, 0)).requires_grad_()
    y = (0.7 * sphere(6, 4, 1)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a: log_mean_potential(a, t=1.7, block_size=3), (x,))
    assert torch.autograd.gradcheck(
        lambda a, b: log_mean_potential(a, b, t=0.9, block_size=4), (x, y)
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_large_t_is_finite_and_equals_logsumexp(dtype):
    x = sphere(8, 128, 3, dtype)
    value = log_mean_potential(x, t=50.0)
    squared = torch.pdist(x.double()).pow(2)
    reference = torch.logsumexp(-50.0 * squared, 0) - math.log(squared.numel())
    assert math.isfinite(float(value))
    assert relative_error(value, reference) <= 1e-6
    assert float(reference) < -80  # exp() of every pair underflows float32: the naive form is -inf


def test_huge_t_keeps_value_and_gradient_finite():
    x = sphere(50, 16, 4).requires_grad_()
    value = log_mean_potential(x, t=1e4, block_size=8)
    value.backward()
    squared = torch.pdist(x.detach()).pow(2)
    reference = torch.logsumexp(-1e4 * squared, 0) - math.log(squared.numel())
    assert relative_error(value, reference) <= 1e-9
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("t", [1e-300, 1e-12, 1e-7])
def test_tiny_t_keeps_full_relative_precision(t):
    # log E exp(-t D) = -t E[D] + t^2 Var(D) / 2 - O(t^3): the series is exact to float64 here
    x = sphere(300, 7, 5)
    squared = torch.pdist(x).pow(2)
    series = -t * squared.mean() + t * t * squared.var(unbiased=False) / 2
    assert relative_error(log_mean_potential(x, t=t, block_size=64), series) <= 1e-9


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_is_computed_in_float32(dtype):
    x = sphere(300, 32, 6, dtype).requires_grad_()
    value = log_mean_potential(x, t=2.0, block_size=64)
    value.backward()
    exact = x.detach().double().requires_grad_()  # the same (rounded) points, in float64
    reference = pdist_definition(exact, 2.0)
    reference.backward()
    assert value.dtype == torch.float32
    assert relative_error(value, reference) <= 1e-5
    assert x.grad.dtype == dtype
    assert torch.allclose(
        x.grad.double(), exact.grad, rtol=1e-2, atol=1e-2 * exact.grad.abs().max()
    )


def test_autocast_does_not_lower_the_precision():
    x = sphere(500, 64, 7, torch.float32).requires_grad_()
    plain = log_mean_potential(x, t=2.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = log_mean_potential(x, t=2.0)
    assert autocast.dtype == torch.float32
    assert relative_error(autocast, plain) <= 1e-6


def test_without_grad_mode_no_graph_is_built():
    x = sphere(40, 8, 8).requires_grad_()
    with torch.no_grad():
        value = log_mean_potential(x, t=2.0)
    assert not value.requires_grad
    assert relative_error(value, pdist_definition(x.detach(), 2.0)) <= 1e-12


def test_pair_count():
    assert pair_count(2) == 1
    assert pair_count(768) == 768 * 767 // 2
    assert pair_count(128, 16384) == 128 * 16384


def test_pooled_log_means_give_the_moco_uniformity_of_eq18():
    # Eq. 18: queries q (K) against a queue (N) plus the pairs within q, normaliser NK + K(K-1)/2
    q = sphere(12, 16, 9).requires_grad_()
    queue = sphere(40, 16, 10)
    pooled = pool_log_means(
        [log_mean_potential(q, queue, t=2.0), log_mean_potential(q, t=2.0)],
        [pair_count(12, 40), pair_count(12)],
    )
    squared = torch.cat([torch.cdist(q, queue).pow(2).flatten(), torch.pdist(q).pow(2)])
    direct = squared.mul(-2.0).exp().mean().log()
    assert relative_error(pooled, direct) <= 1e-12
    (grad,) = torch.autograd.grad(pooled, q)
    (direct_grad,) = torch.autograd.grad(direct, q)
    assert torch.allclose(grad, direct_grad, rtol=1e-9, atol=1e-12)


def test_pool_log_means_refuses_mismatched_counts():
    with pytest.raises(ValueError, match="one count per log-mean"):
        pool_log_means([torch.tensor(-1.0)], [3, 4])
    with pytest.raises(ValueError, match="counts must all be > 0"):
        pool_log_means([torch.tensor(-1.0)], [0])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"t": 0.0}, ValueError, "t must be > 0"),
        ({"t": -1}, ValueError, "t must be > 0"),
        ({"t": "2"}, TypeError, "t must be a real number"),
        ({"block_size": 1}, ValueError, "block_size must be an integer >= 2"),
        ({"block_size": 2.5}, ValueError, "block_size must be an integer >= 2"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        log_mean_potential(sphere(5, 3, 0), **kwargs)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="x needs at least 2 rows"):
        log_mean_potential(sphere(1, 3, 0))
    with pytest.raises(ValueError, match="same embedding width"):
        log_mean_potential(sphere(4, 3, 0), sphere(4, 5, 0))
    with pytest.raises(TypeError, match="floating point"):
        log_mean_potential(torch.ones(4, 3, dtype=torch.int64))


def test_only_the_gradients_asked_for_are_formed():
    queries = sphere(20, 8, 11)
    queue = sphere(50, 8, 12)
    for wanted in (0, 1):  # a MoCo queue wants no gradient; then the other way round
        inputs = [queries.clone(), queue.clone()]
        inputs[wanted].requires_grad_()
        log_mean_potential(*inputs, t=2.0, block_size=16).backward()
        reference = [queries.clone(), queue.clone()]
        reference[wanted].requires_grad_()
        cdist_definition(*reference, 2.0).backward()
        assert inputs[1 - wanted].grad is None
        assert torch.allclose(inputs[wanted].grad, reference[wanted].grad, rtol=1e-9, atol=1e-14)


def reduction(x: torch.Tensor, t: float) -> tuple[bool, bool]:
    """(shifted, careful): the kernel's a-priori choice for the one-set form of x at t."""
    rows = _kernel._augmented(x, x.double().mean(0).to(x.dtype), x.dtype)
    ones = x.new_ones(x.shape[0])
    return _kernel._careful_options(rows, rows, True, t, ones, ones, False)


def switch_point(x: torch.Tensor, low: float, high: float, which: int) -> float:
    """The t in [low, high] where option `which` of `reduction` flips, by bisection."""
    start = reduction(x, low)[which]
    assert reduction(x, high)[which] != start
    for _ in range(60):
        middle = math.sqrt(low * high)
        low, high = (middle, high) if reduction(x, middle)[which] == start else (low, middle)
    return high


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-6), (torch.float64, 1e-11)])
def test_exact_for_t_from_1e6_to_100_on_both_sides_of_each_switch(dtype, tol):
    # clustered points: away from the sphere, L spans tiny to large values over this t range
    x = sphere(1500, 16, 12) * (
        0.2 + torch.rand(1500, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    )
    x = x.to(dtype)
    careful_until = switch_point(x, 1e-6, 100.0, 1)  # expm1 below, exp above
    shift_from = switch_point(x, careful_until * 1.01, 1e4, 0)  # unshifted below, shifted above
    temperatures = [10.0**k for k in range(-6, 3)]
    temperatures += [
        careful_until * 0.999,
        careful_until * 1.001,
        shift_from * 0.999,
        shift_from * 1.001,
    ]
    paths = set()
    squared = torch.pdist(x.double()).pow(2)
    for t in temperatures:
        paths.add(reduction(x, t))
        mean_expm1 = torch.expm1(-t * squared).mean()  # keeps L's relative precision as L -> 0
        reference = (
            torch.log1p(mean_expm1)
            if mean_expm1 > -0.5
            else torch.logsumexp(-t * squared, 0) - math.log(squared.numel())
        )
        value = log_mean_potential(x, t=t, block_size=400)
        assert relative_error(value, reference) <= tol, t
    assert paths == {(True, True), (False, False), (True, False)}  # each path was taken


@pytest.mark.parametrize("side", [0.99, 1.01])
def test_gradient_on_both_sides_of_the_expm1_switch(side):
    x = sphere(300, 8, 13)
    t = side * switch_point(x, 1e-6, 100.0, 1)
    assert reduction(x, t)[1] == (side < 1)
    ours, reference = x.clone().requires_grad_(), x.clone().requires_grad_()
    log_mean_potential(ours, t=t, block_size=64).backward()
    pdist_definition(reference, t).backward()
    assert torch.allclose(
        ours.grad, reference.grad, rtol=1e-7, atol=1e-12 * float(reference.grad.abs().max())
    )
