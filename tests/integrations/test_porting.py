"""docs/porting.md, row by row: each original formula (lightly: the package) against our call."""

from __future__ import annotations

import math
import re
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import alignuniform as au
from alignuniform.core.errors import InvalidValueError
from alignuniform.nn import AlignUniformLoss
from helpers.minilm import SHIPPED_STS
from helpers.reference import lalign, lunif, sphere


def two_views(n: int = 32, d: int = 16, seed: int = 0, scale: float = 1.0):
    """Raw (unnormalised) float64 views: row i of b is a noisy copy of row i of a."""
    g = torch.Generator().manual_seed(seed)
    a = scale * torch.randn(n, d, generator=g, dtype=torch.float64)
    return a, a + 0.5 * scale * torch.randn(n, d, generator=g, dtype=torch.float64)


# --- official two-liners ------------------------------------------------------------------------


@pytest.mark.parametrize(("alpha", "t", "lam"), [(2, 2, 1), (1, 2, 0.5), (2, 1, 2), (1.5, 3, 1)])
def test_official_two_liners_equal_ours(alpha, t, lam):
    x, y = (F.normalize(v, dim=1) for v in two_views())
    assert au.align_loss(x, y, alpha).item() == pytest.approx(lalign(x, y, alpha).item(), rel=1e-12)
    assert au.uniform_loss(x, t=t).item() == pytest.approx(lunif(x, t).item(), rel=1e-12)
    assert au.alignment(x, y, alpha) == pytest.approx(lalign(x, y, alpha).item(), rel=1e-12)
    assert float(au.uniformity(x, t=t)) == pytest.approx(lunif(x, t).item(), rel=1e-12)
    official = lalign(x, y, alpha) + lam * (lunif(x, t) + lunif(y, t)) / 2
    ours = AlignUniformLoss(1, lam, alpha=alpha, t=t, normalize=False)(x, y)
    assert ours.item() == pytest.approx(official.item(), rel=1e-12)


def test_official_uniformity_underflows_where_ours_is_finite():
    x = torch.eye(4)  # every pair at squared distance 2
    assert lunif(x, t=60).item() == -math.inf  # exp(-120) underflows in float32
    assert au.uniform_loss(x, t=60).item() == pytest.approx(-120.0)
    assert float(au.uniformity(x, t=60)) == pytest.approx(-120.0)


# --- lightly's HypersphereLoss (the installed package) -----------------------------------------


@pytest.fixture
def lightly_loss():
    """lightly's module defining HypersphereLoss (lightly.loss does not export it)."""
    return pytest.importorskip(
        "lightly.loss.hypersphere_loss", reason="needs lightly: pip install '.[porting]'"
    )


