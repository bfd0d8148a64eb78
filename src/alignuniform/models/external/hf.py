"""Hugging Face / sentence-transformers model directories with SimCSE's five poolers.

With m the attention mask and h^k the hidden states of layer k (h^0: the embedding layer):

    cls                = tanh(W h^L_0 + b)   BERT's pooler on the [CLS] token (pooler_output)
    cls_before_pooler  = h^L_0               the [CLS] token's last hidden state
    avg                = sum_i m_i h^L_i / sum_i m_i
    avg_first_last     = sum_i m_i (h^1_i + h^L_i) / 2 / sum_i m_i   (first transformer layer)
    avg_top2           = sum_i m_i (h^(L-1)_i + h^L_i) / 2 / sum_i m_i

The default pooler is the directory's own sentence-transformers pooling config (modules.json /
1_Pooling/config.json, any spelling: mean -> avg, cls -> cls_before_pooler, or the library's
other modes, see `alignuniform.models.external.st`), else ``avg``; the pipeline's Dense and
Normalize modules run after it, so the encoder outputs what the model's own ``encode`` does.
Every damaged file is one error naming it (library exceptions are caught by `guarded`).
Older SimCSE copies averaged h^0 (the embedding output) in ``avg_first_last``; we follow the
first transformer layer, as BERT-flow defines "first-last".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from alignuniform.core.errors import (
    AlignUniformError,
    InvalidTypeError,
    InvalidValueError,
    MissingFileError,
)
from alignuniform.core.names import POOLERS
from alignuniform.core.seeding import seeded
from alignuniform.models.external import st
from alignuniform.models.external.base import ExternalEncoder, require

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "tokenizer.model")
MAX_LENGTH = 512
SAFETENSORS_HEADER_MAX = 100_000_000  # the safetensors library's own limit


def pool(
    pooler: str,
    attention_mask: torch.Tensor,
    hidden_states: tuple[torch.Tensor, ...],
    pooler_output: torch.Tensor | None = None,
) -> torch.Tensor:
    """One sentence embedding per row from a transformer's outputs (see the module docstring);
    a sentence-transformers mode (`st.ST_MODES`) or several joined by '+' (concatenated)."""
    if "+" in pooler:
        parts = pooler.split("+")
        return torch.cat([pool(p, attention_mask, hidden_states, pooler_output) for p in parts], 1)
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
    if pooler in st.ST_MODES:
        return st.st_pool(pooler, attention_mask, last)
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
    """forward(list of str) -> [B, d]: tokenise (pad, truncate), run, pool, then the modules
    after pooling (a sentence-transformers pipeline's Dense / Normalize)."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        pooler: str,
        max_length: int,
        after: list[nn.Module] | None = None,
        lowercase: bool = False,
    ) -> None:
        super().__init__()
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.pooler = pooler
        self.max_length = max_length
        self.after = nn.Sequential(*(after or []))
        self.lowercase = lowercase

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
            raise InvalidTypeError("a text encoder takes a list of strings")
        return self.tokenizer(
            [t.lower() for t in texts] if self.lowercase else list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )

    def forward(self, texts: list[str]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        inputs = {k: v.to(device) for k, v in self.tokenize(texts).items()}
        needs_layers = any(p in ("avg_first_last", "avg_top2") for p in self.pooler.split("+"))
        out = self.model(**inputs, output_hidden_states=needs_layers, return_dict=True)
        layers = out.hidden_states if needs_layers else (out.last_hidden_state,)
        pooled = pool(
            self.pooler, inputs["attention_mask"], layers, getattr(out, "pooler_output", None)
        )
        return self.after(pooled)


def default_pooler(directory: Path) -> tuple[str, str]:
    """(pooler, where it came from): the sentence-transformers pooling config, else avg."""
    pipeline = st.read_pipeline(directory)
    if pipeline is None:
        legacy = directory / "1_Pooling" / "config.json"
        if legacy.is_file():
            return st.pooler_name(st.pooling_modes(legacy)), "from 1_Pooling/config.json"
    elif pipeline.pooler is not None:
        return pipeline.pooler, f"from {pipeline.pooler_file}"
    return "avg", "default (no sentence-transformers pooling config)"


def st_config(directory: Path) -> dict[str, Any]:
    """sentence_bert_config.json ({} without one), its max_seq_length and do_lower_case checked."""
    path = directory / "sentence_bert_config.json"
    if not path.is_file():
        return {}
    config = st.read_json(path, dict)
    length = config.get("max_seq_length")
    if length is not None and (type(length) is not int or length < 1):
        raise st.BadModelFile(f"{path}: max_seq_length {length!r} is not a positive integer")
    if not isinstance(config.get("do_lower_case", False), bool):
        raise st.BadModelFile(f"{path}: do_lower_case {config['do_lower_case']!r} is not a bool")
    return config


def model_max_length(directory: Path, tokenizer: Any) -> int:
    """What the model takes: sentence_bert_config.json, else the tokenizer's limit (<= 512)."""
    value = st_config(directory).get("max_seq_length")
    if value is not None:
        return value
    return min(int(getattr(tokenizer, "model_max_length", MAX_LENGTH) or MAX_LENGTH), MAX_LENGTH)


def check_max_length(max_length: Any, limit: int, directory: Path) -> int:
    """``max_length`` if 1 <= it <= the model's limit, else one line saying the range."""
    if type(max_length) is not int or not 1 <= max_length <= limit:
        raise InvalidValueError(
            f"--max-length must be a whole number of tokens from 1 to {limit} (what {directory} "
            f"takes), got {max_length!r}"
        )
    return max_length


def position_limit(model: nn.Module) -> int | None:
    """The longest input the architecture embeds (max_position_embeddings), when it says."""
    value = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return value if type(value) is int and value > 0 else None


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


def check_safetensors(path: Path) -> None:
    """A .safetensors file whose header (8-byte little-endian length, then JSON) is whole."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else -1
        problem = None
        if length < 2:
            problem = "it is too short to hold a header"
        elif length > min(size - 8, SAFETENSORS_HEADER_MAX):
            problem = f"its header claims {length} bytes but the file holds {size - 8} after it"
        else:
            try:
                header = json.loads(f.read(length))
            except ValueError:
                header = None
            if not isinstance(header, dict):
                problem = "its header is not a JSON object"
    if problem:
        raise st.BadModelFile(
            f"{path} is not a valid safetensors file: {problem} (truncated or damaged); "
            "copy the weights again"
        )


def guarded(what: str, path: Path, load: Callable[[], Any]) -> Any:
    """``load()``, with any library exception turned into one line naming ``path``."""
    try:
        return load()
    except AlignUniformError:
        raise
    except Exception as err:  # transformers / tokenizers / safetensors fail in their own ways
        reason = " ".join(str(err).split())[:300] or type(err).__name__
        if "mismatched" in reason or "size mismatch" in reason:
            reason = "its tensors have other shapes than config.json describes"
        raise st.BadModelFile(
            f"could not load the {what} from {path}: {reason}; restore the file(s) from the model"
        ) from err


def quietly(transformers: Any, load: Callable[[], Any]) -> Any:
    """``load()`` with transformers' own loading report and bar silenced (our error says it)."""
    logging = transformers.utils.logging
    level, bar = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        return load()
    finally:
        logging.set_verbosity(level)
        if bar:
            logging.enable_progress_bar()


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
        directory: holds config.json, tokenizer files and (unless ``random_init``) weights;
            a sentence-transformers directory's modules.json pipeline is followed (its pooling
            and the Dense / Normalize modules after it).
        pooler: one of `POOLERS` (replaces the pipeline's pooling); None takes the directory's
            sentence-transformers config.
        random_init: build the architecture from config.json with fresh weights (seeded).
        max_length: truncation length in tokens, 1 to the model's limit (default:
            sentence_bert_config.json, else the tokenizer's limit, at most 512).
    """
    root = Path(directory).expanduser()
    pipeline = st.read_pipeline(root) if root.is_dir() else None
    directory = check_model_dir(
        root / (pipeline.transformer if pipeline else ""), need_weights=not random_init
    )
    if pooler is None:
        pooler, pooler_source = default_pooler(root)
    elif pooler not in POOLERS:
        raise InvalidValueError(f"unknown pooler {pooler!r}; valid: {', '.join(POOLERS)}")
    else:
        pooler_source = "chosen"
    st.read_json(directory / "config.json", dict)
    lowercase = bool(st_config(directory).get("do_lower_case", False))
    transformers = require("transformers", "text")
    config = guarded(
        "model config",
        directory / "config.json",
        lambda: transformers.AutoConfig.from_pretrained(directory, local_files_only=True),
    )
    tokenizer = guarded(
        "tokenizer",
        directory,
        lambda: transformers.AutoTokenizer.from_pretrained(directory, local_files_only=True),
    )
    if random_init:
        with seeded(seed):
            model = guarded(
                "architecture",
                directory / "config.json",
                lambda: transformers.AutoModel.from_config(config),
            )
        weights, missing = None, []
    else:
        file = weights_file(directory)
        if file.suffix == ".safetensors":
            check_safetensors(file)
        model, loading = guarded(
            "weights",
            file,
            lambda: quietly(
                transformers,
                lambda: transformers.AutoModel.from_pretrained(
                    directory, config=config, local_files_only=True, output_loading_info=True
                ),
            ),
        )
        weights, missing = str(file), list(loading.get("missing_keys", []))
    if pooler == "cls" and (
        getattr(model, "pooler", None) is None or any(".pooler." in f".{k}" for k in missing)
    ):
        raise InvalidValueError(
            f"pooler 'cls' needs trained pooler weights, which {directory} does not hold; "
            "use --pooler cls_before_pooler (the [CLS] token's hidden state)"
        )
    if max_length is None:
        length = model_max_length(directory, tokenizer)
    else:
        length = check_max_length(max_length, position_limit(model) or MAX_LENGTH, root)
    after = pipeline.after if pipeline else []
    info = {
        "kind": "hf",
        "spec": f"hf:{root}",
        "architecture": type(model).__name__,
        "weights": weights,
        "pooler": pooler,
        "pooler_source": pooler_source,
        "max_length": length,
    }
    if pipeline is not None:
        info["modules"] = pipeline.names
        info["pipeline_normalises"] = pipeline.normalises
    if missing:
        info["missing_weights"] = missing
    if random_init:
        info["seed"] = seed
    return ExternalEncoder(
        HFTextEncoder(model, tokenizer, pooler, length, after, lowercase),
        modality="text",
        info=info,
    )
