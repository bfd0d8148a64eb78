"""`measure(MODEL, protocol, data, **options)` -> `MeasureResult`: the one entry point.

    result = measure("hf:path/to/all-MiniLM-L6-v2", "sts", "sts-mini.tsv")
    result.alignment, result.uniformity, result.protocol, result.to_dict()

MODEL is a spec string (see `alignuniform.measure.models`), an `ExternalEncoder`, precomputed
`Embeddings`, or a tensor / array [N, d] of embeddings.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alignuniform.core.distributed import across_ranks
from alignuniform.core.errors import InvalidValueError, MissingFileError
from alignuniform.measure.encode import timed
from alignuniform.measure.models import Embeddings, resolve_model
from alignuniform.measure.options import Options
from alignuniform.measure.record import data_record, environment, model_record
from alignuniform.measure.result import MeasureResult

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


def _protocols() -> dict[str, Callable[..., MeasureResult]]:
    from alignuniform.measure.crossmodal import measure_cross_modal
    from alignuniform.measure.labels import measure_labels
    from alignuniform.measure.pairs import measure_pairs
    from alignuniform.measure.sts import measure_sts
    from alignuniform.measure.views import measure_views
    from alignuniform.measure.weighted import measure_weighted

    return {
        "sts": measure_sts,
        "pairs": measure_pairs,
        "views": measure_views,
        "labels": measure_labels,
        "cross-modal": measure_cross_modal,
        "weighted": measure_weighted,
    }


PROTOCOLS = ("sts", "pairs", "views", "labels", "cross-modal", "weighted")
NEEDS_DATA = ("sts", "views", "labels", "weighted")
TWO_TOWERS = ("cross-modal", "weighted")
FILE_DATA = ("pairs", "cross-modal", "weighted")


def measure(
    model: Any,
    protocol: str,
    data: str | Path | None = None,
    *,
    second_model: Any = None,
    options: Options | None = None,
    **kwargs: Any,
) -> MeasureResult:
    """Measure ``model`` under a named protocol; see the protocol modules for each definition.

    Args:
        model: a MODEL spec string, an encoder, `Embeddings`, or an [N, d] tensor/array.
        protocol: one of `PROTOCOLS`.
        data: the protocol's data (STS file, pairs file, dataset name, labels, interactions).
        second_model: the second tower (cross-modal) or the item embeddings (weighted).
        options: the measurement's `Options` (default: `Options()`).
        **kwargs: model options (`MODEL_OPTIONS`) and single `Options` (alpha, t, ...).
    """
    check_request(protocol, data, second_model)
    model_kwargs = {k: kwargs.pop(k) for k in MODEL_OPTIONS if k in kwargs}
    opts = Options.from_kwargs(kwargs, options)
    run = check_data(protocol, data, opts)  # before the model: a bad file fails in a second
    encoder = as_model(model, seed=opts.seed, **model_kwargs)
    # in a process group: shards encoded and pairs divided across ranks
    with timed() as clock, across_ranks():
        if protocol in TWO_TOWERS:
            second = None if second_model is None else as_model(second_model, seed=opts.seed)
            result = run(encoder, data, opts, second)
        else:
            result = run(encoder, data, opts)
    seconds = clock["encode_seconds"]
    result.timing = {
        "encode_seconds": seconds,
        "items_per_second": clock["items"] / seconds if seconds > 0 else None,
    }
    result.environment = environment(opts.device, opts.precision)
    result.data = data_record(data)
    result.model |= model_record(result.model)
    return result


def check_data(protocol: str, data: Any, opts: Options) -> Callable[..., MeasureResult]:
    """The protocol's function, after reading what can be read of its data without a model
    (an STS file is parsed here and handed on; other data files must exist)."""
    if protocol == "sts":
        from alignuniform.measure.sts import measure_sts_pairs, read_sts

        pairs = read_sts(data, opts.score_max)
        return lambda encoder, data, opts: measure_sts_pairs(encoder, pairs, opts, data=str(data))
    if protocol in FILE_DATA and data is not None and not Path(str(data)).expanduser().exists():
        raise MissingFileError(f"data file {str(data)!r} does not exist")
    return _protocols()[protocol]


def check_request(protocol: str, data: Any, second_model: Any) -> None:
    """Refuse an unknown protocol, missing data or a stray second model before any work."""
    if protocol not in PROTOCOLS:
        raise InvalidValueError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    if data is None and protocol in NEEDS_DATA:
        raise InvalidValueError(f"protocol {protocol!r} needs --dataset")
    if second_model is not None and protocol not in TWO_TOWERS:
        raise InvalidValueError(
            f"--second-model applies to the {' and '.join(TWO_TOWERS)} protocols, not {protocol}"
        )


def as_model(model: Any, **kwargs: Any) -> Any:
    """A spec string resolved; a tensor or array wrapped as `Embeddings`; encoders as given."""
    if isinstance(model, (str, Path)):
        return resolve_model(str(model), **kwargs)
    if isinstance(model, (torch.Tensor, np.ndarray)):
        return Embeddings(model, {"kind": "embeddings", "spec": "array", "weights": "precomputed"})
    return model
