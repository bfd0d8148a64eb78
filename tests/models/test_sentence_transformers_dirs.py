"""sentence-transformers directories measured as the model runs them, and damaged model
directories refused in one line naming the file.

The pipelines are saved by the installed sentence-transformers (MiniLM, MiniLM + Dense,
MiniLM + Dense + Normalize) once per module; our encoder must equal ``SentenceTransformer(DIR)
.encode`` within 1e-6, and `measure` must give the numbers of those embeddings.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from alignuniform.cli import main
from alignuniform.core.errors import AlignUniformError
from alignuniform.measure import measure
from alignuniform.models.external import load_hf
from alignuniform.models.external.st import LEGACY_MODES, pooler_name, pooling_modes
from helpers.minilm import minilm_dir
from helpers.reference import lalign64, lunif64

st = pytest.importorskip("sentence_transformers", reason="needs the text extra")

SENTENCES = [
    "A man is playing a guitar.",
    "hi",
    "The cat sits on the mat, quietly, as the afternoon sun warms the floor.",
    "Stocks fell sharply on Monday.",
    "A woman slices an onion.",
]
TINY_STS = (
    "4.6\tA man plays a guitar.\tA man is playing a guitar.\n"
    "4.2\tA dog runs.\tA dog is running in a field.\n"
    "1.0\tStocks fell.\tA woman slices an onion.\n"
    "4.8\tIt is raining.\tRain is falling.\n"
)
PIPELINES = ("minilm", "minilm+dense", "minilm+dense+normalize")


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    """The three pipelines, saved by the installed sentence-transformers."""
    from sentence_transformers import SentenceTransformer

    Dense, Normalize = st_module("Dense"), st_module("Normalize")
    root = tmp_path_factory.mktemp("st")
    base = SentenceTransformer(str(minilm_dir()), device="cpu")
    torch.manual_seed(0)
    dense = Dense(384, 128)
    modules = {
        "minilm": [base[0], base[1], base[2]],
        "minilm+dense": [base[0], base[1], dense],
        "minilm+dense+normalize": [base[0], base[1], dense, Normalize()],
    }
    out = {}
    for name, parts in modules.items():
        out[name] = root / name
        SentenceTransformer(modules=parts, device="cpu").save(str(out[name]))
    return out


def st_module(name: str):
    """A module class of the installed sentence-transformers (6.x moved them from .models)."""
    try:
        from sentence_transformers.base import modules
        from sentence_transformers.sentence_transformer import modules as text_modules
    except ImportError:  # 3.x-5.x
        from sentence_transformers import models

        return getattr(models, name)
    return getattr(modules, name, None) or getattr(text_modules, name)


def st_encode(directory: Path, texts: list[str]) -> torch.Tensor:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(directory), device="cpu")
    return model.encode(texts, convert_to_tensor=True, batch_size=2).double()


@pytest.mark.parametrize("name", PIPELINES)
def test_each_saved_pipeline_equals_its_own_encode(saved, name):
    encoder = load_hf(saved[name])
    with torch.no_grad():
        ours = encoder(SENTENCES).double()
    reference = st_encode(saved[name], SENTENCES)
    assert ours.shape == reference.shape == (5, 384 if name == "minilm" else 128)
    assert (ours - reference).abs().max() < 1e-6
    modules = ["Transformer", "Pooling", *name.split("+")[1:]]
    modules = [{"dense": "Dense", "normalize": "Normalize"}.get(m, m) for m in modules]
    if name == "minilm":
        modules.append("Normalize")  # MiniLM's own pipeline ends in Normalize
    assert encoder.info["modules"] == modules
    assert encoder.info["pipeline_normalises"] == modules[-1].endswith("Normalize")


def test_measure_gives_the_numbers_of_the_pipelines_embeddings(saved, tmp_path):
    """alignment / uniformity / mean_norm of `measure` equal those of the model's own encode."""
    from alignuniform.measure.sts import read_sts

    data = tmp_path / "sts.tsv"
    data.write_text(TINY_STS)
    pairs = read_sts(data)
    sentences = list(dict.fromkeys(pairs.sentences1 + pairs.sentences2))
    raw = st_encode(saved["minilm+dense"], sentences)
    z = raw / raw.norm(dim=1, keepdim=True)
    index = {s: i for i, s in enumerate(sentences)}
    keep = [i for i, s in enumerate(pairs.scores) if s >= 4]
    left = torch.tensor([index[pairs.sentences1[i]] for i in keep])
    right = torch.tensor([index[pairs.sentences2[i]] for i in keep])
    result = measure(f"hf:{saved['minilm+dense']}", "sts", data, batch_size=4)
    assert abs(result.alignment - lalign64(z[left], z[right])) < 1e-6
    assert abs(result.uniformity - lunif64(z)) < 1e-6
    assert abs(result.diagnostics["mean_norm"] - float(raw.norm(dim=1).mean())) < 1e-5
    assert any("pipeline has no Normalize module" in w for w in result.warnings)
    weights = saved["minilm+dense"] / "model.safetensors"
    assert result.model["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    normalised = measure(f"hf:{saved['minilm+dense+normalize']}", "sts", data, batch_size=4)
    assert abs(normalised.diagnostics["mean_norm"] - 1) < 1e-6
    assert not any("not unit vectors" in w for w in normalised.warnings)


# every spelling of a Pooling config.json of sentence-transformers 2.x-6.x
def legacy(*modes: str, newer: bool = True) -> dict:
    keys = list(LEGACY_MODES)[: 6 if newer else 4]  # 2.0/2.1 knew cls, max, mean, sqrt-len
    config = {"word_embedding_dimension": 384}
    config |= {k: LEGACY_MODES[k] in modes for k in keys}
    return config | ({"include_prompt": True} if newer else {})


SPELLINGS = {
    "2.0 mean": (legacy("mean", newer=False), ("mean",)),
    "2.0 cls": (legacy("cls", newer=False), ("cls",)),
    "2.0 max": (legacy("max", newer=False), ("max",)),
    "2.0 sqrt-len": (legacy("mean_sqrt_len_tokens", newer=False), ("mean_sqrt_len_tokens",)),
    "2.0 cls+mean": (legacy("cls", "mean", newer=False), ("cls", "mean")),
    "2.2 weightedmean": (legacy("weightedmean"), ("weightedmean",)),
    "2.2 lasttoken": (legacy("lasttoken"), ("lasttoken",)),
    "3-5 none set": (legacy(), ("mean",)),
    "3-5 mean+max": (legacy("max", "mean"), ("max", "mean")),
    **{
        f"6 {m}": ({"embedding_dimension": 384, "pooling_mode": m}, (m,))
        for m in LEGACY_MODES.values()
    },
    "6 list": ({"embedding_dimension": 384, "pooling_mode": ["mean", "max"]}, ("mean", "max")),
    "6 one-item list": ({"embedding_dimension": 384, "pooling_mode": ["cls"]}, ("cls",)),
}


@pytest.mark.parametrize("spelling", list(SPELLINGS))
def test_every_pooling_spelling_pools_as_the_library(tmp_path, spelling):
    Pooling = st_module("Pooling")
    config, modes = SPELLINGS[spelling]
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert pooling_modes(tmp_path / "config.json") == modes
    tokens = torch.randn(3, 7, 384, generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5])
    library = Pooling.load(str(tmp_path))
    expected = library({"token_embeddings": tokens, "attention_mask": mask})["sentence_embedding"]
    from alignuniform.models.external.hf import pool

    got = pool(pooler_name(modes), mask, (tokens,))
    assert got.shape == expected.shape
    assert (got - expected).abs().max() < 1e-6


