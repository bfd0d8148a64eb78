"""Kernel density estimates behind the circle figure (Fig. 3): a Gaussian KDE of features in
R^2 on a grid, and a von Mises-Fisher KDE of their angles on the circle."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import i0e

from alignuniform.core.errors import InvalidValueError

KDE_BANDWIDTH = 0.1
"""Standard deviation h of the isotropic Gaussian kernel of the feature density in R^2."""

VMF_KAPPA = 100.0
"""Concentration of the vMF kernel on angles: angular std ~ 1/sqrt(kappa) = 0.1 rad, as in R^2."""


def gaussian_kde_2d(
    points: np.ndarray, grid_size: int = 121, bandwidth: float = KDE_BANDWIDTH
) -> np.ndarray:
    """Density on a grid over [-1, 1]^2 (row = y, column = x):

    p(z) = mean_i exp(-||z - p_i||^2 / (2 h^2)) / (2 pi h^2),  h = ``bandwidth``,
    evaluated as one matrix product, since the kernel factorises over the two coordinates.
    """
    if bandwidth <= 0:
        raise InvalidValueError(f"bandwidth must be > 0, got {bandwidth}; it is the kernel's std")
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise InvalidValueError(f"points must have shape [N, 2] with N >= 1, got {points.shape}")
    axis = np.linspace(-1.0, 1.0, grid_size)
    total = np.zeros((grid_size, grid_size))
    for start in range(0, len(points), 2**16):  # bounded memory for any number of points
        block = points[start : start + 2**16]
        kernel_x, kernel_y = (
            np.exp(-((axis[:, None] - block[None, :, k]) ** 2) / (2.0 * bandwidth**2))
            for k in (0, 1)
        )
        total += kernel_y @ kernel_x.T
    return total / (len(points) * 2.0 * math.pi * bandwidth**2)


def vmf_kde(angles: np.ndarray, theta: np.ndarray, kappa: float = VMF_KAPPA) -> np.ndarray:
    """von Mises-Fisher KDE on the circle at ``theta``:

    p(theta) = mean_i exp(kappa cos(theta - theta_i)) / (2 pi I0(kappa)),
    computed as mean_i exp(kappa (cos(theta - theta_i) - 1)) / (2 pi i0e(kappa)), which never
    overflows (i0e(kappa) = exp(-kappa) I0(kappa)).
    """
    if kappa <= 0:
        raise InvalidValueError(f"kappa must be > 0, got {kappa}; it is the vMF concentration")
    theta = np.asarray(theta, dtype=np.float64)
    flat = theta.reshape(-1, 1)

    def kernel(block: np.ndarray) -> np.ndarray:
        return np.exp(kappa * (np.cos(flat - block[None, :]) - 1.0))

    density = _kernel_mean(np.asarray(angles, dtype=np.float64).ravel(), len(flat), kernel)
    return (density / (2.0 * math.pi * i0e(kappa))).reshape(theta.shape)


def _kernel_mean(points: np.ndarray, grid_count: int, kernel) -> np.ndarray:
    """mean over points of ``kernel(points_block)`` ([grid_count, block] each), in blocks of
    about 2^22 kernel values so memory stays bounded for any number of points."""
    if len(points) == 0:
        raise InvalidValueError("no points to estimate a density from")
    block = max(1, 2**22 // grid_count)
    total = np.zeros(grid_count)
    for start in range(0, len(points), block):
        total += kernel(points[start : start + block]).sum(1)
    return total / len(points)
