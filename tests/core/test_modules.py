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
from helpers.formats import REAL_FMNIST
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


def _features(encoder: nn.Module, data, recipe: str) -> tuple[torch.Tensor, torch.Tensor]:
    from alignuniform.data import build_eval_transform
    from alignuniform.evaluate import extract_features

    feats = extract_features(encoder, data, ["out"], transform=build_eval_transform(recipe))
    return feats["out"], torch.cat([labels for _, labels in data.batches(512)])


def _accuracies(encoder: nn.Module, train, test, recipe: str) -> dict[str, float]:
    from alignuniform.evaluate import knn_accuracy, linear_probe_accuracy

    (a, la), (b, lb) = _features(encoder, train, recipe), _features(encoder, test, recipe)
    return {"knn": knn_accuracy(a, la, b, lb, k=5), "linear": linear_probe_accuracy(a, la, b, lb)}


@pytest.mark.slow
def test_trains_the_default_encoder_like_the_clis_objective(fmnist_any, tmp_path, one_thread):
    """The CLI's trainer with its default objective vs AlignUniformLoss in a plain loop: same
    seed, batches, views and optimiser, so the same losses and, bit for bit, the same weights
    and accuracy. 1024 real Fashion-MNIST images when installed, else the 512-image fixture."""
    from alignuniform.core.distributed import DistInfo
    from alignuniform.data import build_augmentation, load_dataset
    from alignuniform.models import create_encoder
    from alignuniform.runs.checkpoint import load_checkpoint
    from alignuniform.runs.config import TrainConfig
    from alignuniform.runs.rundir import RunDir, read_jsonl
    from alignuniform.training.sampling import epoch_batches
    from alignuniform.training.trainer import train

    config = TrainConfig(
        data_dir=str(fmnist_any),
        subset=1024 if fmnist_any == REAL_FMNIST else 512,
        batch_size=128,
        epochs=2,
        heldout=128,
        evaluate=False,
        device="cpu",
    )
    assert config.loss == "align(alpha=2) + uniform(t=2)"  # the CLI's default objective
    run = RunDir(train(config, tmp_path / "cli", progress=False))
    cli_epochs = [record["loss"] for record in read_jsonl(run.metrics)]
    cli_encoder = create_encoder(config.encoder, out_dim=config.out_dim, in_channels=1)
    cli_encoder.load_state_dict(load_checkpoint(run.checkpoint)["model"])

    resolved = config.resolve()
    data = load_dataset("fashion-mnist", "train", data_dir=config.data_dir).subset(config.subset)
    torch.manual_seed(config.seed)
    encoder = create_encoder(config.encoder, out_dim=config.out_dim, in_channels=1)
    augment = build_augmentation("fashion-mnist")
    loss_fn = aunn.AlignUniformLoss()  # normalises in float32, as the trainer does
    optimizer = torch.optim.SGD(
        encoder.parameters(), lr=resolved.lr, momentum=0.9, weight_decay=resolved.weight_decay
    )
    epoch_losses = []
    for epoch in range(config.epochs):
        torch.manual_seed((config.seed * 1_000_003 + epoch) * 1009)  # the trainer's epoch seed
        losses = []
        for idx in epoch_batches(resolved, len(data), epoch, DistInfo()):
            images, _ = data.get_batch(idx)
            x, y = encoder(torch.cat([augment(images), augment(images)])).chunk(2)
            loss = loss_fn(x, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        epoch_losses.append(sum(losses) / len(losses))
    assert epoch_losses == pytest.approx(cli_epochs, rel=1e-6, abs=1e-6)
    for name, value in cli_encoder.state_dict().items():
        assert torch.equal(encoder.state_dict()[name], value), name

    test = load_dataset("fashion-mnist", "test", data_dir=config.data_dir)
    test = test.subset(min(1000, len(test)))
    ours = _accuracies(encoder, data, test, "fashion-mnist")
    cli = _accuracies(cli_encoder, data, test, "fashion-mnist")
    print(f"CLI objective: {cli}, AlignUniformLoss: {ours}, epoch losses {cli_epochs}")
    for protocol in ("knn", "linear"):
        assert abs(ours[protocol] - cli[protocol]) <= 0.5, (protocol, ours, cli)
