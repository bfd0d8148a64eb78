"""``--dry-run``: the preflight, then real training steps on a real batch, measured; writes nothing.

The step runs twice on the first global batch of epoch 1 at the configured precision (the first
warms up allocators and kernels, the second is timed); the plan extrapolates its time to the
run's total steps. The held-out monitor is timed the same way, on as many training images as
one process's batch (at most one monitor batch), so it costs no more than a step: seconds per
monitored image (two augmented views and the evaluation view
through the encoder, then the uniformity), which the plan multiplies by the held-out images
and epochs, and which prices the evaluation's encoder passes too (`cli.plan`).
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from alignuniform.data import recipe_info
from alignuniform.data.imagedata import Canvas
from alignuniform.runs.rundir import RunDir
from alignuniform.training.monitor import BATCH_SIZE, EpochMonitor
from alignuniform.training.preflight import Preflight, preflight
from alignuniform.training.sampling import epoch_batches
from alignuniform.training.stop import StopRequests
from alignuniform.training.trainer import Placement, Trainer, place_process


@dataclass
class Plan:
    """What a run would do and what one step costs here."""

    preflight: Preflight
    device: str
    world_size: int
    step_s: float | None  # None: nothing to train (epochs=0 or no parameters)
    peak_memory: int  # bytes: CUDA peak allocation, else growth of the process's peak RSS
    measured_on: str = ""  # another sweep point whose step this one shares (see `step_cost`)
    monitor_image_s: float | None = None  # seconds the monitor takes per held-out image

    @property
    def images_per_s(self) -> float | None:
        config = self.preflight.data.config
        return config.batch_size / self.step_s if self.step_s else None

    @property
    def training_s(self) -> float | None:
        return self.preflight.total_steps * self.step_s if self.step_s else None

    @property
    def monitor_s(self) -> float | None:
        """The held-out monitor over the run: epochs x held-out images x seconds per image."""
        if self.monitor_image_s is None:
            return None
        config = self.preflight.data.config
        return config.epochs * len(self.preflight.data.heldout) * self.monitor_image_s


def peak_rss() -> int:
    """The process's peak resident set size in bytes (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def seconds_of(device: torch.device, run: Callable[..., object], *args: object) -> float:
    """Wall-clock seconds of ``run(*args)``, ``device`` synchronised before and after (CUDA
    runs asynchronously: unsynchronised, the time would be the launch's)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    run(*args)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def measure_step(trainer: Trainer) -> float | None:
    """Seconds of one training step on the first batch (after one warm-up step), or None."""
    config = trainer.config
    if not config.epochs or trainer.optimizer is None:
        return None
    batch = epoch_batches(config, len(trainer.train_data), 0, trainer.info)[0]
    images, labels = trainer.train_data.get_batch(batch)
    trainer.method.train()
    trainer.monitor.start_epoch()  # the step adds to the epoch meters
    times = [seconds_of(trainer.device, trainer.train_step, images, labels) for _ in range(2)]
    return times[-1]


def measure_monitor(trainer: Trainer) -> float:
    """Seconds per image of the held-out monitor (after a warm-up on two images), timed on the
    first training images (the held-out images' shape): one process's batch, at most
    `BATCH_SIZE`."""
    config, data = trainer.config, trainer.train_data
    count = min(BATCH_SIZE, config.batch_size // trainer.info.world_size, len(data))
    images = data.get_batch(torch.arange(count))[0]
    if isinstance(images, Canvas):  # whole images (decode="full"): the held-out centre's shape
        side = recipe_info(config.recipe).size
        images = images.images[..., :side, :side]
    encoder, augment = trainer.method.encoder, trainer.method.augment
    times = []
    for sample in (images[:2], images):
        monitor = EpochMonitor(sample, config.recipe, config.seed, trainer.device)
        seconds = seconds_of(trainer.device, monitor.heldout_geometry, encoder, augment)
        times.append(seconds / len(sample))
    return times[-1]


def step_cost(config) -> str:
    """What a step's cost depends on: the config but its loss, seed, output and evaluation
    (sweep points that differ only there share one measured step)."""
    ignored = ("loss", "seed", "out")
    values = config.to_dict().items()
    return repr(sorted((k, v) for k, v in values if k not in ignored and not k.startswith("eval")))


def dry_run(config, out: str | Path, *, resume: bool = False, measure: bool = True) -> Plan:
    """Check everything ``config`` would touch and (with ``measure``) time a training step;
    nothing is written."""
    rss = peak_rss()
    placement: Placement = place_process(config)
    device = placement.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    run = RunDir(Path(out))
    checked = preflight(config, placement.info, device, run, resume=resume)
    step_s = monitor_image_s = None
    if measure:
        trainer = Trainer(checked.data, run, placement, stop=StopRequests(), progress=False)
        step_s = measure_step(trainer)
        monitor_image_s = measure_monitor(trainer)
    cuda = device.type == "cuda"
    peak = torch.cuda.max_memory_allocated(device) if cuda else peak_rss() - rss
    world = placement.info.world_size
    return Plan(checked, str(device), world, step_s, peak, monitor_image_s=monitor_image_s)
