"""Encoder registry: taps, unit-norm outputs, spec round trips, the paper's SmallAlexNet."""

from __future__ import annotations

import functools
import io

import pytest
import torch
import yaml
from torch import nn

from alignuniform.models import (
    Encoder,
    L2Normalize,
    create_encoder,
    list_encoders,
    register_encoder,
    registry,
)

# name -> (kwargs, input shape, expected tap shapes without the batch dimension)
CASES = {
    "small_alexnet": (
        {},
        (3, 64, 64),
        {
            "conv1": (96, 31, 31),
            "conv2": (192, 15, 15),
            "conv3": (384, 15, 15),
            "conv4": (384, 15, 15),
            "conv5": (192, 7, 7),
            "fc6": (4096,),
            "fc7": (4096,),
            "out": (16,),
        },
    ),
    "convnet": (
        {},
        (1, 28, 28),
        {
            "conv1": (32, 14, 14),
            "conv2": (64, 7, 7),
            "conv3": (128, 4, 4),
            "fc": (512,),
            "out": (16,),
        },
    ),
    "mlp": ({"hidden": [32, 24]}, (1, 28, 28), {"fc1": (32,), "fc2": (24,), "out": (16,)}),
    "resnet18": (
        {"cifar_stem": True},
        (3, 16, 16),
        {
            "layer1": (64, 16, 16),
            "layer2": (128, 8, 8),
            "layer3": (256, 4, 4),
            "layer4": (512, 2, 2),
            "pool": (512,),
            "out": (16,),
        },
    ),
    "resnet50": (
        {"in_channels": 1},
        (1, 32, 32),
        {
            "layer1": (256, 8, 8),
            "layer2": (512, 4, 4),
            "layer3": (1024, 2, 2),
            "layer4": (2048, 1, 1),
            "pool": (2048,),
            "out": (16,),
        },
    ),
    "identity": ({"in_channels": 3, "input_size": 8}, (3, 8, 8), {"pixels": (192,), "out": (192,)}),
    "depth_alexnet": (  # every stage halves the side: conv_k = input / 2^k (NYU frames 3:4)
        {"width": 0.25},
        (3, 64, 96),
        {
            "conv1": (24, 32, 48),
            "conv2": (48, 16, 24),
            "conv3": (96, 8, 12),
            "conv4": (96, 4, 6),
            "conv5": (64, 2, 3),
            "pool": (64,),
            "fc7": (512,),
            "out": (16,),
        },
    ),
}
PENULTIMATE = {
    "small_alexnet": "fc7",
    "convnet": "fc",
    "resnet18": "pool",
    "resnet50": "pool",
    "identity": "pixels",
    "mlp": "fc2",
    "depth_alexnet": "fc7",
}

pytestmark = pytest.mark.usefixtures("one_thread")


@functools.cache
def build(name: str) -> tuple[Encoder, torch.Tensor]:
    """One encoder (eval mode) and input batch per name, shared by the tests that only read it."""
    kwargs, shape, _ = CASES[name]
    torch.manual_seed(0)
    return create_encoder(name, out_dim=16, **kwargs).eval(), torch.randn(3, *shape)


def test_every_built_in_encoder_is_covered():
    assert set(list_encoders()) == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_taps_shapes_unit_norm_and_penultimate(name):
    encoder, x = build(name)
    expected = CASES[name][2]
    assert encoder.taps == tuple(expected) and encoder.penultimate == PENULTIMATE[name]
    with torch.no_grad():
        feats = encoder.features(x, encoder.taps)
        assert {tap: tuple(v.shape[1:]) for tap, v in feats.items()} == expected
        out = encoder(x)
        assert torch.allclose(
            out.double().norm(dim=1), torch.ones(3, dtype=torch.float64), atol=1e-6
        )
        assert torch.allclose(out, feats["out"])
        both = encoder.features(x, ["penultimate", "out"])
        assert list(both) == ["penultimate", "out"]
        assert torch.allclose(both["penultimate"], feats[encoder.penultimate])


@pytest.mark.parametrize("name", sorted(CASES))
def test_spec_rebuilds_the_same_architecture(name):
    encoder, x = build(name)
    spec = encoder.spec
    assert spec["name"] == name and spec["out_dim"] == encoder.out_dim
    buffer = io.BytesIO()
    torch.save({"encoder": spec}, buffer)
    buffer.seek(0)
    stored = torch.load(buffer, weights_only=True)["encoder"]
    assert yaml.safe_load(yaml.safe_dump(stored)) == spec  # config.yaml can hold it too
    rebuilt = create_encoder(stored["name"], out_dim=stored["out_dim"], **stored["kwargs"]).eval()
    assert rebuilt.spec == spec
    rebuilt.load_state_dict(encoder.state_dict())
    with torch.no_grad():
        assert torch.equal(rebuilt(x), encoder(x))


def test_features_stops_after_the_deepest_requested_tap():
    encoder, x = create_encoder("convnet"), torch.randn(2, 1, 28, 28)
    ran = []
    for tap in encoder.taps:
        encoder.stages[tap].register_forward_hook(lambda *_, tap=tap: ran.append(tap))
    encoder.features(x, ["conv2", "conv1"])
    assert ran == ["conv1", "conv2"]


def test_unknown_layer_lists_the_encoders_taps():
    encoder, x = build("small_alexnet")
    with pytest.raises(ValueError, match="conv1, conv2, conv3, conv4, conv5, fc6, fc7, out"):
        encoder(x, layer="fc8")
    with pytest.raises(TypeError, match="sequence of layer names"):
        encoder.features(x, "fc7")


