"""What a run logs each epoch: mean loss terms, held-out L_align / L_uniform, throughput.

L_align (alpha=2) is measured between two augmentations (fixed seed) of a fixed held-out set
(the test split's first images, checked by the preflight; the training split's only when
``heldout_split: train`` asks for it), L_uniform (t=2) on the plain evaluation view of the same
images, so the curves of every epoch and every run are comparable. Both come from
`alignuniform.models.geometry`, the path the evaluator uses.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from alignuniform.models.geometry import alignment_of, uniformity_of
from alignuniform.runs.rundir import RunDir

BATCH_SIZE = 512  # held-out images per forward pass


class EpochMonitor:
    """Accumulates per-step terms and turns them into one metrics.jsonl record per epoch."""

    def __init__(self, images: torch.Tensor, recipe: str, seed: int, device: torch.device):
        from alignuniform.data.augment import build_eval_transform

        self.images, self.seed, self.device = images, seed, device
        self.evaluate = build_eval_transform(recipe).to(device)
        self.sums: dict[str, float] = {}

    def start_epoch(self) -> None:
        self.sums = {"samples": 0.0, "time_s": 0.0}

    def add_step(self, loss: torch.Tensor, terms: dict[str, torch.Tensor], samples: int) -> None:
        self.sums["samples"] += samples
        for name, value in {"loss": loss, **terms}.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(value.detach()) * samples

    def record(self, epoch: int, lr: float, encoder: nn.Module, augment: nn.Module) -> dict:
        """The epoch's record: sample-weighted mean terms, held-out metrics, images/s."""
        n = max(self.sums["samples"], 1.0)
        terms = {k: v / n for k, v in self.sums.items() if k not in ("samples", "time_s", "loss")}
        align, uniform = self.heldout_geometry(encoder, augment)
        return {
            "epoch": epoch,
            "lr": lr,
            "loss": self.sums.get("loss", math.nan) / n,
            "terms": terms,
            "align": align,
            "uniform": uniform,
            "samples_per_s": self.sums["samples"] / max(self.sums["time_s"], 1e-9),
            "epoch_time_s": self.sums["time_s"],
        }

    @torch.no_grad()
    def heldout_geometry(self, encoder: nn.Module, augment: nn.Module) -> tuple[float, float]:
        """(L_align, L_uniform) of the output on the held-out images; the training RNG is left
        untouched, so monitoring never changes the run itself."""
        was_training = encoder.training
        encoder.eval()
        batches = self.images.split(BATCH_SIZE)
        align = alignment_of(
            encoder, batches, ["out"], augment=augment, device=self.device, seed=self.seed
        )["out"]
        outputs = [
            encoder(self.evaluate(images.to(self.device))).float().cpu() for images in batches
        ]
        encoder.train(was_training)
        return align, uniformity_of(torch.cat(outputs))


def format_record(record: dict) -> str:
    """One human line per epoch."""
    return (
        f"epoch {record['epoch']:>3}  loss {record['loss']:.4f}  L_align {record['align']:.4f}  "
        f"L_uniform {record['uniform']:.4f}  {record['samples_per_s']:.0f} img/s  "
        f"lr {record['lr']:.4g}"
    )


class TensorBoardLog:
    """Mirrors epoch records to ``<run>/tensorboard`` when TensorBoard is installed."""

    def __init__(self, run: RunDir):
        self.run, self.writer = run, None

    def write(self, record: dict) -> None:
        if self.writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self.writer = False
                return
            self.writer = SummaryWriter(str(self.run.tensorboard))
        if self.writer:
            scalars = {k: v for k, v in record.items() if isinstance(v, float)}
            scalars.update({f"terms/{k}": v for k, v in record["terms"].items()})
            for name, value in scalars.items():
                self.writer.add_scalar(name, value, record["epoch"])
            self.writer.flush()
