"""The one table of loss families: the Table 1 rows a run competes in, and how each is shown.

A trained run belongs to the family of its objective (`Objective.family`: contrastive only,
align/uniform only, or mixed); the baselines have rows of their own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """A results row: ``title`` in tables, ``label`` and ``marker`` in scatter plots; a baseline
    shows ``baseline_loss`` in place of a loss mix."""

    name: str
    title: str
    label: str
    marker: str
    baseline_loss: str | None = None


FAMILIES = {
    f.name: f
    for f in (
        Family("contrastive", "Best L_c only", "contrastive only", "+"),
        Family("align_uniform", "Best L_align + L_uniform only", "align + uniform only", "o"),
        Family("mixed", "Best mixed", "all three mixed", "^"),
        Family("supervised", "Supervised", "supervised", "s", baseline_loss="cross-entropy"),
        Family("untrained", "Random initialisation", "random initialisation", "x", ""),
        Family("pixels", "Raw pixels", "raw pixels", "*", baseline_loss=""),
    )
}
UNKNOWN_MARKER = "D"


def family_of(config) -> str:
    """The family of a run's config: a baseline's own row, else its objective's family."""
    if config.encoder == "identity":
        return "pixels"
    if config.epochs == 0:
        return "untrained"
    if config.method == "supervised":
        return "supervised"
    return loss_family(config.loss)


def loss_family(loss: str) -> str:
    """The family of an objective expression (`Objective.family`)."""
    from alignuniform.core.objective import Objective  # torch: not while the CLI builds --help

    return Objective.parse(loss).family


def family_order(family: str) -> tuple[int, str]:
    """Sort key: the families of `FAMILIES` in table order, then others by name."""
    order = list(FAMILIES)
    return (order.index(family) if family in order else len(order), family)
