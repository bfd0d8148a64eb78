"""A Lightning callback that logs a held-out set's alignment and uniformity while training.

    align       = mean_i ||f(x_i) - f(y_i)||^alpha               (`alignuniform.alignment`)
    uniform     = log mean_{i<j} exp(-t ||f(x_i) - f(x_j)||^2)    (`alignuniform.uniformity`)
    uniform_gap = uniform - (-2t + log 0F1(; d/2; t^2))           (`uniformity_bound`, d = dim f)

over fixed held-out inputs x (and their positives y), every N training steps and/or every N
epochs, in eval mode without gradients, to every logger the Trainer has (rank 0 only).
Needs ``alignuniform[lightning]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from alignuniform.core.errors import InvalidTypeError, InvalidValueError
from alignuniform.core.metrics import alignment, uniformity, uniformity_bound
from alignuniform.core.validation import check_positive, check_positive_int
from alignuniform.models.external.base import require

pl = require("lightning.pytorch", "lightning")

__all__ = ["AlignUniformMonitor"]

Embed = Callable[[Any, torch.Tensor], torch.Tensor]


class AlignUniformMonitor(pl.Callback):
    """Log L_align, L_uniform and the gap to the uniform distribution's bound of a held-out set.

    How the embedding function is found, first match wins:
      1. ``embed``: a callable ``embed(pl_module, inputs) -> [B, d]``, or the name of a method of
         the LightningModule (``embed="encode"`` calls ``pl_module.encode(inputs)``);
      2. the LightningModule's ``embed(inputs)`` method, if it has one;
      3. the module itself: ``pl_module(inputs)`` (its ``forward``).

    Args:
        x: held-out inputs [N, ...] (e.g. one fixed augmentation of held-out images).
        y: their positives [N, ...] (e.g. a second fixed augmentation); without it only the
            uniformity and its gap are logged.
        every_n_steps: log after every N optimiser steps (None: never on steps).
        every_n_epochs: log after every N training epochs (None: never on epochs).
        embed: see above.
        alpha: alignment exponent; t: uniformity temperature (the paper's defaults 2 and 2).
        normalize: L2-normalise the embeddings first; by default they must be unit norm.
        batch_size: inputs per forward pass.
        prefix: prepended to the logged names ``align``, ``uniform``, ``uniform_gap``.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        *,
        every_n_steps: int | None = None,
        every_n_epochs: int | None = 1,
        embed: Embed | str | None = None,
        alpha: float = 2.0,
        t: float = 2.0,
        normalize: bool = False,
        batch_size: int = 512,
        prefix: str = "heldout/",
    ) -> None:
        super().__init__()
        if not isinstance(x, torch.Tensor) or (y is not None and not isinstance(y, torch.Tensor)):
            raise InvalidTypeError("x and y must be tensors of held-out inputs [N, ...]")
        if y is not None and len(y) != len(x):
            raise InvalidValueError(
                f"y must hold one positive per row of x, got {len(x)} rows in x and {len(y)} in y"
            )
        if len(x) < 2:
            raise InvalidValueError(f"x needs at least 2 held-out inputs, got {len(x)}")
        if every_n_steps is None and every_n_epochs is None:
            raise InvalidValueError("set every_n_steps, every_n_epochs or both: nothing to log")
        self.every_n_steps, self.every_n_epochs = (
            None if n is None else check_positive_int(n, name)
            for n, name in ((every_n_steps, "every_n_steps"), (every_n_epochs, "every_n_epochs"))
        )
        if not (embed is None or callable(embed) or isinstance(embed, str)):
            raise InvalidTypeError(
                f"embed must be a callable(pl_module, inputs), a method name or None, got {embed!r}"
            )
        self.x, self.y, self.embed = x, y, embed
        self.alpha = check_positive(alpha, "alpha")
        self.t = check_positive(t, "t")
        self.normalize = normalize
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.prefix = prefix
        self._last_step = -1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if self.every_n_steps and step % self.every_n_steps == 0 and step != self._last_step:
            self._last_step = step  # with gradient accumulation several batches share a step
            self.log_heldout(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.log_heldout(trainer, pl_module)

    def log_heldout(self, trainer, pl_module) -> dict[str, float]:
        """Measure the held-out set now and send it to the Trainer's loggers (on rank 0)."""
        if not trainer.is_global_zero:
            return {}
        metrics = self.measure(pl_module)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        return metrics

    def measure(self, pl_module) -> dict[str, float]:
        """{prefix + "align" (with y), "uniform", "uniform_gap"} of the module as it is now."""
        z = self.embeddings(pl_module, self.x)
        unif = uniformity(z, t=self.t, normalize=self.normalize)
        metrics = {
            f"{self.prefix}uniform": float(unif),
            f"{self.prefix}uniform_gap": float(unif) - uniformity_bound(z.shape[1], self.t),
        }
        if self.y is not None:
            positives = self.embeddings(pl_module, self.y)
            align = alignment(z, positives, self.alpha, normalize=self.normalize)
            metrics = {f"{self.prefix}align": align, **metrics}
        return metrics

    @torch.no_grad()
    def embeddings(self, pl_module, inputs: torch.Tensor) -> torch.Tensor:
        """f(inputs) in eval mode, a batch at a time, float32 on the CPU."""
        embed = self._embed_function(pl_module)
        was_training = pl_module.training
        pl_module.eval()
        try:
            return torch.cat(
                [
                    embed(chunk.to(pl_module.device)).float().cpu()
                    for chunk in inputs.split(self.batch_size)
                ]
            )
        finally:
            pl_module.train(was_training)

    def _embed_function(self, pl_module) -> Callable[[torch.Tensor], torch.Tensor]:
        if callable(self.embed):
            return lambda inputs: self.embed(pl_module, inputs)
        name = self.embed or ("embed" if callable(getattr(pl_module, "embed", None)) else None)
        if name is None:
            return pl_module
        method = getattr(pl_module, name, None)
        if not callable(method):
            raise InvalidValueError(
                f"{type(pl_module).__name__} has no method {name!r} to embed inputs with; "
                "pass embed=callable(pl_module, inputs) or the name of an existing method"
            )
        return method
