"""The protocols `measure` knows: the only table of their names (no torch: the CLI reads it).

Each protocol lives in its own module, whose ``prepare(model, data, opts) -> Sample`` says what
to measure; `alignuniform.measure.driver.run` measures every `Sample` the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from alignuniform.core.errors import InvalidValueError


@dataclass(frozen=True)
class Protocol:
    name: str
    module: str  # alignuniform.measure.<module> holds its prepare()
    needs_data: bool  # --dataset is required
    two_towers: bool  # takes --second-model
    data_file: bool  # its data, when given, is a file that must exist
    summary: str


TABLE = (
    Protocol("sts", "sts", True, False, True, "STS pairs scoring >= a threshold (SimCSE)"),
    Protocol("pairs", "pairs", False, False, True, "the pairs a file lists, or rows of two files"),
    Protocol("views", "views", True, False, False, "two augmented views of each image (the paper)"),
    Protocol("labels", "labels", True, False, False, "items sharing a label"),
    Protocol("cross-modal", "crossmodal", False, True, True, "paired items of two towers"),
    Protocol(
        "weighted", "weighted", True, True, True, "users and items of interactions (DirectAU)"
    ),
)
BY_NAME = {p.name: p for p in TABLE}
PROTOCOLS = tuple(BY_NAME)
TWO_TOWERS = tuple(p.name for p in TABLE if p.two_towers)


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``, or an error listing the valid names."""
    if name not in BY_NAME:
        raise InvalidValueError(f"unknown protocol {name!r}; valid: {', '.join(PROTOCOLS)}")
    return BY_NAME[name]
