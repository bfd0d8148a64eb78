"""`Options`: every setting of a measurement beside MODEL, protocol and data, in one place."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.validation import check_int, check_positive, check_positive_int

ESTIMATORS = ("whole-set", "per-batch")


@dataclass
class Options:
    """Settings of `measure` (see ``alignuniform measure --help`` for each)."""

    alpha: float = 2.0
    t: float = 2.0
    normalize: bool = True
    estimator: str = "whole-set"
    max_pairs: int | None = None
    seed: int = 0
    threshold: float | None = None
    score_max: float = 5.0
    batch_size: int = 64
    device: str = "cpu"
    precision: str = "fp32"
    progress: bool = False
    split: str = "test"
    data_dir: str | None = None
    limit: int | None = None
    image_size: int = 224
    recipe: str | None = None

    def __post_init__(self) -> None:
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
        if self.estimator not in ESTIMATORS:
            raise InvalidValueError(
                f"unknown estimator {self.estimator!r}; valid: {', '.join(ESTIMATORS)}"
            )
        if self.threshold is not None and not 0 <= self.threshold <= self.score_max:
            raise InvalidValueError(
                f"threshold {self.threshold:g} lies outside the score scale 0-{self.score_max:g}"
            )

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> Options:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise InvalidValueError(
                f"unknown measure option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
            )
        return cls(**kwargs)

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
