"""The uniform sphere's distance density and the two distance figures of the measure report."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from alignuniform.core.errors import InvalidValueError
from alignuniform.viz.distances import (
    plot_pair_distances,
    plot_positive_distances,
    uniform_sphere_distance_density,
)
from helpers.reference import sphere

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("dim", [2, 3, 8, 384])
def test_density_integrates_to_one_with_mean_square_two(dim):
    density = lambda r: float(uniform_sphere_distance_density(r, dim))  # noqa: E731
    points = [np.sqrt(2)]  # the mass concentrates at sqrt 2 in high dimension
    assert quad(density, 0, 2, points=points, limit=200)[0] == pytest.approx(1, abs=1e-7)
    # E||u - v||^2 = 2 - 2 E[u.v] = 2 for independent uniform u, v
    second = quad(lambda r: r * r * density(r), 0, 2, points=points, limit=200)[0]
    assert second == pytest.approx(2, abs=1e-7)


def test_density_closed_forms_and_outside_the_range():
    r = np.linspace(0.01, 1.99, 50)
    assert np.allclose(uniform_sphere_distance_density(r, 3), r / 2)  # S^2: p(r) = r / 2
    circle = 1 / (np.pi * np.sqrt(1 - r**2 / 4))  # S^1: angle uniform on [0, pi]
    assert np.allclose(uniform_sphere_distance_density(r, 2), circle)
    assert np.all(uniform_sphere_distance_density([-0.5, 0.0, 2.0, 3.0], 5) == 0)
    with pytest.raises(InvalidValueError, match="dim must be an integer >= 2"):
        uniform_sphere_distance_density(r, 1)


def test_density_matches_sampled_sphere_distances():
    u, v = sphere(200_000, 8, 0).numpy(), sphere(200_000, 8, 1).numpy()
    distances = np.linalg.norm(u - v, axis=1)
    for edge in (0.8, 1.2, 1.4, 1.6):
        expected = quad(lambda r: float(uniform_sphere_distance_density(r, 8)), 0, edge)[0]
        assert np.mean(distances < edge) == pytest.approx(expected, abs=4e-3)


def test_both_figures_are_pngs(tmp_path):
    z = sphere(30, 16, 2).numpy()
    pairs = np.linalg.norm(z[:, None] - z[None], axis=2)[np.triu_indices(30, 1)]
    png = plot_pair_distances(pairs, 16, tmp_path / "pairs", n_items=30)
    assert png.read_bytes()[:8] == PNG_SIGNATURE and (tmp_path / "pairs.svg").is_file()
    png = plot_positive_distances(pairs[:10], tmp_path / "positives")
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "pairs.png",
        "pairs.svg",
        "positives.png",
        "positives.svg",
    ]  # written atomically: no temporary file left
