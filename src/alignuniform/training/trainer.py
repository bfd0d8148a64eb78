"""The training loop: any method, any objective, one process or many (torchrun), resumable.

Each epoch visits a seeded permutation of the training set in global batches (`sampling`);
the method gathers embeddings so every loss term sees the global batch. The learning rate
follows the paper's step schedule (`runtime.lr_at`). State is checkpointed after every epoch
and on Ctrl-C/SIGTERM, with the RNG state, so a resumed run reproduces the uninterrupted one
exactly on CPU; a NaN/Inf loss stops the run and keeps the last good checkpoint.
With progress on, each epoch's line goes to ``on_event`` (the CLI prints it; by default this
module's logger).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from alignuniform.core.distributed import DistInfo, barrier, init_from_env
from alignuniform.core.errors import (
    AlignUniformError,
    DiskFullError,
    InvalidValueError,
    NonFiniteEmbeddings,
    TrainingDiverged,
)
from alignuniform.core.seeding import derive_seed
from alignuniform.runs.atomic import atomic_write_text
from alignuniform.runs.checkpoint import load_checkpoint, save_checkpoint
from alignuniform.runs.config import TrainConfig, dump_config, per_rank_batch
from alignuniform.runs.lock import claim_run
from alignuniform.runs.rundir import RunDir, read_jsonl, utc_now, write_json, write_jsonl
from alignuniform.training.methods import create_method
from alignuniform.training.methods.base import StepOutput
from alignuniform.training.monitor import EpochMonitor, TensorBoardLog, format_record
from alignuniform.training.preflight import TrainingData, preflight
from alignuniform.training.runtime import autocast, lr_at, resolve_device
from alignuniform.training.sampling import epoch_batches, iterate_batches
from alignuniform.training.stop import StopRequests

_log = logging.getLogger(__name__).info


@dataclass
class Placement:
    """Where this process trains: its rank among the processes and its device."""

    info: DistInfo
    device: torch.device


def place_process(config: TrainConfig) -> Placement:
    """Join the process group (under torchrun) and pick this rank's device."""
    device = resolve_device(config.device)
    info = init_from_env(device.type)
    if device.type == "cuda" and info.enabled:
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    per_rank_batch(config.batch_size, info.world_size)  # the global batch splits evenly
    return Placement(info, device)


