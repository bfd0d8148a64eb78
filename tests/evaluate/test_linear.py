"""Fast linear probe (L-BFGS logistic regression) and the paper's linear-evaluation recipe."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from alignuniform.data import build_augmentation, load_dataset, recipe_info
from alignuniform.evaluate.linear import fit_linear_probe, linear_probe_accuracy
from alignuniform.evaluate.paper_probe import (
    PAPER_PROBES,
    milestones,
    probe_accuracy,
    probe_augmentation,
    train_paper_probe,
)
from alignuniform.models import create_encoder


def blobs(n: int, d: int, classes: int, spread: float, seed: int):
    """Gaussian blobs around well separated centres: features float64 [n, d], labels [n]."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, d, generator=generator, dtype=torch.float64) * 5
    labels = torch.arange(n) % classes
    noise = torch.randn(n, d, generator=generator, dtype=torch.float64) * spread
    return centres[labels] + noise, labels


def objective(features, labels, weight, bias, l2, mean, std):
    """The probe's objective, written out: mean CE of standardised features + (l2/2)||W||^2."""
    logits = ((features - mean) / std) @ weight.T + bias
    return F.cross_entropy(logits, labels) + 0.5 * l2 * weight.pow(2).sum()


def test_separable_blobs_are_classified_perfectly():
    x, y = blobs(600, 10, 4, spread=0.5, seed=0)
    x_test, y_test = blobs(200, 10, 4, spread=0.5, seed=0)
    assert linear_probe_accuracy(x, y, x_test, y_test) == 100.0


def test_solution_is_the_stationary_point_of_the_objective():
    x, y = blobs(300, 6, 3, spread=4.0, seed=1)  # overlapping: the optimum is interior
    l2 = 1e-2
    probe = fit_linear_probe(x, y, l2=l2, max_iter=1000, tolerance=1e-10)
    mean = x.mean(dim=0)
    std = ((x - mean) ** 2).mean(dim=0).sqrt()
    torch.testing.assert_close(probe.mean, mean)
    torch.testing.assert_close(probe.std, std)
    weight = probe.weight.clone().requires_grad_()
    bias = probe.bias.clone().requires_grad_()
    objective(x, y, weight, bias, l2, mean, std).backward()
    assert weight.grad.abs().max() < 1e-6
    assert bias.grad.abs().max() < 1e-6
    # and it is the minimum: any perturbation raises the objective
    with torch.no_grad():
        best = objective(x, y, probe.weight, probe.bias, l2, mean, std)
        nudged = objective(x, y, probe.weight + 1e-3, probe.bias, l2, mean, std)
    assert nudged > best


def test_predictions_ignore_affine_rescaling_of_features():
    x, y = blobs(400, 5, 3, spread=3.0, seed=2)
    x_test, _ = blobs(100, 5, 3, spread=3.0, seed=3)
    scale = torch.tensor([1e-3, 1.0, 50.0, 7.0, 1e3], dtype=torch.float64)
    shift = torch.tensor([5.0, -2.0, 0.0, 100.0, 1.0], dtype=torch.float64)
    plain = fit_linear_probe(x, y, max_iter=500, tolerance=1e-9)
    scaled = fit_linear_probe(x * scale + shift, y, max_iter=500, tolerance=1e-9)
    assert torch.equal(plain.predict(x_test), scaled.predict(x_test * scale + shift))


def test_constant_columns_are_harmless():
    x, y = blobs(200, 4, 2, spread=0.5, seed=4)
    x = torch.cat([x, torch.full((200, 2), 3.0, dtype=torch.float64)], dim=1)
    probe = fit_linear_probe(x, y)
    assert torch.isfinite(probe.weight).all()
    assert (probe.predict(x) == y).all()


def test_float32_features_give_a_float32_probe():
    x, y = blobs(200, 4, 2, spread=0.5, seed=5)
    probe = fit_linear_probe(x.float(), y, num_classes=3)
    assert probe.weight.dtype == torch.float32
    assert probe.weight.shape == (3, 4)
    assert probe.iterations >= 1


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"l2": 0.0}, ValueError, "l2 must be > 0"),
        ({"max_iter": 0}, ValueError, "max_iter"),
        ({"num_classes": 1}, ValueError, "num_classes=1"),
    ],
)
def test_bad_options_are_named(kwargs, error, message):
    x, y = blobs(20, 3, 2, spread=1.0, seed=6)
    with pytest.raises(error, match=message):
        fit_linear_probe(x, y, **kwargs)


def test_bad_inputs_are_named():
    x, y = blobs(20, 3, 2, spread=1.0, seed=7)
    with pytest.raises(ValueError, match="labels must have shape"):
        fit_linear_probe(x, y[:10])
    with pytest.raises(ValueError, match="NaN"):
        fit_linear_probe(x * float("inf"), y)
    with pytest.raises(TypeError, match="labels must be an integer"):
        fit_linear_probe(x, y.double())
    with pytest.raises(ValueError, match="columns"):
        fit_linear_probe(x, y).predict(x[:, :2])


def test_paper_schedule_drops_at_60_and_80_of_100_epochs():
    assert milestones(100) == [60, 80]
    assert milestones(10) == [6, 8]
    assert milestones(1) == [1]


def test_paper_probe_trains_a_linear_layer_reproducibly(fmnist_dir):
    data = load_dataset("fashion-mnist", "train", data_dir=fmnist_dir)
    encoder = create_encoder("identity")
    augment = build_augmentation(data.default_recipe)
    rows = torch.arange(256)
    state = torch.random.get_rng_state()
    first = train_paper_probe(encoder, "pixels", data, rows, augment, 10, epochs=1)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is left alone
    second = train_paper_probe(encoder, "pixels", data, rows, augment, 10, epochs=1)
    assert isinstance(first, torch.nn.Linear)
    assert first.weight.shape == (10, 784)
    assert torch.equal(first.weight, second.weight)
    third = train_paper_probe(encoder, "pixels", data, rows, augment, 10, epochs=1, seed=1)
    assert not torch.equal(first.weight, third.weight)


