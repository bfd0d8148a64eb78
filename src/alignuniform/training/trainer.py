"""The training loop: any method, any objective, one process or many (torchrun), resumable.

Each epoch visits a seeded permutation of the training set in global batches (`sampling`);
the method gathers embeddings so every loss term sees the global batch. The learning rate
follows the paper's step schedule (`runtime.lr_at`). State is checkpointed after every epoch
and on Ctrl-C/SIGTERM, with the RNG state, so a resumed run reproduces the uninterrupted one
exactly on CPU; a NaN/Inf loss stops the run and keeps the last good checkpoint.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from alignuniform.core.distributed import barrier, init_from_env
from alignuniform.core.errors import InvalidValueError, NonFiniteEmbeddings, TrainingDiverged
from alignuniform.runs.atomic import atomic_write_text
from alignuniform.runs.checkpoint import load_checkpoint, save_checkpoint
from alignuniform.runs.config import TrainConfig, dump_config
from alignuniform.runs.rundir import RunDir, read_jsonl, utc_now, write_json, write_jsonl
from alignuniform.training.methods import create_method
from alignuniform.training.monitor import (
    EpochMonitor,
    TensorBoardLog,
    format_record,
    heldout_images,
)
from alignuniform.training.runtime import autocast, lr_at, resolve_device
from alignuniform.training.sampling import epoch_batches, iterate_batches
from alignuniform.training.stop import StopRequests


class Trainer:
    """Owns one run: its directory, state, and the epoch loop."""

    def __init__(self, config: TrainConfig, run_dir: Path, *, progress: bool = True):
        from alignuniform.data import load_dataset

        self.config = config
        self.run = RunDir(Path(run_dir))
        self.device = resolve_device(config.device)
        self.info = init_from_env(self.device.type)
        if self.device.type == "cuda" and self.info.enabled:
            self.device = torch.device("cuda", self.info.local_rank)
            torch.cuda.set_device(self.device)
        if config.batch_size % self.info.world_size:
            raise InvalidValueError(
                f"batch_size={config.batch_size} must be divisible by the number of processes "
                f"({self.info.world_size}): it is the global batch, split evenly across ranks"
            )
        self.progress = progress and self.info.is_main
        torch.manual_seed(config.seed)
        data = load_dataset(
            config.dataset, config.train_split, data_dir=config.data_dir, download=config.download
        )
        self.config = config = config.with_data_defaults(data)
        self.train_data = data.subset(config.subset) if config.subset else data
        self.method = create_method(config, self.train_data).to(self.device)
        self.monitor = EpochMonitor(
            heldout_images(config, data), config.recipe, config.seed, self.device
        )
        self.tensorboard = TensorBoardLog(self.run.root)
        if config.sync_bn and self.info.enabled:
            self.method = nn.SyncBatchNorm.convert_sync_batchnorm(self.method)
        self.model = self.method
        if self.info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(
                self.method, device_ids=ids, broadcast_buffers=False
            )
        params = [p for p in self.method.parameters() if p.requires_grad]
        if not params and config.epochs:
            raise InvalidValueError(
                f"encoder {config.encoder!r} with method {config.method!r} has no parameters "
                "to train: set epochs=0 to evaluate it as a baseline"
            )
        self.optimizer = (  # None for a parameter-free baseline, evaluated untrained
            torch.optim.SGD(
                params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
            )
            if params
            else None
        )
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=config.precision == "fp16" and self.device.type == "cuda"
        )
        self.epoch, self.step = 0, 0
        self.stop = StopRequests()
        self.on_checkpoint = lambda: None  # called after each checkpoint write (rank 0)

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
        state = load_checkpoint(self.run.checkpoint, map_location="cpu")
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
        """Forget log lines of epochs the checkpoint does not hold (they will be redone)."""
        if self.info.is_main and self.run.metrics.is_file():
            kept = [r for r in read_jsonl(self.run.metrics) if r["epoch"] <= self.epoch]
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
            torch.manual_seed((config.seed * 1_000_003 + epoch) * 1009 + self.info.rank)
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
            images = images.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            with autocast(self.device, config.precision):
                try:
                    out = self.model(images, labels)
                except NonFiniteEmbeddings as err:  # the losses refuse NaN/Inf embeddings
                    self._diverged("the encoder's output became NaN/Inf", err)
            self._check_finite(out)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(out.loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.step += 1
            self.monitor.add_step(out.loss, out.terms, len(images) * self.info.world_size)
            bar.update()
            bar.set_postfix(loss=f"{out.loss.item():.4f}")
            self.stop.check()
        bar.close()
        self.monitor.sums["time_s"] += time.perf_counter() - start
        self.epoch, self.step = epoch + 1, 0
        if self.info.is_main:
            record = self.monitor.record(self.epoch, lr, self.method.encoder, self.method.augment)
            write_jsonl(self.run.metrics, [*read_jsonl(self.run.metrics), record])
            self.tensorboard.write(record)
            if self.progress:
                tqdm.write(format_record(record))
        self.save()
        self.stop.check()

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


def train(
    config: TrainConfig, run_dir: str | Path, *, resume: bool = False, progress: bool = True
) -> Path:
    """Train (or continue) the run in ``run_dir``; returns its path.

    Without ``resume`` an existing checkpoint in ``run_dir`` is an error (nothing is
    overwritten); with it, training continues from the checkpoint (a finished run trains
    nothing). Ctrl-C and SIGTERM save a checkpoint before exiting.
    """
    config = config.resolve()
    run = RunDir(Path(run_dir))
    if run.checkpoint.is_file() and not resume:
        raise InvalidValueError(
            f"{run.root} already holds a run: pass --resume to continue it, or choose another --out"
        )
    trainer = Trainer(config, run.root, progress=progress)
    main = trainer.info.is_main
    if main:
        run.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run.config, dump_config(trainer.config))
    status = run.read_status() if resume and trainer.restore() else {}
    trainer.drop_unsaved_records()
    started, previous = time.time(), status.get("wall_time_s", 0.0)
    base = {
        "started": status.get("started", utc_now()),
        "device": str(trainer.device),
        "world_size": trainer.info.world_size,
        "torch": torch.__version__,
        "host": socket.gethostname(),
    }

    def record(state: str, **extra) -> None:
        """run.json; rewritten with each checkpoint, so a killed run keeps the wall time of the
        epochs it saved."""
        if main:
            wall = previous + time.time() - started
            ended = {} if state == "running" else {"finished": utc_now()}
            write_json(run.status, {**base, "status": state, **ended, "wall_time_s": wall, **extra})

    record("running")
    trainer.on_checkpoint = lambda: record("running")
    try:
        with StopRequests() as trainer.stop:
            trainer.fit()
    except KeyboardInterrupt:
        trainer.save()
        record("interrupted")
        raise
    except Exception as err:
        record("failed", error=str(err))
        raise
    record("finished")
    return run.root
