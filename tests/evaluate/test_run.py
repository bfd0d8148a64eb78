"""evaluate_encoder / evaluate_run: schema, CV, feature cache, geometry, errors, real pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from alignuniform.core.metrics import uniformity_bound
from alignuniform.data import ImageData, Recipe, build_eval_transform, load_dataset
from alignuniform.data.imagedata import TensorSource
from alignuniform.evaluate import (
    FeatureCache,
    cross_validate,
    evaluate_encoder,
    evaluate_run,
    extract_features,
    fit_linear_probe,
    format_table,
    kfold_assignment,
    knn_accuracy,
    layer_geometry,
)
from alignuniform.models import create_encoder
from alignuniform.runs.checkpoint import CheckpointError, save_checkpoint
from alignuniform.runs.config import EvalOptions
from helpers.formats import write_imagenet_tree
from helpers.reference import lunif64
from helpers.runs import untrained_run

# A recipe whose two "augmentations" are the same image: crop of the whole square, no flip.
STILL = Recipe(28, 1, (0.5,), (0.25,), crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0)


def test_eval_json_of_a_run_has_the_documented_schema(fmnist_dir, tmp_path):
    run = untrained_run(tmp_path / "run", fmnist_dir)
    results = evaluate_run(run, subset=256)
    assert json.loads((run / "eval.json").read_text()) == results
    assert set(results) == {"layers", "dataset", "encoder", "images", "linear_protocol", "time_s"}
    assert (results["dataset"], results["encoder"]) == ("fashion-mnist", "convnet")
    assert results["images"] == {"train": 256, "test": 200}  # subset=256 of 512 / 200
    assert results["linear_protocol"] == "fast"
    assert list(results["layers"]) == ["out", "penultimate"]
    for layer, tap, dim in (("out", "out", 128), ("penultimate", "fc", 512)):
        entry = results["layers"][layer]
        assert set(entry) == {
            "linear",
            "knn",
            "alignment",
            "uniformity",
            "uniformity_bound",
            "dim",
            "tap",
        }
        assert (entry["tap"], entry["dim"]) == (tap, dim)
        for protocol in ("linear", "knn"):
            assert set(entry[protocol]) == {"accuracy"}
            assert 0.0 <= entry[protocol]["accuracy"] <= 100.0
        assert 0.0 <= entry["alignment"] <= 4.0
        assert entry["uniformity"] <= 0.0
        assert entry["uniformity_bound"] == uniformity_bound(dim, 2.0)
    assert results["time_s"] > 0
    table = format_table(results)
    assert "penultimate" in table and "fc" in table and "convnet on fashion-mnist" in table


def test_folds_add_cv_mean_and_std_of_the_fold_scores(fmnist_dir, tmp_path):
    encoder = create_encoder("identity")
    results = evaluate_encoder(
        encoder,
        "fashion-mnist",
        data_dir=fmnist_dir,
        layers=["out"],
        protocols=["knn"],
        folds=3,
        subset=120,
        cache_dir=tmp_path,
    )
    knn = results["layers"]["out"]["knn"]
    train = load_dataset("fashion-mnist", "train", data_dir=fmnist_dir).subset(120)
    features = extract_features(
        encoder, train, ["out"], transform=build_eval_transform("fashion-mnist")
    )["out"]
    folds = kfold_assignment(120, 3, labels=train.labels, seed=0)
    scores = [
        knn_accuracy(
            features[folds != f],
            train.labels[folds != f],
            features[folds == f],
            train.labels[folds == f],
        )
        for f in range(3)
    ]
    assert knn["cv_mean"] == pytest.approx(np.mean(scores))
    assert knn["cv_std"] == pytest.approx(np.std(scores))


def test_kfold_assignment_partitions_and_stratifies():
    labels = torch.tensor([0] * 10 + [1] * 7 + [2] * 3)
    folds = kfold_assignment(20, 5, labels=labels, seed=3)
    assert folds.shape == (20,) and set(folds.tolist()) == set(range(5))
    assert torch.bincount(folds).tolist() == [4, 4, 4, 4, 4]
    for c, size in ((0, 10), (1, 7), (2, 3)):
        per_fold = torch.bincount(folds[labels == c], minlength=5)
        assert per_fold.min() >= size // 5 and per_fold.max() <= -(-size // 5)
    assert torch.equal(folds, kfold_assignment(20, 5, labels=labels, seed=3))
    assert not torch.equal(folds, kfold_assignment(20, 5, labels=labels, seed=4))
    plain = kfold_assignment(23, 4, seed=0)
    assert sorted(torch.bincount(plain).tolist()) == [5, 6, 6, 6]


def test_cross_validate_reports_mean_and_population_std():
    seen = []

    def score(train_rows, held_out):
        assert not set(train_rows.tolist()) & set(held_out.tolist())
        assert len(train_rows) + len(held_out) == 10
        seen.append(sorted(held_out.tolist()))
        return float(held_out.sum())

    result = cross_validate(score, 10, 4, seed=1)
    assert sorted(i for fold in seen for i in fold) == list(range(10))
    sums = [sum(fold) for fold in seen]
    assert result["cv_mean"] == pytest.approx(np.mean(sums))
    assert result["cv_std"] == pytest.approx(np.std(sums))


@pytest.mark.parametrize("folds", [1, 11, -2, 2.5])
def test_bad_fold_counts_are_refused(folds):
    with pytest.raises(ValueError, match="folds must be"):
        kfold_assignment(10, folds)


def test_feature_cache_is_reused_then_invalidated_by_new_weights(fmnist_dir, tmp_path):
    data = load_dataset("fashion-mnist", "test", data_dir=fmnist_dir).subset(64)
    encoder = create_encoder("convnet")
    transform = build_eval_transform("fashion-mnist")
    options = {"transform": transform, "batch_size": 32, "device": "cpu", "progress": False}
    cache = FeatureCache(tmp_path, encoder, "fashion-mnist@28")
    first = cache.features(data, ["fc", "out"], **options)
    direct = extract_features(encoder, data, ["fc", "out"], transform=transform, batch_size=64)
    torch.testing.assert_close(first["fc"], direct["fc"])
    files = sorted(tmp_path.glob("*.pt"))
    assert len(files) == 2
    # reuse: what the file holds is what comes back, nothing is recomputed
    planted = torch.load(files[0], weights_only=True)
    planted["features"] = torch.full_like(planted["features"], 7.0)
    torch.save(planted, files[0])
    tap = "fc" if "-fc-" in files[0].name else "out"
    assert (
        FeatureCache(tmp_path, encoder, "fashion-mnist@28").features(data, [tap], **options)[tap]
        == 7.0
    ).all()
    # new weights: a miss, fresh features, and the stale file is gone
    with torch.no_grad():
        encoder.stages["fc"][1].weight.mul_(2.0)
    fresh = FeatureCache(tmp_path, encoder, "fashion-mnist@28").features(data, [tap], **options)
    assert not (fresh[tap] == 7.0).all()
    torch.testing.assert_close(
        fresh[tap], extract_features(encoder, data, [tap], transform=transform)[tap]
    )
    assert not files[0].exists()
    assert len(sorted(tmp_path.glob("*.pt"))) == 2


def test_damaged_cache_file_is_recomputed(fmnist_dir, tmp_path):
    data = load_dataset("fashion-mnist", "test", data_dir=fmnist_dir).subset(16)
    encoder = create_encoder("identity")
    options = {
        "transform": build_eval_transform("fashion-mnist"),
        "batch_size": 8,
        "device": "cpu",
        "progress": False,
    }
    cache = FeatureCache(tmp_path, encoder, "x")
    good = cache.features(data, ["pixels"], **options)["pixels"]
    (path,) = tmp_path.glob("*.pt")
    path.write_bytes(b"not a torch file")
    assert torch.equal(cache.features(data, ["pixels"], **options)["pixels"], good)


def test_uniformity_matches_the_pairwise_definition_and_identical_views_align(fmnist_dir):
    data = load_dataset("fashion-mnist", "test", data_dir=fmnist_dir).subset(150)
    encoder = create_encoder("convnet")
    features = extract_features(encoder, data, ["fc", "out"], transform=build_eval_transform(STILL))
    geometry = layer_geometry(encoder, data, features, augment=build_eval_transform(STILL))
    for tap in ("fc", "out"):
        assert geometry[tap]["uniformity"] == pytest.approx(
            lunif64(torch.nn.functional.normalize(features[tap].double(), dim=1)), abs=1e-5
        )
        assert geometry[tap]["alignment"] == pytest.approx(0.0, abs=1e-10)
        assert geometry[tap]["dim"] == features[tap].shape[1]


def test_alignment_of_random_views_is_seeded_and_leaves_global_rng_alone(fmnist_dir):
    from alignuniform.data import build_augmentation

    data = load_dataset("fashion-mnist", "test", data_dir=fmnist_dir).subset(100)
    encoder = create_encoder("identity")
    features = extract_features(
        encoder, data, ["out"], transform=build_eval_transform("fashion-mnist")
    )
    augment = build_augmentation("fashion-mnist")
    state = torch.random.get_rng_state()
    first = layer_geometry(encoder, data, features, augment=augment)["out"]["alignment"]
    assert torch.equal(torch.random.get_rng_state(), state)
    again = layer_geometry(encoder, data, features, augment=augment)["out"]["alignment"]
    other = layer_geometry(encoder, data, features, augment=augment, seed=5)["out"]["alignment"]
    assert first == again
    assert first != other
    assert 0.0 < first < 4.0


def test_unknown_layer_lists_the_taps(fmnist_dir):
    with pytest.raises(ValueError, match="conv1, conv2, conv3, fc, out"):
        evaluate_encoder(
            create_encoder("convnet"), "fashion-mnist", data_dir=fmnist_dir, layers=["fc7"]
        )


def test_checkpoint_of_another_architecture_is_a_clear_error(fmnist_dir, tmp_path):
    run = untrained_run(tmp_path / "run", fmnist_dir)
    wrong = create_encoder("convnet", hidden=64)
    save_checkpoint(
        run / "checkpoints" / "last.pt",
        {"encoder": create_encoder("convnet").spec, "model": wrong.state_dict()},
    )
    with pytest.raises(CheckpointError, match="does not fit encoder 'convnet'"):
        evaluate_run(run)
    assert not (run / "eval.json").exists()


def test_dataset_without_labels_is_a_clear_error(fmnist_dir):
    images = torch.zeros(8, 1, 28, 28, dtype=torch.uint8)

    def split(name: str, labels: list[int]) -> ImageData:
        return ImageData(
            TensorSource(images),
            torch.tensor(labels),
            name="mine",
            split=name,
            classes=["a", "b"],
            default_recipe="fashion-mnist",
        )

    with pytest.raises(ValueError, match="'train' has images without labels"):
        evaluate_encoder(
            create_encoder("identity"), (split("train", [-1] * 8), split("test", [0, 1] * 4))
        )
    with pytest.raises(ValueError, match="'test' has images without labels"):
        evaluate_encoder(
            create_encoder("identity"), (split("train", [0, 1] * 4), split("test", [0] * 7 + [-1]))
        )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"protocols": ["svm"]}, ValueError, "unknown protocols"),
        ({"protocols": "knn"}, TypeError, "protocols must be a non-empty sequence"),
        ({"folds": 1}, ValueError, "folds: must be 0"),
        ({"linear_protocol": "slow"}, ValueError, "linear_protocol: must be one of"),
        ({"subset": 0}, ValueError, "subset must be a positive int"),
        ({"layers": []}, TypeError, "layers must be a non-empty sequence"),
    ],
)
def test_bad_options_are_named(fmnist_dir, kwargs, error, message):
    with pytest.raises(error, match=message):
        evaluate_encoder(create_encoder("identity"), "fashion-mnist", data_dir=fmnist_dir, **kwargs)


def test_encoder_for_other_images_is_refused(fmnist_dir):
    with pytest.raises(ValueError, match="takes 3-channel images but fashion-mnist has 1"):
        evaluate_encoder(
            create_encoder("convnet", in_channels=3), "fashion-mnist", data_dir=fmnist_dir
        )
    with pytest.raises(TypeError, match="must be an alignuniform Encoder"):
        evaluate_encoder(torch.nn.Linear(2, 2), "fashion-mnist", data_dir=fmnist_dir)


def test_paper_linear_protocol_trains_through_the_encoder(fmnist_dir):
    from alignuniform.evaluate import train_paper_probe
    from alignuniform.evaluate.paper_probe import probe_accuracy, probe_augmentation

    encoder = create_encoder("identity")
    results = evaluate_encoder(
        encoder,
        "fashion-mnist",
        data_dir=fmnist_dir,
        layers=["penultimate"],
        protocols=["linear"],
        linear_protocol="paper",
        paper_epochs=2,
        subset=128,
    )
    entry = results["layers"]["penultimate"]
    assert entry["tap"] == "pixels"
    train = load_dataset("fashion-mnist", "train", data_dir=fmnist_dir).subset(128)
    test = load_dataset("fashion-mnist", "test", data_dir=fmnist_dir).subset(128)
    classifier = train_paper_probe(
        encoder,
        "pixels",
        train,
        torch.arange(128),
        probe_augmentation("paper", "fashion-mnist", 28),  # crop + flip, no jitter
        10,
        epochs=2,
    )
    features = extract_features(
        encoder, test, ["pixels"], transform=build_eval_transform("fashion-mnist")
    )["pixels"]
    assert entry["linear"]["accuracy"] == probe_accuracy(classifier, features, test.labels)
    assert results["linear_protocol"] == "paper, 2 epochs"


def test_imagenet100_probe_crops_whole_images_of_a_folder_dataset(tmp_path):
    """The ImageNet-100 probe on an image folder: its training views come from the whole decoded
    images (a `Canvas`), as CMC's ImageFolder + RandomResizedCrop does; eval.json names it."""
    from alignuniform.data.imagedata import Canvas
    from alignuniform.evaluate.run import whole_images

    root = write_imagenet_tree(tmp_path / "in", size=(30, 40))
    name = f"imagefolder:{root}"
    train = load_dataset(name, "train", image_size=16, resize=18)
    whole = whole_images(name, None, None, train)
    images, _ = whole.get_batch(torch.arange(2))
    assert isinstance(images, Canvas) and images.extents.tolist() == [[30, 40], [30, 40]]
    assert whole.labels.tolist() == train.labels.tolist()
    assert whole_images((train, train), None, None, train) is train
    results = evaluate_encoder(
        create_encoder("identity", in_channels=3),
        name,
        layers=["penultimate"],
        protocols=["linear"],
        linear_protocol="paper-imagenet100",
        paper_epochs=1,
        subset=8,
    )
    assert results["linear_protocol"] == "paper-imagenet100, 1 epochs"
    assert 0 <= results["layers"]["penultimate"]["linear"]["accuracy"] <= 100


