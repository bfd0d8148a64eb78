"""The training loop: any method, any objective, one process or many (torchrun), resumable.

Each epoch visits a seeded permutation of the training set in global batches of
``batch_size``; under torchrun each rank takes its contiguous share of every global batch,
and the method gathers embeddings so every loss term sees the global batch. The learning
rate follows the paper's step schedule: lr_e = lr * gamma^{#milestones <= e} (plus an
optional linear warm-up). State is checkpointed after every epoch and on Ctrl-C/SIGTERM,
with the RNG state, so a resumed run reproduces the uninterrupted one exactly on CPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from alignuniform.checkpoint import (
    atomic_write_text,
    load_checkpoint,
    save_checkpoint,
)
from alignuniform.config import TrainConfig, dump_config
from alignuniform.distributed import DistInfo, barrier, init_from_env
from alignuniform.rundir import RunDir, read_jsonl, write_json, write_jsonl


class TrainingDiverged(RuntimeError):
    """The loss became NaN or Inf; the last good checkpoint is kept."""


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; anything else is passed to torch.device."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available: use --device cpu")
    return device


def lr_at(config: TrainConfig, epoch: int) -> float:
    """lr for 0-based ``epoch``: step decay at the milestones (1-based epoch counts), warm-up first."""
    lr = config.lr * config.gamma ** sum(epoch >= m for m in config.milestones)
    if epoch < config.warmup_epochs:
        lr *= (epoch + 1) / (config.warmup_epochs + 1)
    return lr


def autocast(device: torch.device, precision: str):
    """An autocast context for bf16/fp16, or a null context for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def build_method(config: TrainConfig, train_data, device: torch.device) -> nn.Module:
    """The encoder wrapped in the method that turns image batches into a loss."""
    from alignuniform.data.augment import build_augmentation
    from alignuniform.methods import SupervisedMethod, TwoViewMethod
    from alignuniform.models import create_encoder
    from alignuniform.objective import Objective

    encoder = create_encoder(config.encoder, out_dim=config.out_dim, **config.encoder_kwargs)
    augment = build_augmentation(config.recipe)
    if config.method == "supervised":
        if not train_data.num_classes:
            raise ValueError(f"method 'supervised' needs a labelled dataset; {config.dataset} has none")
        method = SupervisedMethod(encoder, augment, train_data.num_classes, config.out_dim)
    elif config.method == "moco":
        from alignuniform.moco import MocoMethod

        method = MocoMethod.from_config(encoder, augment, config)
    else:
        method = TwoViewMethod(encoder, augment, Objective.parse(config.loss))
    return method.to(device)


def fill_from_data(config: TrainConfig, data) -> TrainConfig:
    """Take the augmentation recipe and the encoder's input channels from the dataset if unset."""
    kwargs = {"in_channels": data.channels, **config.encoder_kwargs}
    return dataclasses.replace(config, recipe=config.recipe or data.default_recipe,
                               encoder_kwargs=kwargs)


def epoch_batches(config: TrainConfig, n: int, epoch: int, info: DistInfo) -> list[torch.Tensor]:
    """This rank's index batches for ``epoch``: a seeded permutation cut into global batches."""
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    order = torch.randperm(n, generator=generator)
    local = config.batch_size // info.world_size
    steps = n // config.batch_size
    return [
        order[s * config.batch_size + info.rank * local : s * config.batch_size + (info.rank + 1) * local]
        for s in range(steps)
    ]


