"""alignment, uniformity, uniformity_bound and AlignUniformMeter against their definitions."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import gammaln, hyp0f1, ive

from alignuniform import AlignUniformMeter, alignment, alignment_sum, uniformity, uniformity_bound
from alignuniform.core.metrics import UniformityResult


def sphere(n: int, d: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1).to(dtype)


def lunif(x: torch.Tensor, t: float) -> float:
    """Official definition: torch.pdist(x).pow(2).mul(-t).exp().mean().log()."""
    return torch.pdist(x.double(), p=2).pow(2).mul(-t).exp().mean().log().item()


def lalign(x: torch.Tensor, y: torch.Tensor, alpha: float) -> float:
    """Official definition: (x - y).norm(dim=1).pow(alpha).mean()."""
    return (x.double() - y.double()).norm(p=2, dim=1).pow(alpha).mean().item()


def test_alignment_equals_definition_for_torch_and_numpy():
    x = sphere(3000, 1024, 0, torch.float32)  # 3000 x 1024 spans several float64 chunks
    y = F.normalize(x + 0.2 * sphere(3000, 1024, 1, torch.float32), dim=1)
    for alpha in (1.0, 2.0, 0.5):
        expected = lalign(x, y, alpha)
        assert math.isclose(alignment(x, y, alpha), expected, rel_tol=1e-12)
        assert math.isclose(alignment(x.numpy(), y.numpy(), alpha), expected, rel_tol=1e-12)
    assert isinstance(alignment(x, y), float)


def test_alignment_sum_is_the_float64_sum_and_count_that_batches_add_up():
    x = sphere(500, 32, 20, torch.float32)
    y = F.normalize(x + 0.3 * sphere(500, 32, 21, torch.float32), dim=1)
    for alpha in (1.0, 2.0, 0.5):
        distances = (x.double() - y.double()).norm(p=2, dim=1).pow(alpha)
        total, n = alignment_sum(x, y, alpha)
        assert n == 500 and isinstance(total, float)
        assert math.isclose(total, distances.sum().item(), rel_tol=1e-12)
        parts = [alignment_sum(x[i : i + 64], y[i : i + 64], alpha) for i in range(0, 500, 64)]
        assert sum(c for _, c in parts) == n
        assert math.isclose(sum(s for s, _ in parts), total, rel_tol=1e-12)
        assert alignment(x, y, alpha) == total / n
    raw = 3 * x
    assert alignment_sum(raw, raw.numpy(), normalize=True) == (0.0, 500)
    with pytest.raises(ValueError, match="z_a and z_b must have the same shape"):
        alignment_sum(x, y[:4], names=("z_a", "z_b"))
    with pytest.raises(ValueError, match="alpha must be > 0"):
        alignment_sum(x, y, alpha=0)


def test_the_meter_and_the_bound_stay_importable_from_core_metrics():
    from alignuniform.core import bound, meter, metrics

    assert metrics.AlignUniformMeter is meter.AlignUniformMeter is AlignUniformMeter
    assert metrics.uniformity_bound is bound.uniformity_bound is uniformity_bound


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exact_uniformity_equals_definition(dtype):
    z = sphere(2500, 48, 2, dtype)
    result = uniformity(z.numpy(), t=3.0)
    assert isinstance(result, float)
    assert result.exact and result.stderr == 0.0 and result.n_pairs == 2500 * 2499 // 2
    assert math.isclose(result, lunif(z, 3.0), rel_tol=1e-6)


def test_uniformity_does_not_build_an_autograd_graph():
    z = sphere(100, 8, 3).requires_grad_()
    assert math.isclose(uniformity(z), lunif(z.detach(), 2.0), rel_tol=1e-9)


@pytest.mark.parametrize(("dim", "expected"), [(128, -3.93753), (2, -1.57503)])
def test_20000_uniform_points_reach_the_bound(dim, expected):
    z = sphere(20000, dim, 4, torch.float32)
    assert abs(uniformity_bound(dim, 2.0) - expected) < 1e-5
    assert abs(uniformity(z, t=2.0) - uniformity_bound(dim, 2.0)) < 0.01


def test_clustered_points_stay_above_the_bound():
    centers = sphere(3, 16, 5)
    z = F.normalize(centers.repeat(200, 1) + 0.3 * sphere(600, 16, 6), dim=1)
    assert uniformity(z) > uniformity_bound(16) + 0.5


def test_sampled_uniformity_is_unbiased_with_a_calibrated_standard_error():
    z = sphere(400, 3, 7)
    exact = uniformity(z, t=2.0)
    estimates = [uniformity(z, t=2.0, max_pairs=2000, seed=seed) for seed in range(40)]
    assert all(not e.exact and e.n_pairs == 2000 for e in estimates)
    # exp(estimate) is an unbiased mean of G: its average over seeds is within 4 standard errors
    mean_g = np.mean([math.exp(e) for e in estimates])
    stderr_of_mean = math.exp(exact) * np.mean([e.stderr for e in estimates]) / math.sqrt(40)
    assert abs(mean_g - math.exp(exact)) < 4 * stderr_of_mean
    # the reported standard error matches the spread across seeds
    spread = np.std([float(e) for e in estimates], ddof=1)
    assert 0.6 < spread / np.mean([e.stderr for e in estimates]) < 1.5


def test_sampling_is_reproducible_and_falls_back_to_exact():
    z = sphere(50, 4, 8)
    assert uniformity(z, max_pairs=100, seed=3) == uniformity(z, max_pairs=100, seed=3)
    assert uniformity(z, max_pairs=100, seed=3) != uniformity(z, max_pairs=100, seed=4)
    every_pair = uniformity(z, max_pairs=50 * 49 // 2)
    assert every_pair.exact and every_pair == uniformity(z)


def test_sampled_uniformity_stays_finite_for_large_t():
    z = sphere(300, 64, 9)
    estimate = uniformity(z, t=300.0, max_pairs=5000)
    assert math.isfinite(estimate) and math.isfinite(estimate.stderr)
    assert estimate < -300  # every exp() underflows float64 without the shift


def test_uniformity_result_behaves_like_a_float():
    result = uniformity(sphere(30, 3, 10), max_pairs=50)
    assert str(result) == repr(float(result))
    assert "stderr=" in repr(result)
    copied = pickle.loads(pickle.dumps(result))
    assert copied == result and copied.stderr == result.stderr and not copied.exact
    assert copy.deepcopy(result).n_pairs == 50


def test_uniformity_bound_matches_scipy_bessel_and_hyp0f1():
    for dim in (1, 2, 3, 8, 128, 256):
        for t in (0.5, 1.0, 2.0, 3.0, 8.0, 20.0):
            m = dim / 2
            bessel = gammaln(m) + (1 - m) * math.log(t) + math.log(ive(m - 1, 2 * t))
            assert math.isclose(uniformity_bound(dim, t), bessel, rel_tol=1e-10, abs_tol=1e-12)
            if t <= 3:
                direct = -2 * t + math.log(hyp0f1(m, t * t))
                assert math.isclose(uniformity_bound(dim, t), direct, rel_tol=1e-10)


def test_uniformity_bound_published_values_and_limits():
    assert abs(uniformity_bound(128, 3.0) - (-5.85953)) < 1e-5
    assert math.isclose(uniformity_bound(1, 2.0), -4 + math.log(math.cosh(4)), rel_tol=1e-12)
    values = [uniformity_bound(dim, 2.0) for dim in (2, 8, 128, 4096, 10**6)]
    assert values == sorted(values, reverse=True)  # decreasing in the dimension ...
    assert abs(values[-1] - (-4.0)) < 1e-5  # ... towards -2t
    assert math.isfinite(uniformity_bound(10**5, 50.0))  # where ive() underflows to 0
    assert math.isfinite(uniformity_bound(2, 1e4))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: uniformity_bound(0), ValueError, "dim must be a positive integer"),
        (lambda: uniformity_bound(2.5), ValueError, "dim must be a positive integer"),
        (lambda: uniformity_bound(True), ValueError, "dim must be a positive integer"),
        (lambda: uniformity_bound(8, t=0), ValueError, "t must be > 0"),
        (lambda: uniformity(sphere(5, 2, 0), max_pairs=0), ValueError, "max_pairs must be"),
        (lambda: uniformity(sphere(1, 2, 0)), ValueError, "z needs at least 2 rows"),
        (lambda: uniformity(2 * sphere(5, 2, 0)), ValueError, "pass normalize=True"),
        (lambda: alignment(sphere(5, 2, 0), sphere(4, 2, 0)), ValueError, "same shape"),
        (lambda: alignment(sphere(5, 2, 0), sphere(5, 2, 0), alpha=-2), ValueError, "alpha"),
        (lambda: AlignUniformMeter(max_samples=1), ValueError, "max_samples must be"),
        (lambda: AlignUniformMeter(t=-1), ValueError, "t must be > 0"),
        (lambda: AlignUniformMeter().compute(), ValueError, "at least 2 embeddings"),
        (lambda: AlignUniformMeter().merge(3), TypeError, "other must be an AlignUniformMeter"),
        (
            lambda: AlignUniformMeter(t=2).merge(AlignUniformMeter(t=3)),
            ValueError,
            "different settings",
        ),
    ],
)
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_normalize_option_of_the_metrics():
    raw = 5 * sphere(60, 4, 11) + 0.1
    unit = F.normalize(raw, dim=1)
    assert math.isclose(uniformity(raw, normalize=True), lunif(unit, 2.0), rel_tol=1e-9)
    assert math.isclose(alignment(raw, 2 * raw, normalize=True), 0.0, abs_tol=1e-20)


def batches(z: torch.Tensor, size: int):
    return [z[i : i + size] for i in range(0, z.shape[0], size)]


def test_meter_streams_to_the_one_shot_values():
    x = sphere(700, 16, 12)
    y = F.normalize(x + 0.3 * sphere(700, 16, 13), dim=1)
    meter = AlignUniformMeter(t=2.0, alpha=1.0)
    for xb, yb in zip(batches(x, 64), batches(y, 64), strict=True):
        meter.update(xb, yb.numpy())
    result = meter.compute()
    assert result["n"] == 700
    assert math.isclose(result["alignment"], lalign(x, y, 1.0), rel_tol=1e-12)
    assert math.isclose(result["uniformity"], lunif(x, 2.0), rel_tol=1e-9)
    meter.reset()
    meter.update(x[:5])
    assert meter.compute()["alignment"] is None and meter.compute()["n"] == 5


def test_meter_refuses_a_change_of_dimension():
    meter = AlignUniformMeter()
    meter.update(sphere(4, 3, 0))
    with pytest.raises(ValueError, match="dimension 5 but earlier batches had 3"):
        meter.update(sphere(4, 5, 0))


def test_merged_meters_equal_one_meter_over_all_batches():
    x = sphere(300, 8, 14)
    y = F.normalize(x + 0.2 * sphere(300, 8, 15), dim=1)
    left, right, whole = AlignUniformMeter(), AlignUniformMeter(), AlignUniformMeter()
    left.update(x[:120], y[:120])
    right.update(x[120:], y[120:])
    whole.update(x, y)
    merged = left.merge(right).compute()
    expected = whole.compute()
    assert merged["n"] == expected["n"] == 300
    assert math.isclose(merged["alignment"], expected["alignment"], rel_tol=1e-12)
    assert math.isclose(merged["uniformity"], expected["uniformity"], rel_tol=1e-9)


def angle_ids(n: int) -> torch.Tensor:
    """Row k is the unit vector at angle k * 2pi / 10^4: decodable back to k."""
    angles = torch.arange(n, dtype=torch.float64) * (2 * math.pi / 1e4)
    return torch.stack([angles.cos(), angles.sin()], dim=1)


def decode_ids(rows: torch.Tensor) -> np.ndarray:
    angles = torch.atan2(rows[:, 1], rows[:, 0]).remainder(2 * math.pi)
    return torch.round(angles * 1e4 / (2 * math.pi)).long().numpy()


def test_reservoir_keeps_a_bounded_uniform_sample():
    counts = np.zeros(200)
    for seed in range(300):
        meter = AlignUniformMeter(max_samples=20, seed=seed)
        for rows in batches(angle_ids(200), 23):
            meter.update(rows)
        kept = decode_ids(meter.samples)
        assert meter.samples.shape == (20, 2) and len(set(kept)) == 20
        assert meter.compute()["n"] == 200
        counts[kept] += 1
    # each of 200 rows is kept with probability 0.1: 30 of 300 runs, binomial sd ~5.2
    assert counts.min() > 30 - 5 * 5.2 and counts.max() < 30 + 5 * 5.2
    assert abs(counts[:100].sum() - counts[100:].sum()) < 4 * math.sqrt(300 * 20 * 0.25)


def test_merging_reservoirs_keeps_the_sample_uniform_over_both_streams():
    counts = np.zeros(200)
    for seed in range(300):
        small = AlignUniformMeter(max_samples=20, seed=seed)
        large = AlignUniformMeter(max_samples=20, seed=seed + 1000)
        small.update(angle_ids(200)[:30])
        large.update(angle_ids(200)[30:])
        kept = decode_ids(small.merge(large).samples)
        assert len(set(kept)) == 20
        counts[kept] += 1
    # rows of the 30-row stream are kept as often as rows of the 170-row stream: 0.1 each
    assert abs(counts[:30].mean() - 30) < 4 * math.sqrt(30 * 0.9 / 30)
    assert abs(counts[30:].mean() - 30) < 4 * math.sqrt(30 * 0.9 / 170)


def test_sync_without_a_process_group_is_a_copy():
    meter = AlignUniformMeter()
    meter.update(sphere(10, 3, 16))
    synced = meter.sync()
    assert synced is not meter
    assert synced.compute() == meter.compute()


def _sync_worker(rank: int, world: int, init_file: str, queue) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    x = sphere(90, 6, 17)
    y = F.normalize(x + 0.2 * sphere(90, 6, 18), dim=1)
    meter = AlignUniformMeter()
    mine = slice(rank * 50, 90 if rank else 50)  # ranks see 50 and 40 rows
    meter.update(x[mine], y[mine])
    result = meter.sync().compute()
    queue.put((rank, result["n"], result["alignment"], float(result["uniformity"])))
    dist.destroy_process_group()


@pytest.mark.slow
def test_sync_gathers_every_rank_over_gloo(tmp_path):
    context = mp.get_context("spawn")
    queue = context.SimpleQueue()
    mp.start_processes(
        _sync_worker, args=(2, str(tmp_path / "init"), queue), nprocs=2, start_method="spawn"
    )
    results = sorted(queue.get() for _ in range(2))
    x = sphere(90, 6, 17)
    y = F.normalize(x + 0.2 * sphere(90, 6, 18), dim=1)
    for _, n, align, uniform in results:
        assert n == 90
        assert math.isclose(align, lalign(x, y, 2.0), rel_tol=1e-12)
        assert math.isclose(uniform, lunif(x, 2.0), rel_tol=1e-9)


def test_uniformity_result_type_is_exported():
    assert isinstance(uniformity(sphere(3, 2, 0)), UniformityResult)


def weighted_definition(
    z: torch.Tensor,
    y: torch.Tensor | None,
    t: float,
    c: torch.Tensor,
    d: torch.Tensor | None = None,
    include_self: bool = False,
) -> float:
    """log( sum c_i d_j E_ij / sum c_i d_j ) over the N x N (or N x M) matrix, built in float64."""
    other, d = (z, c) if y is None else (y, d)
    kernel = torch.cdist(z.double(), other.double()).pow(2).mul(-t).exp()
    pair_weights = c.double()[:, None] * d.double()[None, :]
    if y is None and not include_self:
        pair_weights.fill_diagonal_(0.0)
    return ((pair_weights * kernel).sum() / pair_weights.sum()).log().item()


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 60),
    dim=st.integers(1, 8),
    t=st.floats(1e-3, 20.0),
    seed=st.integers(0, 2**31 - 1),
    include_self=st.booleans(),
)
def test_weighted_uniformity_equals_its_definition(n, dim, t, seed, include_self):
    z = sphere(n, dim, seed)
    g = torch.Generator().manual_seed(seed)
    c = torch.rand(n, generator=g, dtype=torch.float64) * (torch.rand(n, generator=g) > 0.3)
    c[:2] += 0.1  # at least two rows of positive weight
    result = uniformity(z, t=t, weights=c, include_self=include_self)
    assert result.exact and result.n_pairs == n * (n - 1) // 2 + (n if include_self else 0)
    expected = weighted_definition(z, None, t, c, include_self=include_self)
    assert math.isclose(result, expected, rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 50),
    m=st.integers(1, 50),
    dim=st.integers(1, 8),
    t=st.floats(1e-3, 20.0),
    seed=st.integers(0, 2**31 - 1),
    which=st.sampled_from(["none", "z", "y", "both"]),
)
def test_two_set_uniformity_equals_its_definition(n, m, dim, t, seed, which):
    z, y = sphere(n, dim, seed), sphere(m, dim, seed + 1)
    g = torch.Generator().manual_seed(seed)
    c = torch.rand(n, generator=g, dtype=torch.float64) + 0.01
    d = torch.rand(m, generator=g, dtype=torch.float64) + 0.01
    kwargs = {
        "weights": c if which in ("z", "both") else None,
        "y_weights": d if which in ("y", "both") else None,
    }
    result = uniformity(z, y, t, **kwargs)
    assert result.exact and result.n_pairs == n * m
    expected = weighted_definition(
        z,
        y,
        t,
        kwargs["weights"] if kwargs["weights"] is not None else torch.ones(n),
        kwargs["y_weights"] if kwargs["y_weights"] is not None else torch.ones(m),
    )
    assert math.isclose(result, expected, rel_tol=1e-9, abs_tol=1e-12)
    if which == "none":
        direct = torch.cdist(z, y).pow(2).mul(-t).exp().mean().log().item()
        assert math.isclose(result, direct, rel_tol=1e-9, abs_tol=1e-12)


def test_integer_weights_equal_repeated_rows_with_self_pairs():
    z, y = sphere(40, 5, 20), sphere(30, 5, 21)
    counts = torch.from_numpy(np.random.default_rng(0).integers(0, 4, 40))
    y_counts = torch.from_numpy(np.random.default_rng(1).integers(0, 4, 30))
    repeated, y_repeated = z.repeat_interleave(counts, 0), y.repeat_interleave(y_counts, 0)
    # DirectAU's form: over all (i, j) of the repeated rows, self-pairs included
    ones = torch.ones(repeated.shape[0], dtype=torch.float64)
    everything = weighted_definition(repeated, None, 2.0, ones, include_self=True)
    assert math.isclose(uniformity(z, weights=counts, include_self=True), everything, rel_tol=1e-10)
    assert math.isclose(uniformity(repeated, include_self=True), everything, rel_tol=1e-10)
    assert math.isclose(
        uniformity(z, y, weights=counts, y_weights=y_counts.numpy()),
        uniformity(repeated, y_repeated),
        rel_tol=1e-10,
    )


def test_weighted_forms_with_equal_weights_are_the_unweighted_ones():
    z = sphere(200, 6, 22)
    assert math.isclose(uniformity(z, weights=np.full(200, 3.0)), uniformity(z), rel_tol=1e-12)
    assert uniformity(z, 3.0) == uniformity(z, t=3.0)  # a number in y's place is t
    with_self = math.log((1 + 199 * math.exp(uniformity(z))) / 200)  # mean over all 200^2
    assert math.isclose(uniformity(z, include_self=True), with_self, rel_tol=1e-12)


def test_sampled_weighted_and_two_set_uniformity_are_unbiased():
    z, y = sphere(300, 3, 23), sphere(200, 3, 24)
    c = torch.rand(300, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for kwargs in ({"weights": c}, {"y": y}, {"weights": c, "include_self": True}):
        exact = uniformity(z, **kwargs)
        estimates = [uniformity(z, max_pairs=4000, seed=s, **kwargs) for s in range(20)]
        assert all(not e.exact and e.n_pairs == 4000 for e in estimates)
        mean_g = np.mean([math.exp(e) for e in estimates])
        stderr_of_mean = math.exp(exact) * np.mean([e.stderr for e in estimates]) / math.sqrt(20)
        assert abs(mean_g - math.exp(exact)) < 4 * stderr_of_mean


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"weights": np.ones(4)}, ValueError, r"weights must hold one weight per row \(5\)"),
        ({"weights": np.ones((5, 1))}, ValueError, "weights must hold one weight per row"),
        ({"weights": [1, 1, -1, 1, 1]}, ValueError, "weights must be >= 0"),
        ({"weights": [1, 1, math.nan, 1, 1]}, ValueError, "weights must be finite"),
        ({"weights": [1, 1, math.inf, 1, 1]}, ValueError, "weights must be finite"),
        ({"weights": np.zeros(5)}, ValueError, "weights are all zero"),
        ({"weights": [0, 0, 2, 0, 0]}, ValueError, "positive on at least 2 rows"),
        ({"weights": ["a"] * 5}, TypeError, "weights must be real numbers"),
        ({"weights": torch.ones(5, dtype=torch.bool)}, TypeError, "weights must be real"),
        ({"y": sphere(3, 2, 1), "y_weights": [1, -1, 1]}, ValueError, "y_weights must be >= 0"),
        ({"y_weights": [1, 1, 1]}, ValueError, "y_weights given without y"),
        ({"y": sphere(3, 2, 1), "include_self": True}, ValueError, "include_self applies"),
        ({"y": sphere(3, 4, 1)}, ValueError, "same embedding width"),
        ({"y": 2.0, "t": 3.0}, TypeError, "pass t by keyword"),
    ],
)
def test_bad_weights_and_second_sets_are_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        uniformity(sphere(5, 2, 0), **kwargs)


def test_one_positive_weight_with_self_pairs_is_zero():
    assert uniformity(sphere(5, 2, 0), weights=[0, 0, 2, 0, 0], include_self=True) == 0.0


# 16384 rows: the smallest N whose N x N float32 matrix (1 GiB) is 4x the allowed growth
MEMORY_SCRIPT = """
import resource, sys, torch
import torch.nn.functional as F
from alignuniform import uniformity
N = 16_384
torch.manual_seed(0)
z = F.normalize(torch.randn(N, 128), dim=1)
y = F.normalize(torch.randn(N, 128), dim=1)
c = torch.rand(N)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
weighted = uniformity(z, weights=c)
two_sets = uniformity(z, y, y_weights=torch.rand(N))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(float(weighted), float(two_sets), (after - before) * 1024)
"""


@pytest.mark.slow
def test_weighted_and_two_set_uniformity_of_16384_rows_stay_light():
    from helpers.commands import child

    done = child("-c", MEMORY_SCRIPT, check=True)
    weighted, two_sets, extra = map(float, done.stdout.split())
    assert extra < 2**30 / 4  # the 16384 x 16384 weighted (or two-set) matrix alone is 1 GiB
    bound = uniformity_bound(128)
    assert abs(weighted - bound) < 0.01 and abs(two_sets - bound) < 0.01


def test_cli_samples_above_the_exact_limit_unless_told(tmp_path, capsys, monkeypatch):
    import json

    from alignuniform.cli import main
    from alignuniform.cli import metrics as cli_metrics

    monkeypatch.setattr(cli_metrics, "EXACT_PAIRS_LIMIT", 400)
    monkeypatch.setattr(cli_metrics, "SAMPLED_PAIRS", 300)
    path = tmp_path / "emb.npy"
    np.save(path, sphere(30, 4, 25).numpy())  # 435 pairs: above the limit
    assert main(["metrics", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    sampled = json.loads(captured.out)
    assert not sampled["uniformity_exact"] and sampled["n_pairs"] == 300
    assert "above the exact limit" in captured.err and "--exact" in captured.err
    assert main(["metrics", str(path), "--json", "--exact"]) == 0
    exact = json.loads(capsys.readouterr().out)
    assert exact["uniformity_exact"] and math.isclose(
        exact["uniformity"], lunif(sphere(30, 4, 25), 2.0), rel_tol=1e-9
    )
    assert main(["metrics", str(path), "--exact", "--max-pairs", "10"]) == 2
    assert "contradict" in capsys.readouterr().err
