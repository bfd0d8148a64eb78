"""alignuniform.nn: the loss modules against the paper's float64 definitions, and under DDP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

import alignuniform.nn as aunn
from alignuniform import contrastive_loss
from alignuniform.core.errors import InvalidTypeError, InvalidValueError
from helpers.distributed import TinyEncoder, batch, init_rank, run_ranks
from helpers.reference import lalign, lunif, sphere


def views(n: int = 24, d: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two unnormalised views (float64) of n points: the modules normalise by default."""
    g = torch.Generator().manual_seed(seed)
    a = 3 * torch.randn(n, d, generator=g, dtype=torch.float64)
    return a, a + torch.randn(n, d, generator=g, dtype=torch.float64)


@pytest.mark.parametrize(
    ("align_weight", "uniform_weight", "alpha", "t"),
    [(1, 1, 2, 2), (0.98, 0.96, 2, 2), (1, 0.5, 1, 1), (0, 1, 2, 3), (2, 0, 1.5, 2)],
)
def test_align_uniform_loss_is_the_papers_minibatch_objective(
    align_weight, uniform_weight, alpha, t
):
    a, b = views()
    loss = aunn.AlignUniformLoss(align_weight, uniform_weight, alpha=alpha, t=t)(a, b)
    x, y = F.normalize(a, dim=1), F.normalize(b, dim=1)
    expected = align_weight * lalign(x, y, alpha) + uniform_weight * (lunif(x, t) + lunif(y, t)) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12, abs=1e-12)


def test_gradients_match_the_definition():
    a, b = views()
    ours_a, ours_b = a.clone().requires_grad_(), b.clone().requires_grad_()
    aunn.AlignUniformLoss(t=2)(ours_a, ours_b).backward()
    ref_a, ref_b = a.clone().requires_grad_(), b.clone().requires_grad_()
    x, y = F.normalize(ref_a, dim=1), F.normalize(ref_b, dim=1)
    (lalign(x, y) + (lunif(x) + lunif(y)) / 2).backward()
    torch.testing.assert_close(ours_a.grad, ref_a.grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(ours_b.grad, ref_b.grad, rtol=1e-9, atol=1e-12)


def test_normalize_false_requires_unit_vectors():
    a, b = views()
    strict = aunn.AlignUniformLoss(normalize=False)
    with pytest.raises(InvalidValueError, match="unit-norm"):
        strict(a, b)
    x, y = F.normalize(a, dim=1), F.normalize(b, dim=1)
    assert strict(x, y).item() == pytest.approx(aunn.AlignUniformLoss()(a, b).item(), rel=1e-12)


def test_batch_of_one_is_a_clear_error():
    a, b = views(n=1)
    with pytest.raises(InvalidValueError, match="at least 2 embeddings per view"):
        aunn.AlignUniformLoss()(a, b)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"align_weight": -1}, InvalidValueError, "align_weight must be >= 0"),
        ({"uniform_weight": "1"}, InvalidTypeError, "uniform_weight must be a real"),
        ({"align_weight": 0, "uniform_weight": 0}, InvalidValueError, "nothing to train"),
        ({"t": 0}, InvalidValueError, "t must be > 0"),
        ({"alpha": -2}, InvalidValueError, "alpha must be > 0"),
    ],
)
def test_bad_settings_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        aunn.AlignUniformLoss(**kwargs)


def test_mismatched_views_are_refused():
    a, b = views()
    with pytest.raises(InvalidValueError, match="z_a and z_b must have the same shape"):
        aunn.AlignUniformLoss()(a, b[:-1])


def test_contrastive_loss_module_is_eq1_on_normalised_views():
    a, b = views()
    x, y = F.normalize(a, dim=1), F.normalize(b, dim=1)
    assert aunn.ContrastiveLoss(tau=0.2)(a, b).item() == pytest.approx(
        contrastive_loss(x, y, 0.2).item(), rel=1e-12
    )
    with pytest.raises(InvalidValueError, match="tau must be > 0"):
        aunn.ContrastiveLoss(tau=0)


def test_modules_are_stateless_and_printable():
    loss = aunn.AlignUniformLoss(0.98, 0.96)
    assert list(loss.parameters()) == [] and loss.state_dict() == {}
    assert "uniform_weight=0.96" in repr(loss) and "t=2" in repr(loss)
    assert "tau=0.5" in repr(aunn.ContrastiveLoss(0.5))


def test_unit_sphere_inputs_give_the_same_loss_either_way():
    x, y = sphere(32, 16, 0), sphere(32, 16, 1)
    assert aunn.AlignUniformLoss(normalize=False)(x, y).item() == pytest.approx(
        aunn.AlignUniformLoss()(x, y).item(), rel=1e-12
    )


MODULES = {
    "align_uniform": lambda **kw: aunn.AlignUniformLoss(0.98, 0.96, alpha=2, t=2, **kw),
    "align1_uniform_t1": lambda **kw: aunn.AlignUniformLoss(1, 0.5, alpha=1, t=1, **kw),
    "contrastive": lambda **kw: aunn.ContrastiveLoss(tau=0.2, **kw),
}


