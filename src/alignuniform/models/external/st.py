"""A sentence-transformers directory's pipeline (modules.json), applied as the model runs it.

    modules.json: Transformer -> Pooling -> [Dense ...] -> [Normalize]

Pooling modes, every spelling of sentence-transformers 2.x-6.x (``pooling_mode`` "mean" or a
list, or the legacy ``pooling_mode_*_token(s)`` booleans), with m the attention mask and h the
last hidden states (several modes are concatenated in the library's order):

    cls                   h_0 (the first token)                 -> our ``cls_before_pooler``
    mean                  sum_i m_i h_i / sum_i m_i             -> our ``avg``
    max                   max_i over masked tokens of h_i
    mean_sqrt_len_tokens  sum_i m_i h_i / sqrt(sum_i m_i)
    weightedmean          sum_i i m_i h_i / sum_i i m_i         (positions i from 1)
    lasttoken             h_k, k the last unmasked token

Dense: act(W x + b) with W, b from the module's weights file; Normalize: x / ||x||.
Any other module is refused by name: nothing of a pipeline is dropped silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from alignuniform.core.errors import InvalidValueError

# the library's order of concatenation, and each legacy boolean's mode
LEGACY_MODES = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
ST_MODES = tuple(LEGACY_MODES.values())
AS_SIMCSE = {"mean": "avg", "cls": "cls_before_pooler"}
ACTIVATIONS = {
    "Tanh": nn.Tanh,
    "Identity": nn.Identity,
    "ReLU": nn.ReLU,
    "GELU": nn.GELU,
    "Sigmoid": nn.Sigmoid,
    "SiLU": nn.SiLU,
}
DENSE_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


class BadModelFile(InvalidValueError):
    """A file of a model directory is damaged or not what its name promises."""


@dataclass
class Pipeline:
    """What modules.json asks for: the transformer's folder, its pooler, the modules after it."""

    transformer: str = ""
    pooler: str | None = None
    pooler_file: str | None = None
    after: list[nn.Module] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    @property
    def normalises(self) -> bool:
        return any(isinstance(m, Normalize) for m in self.after)


class Normalize(nn.Module):
    """x / max(||x||, 1e-12), as ``torch.nn.functional.normalize``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(x, p=2.0, dim=1)


def read_json(path: Path, kind: type = object) -> Any:
    """JSON of ``path``, or one line naming the file; ``kind`` the top-level type required."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise BadModelFile(f"{path} is not valid JSON ({err}); restore it from the model") from err
    if not isinstance(value, kind):
        raise BadModelFile(
            f"{path} holds a JSON {type(value).__name__}, expected a JSON "
            f"{'list' if kind is list else 'object'}; restore it from the model"
        )
    return value


def pooling_modes(path: Path) -> tuple[str, ...]:
    """The modes a Pooling config.json asks for, in any 2.x-6.x spelling."""
    config = read_json(path, dict)
    mode = config.get("pooling_mode")
    if mode is None:
        modes = tuple(m for key, m in LEGACY_MODES.items() if config.get(key) is True)
        modes = modes or ("mean",)  # what the library assumes when none is set
    elif isinstance(mode, str):
        modes = (mode,)
    elif isinstance(mode, list) and mode and all(isinstance(m, str) for m in mode):
        modes = tuple(mode)
    else:
        raise BadModelFile(f"{path}: pooling_mode {mode!r} is neither a mode nor a list of modes")
    unknown = [m for m in modes if m not in ST_MODES]
    if unknown:
        raise BadModelFile(
            f"{path}: unknown pooling mode {unknown[0]!r}; sentence-transformers knows "
            f"{', '.join(ST_MODES)}"
        )
    return modes


def pooler_name(modes: tuple[str, ...]) -> str:
    """Our name of a pooling: SimCSE's where it is one (mean -> avg), modes joined by '+'."""
    return "+".join(AS_SIMCSE.get(m, m) for m in modes)