def test_a_directory_with_a_newer_pooling_mode_equals_encode(saved, tmp_path):
    """End to end: a 6.x `"pooling_mode": "max"` directory, through the CLI's loader."""
    directory = tmp_path / "max"
    shutil.copytree(saved["minilm+dense"], directory)
    (directory / "1_Pooling/config.json").write_text(
        json.dumps({"embedding_dimension": 384, "pooling_mode": "max"})
    )
    encoder = load_hf(directory)
    assert encoder.info["pooler"] == "max"
    with torch.no_grad():
        ours = encoder(SENTENCES).double()
    assert (ours - st_encode(directory, SENTENCES)).abs().max() < 1e-6


def _edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))


DAMAGE = {
    "config.json not JSON": (lambda d: (d / "config.json").write_text("{oops"), "config.json"),
    "unknown model type": (
        lambda d: _edit_json(d / "config.json", model_type="nosuchmodel"),
        "nosuchmodel",
    ),
    "weights of the wrong shape": (
        lambda d: _edit_json(d / "config.json", hidden_size=768, intermediate_size=3072),
        "other shapes than config.json",
    ),
    "bad tokenizer file": (lambda d: (d / "tokenizer.json").write_text("garbage{"), "tokenizer"),
    "modules.json a dict": (lambda d: (d / "modules.json").write_text("{}"), "modules.json"),
    "sentence_bert_config.json not JSON": (
        lambda d: (d / "sentence_bert_config.json").write_text("[1,"),
        "sentence_bert_config.json",
    ),
    "sentence_bert_config.json bad length": (
        lambda d: (d / "sentence_bert_config.json").write_text('{"max_seq_length": 0}'),
        "max_seq_length 0",
    ),
    "safetensors truncated": (
        lambda d: os.truncate(d / "model.safetensors", 1000),
        "model.safetensors is not a valid safetensors file",
    ),
    "safetensors header oversized": (
        lambda d: (d / "model.safetensors").write_bytes((10**15).to_bytes(8, "little") + b"{}"),
        "header claims 1000000000000000 bytes",
    ),
    "Dense weights truncated": (
        lambda d: os.truncate(d / "2_Dense/model.safetensors", 60),
        "2_Dense/model.safetensors",
    ),
    "unknown pooling mode": (
        lambda d: (d / "1_Pooling/config.json").write_text('{"pooling_mode": "median"}'),
        "unknown pooling mode 'median'",
    ),
    "module we cannot apply": (
        lambda d: _edit_json_list(d / "modules.json", "sentence_transformers.models.LayerNorm"),
        "LayerNorm which measure cannot apply",
    ),
}