@pytest.mark.parametrize(("t", "lam", "alpha"), [(1.0, 1.0, 2.0), (2.0, 1.0, 2.0), (2.0, 0.5, 1.0)])
def test_lightly_hypersphere_loss_equals_ours_at_matched_t(lightly_loss, t, lam, alpha):
    a, b = two_views(scale=3.0)  # both normalise their inputs
    theirs_a, theirs_b = a.clone().requires_grad_(), b.clone().requires_grad_()
    theirs = lightly_loss.HypersphereLoss(t=t, lam=lam, alpha=alpha)(theirs_a, theirs_b)
    theirs.backward()
    ours_a, ours_b = a.clone().requires_grad_(), b.clone().requires_grad_()
    ours = AlignUniformLoss(align_weight=1, uniform_weight=lam, alpha=alpha, t=t)(ours_a, ours_b)
    ours.backward()
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-12)
    torch.testing.assert_close(ours_a.grad, theirs_a.grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(ours_b.grad, theirs_b.grad, rtol=1e-9, atol=1e-12)


def test_lightly_defaults_differ_from_ours_by_t(lightly_loss):
    a, b = two_views()
    lightly_default = lightly_loss.HypersphereLoss()(a, b).item()
    assert AlignUniformLoss(t=1)(a, b).item() == pytest.approx(lightly_default, rel=1e-12)
    assert abs(AlignUniformLoss()(a, b).item() - lightly_default) > 0.1  # t = 2 vs t = 1


def test_batch_of_one_lightly_nan_ours_clear_error(lightly_loss):
    a, b = two_views(n=1)
    assert math.isnan(lightly_loss.HypersphereLoss()(a, b).item())
    with pytest.raises(InvalidValueError, match="at least 2 embeddings per view"):
        AlignUniformLoss()(a, b)


# --- DirectAU ------------------------------------------------------------------------------------


def directau_loss(user_e, item_e, gamma):
    """DirectAU's calculate_loss: normalised alignment + gamma * mean of the two uniformities."""
    u, i = F.normalize(user_e, dim=-1), F.normalize(item_e, dim=-1)
    return lalign(u, i, 2) + gamma * (lunif(u, 2) + lunif(i, 2)) / 2


def test_directau_loss_equals_ours():
    users, items = two_views(n=24, scale=2.0)
    users = torch.cat([users, users[:3]])  # a user interacting twice in the batch
    items = torch.cat([items, two_views(n=3, seed=5)[0]])
    for gamma in (0.5, 1.0, 2.0):
        ours = AlignUniformLoss(1, gamma)(users, items).item()
        assert ours == pytest.approx(directau_loss(users, items, gamma).item(), rel=1e-12)


def test_directau_weighted_measurement_equals_ours():
    u = sphere(20, 8, 3)
    counts = torch.arange(1, 21, dtype=torch.float64) % 7  # interaction counts, some users 0
    kernel = torch.exp(-2 * torch.cdist(u, u).pow(2))
    weight = counts[:, None] * counts[None, :]
    theirs = torch.log((weight * kernel).sum() / weight.sum()).item()  # i = j included
    assert float(au.uniformity(u, weights=counts, include_self=True)) == pytest.approx(
        theirs, rel=1e-10
    )
    assert abs(float(au.uniformity(u, weights=counts)) - theirs) > 1e-3  # our default: i != j
    assert abs(float(au.uniformity(u)) - theirs) > 1e-3  # unweighted: another quantity


# --- SimCSE-style community evaluation ------------------------------------------------------------


def hashed_encoder(dim: int = 8):
    """A deterministic text encoder: one fixed random vector per sentence."""
    from alignuniform.models.external.base import ExternalEncoder

    def encode(texts):
        seeds = [zlib.crc32(text.encode()) for text in texts]
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        return torch.stack([torch.randn(dim, generator=g) for g in gens])

    return encode, ExternalEncoder(encode, modality="text", info={"spec": "hashed"})


def community_per_batch(encode, pairs, batch_size: int, threshold: float = 4.0):
    """The per-batch recipe of community copies: means of per-batch alignment (positives of the
    batch) and uniformity (the batch's unique sentences), on normalised embeddings."""
    aligns, unifs = [], []
    for start in range(0, len(pairs.scores), batch_size):
        s1 = pairs.sentences1[start : start + batch_size]
        s2 = pairs.sentences2[start : start + batch_size]
        keep = [i for i, s in enumerate(pairs.scores[start : start + batch_size]) if s >= threshold]
        if keep:
            za = F.normalize(encode([s1[i] for i in keep]).double(), dim=1)
            zb = F.normalize(encode([s2[i] for i in keep]).double(), dim=1)
            aligns.append(lalign(za, zb, 2).item())
        sentences = list(dict.fromkeys(s1 + s2))
        unifs.append(lunif(F.normalize(encode(sentences).double(), dim=1), 2).item())
    return sum(aligns) / len(aligns), sum(unifs) / len(unifs)


def test_community_per_batch_mean_is_our_per_batch_estimator():
    from alignuniform.measure import measure
    from alignuniform.measure.sts import read_sts

    pairs = read_sts(SHIPPED_STS)
    encode, model = hashed_encoder()
    whole = measure(model, "sts", SHIPPED_STS)
    for batch_size in (16, 64):
        theirs = community_per_batch(encode, pairs, batch_size)
        ours = measure(model, "sts", SHIPPED_STS, estimator="per-batch", batch_size=batch_size)
        assert ours.alignment == pytest.approx(theirs[0], rel=1e-5)
        assert ours.uniformity == pytest.approx(theirs[1], rel=1e-5)
        assert abs(theirs[1] - whole.uniformity) > 1e-3  # the per-batch mean is not whole-set
    assert community_per_batch(encode, pairs, 16)[1] != pytest.approx(
        community_per_batch(encode, pairs, 64)[1], rel=1e-3
    )  # and it depends on the batch size; the whole-set value has none


# --- alignunformeval ------------------------------------------------------------------------------


def alignunformeval_alignment(vec_a: np.ndarray, vec_b: np.ndarray) -> float:
    """alignunformeval.eval.eval_alignment on encoded rows (float128 there; float64 here)."""
    return float(np.mean(np.linalg.norm(np.abs(vec_a - vec_b), axis=1, ord=2)))


def alignunformeval_uniform(vec: np.ndarray) -> float:
    """alignunformeval.eval.eval_uniform: logsumexp(-2 * pdist(vec)) - log(n), unsquared."""
    from scipy.spatial.distance import pdist
    from scipy.special import logsumexp

    dists = pdist(vec, "euclidean")
    return float(logsumexp(-2 * dists) - np.log(len(dists)))


def test_alignunformeval_alignment_is_alpha_1():
    a, b = two_views(scale=4.0)
    unit_a, unit_b = F.normalize(a, dim=1).numpy(), F.normalize(b, dim=1).numpy()
    theirs = alignunformeval_alignment(unit_a, unit_b)
    assert au.alignment(unit_a, unit_b, alpha=1) == pytest.approx(theirs, rel=1e-12)
    raw = alignunformeval_alignment(a.numpy(), b.numpy())  # what it reports without normalising
    assert au.alignment(a, b, alpha=1, normalize=True) == pytest.approx(theirs, rel=1e-12)
    assert raw > 3 * theirs
    with pytest.raises(InvalidValueError, match="unit-norm"):
        au.alignment(a, b, alpha=1)


def test_alignunformeval_uniformity_is_a_different_kernel():
    pair = F.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8]], dtype=torch.float64), dim=1)
    theirs = alignunformeval_uniform(pair.numpy())
    distance = math.dist(pair[0].tolist(), pair[1].tolist())
    assert theirs == pytest.approx(-2 * distance)
    assert float(au.uniformity(pair)) == pytest.approx(-(theirs**2) / 2, rel=1e-12)
    z = sphere(50, 8, 1)
    assert abs(alignunformeval_uniform(z.numpy()) - float(au.uniformity(z))) > 0.1


def test_every_test_the_guide_names_exists():
    guide = (Path(__file__).parents[2] / "docs" / "porting.md").read_text()
    named = set(re.findall(r"`(test_\w+)`", guide))
    assert len(named) == 10
    assert named <= {name for name in globals() if name.startswith("test_")}