def read_pipeline(directory: Path) -> Pipeline | None:
    """The pipeline of modules.json (None without one); unknown modules refused by name."""
    path = directory / "modules.json"
    if not path.is_file():
        return None
    modules = read_json(path, list)
    pipeline = Pipeline()
    for number, module in enumerate(modules):
        if not isinstance(module, dict) or not isinstance(module.get("type"), str):
            raise BadModelFile(f"{path}: entry {number} is not a module with a 'type'")
        kind = module["type"].rsplit(".", 1)[-1]
        folder = directory / str(module.get("path", ""))
        if number == 0:
            if kind != "Transformer":
                raise _cannot(path, module["type"], "its first module must be a Transformer")
            pipeline.transformer = str(module.get("path", ""))
        elif kind == "Pooling" and pipeline.pooler is None and not pipeline.after:
            config = folder / "config.json"
            pipeline.pooler = pooler_name(pooling_modes(config))
            pipeline.pooler_file = str(config.relative_to(directory))
        elif kind == "Dense" and pipeline.pooler is not None:
            pipeline.after.append(load_dense(folder))
        elif kind == "Normalize" and pipeline.pooler is not None:
            pipeline.after.append(Normalize())
        else:
            raise _cannot(
                path,
                module["type"],
                "measure applies Transformer, Pooling, Dense, Normalize in that order",
            )
        pipeline.names.append(kind)
    if pipeline.pooler is None and len(modules) > 1:
        raise _cannot(path, modules[1].get("type"), "no Pooling module follows the Transformer")
    return pipeline


def _cannot(path: Path, kind: Any, why: str) -> InvalidValueError:
    return InvalidValueError(
        f"{path} holds module {kind} which measure cannot apply ({why}); encode the texts "
        "yourself and measure the embeddings file (alignuniform measure EMB.npy ...)"
    )


def load_dense(folder: Path) -> nn.Sequential:
    """A Dense module: Linear(in, out, bias) then its activation, weights from its folder."""
    config = read_json(folder / "config.json", dict)
    try:
        n_in, n_out = int(config["in_features"]), int(config["out_features"])
        bias = bool(config.get("bias", True))
    except (KeyError, TypeError, ValueError) as err:
        raise BadModelFile(f"{folder / 'config.json'}: no valid in/out_features ({err})") from err
    activation = str(config.get("activation_function") or "torch.nn.modules.linear.Identity")
    short = activation.rsplit(".", 1)[-1]
    if not activation.startswith("torch.") or short not in ACTIVATIONS:
        raise InvalidValueError(
            f"{folder / 'config.json'}: activation {activation} is not one measure applies "
            f"({', '.join(ACTIVATIONS)})"
        )
    linear = nn.Linear(n_in, n_out, bias=bias)
    weights = next((folder / n for n in DENSE_WEIGHTS if (folder / n).is_file()), None)
    if weights is None:
        raise BadModelFile(f"{folder} has no weights file ({' or '.join(DENSE_WEIGHTS)})")
    from alignuniform.models.external.vision import read_state_dict

    state = {k.removeprefix("linear."): v for k, v in read_state_dict(weights).items()}
    try:
        linear.load_state_dict(state)
    except RuntimeError as err:
        raise BadModelFile(
            f"{weights} does not fit Dense({n_in} -> {n_out}): {str(err).splitlines()[-1].strip()}"
        ) from err
    return nn.Sequential(linear, ACTIVATIONS[short]())


def st_pool(mode: str, mask: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """One sentence-transformers pooling mode (see the module docstring) of [B, T, d] tokens."""
    m = mask.unsqueeze(-1).to(last.dtype)
    if mode == "max":
        return last.masked_fill(m == 0, float("-inf")).max(dim=1).values
    if mode == "mean_sqrt_len_tokens":
        return (last * m).sum(1) / m.sum(1).clamp(min=1e-9).sqrt()
    if mode == "weightedmean":
        weights = (
            m
            * torch.arange(1, last.shape[1] + 1, dtype=last.dtype, device=last.device)[
                None, :, None
            ]
        )
        return (last * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    if mode == "lasttoken":
        values, flipped = mask.flip(1).max(1)
        index = torch.where(values == 0, last.shape[1] - 1, last.shape[1] - 1 - flipped)
        return (last * m)[torch.arange(last.shape[0], device=last.device), index]
    raise InvalidValueError(f"unknown pooling mode {mode!r}")
