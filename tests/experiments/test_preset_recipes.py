"""The paper presets train and probe as the paper did (recipe, shuffled BN, linear probe)."""

from __future__ import annotations

from alignuniform.experiments.reproduce import preset_spec


def config_of(name: str):
    return preset_spec(name).points[0].config()


def test_stl10_paper_probes_with_the_papers_adam_probe():
    config = config_of("stl10-paper")
    assert (config.recipe, config.eval_linear_protocol) == ("stl10-paper", "paper")
    assert config.eval_paper_epochs is None  # the probe's own 100


def test_imagenet100_moco_trains_on_cmc_views_with_shuffled_bn_and_the_sgd_probe():
    config = config_of("imagenet100-moco")
    assert (config.recipe, config.method, config.encoder) == ("imagenet-cmc", "moco", "resnet50")
    assert config.moco_shuffle_bn and config.moco_bn_groups == 4
    assert (config.eval_linear_protocol, config.eval_layers) == (
        "paper-imagenet100",
        ["penultimate"],
    )


def test_fashion_mnist_presets_keep_the_fast_probe_unless_collapse_is_the_question():
    for name in ("fashion-mnist-table1", "fashion-mnist-sphere"):
        assert config_of(name).eval_linear_protocol == "fast", name
    assert config_of("fashion-mnist-weights").eval_linear_protocol == "paper"
