"""Hugging Face / sentence-transformers model directories with SimCSE's five poolers.

With m the attention mask and h^k the hidden states of layer k (h^0: the embedding layer):

    cls                = tanh(W h^L_0 + b)   BERT's pooler on the [CLS] token (pooler_output)
    cls_before_pooler  = h^L_0               the [CLS] token's last hidden state
    avg                = sum_i m_i h^L_i / sum_i m_i
    avg_first_last     = sum_i m_i (h^1_i + h^L_i) / 2 / sum_i m_i   (first transformer layer)
    avg_top2           = sum_i m_i (h^(L-1)_i + h^L_i) / 2 / sum_i m_i

The default pooler is the directory's own sentence-transformers pooling config (modules.json /
1_Pooling/config.json: mean tokens -> avg, CLS token -> cls_before_pooler), else ``avg``.
Older SimCSE copies averaged h^0 (the embedding output) in ``avg_first_last``; we follow the
first transformer layer, as BERT-flow defines "first-last".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from alignuniform.core.errors import InvalidTypeError, InvalidValueError, MissingFileError
from alignuniform.models.external.base import ExternalEncoder, require

POOLERS = ("cls", "cls_before_pooler", "avg", "avg_first_last", "avg_top2")
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "tokenizer.model")
ST_MODES = {"pooling_mode_mean_tokens": "avg", "pooling_mode_cls_token": "cls_before_pooler"}
MAX_LENGTH = 512


def pool(
    pooler: str,
    attention_mask: torch.Tensor,
    hidden_states: tuple[torch.Tensor, ...],
    pooler_output: torch.Tensor | None = None,
) -> torch.Tensor:
    """One sentence embedding per row from a transformer's outputs (see the module docstring)."""
    last = hidden_states[-1]
    if pooler == "cls":
        if pooler_output is None:
            raise InvalidValueError(
                "pooler 'cls' needs the model's pooler layer, which this model has not; "
                "use --pooler cls_before_pooler"
            )
        return pooler_output
    if pooler == "cls_before_pooler":
        return last[:, 0]
    if pooler == "avg":
        tokens = last
    elif pooler == "avg_first_last":
        tokens = (hidden_states[1] + last) / 2.0
    elif pooler == "avg_top2":
        tokens = (hidden_states[-2] + last) / 2.0
    else:
        raise InvalidValueError(f"unknown pooler {pooler!r}; valid: {', '.join(POOLERS)}")
    mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
    return (tokens * mask).sum(1) / mask.sum(1)


