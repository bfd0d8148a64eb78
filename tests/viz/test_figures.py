"""The figures: real PNG/SVG files, the KDEs' formulas, colours, errors, and the sphere pipeline."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch
import yaml
from matplotlib import colormaps
from scipy import integrate, stats

from alignuniform.cli import main
from alignuniform.experiments.sphere import collect_sphere_rows
from alignuniform.models import create_encoder
from alignuniform.runs.checkpoint import save_checkpoint
from alignuniform.viz.figures import (
    SphereRow,
    gaussian_kde_2d,
    plot_dynamics,
    plot_scatter,
    plot_sphere,
    plot_weights,
    score_colors,
    vmf_kde,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_figure(png: Path, svg: Path) -> None:
    """A real PNG (signature, size, more than one colour) and an SVG document beside it."""
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 5_000
    pixels = matplotlib.image.imread(png)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 200
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 20
    text = svg.read_text()
    assert svg.suffix == ".svg" and "<svg" in text and text.rstrip().endswith("</svg>")


def circle(angles: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def sphere_rows(n: int = 400) -> list[SphereRow]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, n)
    clustered = circle(labels * math.pi / 2 + rng.normal(0, 0.1, n))
    spread = circle(rng.uniform(-math.pi, math.pi, n))
    return [
        SphereRow("supervised", clustered, labels, rng.uniform(0, 0.6, 300), 57.19),
        SphereRow("contrastive", spread, labels, rng.uniform(0.2, 1.5, 300), None),
    ]


@pytest.mark.parametrize("kappa", [0.5, 10.0, 100.0, 5000.0])
def test_vmf_kde_is_a_density_on_the_circle(kappa):
    angles = np.random.default_rng(1).uniform(-math.pi, math.pi, 7)
    total, _ = integrate.quad(
        lambda t: float(vmf_kde(angles, np.array([t]), kappa)[0]), -math.pi, math.pi, limit=400
    )
    assert total == pytest.approx(1.0, rel=1e-6)
    theta = np.linspace(-math.pi, math.pi, 50)
    reference = np.mean([stats.vonmises.pdf(theta, kappa, loc=a) for a in angles], axis=0)
    np.testing.assert_allclose(vmf_kde(angles, theta, kappa), reference, rtol=1e-6)


def test_vmf_kde_rejects_non_positive_kappa():
    with pytest.raises(ValueError, match="kappa"):
        vmf_kde(np.zeros(3), np.zeros(2), kappa=0.0)


def test_gaussian_kde_2d_matches_the_normal_density_and_integrates_to_one():
    points = np.array([[0.1, -0.2], [-0.3, 0.25]])
    density = gaussian_kde_2d(points, grid_size=201, bandwidth=0.1)
    axis = np.linspace(-1, 1, 201)
    grid_x, grid_y = np.meshgrid(axis, axis)
    grid = np.stack([grid_x, grid_y], axis=-1)
    reference = np.mean(
        [stats.multivariate_normal(p, 0.01 * np.eye(2)).pdf(grid) for p in points], axis=0
    )
    np.testing.assert_allclose(density, reference, rtol=1e-9, atol=1e-12)
    assert integrate.trapezoid(integrate.trapezoid(density, axis), axis) == pytest.approx(1, 1e-3)


def colormap_position(colors: np.ndarray) -> np.ndarray:
    """Where each colour lies on the red-to-blue map (0 = reddest, 1 = bluest)."""
    lut = colormaps["RdBu"](np.linspace(0, 1, 1001))
    return np.argmin(((colors[:, None, :3] - lut[None, :, :3]) ** 2).sum(-1), axis=1) / 1000


def test_score_colors_run_from_red_to_blue_and_flip_when_lower_is_better():
    values = [50.0, 60.0, 70.0, 80.0, 85.0]
    colors = score_colors(values)
    assert np.all(np.diff(colormap_position(colors)) > 0)
    worst, best = colors[0], colors[-1]
    assert worst[0] > worst[2] + 0.2 and best[2] > best[0] + 0.3  # red for worst, blue for best
    flipped = score_colors(values, lower_is_better=True)
    assert np.all(np.diff(colormap_position(flipped)) < 0)
    assert flipped[0][2] > flipped[0][0] + 0.3  # the lowest value is now the bluest
    middle = score_colors([70.0], value_range=(50.0, 90.0))
    assert colormap_position(middle)[0] == pytest.approx(0.5, abs=0.01)


@pytest.mark.slow
def test_plot_sphere_writes_png_and_svg(tmp_path):
    png, svg = plot_sphere(
        sphere_rows(), tmp_path / "sphere.png", classes=(2,), class_names=["a", "b", "c", "d"]
    )
    assert (png, svg) == (tmp_path / "sphere.png", tmp_path / "sphere.svg")
    assert_figure(png, svg)


def test_sphere_row_and_plot_sphere_reject_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"features must have shape \[N, 2\]"):
        SphereRow("x", np.zeros((5, 3)), np.zeros(5), np.zeros(4))
    with pytest.raises(ValueError, match="labels must have shape"):
        SphereRow("x", circle(np.zeros(5)), np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match="rows is empty"):
        plot_sphere([], tmp_path / "s")
    with pytest.raises(TypeError, match="SphereRow"):
        plot_sphere([{"label": "x"}], tmp_path / "s")
    with pytest.raises(ValueError, match="class_names"):
        plot_sphere(sphere_rows(50), tmp_path / "s", classes=(7,), class_names=["a", "b"])


def scatter_records() -> list[dict[str, str]]:
    rng = np.random.default_rng(2)
    rows = []
    for family in ("contrastive", "align_uniform", "mixed"):
        for _ in range(5):
            uniform, align = rng.uniform(-3.9, -1), rng.uniform(0.2, 1.5)
            accuracy = 80 + 5 * uniform + 10 * (1 - align)
            rows.append(
                {
                    "family": family,
                    "status": "finished",
                    "uniform": str(uniform),
                    "align": str(align),
                    "out/linear": f"{accuracy:.3f}",
                }
            )
    rows.append(
        {"family": "mixed", "status": "failed", "uniform": "", "align": "", "out/linear": ""}
    )
    return rows


def test_plot_scatter_writes_png_and_svg(tmp_path):
    assert_figure(
        *plot_scatter(
            scatter_records(),
            tmp_path / "scatter",
            accuracy_key="out/linear",
            title="Linear Classification on Outputs",
        )
    )


def test_plot_scatter_names_a_missing_column_and_empty_results(tmp_path):
    with pytest.raises(ValueError, match=r"out/knn.*columns present"):
        plot_scatter(scatter_records(), tmp_path / "s", accuracy_key="out/knn", title="t")
    failed = [r for r in scatter_records() if r["status"] == "failed"]
    with pytest.raises(ValueError, match="no finished entry"):
        plot_scatter(failed, tmp_path / "s", accuracy_key="out/linear", title="t")
    with pytest.raises(ValueError, match="empty"):
        plot_scatter([], tmp_path / "s", accuracy_key="out/linear", title="t")


def test_plot_weights_writes_figure_and_checks_lambda(tmp_path):
    records = [
        {
            "lambda": lam,
            "uniform": -3 * lam - 1e-4,
            "align": 1.2 * lam,
            "out/linear": 10 + 80 * lam * (1.2 - lam),
        }
        for lam in np.linspace(0, 1, 7)
    ]
    assert_figure(*plot_weights(records, tmp_path / "weights"))
    with pytest.raises(ValueError, match=r"lambda must lie in \[0, 1\]"):
        plot_weights([{**records[0], "lambda": 1.5}], tmp_path / "w")
    with pytest.raises(ValueError, match="lambda"):
        plot_weights(
            [{k: v for k, v in r.items() if k != "lambda"} for r in records], tmp_path / "w"
        )


def test_plot_dynamics_one_panel_per_run(tmp_path):
    def trajectory(with_accuracy: bool) -> list[dict]:
        return [
            {
                "epoch": e,
                "align": 0.6 - 0.03 * e,
                "uniform": -2 - 0.1 * e,
                **({"accuracy": 60 + e} if with_accuracy else {}),
            }
            for e in range(1, 9)
        ]

    runs = [("0.0025 La", trajectory(True)), ("0.0005 Lu", trajectory(False))]
    assert_figure(*plot_dynamics(runs, tmp_path / "dynamics"))
    # Many runs wrap into rows of four panels: as wide as four, twice as tall as one row.
    six_runs = [(f"run {i}", trajectory(i % 2 == 0)) for i in range(6)]
    png, _ = plot_dynamics(six_runs, tmp_path / "d6")
    png4, _ = plot_dynamics([(f"run {i}", trajectory(True)) for i in range(4)], tmp_path / "d4")
    six, four = matplotlib.image.imread(png).shape, matplotlib.image.imread(png4).shape
    assert six[1] == four[1] and 1.7 < six[0] / four[0] < 2.2
    with pytest.raises(ValueError, match="runs is empty"):
        plot_dynamics([], tmp_path / "d")
    with pytest.raises(ValueError, match="no record has 'align'"):
        plot_dynamics([("r", [{"epoch": 1, "loss": 0.3}])], tmp_path / "d")


def write_run(run_dir: Path, data_dir: Path, out_dim: int, seed: int) -> Path:
    """An untrained convnet checkpoint in a run directory, as `train` would leave it."""
    torch.manual_seed(seed)
    encoder = create_encoder("convnet", out_dim=out_dim)
    save_checkpoint(
        run_dir / "checkpoints" / "last.pt",
        {"encoder": encoder.spec, "model": encoder.state_dict(), "epoch": 0},
    )
    config = {
        "dataset": "fashion-mnist",
        "data_dir": str(data_dir),
        "encoder": "convnet",
        "out_dim": out_dim,
        "epochs": 0,
        "method": "twoview",
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    return run_dir


def test_collect_sphere_rows_from_a_2d_encoder(tmp_path, fmnist_dir):
    run = write_run(tmp_path / "init", fmnist_dir, out_dim=2, seed=0)
    (run / "eval.json").write_text('{"layers": {"out": {"linear": {"accuracy": 12.5}}}}')
    state = torch.random.get_rng_state()
    (row,) = collect_sphere_rows([run], num_points=60, num_pairs=25, batch_size=16)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched
    assert row.label == "init" and row.accuracy == 12.5
    assert row.features.shape == (60, 2) and row.labels.shape == (60,)
    np.testing.assert_allclose(np.linalg.norm(row.features, axis=1), 1.0, atol=1e-5)
    assert set(row.labels.tolist()) <= set(range(10)) and len(set(row.labels.tolist())) > 3
    assert row.positive_distances.shape == (25,)
    assert np.all((row.positive_distances >= 0) & (row.positive_distances <= 2 + 1e-6))
    options = {"num_points": 60, "num_pairs": 25, "batch_size": 16}
    again = collect_sphere_rows([run], labels=["random init"], **options)[0]
    assert again.label == "random init"  # the same seed gives the same subset and views
    np.testing.assert_allclose(again.features, row.features, atol=1e-6)
    np.testing.assert_allclose(again.positive_distances, row.positive_distances, atol=1e-6)
    other = collect_sphere_rows([run], seed=1, **options)[0]
    assert not np.allclose(other.positive_distances, row.positive_distances)


def test_collect_sphere_rows_refuses_other_dimensions(tmp_path, fmnist_dir):
    run = write_run(tmp_path / "wide", fmnist_dir, out_dim=8, seed=0)
    with pytest.raises(ValueError, match=r"out_dim=8.*needs out_dim=2"):
        collect_sphere_rows([run], num_points=10)
    with pytest.raises(ValueError, match="labels has 2 entries"):
        collect_sphere_rows([run], labels=["a", "b"])


def test_cli_plot_sphere(tmp_path, fmnist_dir, capsys):
    run = write_run(tmp_path / "init", fmnist_dir, out_dim=2, seed=0)
    args = ["plot", "sphere", str(run), "--points", "40", "--classes", "3", "--labels", "init"]
    assert main(args) == 0
    png = run / "figures" / "sphere.png"
    assert capsys.readouterr().out.split() == [str(png), str(png.with_suffix(".svg"))]
    assert_figure(png, png.with_suffix(".svg"))
    assert main(["plot", "sphere", str(run), "--classes", "0,x"]) == 2
    assert "--classes must be comma-separated integers" in capsys.readouterr().err
