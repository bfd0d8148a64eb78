"""AlignmentMetric / UniformityMetric: epoch value == one-shot value, in one process or two."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

import alignuniform as au
from alignuniform.core.errors import InvalidValueError
from helpers.distributed import init_rank, run_ranks
from helpers.reference import lalign64, lunif64, sphere

pytest.importorskip(
    "torchmetrics", reason="needs the torchmetrics extra: pip install '.[torchmetrics]'"
)
from alignuniform.integrations.torchmetrics_metrics import (
    AlignmentMetric,
    UniformityMetric,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: threads only wait

SIZES = [37, 12, 25, 40, 8, 31, 19, 44, 23, 11]  # 10 batches of unequal sizes, 250 rows


def data(n: int = sum(SIZES), d: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit embeddings with a cluster structure (so small batches see a different spread) and
    positives whose noise grows along the rows (so batches differ in alignment)."""
    x = F.normalize(sphere(n, d, 0) + 1.5 * sphere(n, d, 1)[torch.arange(n) % 3], dim=1)
    noise = torch.linspace(0.05, 1.0, n, dtype=torch.float64).unsqueeze(1) * sphere(n, d, 2)
    return x.float(), F.normalize(x + noise, dim=1).float()


def accumulate(x, y, sizes):
    """Both metrics over the batches ``sizes``; also the per-batch values forward() returns."""
    align, unif = AlignmentMetric(), UniformityMetric()
    per_batch = [
        (align(xb, yb).item(), unif(xb).item())
        for xb, yb in zip(x.split(sizes), y.split(sizes), strict=True)
    ]
    return align.compute().item(), unif.compute().item(), per_batch


def test_ten_batches_accumulate_to_the_one_shot_value_not_the_mean_of_batches():
    x, y = data()
    align, unif, per_batch = accumulate(x, y, SIZES)
    assert align == pytest.approx(au.alignment(x, y), rel=1e-12)
    assert align == pytest.approx(lalign64(x, y), rel=1e-6)
    assert unif == pytest.approx(float(au.uniformity(x)), rel=1e-12)
    assert unif == pytest.approx(lunif64(x), rel=1e-5)
    mean_align = sum(a for a, _ in per_batch) / len(per_batch)
    mean_unif = sum(u for _, u in per_batch) / len(per_batch)
    assert abs(mean_align - align) > 1e-3  # unequal batches: the mean of means is off
    assert abs(mean_unif - unif) > 1e-2  # within-batch pairs only: a different quantity


def test_the_value_does_not_depend_on_the_batch_size():
    x, y = data()
    one = accumulate(x, y, [10] * 25)
    other = accumulate(x, y, [50] * 5)
    assert one[0] == pytest.approx(other[0], rel=1e-12)
    assert one[1] == pytest.approx(other[1], rel=1e-12)
    batch_means = [sum(u for _, u in r[2]) / len(r[2]) for r in (one, other)]
    assert abs(batch_means[0] - batch_means[1]) > 1e-2  # what a per-batch metric would report


def test_past_the_cap_uniformity_is_the_sampled_estimate_with_its_standard_error():
    x, _ = data()
    metric = UniformityMetric(max_pairs=5000, seed=3)
    for xb in x.split(SIZES):
        metric.update(xb)
    value = metric.compute().item()
    reference = au.uniformity(x, max_pairs=5000, seed=3)
    assert value == float(reference)
    assert not metric.result.exact and metric.result.n_pairs == 5000
    assert metric.result.stderr == reference.stderr > 0
    assert abs(value - float(au.uniformity(x))) < 5 * metric.result.stderr
    metric.reset()
    assert metric.result is None and metric.rows == []


def test_exact_below_the_cap_and_normalize_option():
    x, y = data(40)
    metric = UniformityMetric(max_pairs=10_000, normalize=True)
    metric.update(3 * x)
    assert metric.compute().item() == pytest.approx(float(au.uniformity(x)), rel=1e-6)
    assert metric.result.exact and metric.result.stderr == 0
    align = AlignmentMetric(alpha=1, normalize=True)
    align.update(2 * x, 5 * y)
    assert align.compute().item() == pytest.approx(au.alignment(x, y, alpha=1), rel=1e-6)


