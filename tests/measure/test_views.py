"""The views protocol on the tiny Fashion-MNIST: torchvision backbones and run directories."""

from __future__ import annotations

import math

import numpy as np
import torch

from alignuniform.measure import measure
from helpers.runs import untrained_run


def test_torchvision_resnet18_random_weights_on_grayscale(fmnist_dir, one_thread):
    kwargs = {"data_dir": str(fmnist_dir), "limit": 24, "batch_size": 12, "recipe": "dataset"}
    result = measure("torchvision:resnet18", "views", "fashion-mnist", **kwargs)
    assert result.model["weights"] is None
    assert "randomly initialised" in result.warnings[0]
    assert result.diagnostics["dim"] == 512 and result.protocol["n_positive_pairs"] == 24
    recipe = result.protocol["recipe"]
    assert recipe["name"] == "fashion-mnist" and recipe["chosen_as"] == "dataset"
    assert recipe["size"] == 28 and recipe["mean"] == [0.2860]  # the recipe in full
    assert 0 < result.alignment < 4 and math.isfinite(result.uniformity)
    again = measure("torchvision:resnet18", "views", "fashion-mnist", **kwargs)
    assert again.alignment == result.alignment  # seeded views


def test_a_run_directory_at_any_tap(fmnist_dir, tmp_path, one_thread):
    run = untrained_run(tmp_path / "run", fmnist_dir)
    out = measure(str(run), "views", "fashion-mnist", data_dir=str(fmnist_dir), limit=32)
    assert out.model["tap"] == "out" and out.model["dataset"] == "fashion-mnist"
    assert math.isclose(out.diagnostics["mean_norm"], 1.0, rel_tol=1e-5) and not out.warnings
    labels = measure(
        str(run), "labels", "fashion-mnist", data_dir=str(fmnist_dir), limit=32, tap="penultimate"
    )
    assert labels.model["tap"] != "out" and labels.protocol["n_classes"] > 1
    assert torch.isfinite(torch.tensor(labels.alignment))


def test_a_pretrained_models_own_preprocessing(fmnist_dir, one_thread):
    """labels: images through torchvision's own weights.transforms() (resize 256, crop 224,
    ImageNet mean/std), equal to applying that transform by hand; views: the dataset's recipe
    at the model's size and normalisation."""
    from torchvision import models

    from alignuniform.data import load_dataset
    from alignuniform.measure.datasets import dataset_rows
    from alignuniform.models.external import load_torchvision
    from helpers.reference import lunif64

    kwargs = {"data_dir": str(fmnist_dir), "limit": 4, "batch_size": 4}
    encoder = load_torchvision("resnet18")
    result = measure(encoder, "labels", "fashion-mnist", **kwargs)
    recipe = result.protocol["recipe"]
    assert recipe["name"] == "model" and recipe["source"] == "torchvision weights transforms()"
    assert (recipe["size"], recipe["resize"], recipe["interpolation"]) == (224, 256, "bilinear")
    data = load_dataset("fashion-mnist", "test", data_dir=str(fmnist_dir))
    images = data.get_batch(dataset_rows(len(data), 4, 0))[0].expand(-1, 3, -1, -1)
    by_hand = models.get_model_weights("resnet18").DEFAULT.transforms()(images)
    with torch.no_grad():
        z = encoder(by_hand).double()
    z = z / z.norm(dim=1, keepdim=True)
    assert abs(result.uniformity - lunif64(z)) < 1e-5
    views = measure(encoder, "views", "fashion-mnist", **kwargs)
    recipe = views.protocol["recipe"]
    assert recipe["chosen_as"] == "model" and recipe["size"] == 224
    assert recipe["mean"] == [0.485, 0.456, 0.406] and recipe["crop_scale"] == [0.3, 1.0]
    assert views.diagnostics["dim"] == 512


def test_image_pairs_get_the_pretrained_models_own_preprocessing(tmp_path, one_thread):
    """pairs of image files: each image through torchvision's weights.transforms() (resize the
    shorter side to 256, centre crop 224, ImageNet mean/std), equal to that transform by hand;
    ``--recipe`` other than ``model`` keeps the fixed-size resize, and the record says which."""
    from PIL import Image
    from torchvision import models

    from alignuniform.models.external import load_torchvision
    from helpers.reference import lalign64, lunif64

    rng = np.random.default_rng(0)
    sizes = [(300, 260), (240, 320), (280, 280), (500, 250)]  # (W, H): aspect ratios differ
    for i, size in enumerate(sizes):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
    (tmp_path / "pairs.tsv").write_text("0.png\t1.png\n2.png\t3.png\n")
    encoder = load_torchvision("resnet18")
    result = measure(encoder, "pairs", tmp_path / "pairs.tsv", batch_size=2, device="cpu")
    recipe = result.protocol["recipe"]
    assert recipe["name"] == "model" and (recipe["size"], recipe["resize"]) == (224, 256)
    by_hand = models.get_model_weights("resnet18").DEFAULT.transforms()
    images = [torch.from_numpy(np.array(Image.open(tmp_path / f"{i}.png"))) for i in range(4)]
    with torch.no_grad():
        z = torch.cat([encoder(by_hand(im.permute(2, 0, 1))[None]) for im in images]).double()
    z = z / z.norm(dim=1, keepdim=True)
    assert abs(result.uniformity - lunif64(z)) < 1e-5
    assert abs(result.alignment - lalign64(z[[0, 2]], z[[1, 3]])) < 1e-5
    resized = measure(encoder, "pairs", tmp_path / "pairs.tsv", recipe="dataset", device="cpu")
    assert resized.protocol["recipe"]["name"] == "resize"
    assert abs(resized.uniformity - result.uniformity) > 1e-4  # another input: another value
