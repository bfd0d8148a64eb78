"""align_loss, uniform_loss and contrastive_loss against their float64 definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from alignuniform import align_loss, contrastive_loss, uniform_loss
from alignuniform.core import losses
from alignuniform.core.losses import moco_uniform_loss
from helpers.reference import lalign, lunif, sphere


def positives_of(x: torch.Tensor, noise: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(x + noise * torch.randn(x.shape, generator=g, dtype=x.dtype), dim=1)


def eq1_by_loops(x: torch.Tensor, y: torch.Tensor, tau: float, negatives=None) -> float:
    """Paper Eq. 1 term by term: -log(e^{pos/tau} / (e^{pos/tau} + sum_neg e^{neg/tau}))."""
    terms = []
    anchors = [(x, y)] if negatives is not None else [(x, y), (y, x)]
    for side, other in anchors:
        for i in range(side.shape[0]):
            positive = math.exp(float(side[i] @ other[i]) / tau)
            pool = negatives if negatives is not None else torch.cat([other[:i], other[i + 1 :]])
            negative = sum(math.exp(float(side[i] @ v) / tau) for v in pool)
            terms.append(-math.log(positive / (positive + negative)))
    return sum(terms) / len(terms)


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 300),
    d=st.integers(1, 64),
    alpha=st.sampled_from([0.5, 1.0, 2.0, 3.0]) | st.floats(0.1, 4.0),
    seed=st.integers(0, 10**6),
)
def test_align_loss_equals_definition(n, d, alpha, seed):
    x = sphere(n, d, seed)
    y = positives_of(x, 0.3, seed + 1)
    assert math.isclose(align_loss(x, y, alpha), lalign(x, y, alpha), rel_tol=1e-12)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 3.0])
def test_align_loss_gradient_matches_definition_and_is_zero_at_identical_pairs(alpha):
    x = sphere(20, 5, 0)
    y = positives_of(x, 0.2, 1)
    y[:3] = x[:3]  # some pairs perfectly aligned: the norm has no derivative there
    ours = x.clone().requires_grad_()
    align_loss(ours, y, alpha).backward()
    assert torch.isfinite(ours.grad).all()
    assert torch.equal(ours.grad[:3], torch.zeros(3, 5, dtype=torch.float64))
    reference = x[3:].clone().requires_grad_()
    (lalign(reference, y[3:], alpha) * 17 / 20).backward()
    assert torch.allclose(ours.grad[3:], reference.grad, rtol=1e-10, atol=1e-14)


def test_uniform_loss_equals_definition_with_gradient():
    x = sphere(600, 32, 2)
    ours = x.clone().requires_grad_()
    reference = x.clone().requires_grad_()
    value = uniform_loss(ours, t=3.0, block_size=100)
    value.backward()
    expected = lunif(reference, 3.0)
    expected.backward()
    assert math.isclose(value.item(), expected.item(), rel_tol=1e-10)
    assert torch.allclose(ours.grad, reference.grad, rtol=1e-8, atol=1e-14)


def test_two_view_uniform_loss_averages_each_view_and_skips_cross_pairs():
    x = sphere(50, 8, 3)
    y = positives_of(x, 0.5, 4)
    value = uniform_loss(x, y, t=2.0)
    assert math.isclose(value, (lunif(x, 2.0) + lunif(y, 2.0)) / 2, rel_tol=1e-12)
    assert not math.isclose(value, lunif(torch.cat([x, y]), 2.0), rel_tol=1e-3)


def test_two_view_uniform_loss_sends_gradients_to_both_views():
    x = sphere(30, 6, 5).requires_grad_()
    y = positives_of(x.detach(), 0.5, 6).requires_grad_()
    uniform_loss(x, y, t=2.0).backward()
    x_ref = x.detach().clone().requires_grad_()
    y_ref = y.detach().clone().requires_grad_()
    ((lunif(x_ref, 2.0) + lunif(y_ref, 2.0)) / 2).backward()
    assert torch.allclose(x.grad, x_ref.grad, rtol=1e-9, atol=1e-14)
    assert torch.allclose(y.grad, y_ref.grad, rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("tau", [0.07, 0.5, 2.0])
def test_contrastive_loss_is_eq1_over_2k_anchors(tau):
    x = sphere(9, 4, 7)
    y = positives_of(x, 0.4, 8)
    assert math.isclose(contrastive_loss(x, y, tau), eq1_by_loops(x, y, tau), rel_tol=1e-10)


def test_contrastive_loss_with_a_queue_of_negatives():
    x = sphere(6, 4, 9)
    y = positives_of(x, 0.4, 10)
    queue = sphere(13, 4, 11)
    value = contrastive_loss(x, y, 0.2, negatives=queue)
    assert math.isclose(value, eq1_by_loops(x, y, 0.2, negatives=queue), rel_tol=1e-10)


def test_losses_accept_numpy_arrays():
    x = sphere(10, 3, 12)
    y = positives_of(x, 0.3, 13)
    assert math.isclose(align_loss(x.numpy(), y.numpy()), lalign(x, y, 2.0), rel_tol=1e-12)
    assert math.isclose(uniform_loss(x.numpy()), lunif(x, 2.0), rel_tol=1e-12)


def test_normalize_true_equals_the_loss_of_normalized_inputs():
    g = torch.Generator().manual_seed(14)
    x = 3 * torch.randn(40, 5, generator=g, dtype=torch.float64)
    y = 0.2 * torch.randn(40, 5, generator=g, dtype=torch.float64)
    xn, yn = F.normalize(x, dim=1), F.normalize(y, dim=1)
    assert math.isclose(align_loss(x, y, normalize=True), lalign(xn, yn, 2.0), rel_tol=1e-12)
    assert math.isclose(uniform_loss(x, normalize=True), lunif(xn, 2.0), rel_tol=1e-12)
    assert math.isclose(
        contrastive_loss(x, y, 0.3, normalize=True), eq1_by_loops(xn, yn, 0.3), rel_tol=1e-10
    )


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_losses_are_close_to_float32(dtype):
    x = sphere(512, 128, 15, torch.float32)
    y = positives_of(x, 0.3, 16)
    half_x = x.to(dtype).requires_grad_()
    half_y = y.to(dtype).requires_grad_()
    uniform = uniform_loss(half_x, half_y, t=2.0)
    align = align_loss(half_x, half_y)
    (uniform + align).backward()
    assert uniform.dtype == align.dtype == torch.float32
    assert half_x.grad.dtype == dtype
    # rounding moves each distance by up to ~2^-8 (bf16); the errors average out over pairs
    assert math.isclose(uniform.item(), uniform_loss(x, y, t=2.0), rel_tol=1e-3)
    assert math.isclose(align.item(), align_loss(x, y), rel_tol=1e-3)


def test_unit_norm_tolerance_admits_rounded_half_precision_vectors():
    x = sphere(100, 2, 17).to(torch.bfloat16)  # |norm - 1| up to ~4e-3 after rounding
    assert torch.isfinite(uniform_loss(x))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda x: align_loss(x, x, alpha=0), ValueError, "alpha must be > 0"),
        (lambda x: align_loss(x, x, alpha=True), TypeError, "alpha must be a real number"),
        (lambda x: uniform_loss(x, t=-1), ValueError, "t must be > 0"),
        (lambda x: uniform_loss(x, 2), TypeError, r"pass t by keyword: uniform_loss\(x, t=2\)"),
        (lambda x: contrastive_loss(x, x, tau=0), ValueError, "tau must be > 0"),
        (lambda x: uniform_loss(x[:1]), ValueError, "x needs at least 2 rows"),
        (lambda x: contrastive_loss(x[:1], x[:1]), ValueError, "x needs at least 2 rows"),
        (lambda x: align_loss(x, x[:3]), ValueError, r"same shape .* \(4, 3\) and y \(3, 3\)"),
        (lambda x: uniform_loss(x, x[:3]), ValueError, r"same shape .* \(4, 3\) and y \(3, 3\)"),
        (lambda x: uniform_loss(x[0]), ValueError, r"2-D .* got shape \(3,\); use x.reshape"),
        (lambda x: uniform_loss(x[None]), ValueError, r"2-D .* got shape \(1, 4, 3\)"),
        (lambda x: uniform_loss(2 * x), ValueError, "unit-norm .* pass normalize=True"),
        (lambda x: uniform_loss(x.long()), TypeError, r"floating point, convert with x.float\(\)"),
        (lambda x: uniform_loss(x.tolist()), TypeError, r"torch.Tensor or numpy.ndarray"),
        (lambda x: uniform_loss(np.array([["a"], ["b"]])), TypeError, "real floating point"),
        (lambda x: uniform_loss(0 * x, normalize=True), ValueError, "4 all-zero rows"),
        (lambda x: uniform_loss(x, block_size=1), ValueError, "block_size must be an integer >= 2"),
        (lambda x: uniform_loss(x, block_size=True), ValueError, "block_size must be an integer"),
        (lambda x: moco_uniform_loss(x[:1], x), ValueError, "queries needs at least 2 rows"),
        (
            lambda x: moco_uniform_loss(x, F.normalize(x[:, :2], dim=1)),
            ValueError,
            "queries and queue must have the same embedding width",
        ),
        (
            lambda x: contrastive_loss(x, x, negatives=F.normalize(x[:, :2], dim=1)),
            ValueError,
            "x and negatives must have the same embedding width",
        ),
    ],
)
def test_bad_input_raises_a_message_that_names_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call(sphere(4, 3, 18))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nan_and_inf_rows_are_counted(bad):
    x = sphere(6, 3, 19)
    x[1, 0] = bad
    x[4, 2] = bad
    with pytest.raises(ValueError, match="2 of 6 rows containing NaN or Inf"):
        uniform_loss(x)
    with pytest.raises(ValueError, match="2 of 6 rows containing NaN or Inf"):
        align_loss(sphere(6, 3, 20), x, normalize=True)


def test_checked_twins_give_the_public_losses_values_and_gradients():
    """Each public loss is its check plus its checked twin: same value and gradient, bit for bit."""
    x, y, queue = sphere(12, 5, 21), positives_of(sphere(12, 5, 21), 0.3, 22), sphere(20, 5, 23)
    pairs = [
        (lambda a, b: align_loss(a, b, 1.5), lambda a, b: losses.checked_align_loss(a, b, 1.5)),
        (
            lambda a, b: uniform_loss(a, b, t=3, block_size=5),
            lambda a, b: losses.checked_uniform_loss(a, b, 3.0, 5),
        ),
        (
            lambda a, b: contrastive_loss(a, b, 0.2, negatives=queue),
            lambda a, b: losses.checked_contrastive_loss(a, b, 0.2, queue),
        ),
        (
            lambda a, b: moco_uniform_loss(a, queue, 2.0),
            lambda a, b: losses.checked_moco_uniform_loss(a, queue, 2.0, "eq18"),
        ),
    ]
    for public, checked in pairs:
        results = []
        for loss in (public, checked):
            a, b = x.clone().requires_grad_(), y.clone().requires_grad_()
            value = loss(a, b)
            (value + 0 * b.sum()).backward()
            results.append((value, a.grad, b.grad))
        for ours, theirs in zip(*results, strict=True):
            assert torch.equal(ours, theirs)