def test_bad_inputs_are_refused_with_the_core_messages():
    x, y = data(10)
    with pytest.raises(InvalidValueError, match="unit-norm"):
        AlignmentMetric().update(2 * x, y)
    with pytest.raises(InvalidValueError, match="unit-norm"):
        UniformityMetric().update(2 * x)
    with pytest.raises(InvalidValueError, match="same shape"):
        AlignmentMetric().update(x, y[:5])
    with pytest.raises(InvalidValueError, match="needs positives"):
        AlignmentMetric().update(x)
    with pytest.raises(InvalidValueError, match="max_rows must be >= 4"):
        UniformityMetric(max_rows=3)
    unif = UniformityMetric()
    unif.update(x)
    with pytest.raises(InvalidValueError, match="dimension 8 but earlier batches had 16"):
        unif.update(F.normalize(x[:, :8], dim=1))
    with pytest.raises(InvalidValueError, match="max_pairs"):
        UniformityMetric(max_pairs=0)
    with pytest.raises(InvalidValueError, match="t must be > 0"):
        UniformityMetric(t=-1)


def _worker(rank: int, world: int, port: int, out: str) -> None:
    """Rank r updates with its contiguous share of the 10 batches; compute() syncs."""
    init_rank(rank, world, port)
    from alignuniform.integrations import torchmetrics_metrics

    shared = []  # how compute() called uniformity: with the tiles divided across the ranks?
    exact = torchmetrics_metrics.uniformity
    torchmetrics_metrics.uniformity = lambda *a, **k: (
        shared.append(k["distribute"]) or exact(*a, **k)
    )
    x, y = data()
    mine = range(rank * 10 // world, (rank + 1) * 10 // world)
    metrics = {
        "align": AlignmentMetric(),
        "uniform": UniformityMetric(),
        "sampled": UniformityMetric(max_pairs=5000, seed=3),
        "reservoir": UniformityMetric(max_rows=60, seed=3),
    }
    batches = list(zip(x.split(SIZES), y.split(SIZES), strict=True))
    for i in mine:
        xb, yb = batches[i]
        metrics["align"].update(xb, yb)
        metrics["uniform"].update(xb)
        metrics["sampled"].update(xb)
        metrics["reservoir"].update(xb)
    report = {name: metric.compute().item() for name, metric in metrics.items()}
    report["stderr"] = metrics["sampled"].result.stderr
    report["reservoir_stderr"] = metrics["reservoir"].result.stderr
    report["reservoir_kept"] = sum(len(rows) for rows in metrics["reservoir"].rows)
    report["local_rows"] = sum(SIZES[i] for i in mine)
    report["shared"] = shared
    Path(out, f"rank{rank}.json").write_text(json.dumps(report))
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_give_the_one_process_value_on_all_the_data(tmp_path):
    run_ranks(_worker, 2, tmp_path)
    x, y = data()
    sampled = au.uniformity(x, max_pairs=5000, seed=3)
    for rank in range(2):
        report = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert report["local_rows"] < len(x)  # each rank saw only part of the data
        assert report["align"] == pytest.approx(au.alignment(x, y), rel=1e-12)
        # float32 tiles: the ranks' thread count (1 each) rounds the matrix products differently
        assert report["uniform"] == pytest.approx(float(au.uniformity(x)), rel=1e-7)
        assert report["sampled"] == float(sampled) and report["stderr"] == sampled.stderr
        assert report["reservoir_kept"] <= 2 * 60 + max(SIZES)  # memory: this rank's sample
        assert report["shared"] == [True, True, True]  # each synced compute divided its tiles
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    # one sample of the union, the same on both ranks, an estimate within its error
    assert reports[0]["reservoir"] == reports[1]["reservoir"]
    assert reports[0]["reservoir_stderr"] == reports[1]["reservoir_stderr"] > 0
    error = abs(reports[0]["reservoir"] - float(au.uniformity(x)))
    assert error < 4 * reports[0]["reservoir_stderr"]


def test_both_metrics_refuse_compute_before_any_update_with_the_same_error():
    messages = []
    for metric in (AlignmentMetric(), UniformityMetric()):
        with (
            pytest.warns(UserWarning, match="before the ``update``"),  # torchmetrics' own
            pytest.raises(InvalidValueError, match=r"compute\(\) needs data") as caught,
        ):
            metric.compute()
        messages.append(str(caught.value).split(".compute()")[1])
    assert messages[0] == messages[1]


def test_one_row_batches_count_and_their_own_uniformity_is_nan():
    x, y = data(5)
    align, unif = AlignmentMetric(), UniformityMetric()
    batch_values = [(align(x[i : i + 1], y[i : i + 1]), unif(x[i : i + 1])) for i in range(5)]
    assert all(torch.isnan(u) for _, u in batch_values)  # one row has no pair
    assert batch_values[2][0].item() == pytest.approx(au.alignment(x[2:3], y[2:3]), rel=1e-12)
    assert unif.compute().item() == pytest.approx(float(au.uniformity(x)), rel=1e-12)
    assert align.compute().item() == pytest.approx(au.alignment(x, y), rel=1e-12)
    lonely = UniformityMetric()
    lonely.update(x[:1])
    with pytest.raises(InvalidValueError, match="at least 2 rows in all"):
        lonely.compute()


def test_a_metric_collection_feeds_both_from_one_update():
    from torchmetrics import MetricCollection

    x, y = data()
    collection = MetricCollection([AlignmentMetric(), UniformityMetric()], prefix="val/")
    for xb, yb in zip(x.split(SIZES), y.split(SIZES), strict=True):
        collection.update(xb, yb)
    values = {k: v.item() for k, v in collection.compute().items()}
    assert values["val/AlignmentMetric"] == pytest.approx(au.alignment(x, y), rel=1e-12)
    assert values["val/UniformityMetric"] == pytest.approx(float(au.uniformity(x)), rel=1e-12)


def test_plot_draws_the_values_over_steps_into_a_real_png(tmp_path):
    x, _ = data()
    metric = UniformityMetric()
    values = [metric(xb) for xb in x.split(SIZES)]
    figure, axes = metric.plot(values)
    figure.savefig(tmp_path / "uniformity.png")
    assert (tmp_path / "uniformity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    drawn = axes.lines[0].get_ydata()
    assert list(drawn) == pytest.approx([v.item() for v in values])
    assert max(drawn) < -1 and axes.get_ylim()[1] >= 0.0  # drawn up to the bound 0 (constant f)
    _, single = AlignmentMetric().plot(torch.tensor(0.5))
    assert single.get_ylabel() == "AlignmentMetric"


def test_max_rows_bounds_memory_and_reports_an_estimate_with_a_calibrated_error():
    """20 seeds: the estimates scatter around the exact value as their standard error says."""
    points = F.normalize(sphere(1000, 8, 4), dim=1)
    exact = float(au.uniformity(points))
    estimates, errors = [], []
    for seed in range(20):
        metric = UniformityMetric(max_rows=200, seed=seed)
        for batch in points.split(100):
            metric.update(batch)
            assert sum(len(rows) for rows in metric.rows) <= 2 * 200 + 100
        estimates.append(metric.compute().item())
        assert not metric.result.exact and metric.result.n_pairs == 200 * 199 // 2
        errors.append(metric.result.stderr)
    spread = torch.tensor(estimates).std().item()
    mean_error = sum(errors) / len(errors)
    print(f"exact {exact:.5f}; 20 estimates sd {spread:.5f}, mean reported stderr {mean_error:.5f}")
    assert 0.6 < mean_error / spread < 1.6
    assert abs(sum(estimates) / 20 - exact) < 3 * spread / 20**0.5  # unbiased to first order
    through_forward = UniformityMetric(max_rows=50)  # forward() merges states: bounded too
    for batch in points.split(40):
        through_forward(batch)
        assert sum(len(rows) for rows in through_forward.rows) <= 2 * 50 + 40
    assert int(through_forward.seen) == len(points) and through_forward.compute() < 0
    small = UniformityMetric(max_rows=500)  # fewer rows than the cap: exact
    small.update(points[:300])
    assert small.compute().item() == pytest.approx(float(au.uniformity(points[:300])), rel=1e-12)
    assert small.result.exact
