"""`Options`: every setting of a measurement beside MODEL, protocol and data, in one place."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.names import PRECISIONS
from alignuniform.runs.schema import (
    BOOL,
    DEVICE,
    PATH,
    TEXT,
    Keyed,
    choice,
    integer,
    key,
    number,
    optional,
)

ESTIMATORS = ("whole-set", "per-batch")
POSITIVE = number(0, open_low=True)


@dataclass
class Options(Keyed):
    """Settings of `measure`, one `key` each (``alignuniform measure --help`` is made from
    them): "protocol" keys say what is measured, "run" keys how it is computed."""

    default_role = "protocol"

    alpha: float = key(2.0, POSITIVE, "alignment exponent", metavar="ALPHA")
    t: float = key(2.0, POSITIVE, "uniformity temperature", metavar="T")
    threshold: float | None = key(
        None,
        optional(number(0)),
        "sts: positives score >= this (default 0.8 x --score-max, i.e. 4 of 5)",
        metavar="THRESHOLD",
    )
    score_max: float = key(
        5.0,
        POSITIVE,
        "sts: the top of the score scale (any positive number: 5, 1, 100, ...)",
        metavar="S",
    )
    estimator: str = key(
        "whole-set",
        choice(ESTIMATORS),
        "sts: one whole-set estimate, or per-batch means to reproduce legacy numbers",
    )
    max_pairs: int | None = key(
        None, optional(integer(1)), "sampled estimates from K random pairs", metavar="K"
    )
    seed: int = key(0, integer(0), "views, sampling, random init", metavar="SEED")
    split: str = key("test", TEXT, "views/labels: dataset split", metavar="SPLIT")
    data_dir: str | None = key(None, optional(PATH), "views/labels: where the dataset lies")
    limit: int | None = key(
        None, optional(integer(2)), "views/labels: N random images", flag="--subset"
    )
    recipe: str | None = key(
        None,
        optional(TEXT),
        "views/labels: image preprocessing: model (a timm/torchvision model's own; the "
        "default for them), dataset (the dataset's recipe; the default otherwise), or a recipe "
        "name (fashion-mnist, cifar, cifar100, stl10-paper, imagenet)",
    )
    image_size: int = key(224, integer(1), "image files: side in pixels", metavar="PX")
    device: str = key("cpu", DEVICE, DEVICE.what, role="run")
    batch_size: int = key(64, integer(1), "items per batch", role="run", metavar="B")
    precision: str = key(
        "fp32",
        choice(PRECISIONS),
        "encoding precision (metrics are computed in fp32/fp64)",
        role="run",
    )
    progress: bool = key(False, BOOL, "a progress report on stderr", role="run", flag=False)
    normalize: bool = key(True, BOOL, "unit-normalise the embeddings first", flag=False)

    def __post_init__(self) -> None:
        from alignuniform.core.device import resolve_device  # torch: not for --help
        from alignuniform.core.validation import check_int, check_positive, check_positive_int

        self.alpha = check_positive(self.alpha, "alpha")
        self.t = check_positive(self.t, "t")
        self.score_max = check_positive(self.score_max, "score_max")
        self.batch_size = check_positive_int(self.batch_size, "batch_size")
        self.image_size = check_positive_int(self.image_size, "image_size")
        self.seed = check_int(self.seed, "seed", minimum=0)
        if self.max_pairs is not None:
            self.max_pairs = check_positive_int(self.max_pairs, "max_pairs")
        if self.limit is not None:
            self.limit = check_int(self.limit, "limit", minimum=2)
        self.device = str(resolve_device(str(self.device)))
        if self.estimator not in ESTIMATORS:
            raise InvalidValueError(
                f"unknown estimator {self.estimator!r}; valid: {', '.join(ESTIMATORS)}"
            )
        if self.threshold is not None and not 0 <= self.threshold <= self.score_max:
            raise InvalidValueError(
                f"threshold {self.threshold:g} lies outside the score scale 0-{self.score_max:g}"
            )

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any], base: Options | None = None) -> Options:
        """``base`` (default: the defaults) with ``kwargs`` changed; unknown names refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise InvalidValueError(
                f"unknown measure option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
            )
        return dataclasses.replace(base, **kwargs) if base else cls(**kwargs)

    def record(self) -> dict[str, Any]:
        """The settings every protocol records: normalisation, estimator, alpha, t, sampling."""
        return {
            "normalised": self.normalize,
            "estimator": self.estimator,
            "alpha": self.alpha,
            "t": self.t,
            "max_pairs": self.max_pairs,
            "seed": self.seed,
        }