@pytest.mark.slow
def test_paper_probe_learns_the_classes(fmnist_dir):
    data = load_dataset("fashion-mnist", "train", data_dir=fmnist_dir)
    test = load_dataset("fashion-mnist", "test", data_dir=fmnist_dir)
    encoder = create_encoder("identity")
    augment = build_augmentation(data.default_recipe)
    classifier = train_paper_probe(
        encoder, "pixels", data, torch.arange(len(data)), augment, 10, epochs=8
    )
    from alignuniform.data import build_eval_transform

    with torch.no_grad():
        features = encoder(
            build_eval_transform(data.default_recipe)(test.get_batch(torch.arange(len(test)))[0]),
            layer="pixels",
        )
    assert probe_accuracy(classifier, features, test.labels) > 50.0  # chance is 10%


def colour_swatches(n: int, side: int) -> torch.Tensor:
    """n flat-coloured uint8 images [n, 3, side, side]: crops and flips leave each unchanged."""
    colours = torch.randint(40, 216, (n, 3), generator=torch.Generator().manual_seed(n))
    return colours.to(torch.uint8)[:, :, None, None].expand(n, 3, side, side)


def test_stl10_paper_probe_trains_on_crop_and_flip_only():
    """The official linear_eval.py: RandomResizedCrop(64, scale=(0.08, 1)) + flip, no colour
    ops: flat colours come through exactly, unlike the training recipe (jitter on every image,
    grayscale 1 in 5)."""
    swatches = colour_swatches(64, 96)
    mean, std, _, _ = recipe_info("stl10-paper")
    shape = (1, 3, 1, 1)
    torch.manual_seed(0)
    views = probe_augmentation("paper", "stl10-paper", 64)(swatches)
    pixels = views.double() * torch.tensor(std).view(shape) + torch.tensor(mean).view(shape)
    expected = swatches[:, :, :64, :64].double() / 255
    assert views.shape == (64, 3, 64, 64)
    assert (pixels - expected).abs().max() < 1e-5
    ops = [type(op).__name__ for op in probe_augmentation("paper", "stl10-paper", 64).ops]
    assert ops == ["RandomHorizontalFlip", "Normalize"]
    torch.manual_seed(0)
    training = build_augmentation("stl10-paper")(swatches).double()
    training = training * torch.tensor(std).view(shape) + torch.tensor(mean).view(shape)
    assert ((training - expected).abs().amax(dim=(1, 2, 3)) > 1e-3).all()


def test_imagenet100_probe_is_cmcs_sgd_recipe_on_cmcs_views():
    probe = PAPER_PROBES["paper-imagenet100"]
    assert (probe.epochs, probe.batch_size, probe.lr, probe.gamma) == (60, 256, 10.0, 0.2)
    assert probe.milestones(60) == [30, 40, 50] and probe.milestones(6) == [3, 4, 5]
    optimizer = probe.build_optimizer([torch.nn.Parameter(torch.zeros(2))])
    assert isinstance(optimizer, torch.optim.SGD)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (10.0, 0.9, 0)
    stl = PAPER_PROBES["paper"]
    assert (stl.epochs, stl.batch_size, stl.lr, stl.milestones(100)) == (100, 128, 1e-3, [60, 80])
    assert isinstance(stl.build_optimizer([torch.nn.Parameter(torch.zeros(2))]), torch.optim.Adam)
    augment = probe_augmentation("paper-imagenet100", "imagenet-cmc", 16)
    ops = [type(op).__name__ for op in augment.ops]
    assert ops == ["RandomHorizontalFlip", "RandomGrayscale", "ColorJitter", "Normalize"]
    swatches = colour_swatches(200, 20)
    torch.manual_seed(0)
    views = augment(swatches).double()
    mean, std, _, _ = recipe_info("imagenet-cmc")
    pixels = views * torch.tensor(std).view(1, 3, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1)
    spread = (pixels.amax(dim=1) - pixels.amin(dim=1)).amax(dim=(1, 2))  # 0: a gray image
    assert 0.1 < (spread < 1e-4).double().mean() < 0.3  # RandomGrayscale(p=0.2)


def test_paper_probe_trains_by_its_recipe(fmnist_dir):
    """SGD at lr 10 is not Adam at lr 1e-3: the two recipes give different classifiers from the
    same seed, and the SGD one moves its weights far more in one epoch."""
    data = load_dataset("fashion-mnist", "train", data_dir=fmnist_dir)
    encoder = create_encoder("identity")
    augment = probe_augmentation("paper", data.default_recipe, 28)
    rows = torch.arange(256)
    adam = train_paper_probe(encoder, "pixels", data, rows, augment, 10, epochs=1)
    sgd = train_paper_probe(
        encoder,
        "pixels",
        data,
        rows,
        augment,
        10,
        epochs=1,
        probe=PAPER_PROBES["paper-imagenet100"],
    )
    torch.manual_seed(0)
    initial = torch.nn.Linear(784, 10).weight  # seeded() starts every probe from seed 0
    assert (sgd.weight - initial).abs().max() > 10 * (adam.weight - initial).abs().max()


def test_the_config_schema_names_every_paper_probe():
    from alignuniform.runs.config import LINEAR_PROTOCOLS

    assert tuple(LINEAR_PROTOCOLS) == ("fast", *PAPER_PROBES)