class Trainer:
    """Owns one run's training state and its epoch loop; built from a fully resolved config.

    ``stop`` is polled between steps; ``on_checkpoint`` is called after each checkpoint write
    (rank 0); with ``progress`` (rank 0), ``on_event`` receives each epoch's line.
    """

    def __init__(
        self,
        data: TrainingData,
        run: RunDir,
        placement: Placement,
        *,
        stop: StopRequests,
        on_checkpoint: Callable[[], None] = lambda: None,
        progress: bool = True,
        on_event: Callable[[str], None] = _log,
    ):
        self.config, self.train_data, self.run = data.config, data.train, run
        self.info, self.device = placement.info, placement.device
        self.stop, self.on_checkpoint = stop, on_checkpoint
        self.progress, self.on_event = progress and self.info.is_main, on_event
        torch.manual_seed(self.config.seed)  # the initial weights
        self.method, self.model = self._build_model()
        self.optimizer = self._build_optimizer()
        self.scaler = torch.amp.GradScaler(
            self.device.type,
            enabled=self.config.precision == "fp16" and self.device.type == "cuda",
        )
        self.monitor = EpochMonitor(data.heldout, self.config.recipe, self.config.seed, self.device)
        self.tensorboard = TensorBoardLog(run)
        self.epoch, self.step = 0, 0

    def _build_model(self) -> tuple[nn.Module, nn.Module]:
        """(the method, the module each step calls: the method itself or its DDP wrapper)."""
        method = create_method(self.config, self.train_data).to(self.device)
        if self.config.sync_bn and self.info.enabled:
            method = nn.SyncBatchNorm.convert_sync_batchnorm(method)
        if not self.info.enabled:
            return method, method
        ids = [self.device.index] if self.device.type == "cuda" else None
        return method, nn.parallel.DistributedDataParallel(
            method, device_ids=ids, broadcast_buffers=False
        )

    def _build_optimizer(self) -> torch.optim.Optimizer | None:
        """SGD over the trainable parameters; None for a parameter-free baseline (epochs=0)."""
        config = self.config
        params = [p for p in self.method.parameters() if p.requires_grad]
        if not params and config.epochs:
            raise InvalidValueError(
                f"encoder {config.encoder!r} with method {config.method!r} has no parameters "
                "to train: set epochs=0 to evaluate it as a baseline"
            )
        if not params:
            return None
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )

    # ----- state ---------------------------------------------------------------------------
    def state(self) -> dict:
        encoder = self.method.encoder
        extra = {k: v for k, v in self.method.state_dict().items() if not k.startswith("encoder.")}
        return {
            "encoder": encoder.spec,
            "model": encoder.state_dict(),
            "method": extra,
            "optimizer": self.optimizer.state_dict() if self.optimizer else {},
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "sums": dict(self.monitor.sums),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "config": self.config.to_dict(),
        }

    def save(self) -> None:
        if self.info.is_main:
            save_checkpoint(self.run.checkpoint, self.state())
            self.on_checkpoint()
        barrier()

    def restore(self) -> bool:
        """Load ``checkpoints/last.pt`` if present; True when something was restored."""
        if not self.run.checkpoint.is_file():
            return False
        state = load_checkpoint(self.run.checkpoint, "cpu", require=tuple(self.state()))
        if state["encoder"] != self.method.encoder.spec:
            raise InvalidValueError(
                f"{self.run.checkpoint} holds encoder {state['encoder']}, but the config asks for "
                f"{self.method.encoder.spec}: use another --out, or the run's own config.yaml"
            )
        self.method.encoder.load_state_dict(state["model"])
        self.method.load_state_dict({**self.method.state_dict(), **state["method"]})
        if self.optimizer:
            self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.monitor.sums = dict(state["sums"])
        torch.set_rng_state(state["rng_cpu"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        return True

    def drop_unsaved_records(self) -> None:
        """Forget log lines of epochs the checkpoint does not hold (they will be redone), and
        lines that name no epoch (not ours)."""
        if self.info.is_main and self.run.metrics.is_file():
            kept = [
                r
                for r in read_jsonl(self.run.metrics)
                if isinstance(r.get("epoch"), int) and r["epoch"] <= self.epoch
            ]
            write_jsonl(self.run.metrics, kept)

    # ----- loop ----------------------------------------------------------------------------
    def fit(self) -> None:
        """Train the remaining epochs (with epochs=0, save the random initialisation)."""
        if not self.run.checkpoint.is_file():
            self.save()
        while self.epoch < self.config.epochs:
            self.train_epoch()

    def train_epoch(self) -> None:
        config, epoch = self.config, self.epoch
        if self.step == 0:
            torch.manual_seed(derive_seed(config.seed, epoch, self.info.rank))
            self.monitor.start_epoch()
        lr = lr_at(config, epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batches = epoch_batches(config, len(self.train_data), epoch, self.info)
        self.method.train()
        bar = tqdm(
            total=len(batches),
            initial=self.step,
            disable=not self.progress,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            leave=False,
            dynamic_ncols=True,
        )
        start = time.perf_counter()
        for images, labels in iterate_batches(
            self.train_data, batches[self.step :], config.num_workers
        ):
            out = self.train_step(images, labels)
            bar.update()
            bar.set_postfix(loss=f"{out.loss.item():.4f}")
            self.stop.check()
        bar.close()
        self.monitor.sums["time_s"] += time.perf_counter() - start
        if self.info.is_main:
            self._log_epoch(epoch + 1, lr)
        self.epoch, self.step = epoch + 1, 0  # only once the epoch's record is written
        self.save()
        self.stop.check()

    def train_step(self, images, labels) -> StepOutput:
        """One optimisation step on this rank's share of a global batch (any device); the
        weights, the step counter and the epoch meters move together (a stop waits for them)."""
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        with autocast(self.device, self.config.precision):
            try:
                out = self.model(images, labels)
            except NonFiniteEmbeddings as err:  # the losses refuse NaN/Inf embeddings
                self._diverged("the encoder's output became NaN/Inf", err)
        self._check_finite(out)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(out.loss).backward()
        with self.stop.deferred():
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.step += 1
            self.monitor.add_step(out.loss, out.terms, len(labels) * self.info.world_size)
        return out

    def _log_epoch(self, epoch: int, lr: float) -> None:
        """Append the record of (1-based) ``epoch`` to metrics.jsonl (held-out metrics too)."""
        try:
            record = self.monitor.record(epoch, lr, self.method.encoder, self.method.augment)
        except NonFiniteEmbeddings as err:
            self._diverged("the encoder's output on the held-out images became NaN/Inf", err)
        write_jsonl(self.run.metrics, [*read_jsonl(self.run.metrics), record])
        self.tensorboard.write(record)
        if self.progress:
            self.on_event(format_record(record))

    def _check_finite(self, out) -> None:
        if not torch.isfinite(out.loss.detach()):
            terms = ", ".join(f"{k}={v.item():.4g}" for k, v in out.terms.items())
            self._diverged(f"loss became {out.loss.item()} ({terms})")

    def _diverged(self, what: str, cause: Exception | None = None) -> None:
        raise TrainingDiverged(
            f"{what} at epoch {self.epoch + 1}, step {self.step + 1}; the last good checkpoint is "
            f"kept in {self.run.checkpoint.parent}. Lower --lr, use --precision fp32, or check "
            "the loss weights."
        ) from cause


AWAITING_EVALUATION = "trained"  # run.json until the evaluation ends: "finished" or "failed"


class RunStatus:
    """run.json: the run's state and wall time, rewritten with every checkpoint so a killed run
    keeps the time of the epochs it saved (written by rank 0 only)."""

    def __init__(self, run: RunDir, placement: Placement, previous: dict, heldout: str = ""):
        self.run, self.enabled = run, placement.info.is_main
        self.started, self.previous_wall = time.time(), previous.get("wall_time_s", 0.0)
        self.base = {
            "started": previous.get("started", utc_now()),
            "device": str(placement.device),
            "world_size": placement.info.world_size,
            "heldout": heldout,
            "torch": torch.__version__,
            "host": socket.gethostname(),
        }

    def write(self, state: str, **extra) -> None:
        if self.enabled:
            wall = self.previous_wall + time.time() - self.started
            ended = {} if state == "running" else {"finished": utc_now()}
            write_json(
                self.run.status,
                {**self.base, "status": state, **ended, "wall_time_s": wall, **extra},
            )


def train(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    on_event: Callable[[str], None] = _log,
) -> Path:
    """Train (or continue) the run in ``run_dir``; returns its path.

    The preflight checks everything the run touches before anything is written. Without
    ``resume`` an existing checkpoint in ``run_dir`` is an error (nothing is overwritten); with
    it, training continues from the checkpoint (a finished run trains nothing). Ctrl-C and
    SIGTERM save a checkpoint before exiting. A run that evaluates ends as "trained" here; the
    evaluation marks it "finished" or "failed". ``on_event`` receives each epoch's line.
    """
    run = RunDir(Path(run_dir))
    config = config.resolve()  # every key checked, once, before anything else
    placement = place_process(config)
    with claim_run(run, resume=resume, enabled=placement.info.is_main) as resuming:
        data = preflight(config, placement.info, placement.device, run, resume=resume).data
        config = data.config  # and the dataset's recipe and image channels
        previous = run.read_status() if resuming else {}
        status = RunStatus(run, placement, previous, data.heldout_source)
        stop = StopRequests()
        trainer = Trainer(
            data,
            run,
            placement,
            stop=stop,
            on_checkpoint=lambda: status.write("running"),
            progress=progress,
            on_event=on_event,
        )
        if resuming:
            trainer.restore()  # refuses a checkpoint of another encoder: nothing written yet
        status.write("running")
        if placement.info.is_main:
            atomic_write_text(run.config, dump_config(config))
        trainer.drop_unsaved_records()
        try:
            with stop:
                trainer.fit()
        except KeyboardInterrupt:
            trainer.save()
            status.write("interrupted")
            raise
        except Exception as err:
            with contextlib.suppress(DiskFullError):  # then the disk-full error itself shows
                status.write("failed", error=describe_error(err))
            raise
        status.write(AWAITING_EVALUATION if config.evaluate else "finished")
    return run.root


def describe_error(err: Exception) -> str:
    """The error in words for run.json: our own message, or the type of an unexpected one."""
    if isinstance(err, AlignUniformError):
        return str(err)
    return f"{type(err).__name__}: {err}"
