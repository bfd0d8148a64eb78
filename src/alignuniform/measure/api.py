"""`measure(MODEL, protocol, data, **options)` -> `MeasureResult`: the one entry point.

    result = measure("hf:path/to/all-MiniLM-L6-v2", "sts", "sts-mini.tsv")
    result.alignment, result.uniformity, result.protocol, result.to_dict()

MODEL is a spec string (see `alignuniform.measure.models`), an `ExternalEncoder`, precomputed
`Embeddings`, or a tensor / array [N, d] of embeddings.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alignuniform.core.distributed import across_ranks
from alignuniform.core.errors import InvalidValueError, MissingFileError
from alignuniform.measure.driver import run
from alignuniform.measure.encode import OnEvent, reporting, timed
from alignuniform.measure.models import Embeddings, resolve_model
from alignuniform.measure.options import Options
from alignuniform.measure.protocols import PROTOCOLS, TWO_TOWERS, Protocol, get_protocol
from alignuniform.measure.record import data_record, environment, model_record
from alignuniform.measure.result import MeasureResult

__all__ = ["MODEL_OPTIONS", "PROTOCOLS", "as_model", "check_data", "check_request", "measure"]

MODEL_OPTIONS = (
    "pooler",
    "checkpoint",
    "weights",
    "random_init",
    "tap",
    "modality",
    "key",
    "max_length",
)


def measure(
    model: Any,
    protocol: str,
    data: str | Path | None = None,
    *,
    second_model: Any = None,
    options: Options | None = None,
    on_event: OnEvent | None = None,
    **kwargs: Any,
) -> MeasureResult:
    """Measure ``model`` under a named protocol; see the protocol modules for each definition.

    Args:
        model: a MODEL spec string, an encoder, `Embeddings`, or an [N, d] tensor/array.
        protocol: one of `PROTOCOLS`.
        data: the protocol's data (STS file, pairs file, dataset name, labels, interactions).
        second_model: the second tower (cross-modal) or the item embeddings (weighted).
        options: the measurement's `Options` (default: `Options()`).
        on_event: receives each progress line of the encoding (with ``progress``; default:
            the logger of `alignuniform.measure.encode`).
        **kwargs: model options (`MODEL_OPTIONS`) and single `Options` (alpha, t, ...).
    """
    spec = check_request(protocol, data, second_model)
    model_kwargs = {k: kwargs.pop(k) for k in MODEL_OPTIONS if k in kwargs}
    opts = Options.from_kwargs(kwargs, options)
    read = check_data(spec, data, opts)  # before the model: a bad file fails in a second
    encoder = as_model(model, seed=opts.seed, **model_kwargs)
    prepare = importlib.import_module(f"alignuniform.measure.{spec.module}").prepare
    # in a process group: shards encoded and pairs divided across ranks
    with timed() as clock, reporting(on_event), across_ranks():
        if spec.two_towers:
            second = None if second_model is None else as_model(second_model, seed=opts.seed)
            sample = prepare(encoder, read, opts, second)
        else:
            sample = prepare(encoder, read, opts)
        result = run(encoder, sample, opts)
    seconds = clock["encode_seconds"]
    result.timing = {
        "encode_seconds": seconds,
        "items_per_second": clock["items"] / seconds if seconds > 0 else None,
    }
    result.environment = environment(opts.device, opts.precision)
    result.data = data_record(data)
    result.model |= model_record(result.model)
    return result


def check_data(spec: Protocol, data: Any, opts: Options) -> Any:
    """What can be read of the data without a model: an STS file parsed (its pairs are handed
    on); other data files must exist."""
    if spec.name == "sts":
        from alignuniform.measure.sts import read_sts

        return read_sts(data, opts.score_max)
    if spec.data_file and data is not None and not Path(str(data)).expanduser().exists():
        raise MissingFileError(f"data file {str(data)!r} does not exist")
    return data


def check_request(protocol: str, data: Any, second_model: Any) -> Protocol:
    """The protocol, after refusing an unknown one, missing data or a stray second model."""
    spec = get_protocol(protocol)
    if data is None and spec.needs_data:
        raise InvalidValueError(f"protocol {protocol!r} needs --dataset")
    if second_model is not None and not spec.two_towers:
        raise InvalidValueError(
            f"--second-model applies to the {' and '.join(TWO_TOWERS)} protocols, not {protocol}"
        )
    return spec


def as_model(model: Any, **kwargs: Any) -> Any:
    """A spec string resolved; a tensor or array wrapped as `Embeddings`; encoders as given."""
    if isinstance(model, (str, Path)):
        return resolve_model(str(model), **kwargs)
    if isinstance(model, (torch.Tensor, np.ndarray)):
        return Embeddings(model, {"kind": "embeddings", "spec": "array", "weights": "precomputed"})
    return model
