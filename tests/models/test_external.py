"""External encoders: SimCSE's poolers by hand from hidden states, timm / torchvision /
TorchScript / entry-point loaders against the networks they wrap, and clear errors."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from alignuniform.core.errors import AlignUniformError, CheckpointError
from alignuniform.models.external import (
    load_callable,
    load_hf,
    load_timm,
    load_torchscript,
    load_torchvision,
)
from alignuniform.models.external.hf import POOLERS, default_pooler
from helpers.minilm import copy_without, minilm_dir

SENTENCES = ["A man is playing a guitar.", "The train leaves at eight o'clock tonight.", "Hi"]


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sum_i m_i h_i / sum_i m_i, written out token by token in float64."""
    rows = []
    for h, m in zip(hidden.double(), mask, strict=True):
        kept = [h[i] for i in range(len(m)) if m[i] == 1]
        rows.append(torch.stack(kept).sum(0) / len(kept))
    return torch.stack(rows)


@pytest.fixture(scope="module")
def minilm():
    return load_hf(minilm_dir(), pooler="avg")


def test_every_pooler_equals_its_hand_computation(minilm):
    text = minilm.fn
    inputs = text.tokenize(SENTENCES)
    with torch.no_grad():
        out = text.model(**inputs, output_hidden_states=True)
    hs, mask = out.hidden_states, inputs["attention_mask"]
    assert len(hs) == 7  # embeddings + 6 layers
    dense, bias = text.model.pooler.dense.weight.double(), text.model.pooler.dense.bias.double()
    expected = {
        "cls": torch.tanh(hs[-1][:, 0].double() @ dense.T + bias),
        "cls_before_pooler": hs[-1][:, 0].double(),
        "avg": masked_mean(hs[-1], mask),
        "avg_first_last": masked_mean((hs[1] + hs[-1]) / 2, mask),
        "avg_top2": masked_mean((hs[-2] + hs[-1]) / 2, mask),
    }
    assert set(expected) == set(POOLERS)
    assert minilm.info["modules"] == ["Transformer", "Pooling", "Normalize"]
    for pooler, pooled in expected.items():
        text.pooler = pooler
        with torch.no_grad():
            got = minilm(SENTENCES)
        assert got.shape == (3, 384)
        reference = pooled / pooled.norm(dim=1, keepdim=True)  # the pipeline's Normalize follows
        torch.testing.assert_close(got.double(), reference, rtol=1e-5, atol=1e-5, msg=pooler)
    text.pooler = "avg"


def test_default_pooler_comes_from_the_sentence_transformers_config(tmp_path):
    assert default_pooler(minilm_dir()) == ("avg", "from 1_Pooling/config.json")
    bare = copy_without(tmp_path, "modules.json", "1_Pooling/config.json")
    assert default_pooler(bare)[0] == "avg"
    encoder = load_hf(bare)
    assert encoder.info["pooler"] == "avg" and encoder.info["pooler_source"].startswith("default")


def test_random_init_builds_the_same_architecture_with_other_weights(minilm):
    random = load_hf(minilm_dir(), random_init=True, seed=3)
    assert random.info["weights"] is None and random.randomly_initialised
    assert not minilm.randomly_initialised
    with torch.no_grad():
        a, b = minilm(SENTENCES), random(SENTENCES)
    assert a.shape == b.shape and not torch.allclose(a, b)
    again = load_hf(minilm_dir(), random_init=True, seed=3)
    with torch.no_grad():
        torch.testing.assert_close(again(SENTENCES), b)  # seeded


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        (("model.safetensors",), "has no weights"),
        (("tokenizer.json", "vocab.txt"), "has no tokenizer"),
        (("config.json",), "no config.json"),
    ],
)
def test_incomplete_model_directories_are_named(tmp_path, missing, message):
    with pytest.raises(AlignUniformError, match=message):
        load_hf(copy_without(tmp_path, *missing))


def test_unknown_pooler_and_missing_directory(tmp_path):
    with pytest.raises(AlignUniformError, match="unknown pooler 'max'"):
        load_hf(minilm_dir(), pooler="max")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_hf(tmp_path / "nowhere")


def test_timm_loads_a_local_checkpoint_without_its_classifier(tmp_path):
    timm = pytest.importorskip("timm", reason="needs timm (the vision extra)")
    torch.manual_seed(0)
    source = timm.create_model("resnet10t", pretrained=False, num_classes=7)
    torch.save({"state_dict": source.state_dict()}, tmp_path / "ckpt.pth")
    encoder = load_timm("resnet10t", tmp_path / "ckpt.pth")
    x = torch.randn(2, 3, 32, 32)
    source.reset_classifier(0)
    with torch.no_grad():
        torch.testing.assert_close(encoder(x), source.eval()(x))
    assert encoder.info["weights"].endswith("ckpt.pth") and encoder.in_channels == 3
    assert load_timm("resnet10t").randomly_initialised
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match="does not fit timm:resnet10t"):
        load_timm("resnet10t", tmp_path / "wrong.pth")
    with pytest.raises(AlignUniformError, match="timm has no model"):
        load_timm("no_such_net")


def test_torchvision_features_are_the_pooled_features_and_grayscale_is_repeated(tmp_path):
    from torchvision.models import resnet18

    torch.manual_seed(0)
    source = resnet18(num_classes=1000)
    torch.save(source.state_dict(), tmp_path / "r18.pth")
    encoder = load_torchvision("resnet18", tmp_path / "r18.pth")
    source.fc = nn.Identity()
    gray = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(encoder(gray), source.eval()(gray.expand(-1, 3, -1, -1)))
    assert encoder.info["removed_head"] == "fc"
    assert load_torchvision("resnet18").randomly_initialised


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean((2, 3))


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_torchscript_and_entry_points_wrap_what_they_load(tmp_path, monkeypatch):
    torch.manual_seed(0)
    module = Tiny().eval()
    torch.jit.save(torch.jit.script(module), str(tmp_path / "tiny.pt"))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(load_torchscript(tmp_path / "tiny.pt")(x), module(x))
    (tmp_path / "my_encoders.py").write_text(
        "import torch\n"
        "def lengths():\n"
        "    return lambda texts: torch.tensor([[float(len(t)), 1.0] for t in texts])\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    encoder = load_callable("my_encoders:lengths", modality="text")
    assert encoder(["ab", "abcd"]).tolist() == [[2.0, 1.0], [4.0, 1.0]]
    with pytest.raises(AlignUniformError, match="has no attribute"):
        load_callable("my_encoders:nothing")
    with pytest.raises(AlignUniformError, match="cannot import"):
        load_callable("no_such_module_xyz:f")
    sys.modules.pop("my_encoders", None)