def test_small_alexnet_matches_the_paper():
    torch.manual_seed(0)
    encoder = create_encoder("small_alexnet", out_dim=128)
    shapes = {name: tuple(p.shape) for name, p in encoder.named_parameters()}
    convs = [m for m in encoder.modules() if isinstance(m, nn.Conv2d)]
    assert [tuple(c.weight.shape) for c in convs] == [
        (96, 3, 3, 3),
        (192, 96, 3, 3),
        (384, 192, 3, 3),
        (384, 384, 3, 3),
        (192, 384, 3, 3),
    ]
    assert all(c.padding == (1, 1) and c.bias is None for c in convs)
    linears = [m for m in encoder.modules() if isinstance(m, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [
        (192 * 7 * 7, 4096),
        (4096, 4096),
        (4096, 128),
    ]
    pools = [m for m in encoder.modules() if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride) for p in pools] == [(3, 2)] * 3
    assert sum(isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d) for m in encoder.modules()) == 7
    for weight in (linears[0].weight, convs[2].weight):  # init N(0, 0.02)
        assert abs(weight.std().item() - 0.02) < 1e-3 and abs(weight.mean().item()) < 1e-3
    assert len(shapes) == 5 + 2 * 5 + 2 + 2 * 2 + 2  # conv W, BN (w, b), fc6/7 W, BN, fc8 W + b


def test_small_alexnet_computes_its_flattened_size_for_other_inputs():
    side = 40
    for _ in range(3):  # three MaxPool(3, 2): s -> floor((s - 3) / 2) + 1
        side = (side - 3) // 2 + 1
    encoder = create_encoder("small_alexnet", out_dim=8, input_size=40).eval()
    first = next(m for m in encoder.modules() if isinstance(m, nn.Linear))
    assert first.in_features == 192 * side * side == 192 * 4 * 4
    assert encoder(torch.randn(2, 3, 40, 40)).shape == (2, 8)
    with pytest.raises(ValueError, match="input_size=14 is too small"):
        create_encoder("small_alexnet", input_size=14)


def test_resnet_stems():
    standard = create_encoder("resnet18", out_dim=4).eval()
    with torch.no_grad():
        assert standard(torch.randn(1, 3, 64, 64), layer="layer1").shape == (1, 64, 16, 16)
    assert create_encoder("resnet18", in_channels=1).stages["layer1"][0].in_channels == 1


def test_identity_is_raw_pixels():
    encoder, x = build("identity")
    assert not list(encoder.parameters()) and encoder.out_dim == 192
    assert torch.equal(encoder(x, layer="pixels"), x.flatten(1))
    expected = x.double().flatten(1) / x.double().flatten(1).norm(dim=1, keepdim=True)
    assert torch.allclose(encoder(x).double(), expected, atol=1e-6)


def test_convnet_trains_end_to_end():
    encoder = create_encoder("convnet", out_dim=8, widths=(8, 16), hidden=32)
    assert encoder.spec["kwargs"]["widths"] == [8, 16]
    encoder(torch.randn(4, 1, 28, 28)).sum().backward()
    assert all(
        p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters() if p.dim() > 1
    )


def test_registry_errors_name_the_fix():
    names = "convnet, depth_alexnet, identity, mlp, resnet18, resnet50, small_alexnet"
    with pytest.raises(ValueError, match=names):
        create_encoder("vgg16")
    for bad in (1, 0, 2.5, True):
        with pytest.raises(ValueError, match="out_dim must be an integer >= 2"):
            create_encoder("convnet", out_dim=bad)
    with pytest.raises(TypeError, match="in_channels, input_size, widths, hidden"):
        create_encoder("convnet", width=3)
    with pytest.raises(ValueError, match="already registered"):
        register_encoder("convnet")(lambda out_dim=128: None)
    encoder = create_encoder("convnet")
    with pytest.raises(ValueError, match=r"\[B, 1, 28, 28\]"):
        encoder(torch.randn(2, 3, 28, 28))
    with pytest.raises(TypeError, match="float tensor"):
        encoder(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))


@pytest.fixture
def scratch_registry(monkeypatch):
    """The registry as it is, restored after the test: a name a test registers leaves with it."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_register_encoder_adds_a_new_name(scratch_registry):
    @register_encoder("test_tiny_linear")
    def tiny(out_dim: int = 128, *, in_channels: int = 1) -> Encoder:
        head = nn.Sequential(nn.Linear(in_channels * 4, out_dim), L2Normalize())
        stages = [("flat", nn.Flatten()), ("out", head)]
        return Encoder(
            stages,
            out_dim=out_dim,
            penultimate="flat",
            in_channels=in_channels,
            input_size=2,
            config={"in_channels": in_channels},
        )

    assert "test_tiny_linear" in list_encoders()
    encoder = create_encoder("test_tiny_linear", out_dim=3)
    assert encoder.spec == {"name": "test_tiny_linear", "out_dim": 3, "kwargs": {"in_channels": 1}}
    assert torch.allclose(encoder(torch.randn(2, 1, 2, 2)).norm(dim=1), torch.ones(2))


def test_convnet_pool_variant_keeps_the_max_pool_design():
    encoder = create_encoder("convnet", out_dim=16, downsample="pool")
    assert sum(isinstance(m, nn.MaxPool2d) for m in encoder.modules()) == 3
    feats = encoder.eval().features(torch.randn(2, 1, 28, 28), ["conv3", "fc"])
    assert feats["conv3"].shape == (2, 128, 3, 3) and feats["fc"].shape == (2, 512)
    with pytest.raises(ValueError, match="downsample must be"):
        create_encoder("convnet", downsample="avg")
