"""The depth probe: decoder shapes, training, the official split and CV, one target, errors."""

from __future__ import annotations

import pytest
import torch
from tests.helpers.formats import write_nyu

from alignuniform.data.nyu import DEPTH_SIZE
from alignuniform.evaluate import evaluate_encoder, format_table
from alignuniform.evaluate.depth import DepthDecoder, depth_mse, milestones, train_depth_decoder
from alignuniform.models import create_encoder


def test_decoder_doubles_the_side_and_halves_channels_per_block():
    decoder = DepthDecoder(192, blocks=3)
    transposed = [m for m in decoder if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels) for m in transposed] == [(192, 96), (96, 48), (48, 24)]
    assert all(
        m.kernel_size == (3, 3)
        and m.stride == (2, 2)
        and m.padding == (1, 1)
        and m.output_padding == (1, 1)
        for m in transposed
    )
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in decoder) == 3
    assert isinstance(decoder[-1], torch.nn.Conv2d) and decoder[-1].out_channels == 1
    assert decoder(torch.randn(2, 192, 7, 5)).shape == (2, 1, 56, 40)
    with pytest.raises(ValueError, match="blocks=4 halvings of 8 channels"):
        DepthDecoder(8, blocks=4)


def test_schedule_drops_at_70_90_100_110_of_120_epochs():
    assert milestones(120) == [70, 90, 100, 110]


@pytest.mark.slow
def test_decoder_learns_a_depth_that_the_features_determine():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(64, 8, 2, 2, generator=generator)
    depths = features[:, :1].repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)[:, 0]
    before = depth_mse(DepthDecoder(8, blocks=1), features, depths)
    decoder = train_depth_decoder(features, depths, blocks=1, epochs=30, batch_size=16)
    after = depth_mse(decoder, features, depths)
    assert after < 0.2 * before
    with torch.no_grad():
        direct = (decoder(features)[:, 0].double() - depths.double()).pow(2).mean()
    assert after == pytest.approx(float(direct), rel=1e-6)


def test_conv5_and_conv4_reach_one_target_with_cv_on_the_training_split(tmp_path):
    write_nyu(tmp_path)
    encoder = create_encoder("depth_alexnet", width=0.0625)
    options = {"protocols": ["depth"], "data_dir": tmp_path, "depth_epochs": 1}
    result = evaluate_encoder(
        encoder, "nyu-depth-v2", layers=["conv5", "conv4"], folds=2, **options
    )
    conv5, conv4 = result["layers"]["conv5"], result["layers"]["conv4"]
    # frames 192 x 256: conv5 maps 6 x 8 need 4 doublings to 96 x 128, conv4 (12 x 16) 3
    assert DEPTH_SIZE == (96, 128) and (conv5["blocks"], conv4["blocks"]) == (4, 3)
    for entry in (conv5, conv4):
        assert set(entry["depth"]) == {"mse", "cv_mean", "cv_std"}
        assert entry["depth"]["mse"] > 0 and entry["depth"]["cv_mean"] > 0
    table = format_table(result).splitlines()
    assert table[1].split() == ["layer", "tap", "channels", "decoder", "blocks", "depth", "MSE"]
    assert table[2].split()[:5] == ["conv5", "conv5", "16", "4", f"{conv5['depth']['mse']:.4f}"]


def test_depth_probe_errors_are_one_line(tmp_path):
    write_nyu(tmp_path)
    encoder = create_encoder("depth_alexnet", width=0.0625)
    with pytest.raises(ValueError, match="its taps are"):
        evaluate_encoder(encoder, "nyu-depth-v2", layers=["conv9"], protocols=["depth"])
    with pytest.raises(ValueError, match="needs a convolutional layer"):
        evaluate_encoder(
            encoder, "nyu-depth-v2", layers=["fc7"], protocols=["depth"], data_dir=tmp_path
        )
    with pytest.raises(ValueError, match="not classes; use depth alone"):
        evaluate_encoder(encoder, "nyu-depth-v2", layers=["conv5"], protocols=["depth", "knn"])
    with pytest.raises(ValueError, match="needs NYU-Depth-V2's depth maps"):
        evaluate_encoder(encoder, "stl10", layers=["conv5"], protocols=["depth"])
    with pytest.raises(ValueError, match="no number of doubling"):
        evaluate_encoder(
            create_encoder("small_alexnet", input_size=64),
            "nyu-depth-v2",
            layers=["conv5"],
            protocols=["depth"],
            data_dir=tmp_path,
            depth_epochs=1,
        )