class HFTextEncoder(nn.Module):
    """forward(list of str) -> pooled [B, d]: tokenise (pad, truncate), run, pool."""

    def __init__(self, model: nn.Module, tokenizer: Any, pooler: str, max_length: int) -> None:
        super().__init__()
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.pooler = pooler
        self.max_length = max_length

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
            raise InvalidTypeError("a text encoder takes a list of strings")
        return self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )

    def forward(self, texts: list[str]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        inputs = {k: v.to(device) for k, v in self.tokenize(texts).items()}
        needs_layers = self.pooler in ("avg_first_last", "avg_top2")
        out = self.model(**inputs, output_hidden_states=needs_layers, return_dict=True)
        layers = out.hidden_states if needs_layers else (out.last_hidden_state,)
        return pool(
            self.pooler, inputs["attention_mask"], layers, getattr(out, "pooler_output", None)
        )


def default_pooler(directory: Path) -> tuple[str, str]:
    """(pooler, where it came from): the sentence-transformers pooling config, else avg."""
    config = _pooling_config(directory)
    if config is None:
        return "avg", "default (no sentence-transformers pooling config)"
    path, modes = config
    chosen = [name for name, on in modes.items() if on is True and name.startswith("pooling_mode")]
    if len(chosen) == 1 and chosen[0] in ST_MODES:
        return ST_MODES[chosen[0]], f"from {path.relative_to(directory)}"
    raise InvalidValueError(
        f"{path} asks for pooling {chosen or 'none'}, which is not one of SimCSE's poolers; "
        f"choose one with --pooler ({', '.join(POOLERS)})"
    )


def _pooling_config(directory: Path) -> tuple[Path, dict] | None:
    candidates = []
    modules = directory / "modules.json"
    if modules.is_file():
        for module in _read_json(modules):
            if str(module.get("type", "")).endswith("Pooling"):
                candidates.append(directory / module.get("path", "") / "config.json")
    candidates.append(directory / "1_Pooling" / "config.json")
    for path in candidates:
        if path.is_file():
            return path, _read_json(path)
    return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InvalidValueError(f"could not read {path} as JSON: {err}") from err


def _max_length(directory: Path, tokenizer: Any) -> int:
    st_config = directory / "sentence_bert_config.json"
    if st_config.is_file():
        value = _read_json(st_config).get("max_seq_length")
        if isinstance(value, int) and value > 0:
            return value
    return min(int(getattr(tokenizer, "model_max_length", MAX_LENGTH) or MAX_LENGTH), MAX_LENGTH)


def check_model_dir(directory: str | Path, *, need_weights: bool = True) -> Path:
    """The directory, or a clear error when it lacks config.json, a tokenizer or weights."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise MissingFileError(f"model directory {str(directory)!r} does not exist")
    if not (directory / "config.json").is_file():
        raise InvalidValueError(
            f"{directory} is not a Hugging Face model directory: it has no config.json"
        )
    if not any((directory / name).is_file() for name in TOKENIZER_FILES):
        raise InvalidValueError(
            f"{directory} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); "
            "copy the tokenizer files of the model into it"
        )
    if need_weights and weights_file(directory) is None:
        raise InvalidValueError(
            f"{directory} has no weights (none of {', '.join(WEIGHT_FILES)}); copy them in, "
            "or pass --random-init to measure the architecture randomly initialised"
        )
    return directory


def weights_file(directory: Path) -> Path | None:
    return next((directory / n for n in WEIGHT_FILES if (directory / n).is_file()), None)


def load_hf(
    directory: str | Path,
    pooler: str | None = None,
    *,
    random_init: bool = False,
    seed: int = 0,
    max_length: int | None = None,
) -> ExternalEncoder:
    """A local model directory as a text encoder; never downloads (``local_files_only``).

    Args:
        directory: holds config.json, tokenizer files and (unless ``random_init``) weights.
        pooler: one of `POOLERS`; None takes the directory's sentence-transformers config.
        random_init: build the architecture from config.json with fresh weights (seeded).
        max_length: truncation length in tokens (default: sentence_bert_config.json, else
            the tokenizer's limit, at most 512).
    """
    directory = check_model_dir(directory, need_weights=not random_init)
    if pooler is None:
        pooler, pooler_source = default_pooler(directory)
    elif pooler not in POOLERS:
        raise InvalidValueError(f"unknown pooler {pooler!r}; valid: {', '.join(POOLERS)}")
    else:
        pooler_source = "chosen"
    transformers = require("transformers", "text")
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory, local_files_only=True)
    if random_init:
        config = transformers.AutoConfig.from_pretrained(directory, local_files_only=True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = transformers.AutoModel.from_config(config)
        weights, missing = None, []
    else:
        model, loading = transformers.AutoModel.from_pretrained(
            directory, local_files_only=True, output_loading_info=True
        )
        weights, missing = str(weights_file(directory)), list(loading.get("missing_keys", []))
    if pooler == "cls" and (
        getattr(model, "pooler", None) is None or any(".pooler." in f".{k}" for k in missing)
    ):
        raise InvalidValueError(
            f"pooler 'cls' needs trained pooler weights, which {directory} does not hold; "
            "use --pooler cls_before_pooler (the [CLS] token's hidden state)"
        )
    length = max_length or _max_length(directory, tokenizer)
    info = {
        "kind": "hf",
        "spec": f"hf:{directory}",
        "architecture": type(model).__name__,
        "weights": weights,
        "pooler": pooler,
        "pooler_source": pooler_source,
        "max_length": length,
    }
    if missing:
        info["missing_weights"] = missing
    if random_init:
        info["seed"] = seed
    return ExternalEncoder(
        HFTextEncoder(model, tokenizer, pooler, length), modality="text", info=info
    )