def _loss_and_grads(model: nn.Module, loss_fn: nn.Module, a, b) -> tuple[float, list]:
    loss = loss_fn(model(a), model(b))
    model.zero_grad()
    loss.backward()
    return loss.item(), [p.grad.clone() for p in model.parameters()]


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    init_rank(rank, world, port)
    a, b = batch()
    rows = slice(rank * 16 // world, (rank + 1) * 16 // world)
    report = {}
    for name, make in MODULES.items():
        ref_loss, ref_grads = _loss_and_grads(TinyEncoder().double(), make(gather=False), a, b)
        model = nn.parallel.DistributedDataParallel(TinyEncoder().double())
        loss, grads = _loss_and_grads(model, make(), a[rows], b[rows])
        local, _ = _loss_and_grads(TinyEncoder().double(), make(gather=False), a[rows], b[rows])
        report[name] = {
            "loss": abs(loss - ref_loss),
            "grad": max((g - r).abs().max().item() for g, r in zip(grads, ref_grads, strict=True)),
            "grad_scale": max(r.abs().max().item() for r in ref_grads),
            "local_differs": abs(local - ref_loss),
        }
    Path(out, f"rank{rank}.json").write_text(json.dumps(report))
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_give_the_one_process_loss_and_gradients(tmp_path):
    run_ranks(_ddp_worker, 2, tmp_path)
    for rank in range(2):
        report = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert set(report) == set(MODULES)
        for name, diff in report.items():
            assert diff["loss"] < 1e-10, (rank, name, diff)
            assert diff["grad_scale"] > 1e-4, (rank, name, diff)
            assert diff["grad"] < 1e-5 * max(1.0, diff["grad_scale"]), (rank, name, diff)
            # without the gather each rank would see only its half: a different number
            assert diff["local_differs"] > 1e-3, (rank, name, diff)


class _Jitter(nn.Module):
    """A random view: x + 0.1 noise from torch's global generator (seeded by the test)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.1 * torch.randn_like(x)


def _spy_calls(monkeypatch, owner, name: str) -> list:
    """Record the first argument (self for a method) of every call to ``owner.name``."""
    calls, original = [], getattr(owner, name)

    def spy(first, *args, **kwargs):
        calls.append(first)
        return original(first, *args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return calls


def test_the_two_view_method_and_align_uniform_loss_are_one_path(monkeypatch):
    """The trainer's two-view method and AlignUniformLoss in a plain loop run the one
    ObjectiveLoss path on the same batch: equal losses and parameter gradients, bit for bit."""
    from alignuniform import Objective
    from alignuniform.training.methods import TwoViewMethod

    forwards = _spy_calls(monkeypatch, aunn.ObjectiveLoss, "forward")
    images, labels = batch()[0], torch.zeros(16, dtype=torch.long)
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 8)).double()
    method = TwoViewMethod(encoder, _Jitter(), Objective.parse("align(alpha=2) + uniform(t=2)"))
    torch.manual_seed(1)
    step = method(images, labels)
    step.loss.backward()
    method_grads = [p.grad.clone() for p in encoder.parameters()]

    encoder.zero_grad()
    loss_fn = aunn.AlignUniformLoss()  # the trainer's default objective as a module
    torch.manual_seed(1)
    views = torch.cat([method.augment(images), method.augment(images)])
    loss = loss_fn(*encoder(views).chunk(2))
    loss.backward()

    assert forwards == [method.loss, loss_fn]  # each path ran ObjectiveLoss.forward once
    assert isinstance(loss_fn, aunn.ObjectiveLoss) and loss_fn.objective == method.objective
    assert loss.dtype == step.loss.dtype == torch.float64
    assert torch.equal(loss, step.loss)
    assert list(step.terms) == ["align(alpha=2)", "uniform(t=2)"]
    for ours, theirs in zip(encoder.parameters(), method_grads, strict=True):
        assert torch.equal(ours.grad, theirs)


def test_a_loss_call_checks_each_view_once(monkeypatch):
    """Validation at the boundary only: one row check per view, then the terms trust them."""
    import alignuniform.core.validation as validation

    checked = _spy_calls(monkeypatch, validation, "check_embeddings")
    a, b = views()
    aunn.AlignUniformLoss(0.98, 0.96, alpha=1.5, t=3)(a, b)
    assert len(checked) == 2
    checked.clear()
    aunn.ContrastiveLoss(0.2)(a, b)
    assert len(checked) == 2


def test_objective_loss_returns_the_objectives_total_and_terms():
    from alignuniform import Objective

    a, b = views()
    objective = Objective.parse("0.5*align(alpha=1) + uniform(t=3) + 2*contrastive(tau=0.3)")
    out = aunn.ObjectiveLoss(objective)(a, b)
    x, y = F.normalize(a, dim=1), F.normalize(b, dim=1)
    assert torch.equal(out.total, objective(x, y).total)
    assert list(out.terms) == [term.name for _, term in objective.terms]
    assert out.terms["uniform(t=3)"].item() == pytest.approx(
        ((lunif(x, 3) + lunif(y, 3)) / 2).item(), rel=1e-12
    )
    with pytest.raises(InvalidTypeError, match="objective must be an Objective"):
        aunn.ObjectiveLoss("align + uniform")
    with pytest.raises(InvalidValueError, match="needs at least 2 embeddings per view"):
        aunn.ObjectiveLoss(objective)(a[:1], b[:1])


def test_pure_alignment_needs_only_one_pair():
    a, b = views(n=1)
    loss = aunn.AlignUniformLoss(1, 0)(a, b)
    x, y = F.normalize(a, dim=1), F.normalize(b, dim=1)
    assert loss.item() == pytest.approx(lalign(x, y).item(), rel=1e-12)