def iterate_batches(data, batches: list[torch.Tensor], num_workers: int) -> Iterator:
    """(uint8 images, labels) per index batch; decoding in worker processes when asked."""
    if num_workers == 0:
        for idx in batches:
            yield data.get_batch(idx)
        return
    loader = torch.utils.data.DataLoader(
        data, batch_sampler=[b.tolist() for b in batches], num_workers=num_workers,
        pin_memory=torch.cuda.is_available(), persistent_workers=False,
    )
    yield from loader


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
            raise ValueError(
                f"batch_size={config.batch_size} must be divisible by the number of processes "
                f"({self.info.world_size}): it is the global batch, split evenly across ranks"
            )
        self.progress = progress and self.info.is_main
        torch.manual_seed(config.seed)
        data = load_dataset(config.dataset, "train", data_dir=config.data_dir, download=config.download)
        self.config = config = fill_from_data(config, data)
        self.train_data = data.subset(config.subset) if config.subset else data
        self.heldout = self._heldout_images(data)
        self.method = build_method(config, self.train_data, self.device)
        if config.sync_bn and self.info.enabled:
            self.method = nn.SyncBatchNorm.convert_sync_batchnorm(self.method)
        self.model = self.method
        if self.info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.method, device_ids=ids)
        params = [p for p in self.method.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=config.precision == "fp16" and self.device.type == "cuda"
        )
        self.epoch, self.step, self.sums = 0, 0, {}

    # ----- state ---------------------------------------------------------------------------
    def _heldout_images(self, train_data) -> torch.Tensor:
        """A fixed set of images (the test split's first ``heldout``) for the per-epoch metrics."""
        from alignuniform.data import load_dataset

        try:
            data = load_dataset(self.config.dataset, "test", data_dir=self.config.data_dir)
        except (FileNotFoundError, ValueError):
            data = train_data
        n = min(self.config.heldout, len(data))
        return data.get_batch(torch.arange(n))[0]

    def state(self) -> dict:
        encoder = self.method.encoder
        extra = {k: v for k, v in self.method.state_dict().items() if not k.startswith("encoder.")}
        return {
            "encoder": encoder.spec,
            "model": encoder.state_dict(),
            "method": extra,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "sums": dict(self.sums),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "config": self.config.to_dict(),
        }

    def save(self) -> None:
        if self.info.is_main:
            save_checkpoint(self.run.checkpoint, self.state())
        barrier()

    def restore(self) -> bool:
        """Load ``checkpoints/last.pt`` if present; True when something was restored."""
        if not self.run.checkpoint.is_file():
            return False
        state = load_checkpoint(self.run.checkpoint, map_location="cpu")
        if state["encoder"] != self.method.encoder.spec:
            raise ValueError(
                f"{self.run.checkpoint} holds encoder {state['encoder']}, but the config asks for "
                f"{self.method.encoder.spec}: use another --out, or the run's own config.yaml"
            )
        self.method.encoder.load_state_dict(state["model"])
        self.method.load_state_dict({**self.method.state_dict(), **state["method"]})
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step, self.sums = state["epoch"], state["step"], dict(state["sums"])
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
        while self.epoch < self.config.epochs:
            self.train_epoch()

    def train_epoch(self) -> None:
        config, epoch = self.config, self.epoch
        if self.step == 0:
            torch.manual_seed((config.seed * 1_000_003 + epoch) * 1009 + self.info.rank)
            self.sums = {"samples": 0.0, "time_s": 0.0}
        lr = lr_at(config, epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batches = epoch_batches(config, len(self.train_data), epoch, self.info)
        self.method.train()
        bar = tqdm(total=len(batches), initial=self.step, disable=not self.progress,
                   desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, dynamic_ncols=True)
        start = time.perf_counter()
        for images, labels in iterate_batches(self.train_data, batches[self.step:], config.num_workers):
            images = images.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            with autocast(self.device, config.precision):
                try:
                    out = self.model(images, labels)
                except ValueError as err:  # the losses refuse NaN/Inf embeddings
                    self._check_parameters(err)
                    raise
            self._check_finite(out)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(out.loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.step += 1
            self._accumulate(out, len(images) * self.info.world_size)
            bar.update()
            bar.set_postfix(loss=f"{out.loss.item():.4f}")
        bar.close()
        self.sums["time_s"] += time.perf_counter() - start
        self.epoch, self.step = epoch + 1, 0
        if self.info.is_main:
            record = self._epoch_record(lr)
            write_jsonl(self.run.metrics, [*read_jsonl(self.run.metrics), record])
            if self.progress:
                tqdm.write(format_record(record))
        self.save()

    def _check_finite(self, out) -> None:
        if not torch.isfinite(out.loss.detach()):
            terms = ", ".join(f"{k}={v.item():.4g}" for k, v in out.terms.items())
            self._diverged(f"loss became {out.loss.item()} ({terms})")

    def _check_parameters(self, cause: Exception) -> None:
        if not all(torch.isfinite(p).all() for p in self.method.parameters()):
            self._diverged("the encoder's weights became NaN/Inf", cause)

    def _diverged(self, what: str, cause: Exception | None = None) -> None:
        raise TrainingDiverged(
            f"{what} at epoch {self.epoch + 1}, step {self.step + 1}; the last good checkpoint is "
            f"kept in {self.run.checkpoint.parent}. Lower --lr, use --precision fp32, or check "
            "the loss weights."
        ) from cause

    def _accumulate(self, out, samples: int) -> None:
        self.sums["samples"] += samples
        for name, value in {"loss": out.loss, **out.terms}.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(value.detach()) * samples

    def _epoch_record(self, lr: float) -> dict:
        from alignuniform.metrics import alignment, uniformity

        n = max(self.sums["samples"], 1.0)
        terms = {k: v / n for k, v in self.sums.items() if k not in ("samples", "time_s", "loss")}
        x, y, z = self._heldout_features()
        return {
            "epoch": self.epoch,
            "lr": lr,
            "loss": self.sums.get("loss", math.nan) / n,
            "terms": terms,
            "align": alignment(x, y, alpha=2),
            "uniform": float(uniformity(z, t=2)),
            "samples_per_s": self.sums["samples"] / max(self.sums["time_s"], 1e-9),
            "epoch_time_s": self.sums["time_s"],
        }

    @torch.no_grad()
    def _heldout_features(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Two augmented views (fixed seed) and the plain eval view of the held-out images."""
        from alignuniform.data.augment import build_eval_transform

        encoder, augment = self.method.encoder, self.method.augment
        evaluate = build_eval_transform(self.config.recipe).to(self.device)
        encoder.eval()
        xs, ys, zs = [], [], []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            for images in self.heldout.split(512):
                images = images.to(self.device)
                xs.append(encoder(augment(images)).float().cpu())
                ys.append(encoder(augment(images)).float().cpu())
                zs.append(encoder(evaluate(images)).float().cpu())
        encoder.train()
        return torch.cat(xs), torch.cat(ys), torch.cat(zs)


def format_record(record: dict) -> str:
    """One human line per epoch."""
    return (
        f"epoch {record['epoch']:>3}  loss {record['loss']:.4f}  L_align {record['align']:.4f}  "
        f"L_uniform {record['uniform']:.4f}  {record['samples_per_s']:.0f} img/s  lr {record['lr']:.4g}"
    )


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def train(config: TrainConfig, run_dir: str | Path, *, resume: bool = False,
          progress: bool = True) -> Path:
    """Train (or continue) the run in ``run_dir``; returns its path.

    Without ``resume`` an existing checkpoint in ``run_dir`` is an error (nothing is
    overwritten); with it, training continues from the checkpoint (a finished run trains
    nothing). Ctrl-C and SIGTERM save a checkpoint before exiting.
    """
    config = config.resolve()
    run = RunDir(Path(run_dir))
    if run.checkpoint.is_file() and not resume:
        raise ValueError(
            f"{run.root} already holds a run: pass --resume to continue it, or choose another --out"
        )
    trainer = Trainer(config, run.root, progress=progress)
    main = trainer.info.is_main
    if main:
        run.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run.config, dump_config(trainer.config))
    restored = trainer.restore() if resume else False
    trainer.drop_unsaved_records()
    status = run.read_status() if restored else {}
    started = time.time()
    base = {
        "started": status.get("started", _now()),
        "device": str(trainer.device),
        "world_size": trainer.info.world_size,
        "torch": torch.__version__,
        "host": socket.gethostname(),
    }
    previous = status.get("wall_time_s", 0.0)
    if main:
        write_json(run.status, {**base, "status": "running", "wall_time_s": previous})
    old_handler = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        trainer.fit()
    except KeyboardInterrupt:
        trainer.save()
        _finish(run, base, "interrupted", previous + time.time() - started, main)
        raise
    except Exception as err:
        _finish(run, base, "failed", previous + time.time() - started, main, error=str(err))
        raise
    finally:
        signal.signal(signal.SIGTERM, old_handler)
    _finish(run, base, "finished", previous + time.time() - started, main)
    return run.root


def _finish(run: RunDir, base: dict, status: str, wall: float, main: bool, error: str = "") -> None:
    if main:
        extra = {"error": error} if error else {}
        write_json(run.status, {**base, "status": status, "finished": _now(),
                                "wall_time_s": wall, **extra})