def _edit_json_list(path: Path, kind: str) -> None:
    modules = json.loads(path.read_text())
    path.write_text(json.dumps([*modules, {"idx": 9, "name": "9", "path": "9", "type": kind}]))


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_every_damaged_directory_is_one_line_exit_2(saved, tmp_path, capsys, damage):
    directory = tmp_path / "model"
    shutil.copytree(saved["minilm+dense"], directory)
    spoil, message = DAMAGE[damage]
    spoil(directory)
    data = tmp_path / "sts.tsv"
    data.write_text(TINY_STS)
    args = ["measure", f"hf:{directory}", "--protocol", "sts", "--dataset", str(data)]
    assert main([*args, "--no-progress", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("alignuniform measure: error: "), err
    assert message in err[0]
    with pytest.raises(AlignUniformError) as caught:
        load_hf(directory)
    if damage in ("unknown model type", "weights of the wrong shape", "bad tokenizer file"):
        assert caught.value.__cause__ is not None  # the library's exception, kept


def test_max_length_out_of_range_is_one_line(saved, capsys):
    for bad in (0, -3, 100_000):
        with pytest.raises(AlignUniformError, match=f"--max-length must be .* got {bad}"):
            load_hf(saved["minilm"], max_length=bad)
    assert load_hf(saved["minilm"], max_length=16).fn.max_length == 16
