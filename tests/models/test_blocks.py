"""The shared conv-stage builder keeps every family's checkpoint layout and seeded numbers.

The digests below were computed with the families' own hand-written stage lists before they
were built by `conv_stages` + `init_normal`: same state_dict keys and shapes (old checkpoints
load), same draws from a seeded RNG (the same weights), same outputs.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from alignuniform.models import create_encoder
from alignuniform.models.blocks import conv_stages, init_normal

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def layout(convs, fcs, fc_offset):
    """{key: shape} of conv_bn_relu stages (c_in, c_out), linear_bn_relu stages (name, d_in,
    d_out) and the out projection (last of ``fcs``)."""
    keys = {}
    for k, (c_in, c_out) in enumerate(convs, 1):
        keys[f"stages.conv{k}.0.weight"] = (c_out, c_in, 3, 3)
        keys.update({f"stages.conv{k}.1.{b}": (c_out,) if b != BN[-1] else () for b in BN})
    *hidden, (d_in, d_out) = fcs
    for name, h_in, h_out in hidden:
        i = fc_offset.get(name, 0)
        keys[f"stages.{name}.{i}.weight"] = (h_out, h_in)
        keys.update({f"stages.{name}.{i + 1}.{b}": (h_out,) if b != BN[-1] else () for b in BN})
    keys |= {"stages.out.0.weight": (d_out, d_in), "stages.out.0.bias": (d_out,)}
    return keys


# name, kwargs, input shape, layout, float64 sum of the state_dict, eval output row 0[:4]
CASES = [
    (
        "small_alexnet",
        {"in_channels": 1, "input_size": 32},
        (2, 1, 32, 32),
        layout(
            [(1, 96), (96, 192), (192, 384), (384, 384), (384, 192)],
            [("fc6", 1728, 4096), ("fc7", 4096, 4096), (4096, 16)],
            {"fc6": 1},
        ),
        18790.767213284005,
        [-0.10466518253087997, -0.37185898423194885, -0.5101355910301208, -0.20875795185565948],
    ),
    (
        "depth_alexnet",
        {"width": 0.25, "in_channels": 4},
        (2, 4, 48, 48),
        layout(
            [(4, 24), (24, 48), (48, 96), (96, 96), (96, 64)], [("fc7", 64, 512), (512, 16)], {}
        ),
        1667.8072295810384,
        [0.2729967534542084, 0.16383333504199982, 0.4052097499370575, 0.10575640201568604],
    ),
    (
        "convnet",
        {"downsample": "pool", "widths": (8, 16)},
        (3, 1, 28, 28),
        layout([(1, 8), (8, 16)], [("fc", 784, 512), (512, 16)], {"fc": 1}),
        1084.0084492514848,
        [0.03001978062093258, -0.18826405704021454, -0.36172521114349365, -0.3070482015609741],
    ),
]


@pytest.mark.parametrize(("name", "kwargs", "shape", "keys", "total", "row"), CASES)
def test_families_keep_their_checkpoint_keys_weights_and_outputs(
    name, kwargs, shape, keys, total, row
):
    torch.manual_seed(0)
    encoder = create_encoder(name, out_dim=16, **kwargs).eval()
    state = encoder.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == keys
    assert list(state) == list(keys)  # the order too: the stages are built in the same order
    assert sum(v.double().sum() for v in state.values()).item() == pytest.approx(total, rel=1e-9)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    assert encoder(x)[0, :4].tolist() == pytest.approx(row, abs=1e-5)


def test_conv_stages_pools_only_the_named_stages_with_a_new_module_each():
    stages = conv_stages((3, 4, 5, 6), lambda: nn.MaxPool2d(2), pooled={1, 3})
    assert [name for name, _ in stages] == ["conv1", "conv2", "conv3"]
    pools = [[m for m in stage if isinstance(m, nn.MaxPool2d)] for _, stage in stages]
    assert [len(p) for p in pools] == [1, 0, 1] and pools[0][0] is not pools[2][0]
    strided = conv_stages((3, 4), stride=2)
    assert strided[0][1][0].stride == (2, 2) and len(strided[0][1]) == 3


def test_init_normal_draws_weights_with_the_given_std_and_zeroes_biases():
    model = nn.Sequential(nn.Conv2d(8, 64, 3), nn.Linear(64, 512), nn.BatchNorm1d(4))
    init_normal(model, std=0.5)
    weights = torch.cat([model[0].weight.flatten(), model[1].weight.flatten()]).double()
    assert weights.std().item() == pytest.approx(0.5, rel=0.02)
    assert abs(weights.mean().item()) < 0.02
    assert not model[0].bias.any() and not model[1].bias.any()
    assert torch.equal(model[2].weight, torch.ones(4))  # BatchNorm is left as built