@pytest.mark.realdata
@pytest.mark.slow
def test_raw_fashion_mnist_pixels_reach_the_published_baselines():
    """Real data (/usr/share/datasets/fashion-mnist), raw pixels through the identity encoder:
    all 60k training images; 5-NN scored on the first 2000 test images, the linear probe cut at
    40 L-BFGS iterations to stay fast (converged full-size numbers: see the evaluation report)."""
    encoder = create_encoder("identity")
    transform = build_eval_transform("fashion-mnist")
    train = load_dataset("fashion-mnist", "train")
    test = load_dataset("fashion-mnist", "test")
    train_x = extract_features(encoder, train, ["out"], transform=transform)["out"]
    test_x = extract_features(encoder, test, ["out"], transform=transform)["out"]
    assert knn_accuracy(train_x, train.labels, test_x[:2000], test.labels[:2000]) >= 85.0
    probe = fit_linear_probe(train_x, train.labels, max_iter=40)
    assert 100 * (probe.predict(test_x) == test.labels).double().mean().item() >= 84.0


def test_eval_options_passed_whole_or_one_by_one_evaluate_alike(fmnist_dir):
    encoder = create_encoder("identity")
    options = EvalOptions(layers=["out"], protocols=["knn"], subset=64, folds=2)
    runs = [
        evaluate_encoder(encoder, "fashion-mnist", options, data_dir=fmnist_dir),
        evaluate_encoder(
            encoder, "fashion-mnist", EvalOptions(layers=["out"], subset=64), data_dir=fmnist_dir,
            protocols=["knn"], folds=2,
        ),
        evaluate_encoder(
            encoder, "fashion-mnist", data_dir=fmnist_dir, layers=["out"], protocols=["knn"],
            subset=64, folds=2,
        ),
    ]  # fmt: skip
    for results in runs:
        results.pop("time_s")
    assert runs[0] == runs[1] == runs[2]
    assert set(runs[0]["layers"]["out"]["knn"]) == {"accuracy", "cv_mean", "cv_std"}
