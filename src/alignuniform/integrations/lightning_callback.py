"""A Lightning callback that logs a held-out set's alignment and uniformity, the Lightning way.

    align       = mean_i ||f(x_i) - f(y_i)||^alpha               (`alignuniform.alignment`)
    uniform     = log mean_{i<j} exp(-t ||f(x_i) - f(x_j)||^2)    (`alignuniform.uniformity`)
    uniform_gap = uniform - (-2t + log 0F1(; d/2; t^2))           (`uniformity_bound`, d = dim f)

When: at the end of every validation run (Lightning's schedule: ``val_check_interval``,
``check_val_every_n_epoch``), at the end of a training epoch the Trainer does not validate, and
with ``every_n_steps`` after every N-th optimiser step; never twice at one global step.
What: the held-out data given, or else the first validation dataloader's batches.
Where: ``pl_module.log_dict``, so the values reach ``trainer.callback_metrics`` (ModelCheckpoint,
EarlyStopping, the progress bar with ``prog_bar=True``) and the loggers on Lightning's schedule.
Under DDP each rank embeds its share, the embeddings are gathered (uneven shares included) and
every rank computes the same value from all of them; the loggers write on rank 0. (Lightning's
DistributedSampler repeats a few validation samples when the set does not divide evenly among
the ranks; held-out x is split exactly.)
Needs ``alignuniform[lightning]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from alignuniform.core.errors import InvalidTypeError, InvalidValueError
from alignuniform.core.metrics import alignment, uniformity, uniformity_bound
from alignuniform.core.validation import check_embeddings, check_positive, check_positive_int
from alignuniform.models.external.base import require

pl = require("lightning.pytorch", "lightning")

__all__ = ["AlignUniformMonitor"]

Embed = Callable[[Any, Any], Any]
Views = tuple[torch.Tensor, torch.Tensor | None]


class AlignUniformMonitor(pl.Callback):
    """Log L_align, L_uniform and the gap to the uniform distribution's bound of held-out data.

    How a batch is embedded, first match wins:
      1. ``embed``: a callable ``embed(pl_module, batch)``, or the name of a method of the
         LightningModule (``embed="encode"`` calls ``pl_module.encode(batch)``);
      2. the LightningModule's ``embed(batch)`` method, if it has one;
      3. the module itself: ``pl_module(batch)`` (its ``forward``).
    It returns embeddings [B, d], one row per input of the batch, or a pair ``(z_a, z_b)`` of
    positives (then alignment is logged too). Every output is checked: a tensor, 2-D, B rows,
    finite.

    Args:
        x: held-out inputs: a tensor [N, ...] or a mapping of them (e.g. tokenised text, a
            ``BatchEncoding``), split into batches of ``batch_size``; or any iterable of
            batches (a DataLoader, a list). None: the first validation dataloader's batches.
        y: the positives of a tensor or mapping x, row for row (e.g. a second augmentation).
        every_n_steps: also measure after every N-th optimiser step (needs x).
        every_n_epochs: measure on every N-th epoch's validation runs, or at the end of every
            N-th training epoch when the Trainer does not validate (None: never there).
        embed: see above.
        alpha: alignment exponent; t: uniformity temperature (the paper's defaults 2 and 2).
        normalize: L2-normalise the embeddings first; by default they must be unit norm.
        batch_size: rows of x per batch.
        prefix: prepended to the logged names ``align``, ``uniform``, ``uniform_gap``.
        prog_bar: show the values in the progress bar too.
    """

    def __init__(
        self,
        x: Any = None,
        y: Any = None,
        *,
        every_n_steps: int | None = None,
        every_n_epochs: int | None = 1,
        embed: Embed | str | None = None,
        alpha: float = 2.0,
        t: float = 2.0,
        normalize: bool = False,
        batch_size: int = 512,
        prefix: str = "heldout/",
        prog_bar: bool = False,
    ) -> None:
        super().__init__()
        _check_data(x, y)
        if every_n_steps is None and every_n_epochs is None:
            raise InvalidValueError("set every_n_steps, every_n_epochs or both: nothing to log")
        self.every_n_steps, self.every_n_epochs = (
            None if n is None else check_positive_int(n, name)
            for n, name in ((every_n_steps, "every_n_steps"), (every_n_epochs, "every_n_epochs"))
        )
        if x is None and every_n_steps is not None:
            raise InvalidValueError(
                "every_n_steps measures during training, where there are no validation batches: "
                "pass the held-out data as x"
            )
        if not (embed is None or callable(embed) or isinstance(embed, str)):
            raise InvalidTypeError(
                f"embed must be a callable(pl_module, batch), a method name or None, got {embed!r}"
            )
        self.x, self.y, self.embed = x, y, embed
        self.alpha = check_positive(alpha, "alpha")
        self.t = check_positive(t, "t")
        self.normalize = normalize
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.prefix, self.prog_bar = prefix, prog_bar
        self._last_step = -1
        self._validation: list[Views] = []
        self._names = {f"{prefix}{name}" for name in ("align", "uniform", "uniform_gap")}

    # -- when -----------------------------------------------------------------------------
    def setup(self, trainer, pl_module, stage: str) -> None:
        self._last_step = -1

    def on_fit_start(self, trainer, pl_module) -> None:
        validates = pl.utilities.model_helpers.is_overridden("validation_step", pl_module)
        if self.x is None and not validates:
            raise InvalidValueError(
                f"AlignUniformMonitor has no data: {type(pl_module).__name__} has no "
                "validation_step; pass held-out data as x or add a validation loop"
            )
        every = trainer.log_every_n_steps
        if self.every_n_steps and (every == 0 or self.every_n_steps % every):
            raise InvalidValueError(
                f"every_n_steps={self.every_n_steps} is not a multiple of the Trainer's "
                f"log_every_n_steps={every}, the steps Lightning sends step values to the "
                f"loggers on; pass Trainer(log_every_n_steps={self.every_n_steps}) or a divisor"
            )

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        # Lightning sends a step value again at every later logging step until it is logged
        # anew; a measurement belongs to its own step only
        results = getattr(trainer, "_results", None)
        for result in results.values() if results else ():
            if result.meta.fx == "on_train_batch_end" and result.meta.name in self._names:
                result._forward_cache = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        due = self.every_n_steps and step > 0 and step % self.every_n_steps == 0
        if due and self._new_step(trainer):  # several batches share a step when accumulating
            self._log(trainer, pl_module, self.heldout_views(trainer, pl_module), on_step=True)

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._validation = []

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx: int = 0
    ) -> None:
        if self.x is None and dataloader_idx == 0 and self._epoch_due(trainer):
            views = self._views(pl_module, batch, None, f"validation batch {batch_idx}")
            self._validation.append(views)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not self._epoch_due(trainer):
            return
        if self.x is None:
            views = _gathered(trainer, self._validation, "the validation batches")
            self._validation = []
        else:
            views = self.heldout_views(trainer, pl_module)
        self._log(trainer, pl_module, views, on_step=False)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # validation at the epoch's end has run by now and logged this step, if it was due
        if self.x is not None and self._epoch_due(trainer):
            self._log(trainer, pl_module, self.heldout_views(trainer, pl_module), on_step=False)

    def _new_step(self, trainer) -> bool:
        return not trainer.sanity_checking and trainer.global_step != self._last_step

    def _epoch_due(self, trainer) -> bool:
        n = self.every_n_epochs
        return bool(n) and (trainer.current_epoch + 1) % n == 0 and self._new_step(trainer)

    # -- what -----------------------------------------------------------------------------
    def _log(self, trainer, pl_module, views: Views, *, on_step: bool) -> None:
        self._last_step = trainer.global_step
        dtype = torch.float32 if pl_module.device.type == "mps" else torch.float64
        values = {
            name: torch.tensor(value, dtype=dtype, device=pl_module.device)
            for name, value in self.metrics(*views).items()
        }
        # every rank holds the same value: the mean across ranks keeps it (and tells Lightning so)
        pl_module.log_dict(
            values,
            prog_bar=self.prog_bar,
            on_step=on_step,
            on_epoch=not on_step,
            sync_dist=True,
            batch_size=1,
        )

    def metrics(self, z_a: torch.Tensor, z_b: torch.Tensor | None = None) -> dict[str, float]:
        """{prefix + "align" (with z_b), "uniform", "uniform_gap"} of embeddings z_a (float32)."""
        unif = float(uniformity(z_a, t=self.t, normalize=self.normalize))
        metrics = {
            f"{self.prefix}uniform": unif,
            f"{self.prefix}uniform_gap": unif - uniformity_bound(z_a.shape[1], self.t),
        }
        if z_b is not None:
            align = alignment(z_a, z_b, self.alpha, normalize=self.normalize)
            metrics = {f"{self.prefix}align": align, **metrics}
        return metrics

    def measure(self, pl_module) -> dict[str, float]:
        """The metrics of the held-out data x for the module as it is now (one process)."""
        return self.metrics(*self.heldout_views(None, pl_module))

    @torch.no_grad()
    def heldout_views(self, trainer, pl_module) -> Views:
        """Embeddings of x (and y) in eval mode: this rank's share of the batches, gathered."""
        if self.x is None:
            raise InvalidValueError("no held-out data x was given to measure")
        world, rank = (1, 0) if trainer is None else (trainer.world_size, trainer.global_rank)
        was_training = pl_module.training
        pl_module.eval()
        try:
            mine = [
                self._views(pl_module, batch, positives, f"batch {i} of the held-out data")
                for i, (batch, positives) in enumerate(_batches(self.x, self.y, self.batch_size))
                if i % world == rank
            ]
        finally:
            pl_module.train(was_training)
        return _gathered(trainer, mine, "the held-out data")

    def _views(self, pl_module, batch: Any, positives: Any, where: str) -> Views:
        """embed(batch) (and embed(positives)), each output checked against its batch."""
        embed = self._embed_function(pl_module)
        device = pl_module.device
        rows = _rows(batch)
        out = embed(pl.utilities.move_data_to_device(batch, device))
        if positives is not None:
            pair = (out, embed(pl.utilities.move_data_to_device(positives, device)))
        else:
            pair = out if isinstance(out, tuple | list) and len(out) == 2 else (out, None)
        z_a = _checked(pair[0], rows, where)
        return z_a, None if pair[1] is None else _checked(pair[1], rows, f"{where} (positives)")

    def _embed_function(self, pl_module) -> Callable[[Any], Any]:
        if callable(self.embed):
            return lambda batch: self.embed(pl_module, batch)
        name = self.embed or ("embed" if callable(getattr(pl_module, "embed", None)) else None)
        if name is None:
            return pl_module
        method = getattr(pl_module, name, None)
        if not callable(method):
            raise InvalidValueError(
                f"{type(pl_module).__name__} has no method {name!r} to embed inputs with; "
                "pass embed=callable(pl_module, batch) or the name of an existing method"
            )
        return method


def _check_data(x: Any, y: Any) -> None:
    if x is None:
        if y is not None:
            raise InvalidValueError("y (positives) was given without x (the held-out inputs)")
        return
    if isinstance(x, torch.Tensor | Mapping):
        n = _rows(x)
        if n is None or n < 2:
            raise InvalidValueError(f"x needs at least 2 held-out inputs, got {n}")
        if y is not None and _rows(y) != n:
            raise InvalidValueError(
                f"y must hold one positive per row of x, got {n} rows in x and {_rows(y)} in y"
            )
        return
    if not isinstance(x, Iterable) or isinstance(x, str):
        raise InvalidTypeError(
            f"x must be a tensor [N, ...], a mapping of tensors or an iterable of batches, "
            f"got {type(x).__name__}"
        )
    if y is not None:
        raise InvalidValueError(
            "y goes with a tensor or mapping x; with an iterable of batches let embed return "
            "the pair (z_a, z_b) of each batch"
        )


def _rows(batch: Any) -> int | None:
    """Inputs in a batch: dim 0 of its first tensor (in a mapping or sequence), or its length."""
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.dim() else None
    if isinstance(batch, Mapping):
        return _rows(next(iter(batch.values()))) if batch else None
    if isinstance(batch, tuple | list) and batch:
        first = batch[0]
        return (
            _rows(first) if isinstance(first, torch.Tensor | Mapping | tuple | list) else len(batch)
        )
    return None


def _split(data: Any, size: int) -> list[Any]:
    if isinstance(data, torch.Tensor):
        return list(data.split(size))
    n = _rows(data)
    return [{key: value[i : i + size] for key, value in data.items()} for i in range(0, n, size)]


def _batches(x: Any, y: Any, size: int) -> Iterable[tuple[Any, Any]]:
    if isinstance(x, torch.Tensor | Mapping):
        xs = _split(x, size)
        return zip(xs, [None] * len(xs) if y is None else _split(y, size), strict=True)
    return ((batch, None) for batch in x)


def _checked(z: Any, rows: int | None, where: str) -> torch.Tensor:
    """The embed function's output for ``where``: a finite [rows, d] floating tensor."""
    if not isinstance(z, torch.Tensor):
        raise InvalidTypeError(
            f"embed returned {type(z).__name__} for {where}; it must return a tensor [B, d] "
            "or a pair (z_a, z_b) of them"
        )
    if z.dim() != 2 or (rows is not None and z.shape[0] != rows):
        raise InvalidValueError(
            f"embed returned shape {tuple(z.shape)} for {where} of {rows} inputs; it must "
            f"return [{rows}, d], one embedding per input"
        )
    return check_embeddings(z, f"embed's output for {where}", tol=None)


def _gathered(trainer, parts: list[Views], what: str) -> Views:
    """This rank's views concatenated, then every rank's in rank order (float32, CPU)."""
    if not parts and (trainer is None or trainer.world_size == 1):
        raise InvalidValueError(f"nothing to measure: {what} gave no batches")
    if parts and len({part[1] is None for part in parts}) > 1:
        raise InvalidValueError(f"embed returned positives for some of {what} but not all")
    z_a = torch.cat([part[0] for part in parts]).float() if parts else None
    z_b = (
        torch.cat([part[1] for part in parts]).float()
        if parts and parts[0][1] is not None
        else None
    )
    if trainer is not None and trainer.world_size > 1:
        z_a, z_b = _all_rows(trainer, z_a), _all_rows(trainer, z_b)
    if z_a is None or z_a.shape[0] < 2:
        raise InvalidValueError(f"{what} gave {0 if z_a is None else len(z_a)} rows; need >= 2")
    return z_a.cpu(), None if z_b is None else z_b.cpu()


def _all_rows(trainer, z: torch.Tensor | None) -> torch.Tensor | None:
    """all_gather of [n_r, d] tensors whose n_r differ (and may be 0) across ranks."""
    device = trainer.strategy.root_device
    shape = torch.tensor([0, 0] if z is None else list(z.shape), device=device)
    shapes = trainer.strategy.all_gather(shape).reshape(-1, 2).tolist()
    width = max(d for _, d in shapes)
    if width == 0:  # no rank has positives
        return None
    padded = torch.zeros(max(n for n, _ in shapes), width, device=device)
    if z is not None:
        padded[: len(z)] = z
    parts = trainer.strategy.all_gather(padded)
    return torch.cat([part[:n] for part, (n, _) in zip(parts, shapes, strict=True)])
