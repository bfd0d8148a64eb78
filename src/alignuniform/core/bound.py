"""The uniformity of the uniform distribution on S^{dim-1}: the value no distribution on that
sphere goes below (in population), and its asymptotic expansions for large t.

    uniformity_bound(dim, t) = -2t + log 0F1(; dim/2; t^2)
                             = lgamma(b) + (1-b) log t + log(I_{b-1}(2t) e^{-2t}),  b = dim/2
"""

from __future__ import annotations

import math

import numpy as np

from alignuniform.core.validation import check_int, check_positive

__all__ = ["uniformity_bound"]

SERIES_MAX_T = 1e4  # up to here the series (about 10 sqrt(t) terms); beyond, asymptotic forms


def uniformity_bound(dim: int, t: float = 2.0) -> float:
    """-2t + log 0F1(; dim/2; t^2): uniformity of the uniform distribution on S^{dim-1}.

    No distribution on that sphere has a lower (population) uniformity. With b = dim/2,
    0F1(; b; t^2) = Gamma(b) t^(1-b) I_{b-1}(2t), so the bound is
    lgamma(b) + (1-b) log t + log(I_{b-1}(2t) e^{-2t}). For t <= 1e4 the hypergeometric series
    (positive terms) is summed in log space around its largest term; beyond, log(I e^{-x}) comes
    from its asymptotic expansions (Hankel for small orders, Debye for large ones), in constant
    time and memory for any t (they agree with the series to 1e-9 where they meet). Stable for
    any dim and t (e.g. dim=128, t=2 gives -3.93753).
    """
    dim = check_int(dim, "dim", hint=" (the embedding dimension)")
    t = check_positive(t, "t")
    b = dim / 2
    if t <= SERIES_MAX_T:
        return -2 * t + _log_hyp0f1(b, t * t)
    return math.lgamma(b) + (1 - b) * math.log(t) + _log_ive_at_2t(b - 1, t)


def _log_hyp0f1(b: float, z: float) -> float:
    """log 0F1(; b; z) for b, z > 0, summing the terms within e^-40 of the largest one."""
    from scipy.special import gammaln, logsumexp

    # terms rise while z / ((b + k)(k + 1)) > 1: the largest is near the positive root
    peak = max(0.0, (-(b + 1) + math.sqrt((b + 1) ** 2 + 4 * (z - b))) / 2)
    width = 10 * math.sqrt(peak + 1) + 40
    while True:
        k = np.arange(max(0.0, math.floor(peak - width)), math.ceil(peak + width) + 1)
        log_terms = k * math.log(z) - (gammaln(b + k) - gammaln(b)) - gammaln(k + 1)
        top = log_terms.max()
        if log_terms[-1] < top - 40 and (k[0] == 0 or log_terms[0] < top - 40):
            return float(logsumexp(log_terms))
        width *= 2


DEBYE_MIN_ORDER = 50  # from here Debye's expansion (error ~ order^-5) serves every argument


def _log_ive_at_2t(nu: float, t: float) -> float:
    """log(I_nu(x) e^{-x}) at x = 2t for large t (> 1e4 here, up to the largest float), any
    order, in O(1); x itself is never formed, so t near the float limit does not overflow.

    Orders below `DEBYE_MIN_ORDER` use Hankel's expansion in 1/x (x > 8 nu^2 here, so its
    terms fall fast); larger ones the uniform (Debye) expansion in 1/nu, with z = x/nu.
    """
    if abs(nu) < DEBYE_MIN_ORDER:
        mu, total, term = 4 * nu * nu, 1.0, 1.0
        for k in range(1, 60):
            term *= -(mu - (2 * k - 1) ** 2) / (k * 16 * t)
            total += term
            if abs(term) < 1e-17 * abs(total):
                break
        return -0.5 * (math.log(4 * math.pi) + math.log(t)) + math.log(total)
    z = t / nu * 2
    root = math.hypot(1.0, z)
    p = 1 / root
    u = (
        (3 * p - 5 * p**3) / 24,
        (81 * p**2 - 462 * p**4 + 385 * p**6) / 1152,
        (30375 * p**3 - 369603 * p**5 + 765765 * p**7 - 425425 * p**9) / 414720,
        (
            4465125 * p**4
            - 94121676 * p**6
            + 349922430 * p**8
            - 446185740 * p**10
            + 185910725 * p**12
        )
        / 39813120,
    )
    series = 1 + sum(uk / nu ** (k + 1) for k, uk in enumerate(u))
    # nu * eta - x, with eta = root + log(z / (1 + root)), written without cancellation
    exponent = nu / (root + z) - nu * math.asinh(1 / z)
    return exponent - 0.5 * math.log(2 * math.pi * nu) + 0.5 * math.log(p) + math.log(series)
