"""AlignUniformMonitor inside a real Lightning Trainer.fit: logged the Lightning way (callback
metrics, ModelCheckpoint, EarlyStopping, CSV), on the validation loop, under DDP."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import alignuniform as au
from alignuniform.core.errors import InvalidTypeError, InvalidValueError, NonFiniteEmbeddings
from alignuniform.nn import AlignUniformLoss

pl = pytest.importorskip(
    "lightning.pytorch", reason="needs the lightning extra: pip install '.[lightning]'"
)
from alignuniform.integrations.lightning_callback import AlignUniformMonitor  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: threads only wait


class TwoViewModule(pl.LightningModule):
    """The paper's method on one of our encoders: two augmentations, AlignUniformLoss."""

    def __init__(self):
        super().__init__()
        from alignuniform.data import build_augmentation
        from alignuniform.models import create_encoder

        torch.manual_seed(0)
        self.encoder = create_encoder("convnet", out_dim=32, in_channels=1)
        self.augment = build_augmentation("fashion-mnist")
        self.loss = AlignUniformLoss()

    def embed(self, x):  # found by the callback (rule 2)
        return self.encoder(x)

    def training_step(self, batch, batch_idx):
        images, _ = batch
        x, y = self.encoder(torch.cat([self.augment(images), self.augment(images)])).chunk(2)
        loss = self.loss(x, y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.06, momentum=0.9)


def trainer(tmp_path: Path, *callbacks, epochs: int = 2, **options) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=options.pop("devices", 1),
        logger=pl.loggers.CSVLogger(tmp_path, name="csv", version=0),
        callbacks=list(callbacks),
        enable_checkpointing=any(isinstance(c, pl.callbacks.ModelCheckpoint) for c in callbacks),
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=options.pop("log_every_n_steps", 1),
        **options,
    )


def logged_rows(trainer: pl.Trainer, key: str) -> list[dict[str, str]]:
    with open(Path(trainer.logger.log_dir) / "metrics.csv") as f:
        return [row for row in csv.DictReader(f) if row.get(key)]


def fmnist_loaders(data_dir: Path):
    """512 training images in batches of 128; two fixed augmentations of 200 test images."""
    from alignuniform.data import build_augmentation, load_dataset

    train = load_dataset("fashion-mnist", "train", data_dir=data_dir)
    images, labels = train.get_batch(torch.arange(512))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(images, labels), batch_size=128, shuffle=True
    )
    test = load_dataset("fashion-mnist", "test", data_dir=data_dir)
    heldout = test.get_batch(torch.arange(200))[0]
    augment = build_augmentation("fashion-mnist")
    with torch.random.fork_rng():
        torch.manual_seed(1)
        return loader, augment(heldout), augment(heldout)


@pytest.mark.slow
def test_fit_logs_the_heldout_values_that_au_computes(fmnist_any, tmp_path, one_thread):
    loader, x, y = fmnist_loaders(fmnist_any)
    monitor = AlignUniformMonitor(x, y, every_n_epochs=1)
    fit = trainer(tmp_path, monitor)
    module = TwoViewModule()
    fit.fit(module, loader)

    rows = logged_rows(fit, "heldout/align")
    # 512 images / 128 a step, 2 epochs; Lightning numbers the logged steps from 0
    assert [int(r["step"]) for r in rows] == [3, 7]
    last = {k: float(v) for k, v in rows[-1].items() if v}
    module.eval()
    with torch.no_grad():
        zx, zy = module.encoder(x), module.encoder(y)
    align, unif = au.alignment(zx, zy), float(au.uniformity(zx))
    print(f"CSV: {last}; au.alignment {align!r}, au.uniformity {unif!r}")
    assert last["heldout/align"] == pytest.approx(align, rel=1e-6)
    assert last["heldout/uniform"] == pytest.approx(unif, rel=1e-6)
    gap = unif - au.uniformity_bound(32, t=2)
    assert last["heldout/uniform_gap"] == pytest.approx(gap, rel=1e-5)
    assert float(rows[0]["heldout/uniform"]) != last["heldout/uniform"]  # it moved in training
    assert module.training is False  # left as fit left it: Lightning ends in eval mode


class Plain(pl.LightningModule):
    """A linear map without an ``embed`` method: the callback falls back to forward."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Linear(6, 4)

    def forward(self, x):
        return self.net(x)

    def project(self, x):
        return self.net(x)[:, :3]

    def training_step(self, batch, batch_idx):
        (x,) = batch
        return AlignUniformLoss()(self.net(x), self.net(x + 0.1))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.parametrize(
    ("embed", "expected"),
    [
        (None, lambda z: z),  # forward
        ("project", lambda z: z[:, :3]),  # a method by name
        (lambda module, x: module.net(x) + 1, lambda z: z + 1),  # a callable
    ],
)
def test_every_n_steps_and_how_the_embedding_function_is_found(tmp_path, embed, expected):
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(0))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=8)
    heldout = torch.randn(30, 6, generator=torch.Generator().manual_seed(1))
    monitor = AlignUniformMonitor(
        heldout, every_n_steps=2, every_n_epochs=None, embed=embed, normalize=True, t=1
    )
    fit = trainer(tmp_path, monitor, epochs=1)
    module = Plain()
    fit.fit(module, loader)
    rows = logged_rows(fit, "heldout/uniform")
    assert [int(r["step"]) for r in rows] == [1, 3]  # after optimiser steps 2 and 4
    assert "heldout/align" not in rows[0] or not rows[0]["heldout/align"]  # no y, no alignment
    with torch.no_grad():
        value = au.uniformity(expected(module.net(heldout)), t=1, normalize=True)
    assert float(rows[-1]["heldout/uniform"]) == pytest.approx(float(value), rel=1e-6)


def test_settings_are_checked_up_front(tmp_path):
    x = torch.randn(4, 3)
    with pytest.raises(InvalidValueError, match="nothing to log"):
        AlignUniformMonitor(x, every_n_steps=None, every_n_epochs=None)
    with pytest.raises(InvalidValueError, match="one positive per row"):
        AlignUniformMonitor(x, x[:2])
    with pytest.raises(InvalidValueError, match="every_n_steps"):
        AlignUniformMonitor(x, every_n_steps=0)
    with pytest.raises(InvalidValueError, match="no method 'encode'"):
        AlignUniformMonitor(x, embed="encode").measure(Plain())
    with pytest.raises(InvalidValueError, match="pass the held-out data as x"):
        AlignUniformMonitor(every_n_steps=2)
    with pytest.raises(InvalidValueError, match="y goes with a tensor or mapping x"):
        AlignUniformMonitor([x], x)
    with pytest.raises(InvalidValueError, match="no validation_step"):
        trainer(tmp_path, AlignUniformMonitor()).fit(Plain(), [torch.randn(4, 6)])


def test_every_embed_output_is_checked_against_its_batch():
    x = torch.randn(10, 6)
    cases = [
        (
            lambda m, b: m.net(torch.cat([b, b[:1]])),
            InvalidValueError,
            r"shape \(5, 4\) for batch 0",
        ),
        (lambda m, b: m.net(b).flatten(), InvalidValueError, r"shape \(16,\) .* of 4 inputs"),
        (lambda m, b: m.net(b) / 0, NonFiniteEmbeddings, "NaN or Inf"),
        (lambda m, b: m.net(b).tolist(), InvalidTypeError, "returned list"),
        (lambda m, b: (m.net(b), m.net(b)[:2]), InvalidValueError, r"batch 0 .*\(positives\)"),
    ]
    for embed, error, message in cases:
        with pytest.raises(error, match=message):
            AlignUniformMonitor(x, embed=embed, batch_size=4, normalize=True).measure(Plain())


class Pairs(pl.LightningModule):
    """f(x) = normalize(W x) trained to align fixed pairs (x_i, y_i): the loss is a mean over
    rows, so two processes on half batches step exactly as one process on the whole batch.
    The first ``spread_epochs`` epochs minimise uniformity instead (one process only)."""

    def __init__(self, collection: bool = False, spread_epochs: int = 0):
        super().__init__()
        self.spread_epochs = spread_epochs
        torch.manual_seed(0)
        self.net = nn.Linear(6, 4)
        self.val_metrics = None
        if collection:
            from torchmetrics import MetricCollection

            from alignuniform.integrations.torchmetrics_metrics import (
                AlignmentMetric,
                UniformityMetric,
            )

            self.val_metrics = MetricCollection([AlignmentMetric(), UniformityMetric()])

    def embed(self, x):
        return F.normalize(self.net(x), dim=1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        if self.current_epoch < self.spread_epochs:
            return au.uniform_loss(self.embed(x))
        return au.align_loss(self.embed(x), self.embed(y))

    def validation_step(self, batch, batch_idx):
        if self.val_metrics is not None:
            x, y = batch
            self.val_metrics.update(self.embed(x), self.embed(y))
            self.log_dict(self.val_metrics)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def both_views(module, batch):
    """A validation batch (x, y) -> the pair of embeddings (alignment and uniformity)."""
    return module.embed(batch[0]), module.embed(batch[1])


def pairs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 6, generator=torch.Generator().manual_seed(seed))
    return x, x + 0.8 * torch.randn(n, 6, generator=torch.Generator().manual_seed(seed + 1))


def loaders(train_batch: int = 8) -> tuple[torch.utils.data.DataLoader, ...]:
    """32 training pairs (in batches of 8: 4 steps), 40 validation pairs in batches of 10."""
    train = torch.utils.data.TensorDataset(*pairs(32, 0))
    val = torch.utils.data.TensorDataset(*pairs(40, 2))
    return (
        torch.utils.data.DataLoader(train, batch_size=train_batch),
        torch.utils.data.DataLoader(val, batch_size=10),
    )


def test_the_lightning_table_checkpoint_and_early_stopping_on_the_validation_loop(tmp_path):
    """ModelCheckpoint saves the best model by heldout/uniform and EarlyStopping stops on it."""
    train, val = loaders()
    monitor = AlignUniformMonitor(embed=both_views, prog_bar=True)  # the validation batches
    best = pl.callbacks.ModelCheckpoint(tmp_path / "ckpt", monitor="heldout/uniform", mode="min")
    # uniformity falls while it is trained, then rises as alignment alone collapses f
    stop = pl.callbacks.EarlyStopping(monitor="heldout/uniform", mode="min", patience=1)
    fit = trainer(tmp_path, monitor, best, stop, epochs=10, num_sanity_val_steps=2)
    module = Pairs(spread_epochs=2)
    fit.fit(module, train, val)

    rows = logged_rows(fit, "heldout/uniform")
    logged = [float(r["heldout/uniform"]) for r in rows]
    print("heldout/uniform per epoch:", logged, "stopped at epoch", stop.stopped_epoch)
    assert [int(r["step"]) for r in rows] == [4 * (e + 1) - 1 for e in range(len(rows))]
    assert 2 <= stop.stopped_epoch < 9 and fit.current_epoch == stop.stopped_epoch + 1
    assert len(rows) == stop.stopped_epoch + 1  # one value per validation, none in sanity checks
    best_epoch = logged.index(min(logged))
    assert 0 < best_epoch < len(logged) - 1  # neither the first nor the last: chosen by value
    assert float(best.best_model_score) == pytest.approx(min(logged), rel=1e-6)
    assert Path(best.best_model_path).is_file() and f"epoch={best_epoch}" in best.best_model_path
    assert "heldout/uniform" in fit.progress_bar_metrics
    x, y = val.dataset.tensors
    with torch.no_grad():
        za, zb = module.embed(x), module.embed(y)
    assert logged[-1] == pytest.approx(float(au.uniformity(za)), rel=1e-6)
    last_align = float(rows[-1]["heldout/align"])
    assert last_align == pytest.approx(au.alignment(za, zb), rel=1e-6)
    assert float(fit.callback_metrics["heldout/uniform"]) == pytest.approx(logged[-1])


def test_readme_schedule_logs_each_step_once(tmp_path):
    """every_n_steps=4 with 8 steps an epoch and every_n_epochs=1: steps 8 and 16 once each."""
    x, y = pairs(64, 5)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*pairs(64, 0)), 8)
    monitor = AlignUniformMonitor(x, y, every_n_steps=4, every_n_epochs=1, embed="embed")
    best = pl.callbacks.ModelCheckpoint(tmp_path / "ckpt", monitor="heldout/uniform", mode="max")
    fit = trainer(tmp_path, monitor, best, epochs=2)  # no validation loop: epoch ends decide
    fit.fit(Pairs(), loader)
    rows = logged_rows(fit, "heldout/uniform")
    steps = [int(r["step"]) for r in rows]
    assert steps == [3, 7, 11, 15]  # after optimiser steps 4, 8, 12, 16; Lightning counts from 0
    at_epoch_ends = [float(rows[i]["heldout/uniform"]) for i in (1, 3)]
    assert float(best.best_model_score) == pytest.approx(max(at_epoch_ends))


def test_gradient_accumulation_measures_after_optimiser_steps_only(tmp_path):
    x, y = pairs(20, 5)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*pairs(64, 0)), 8)
    monitor = AlignUniformMonitor(x, y, every_n_steps=2, every_n_epochs=None)
    fit = trainer(tmp_path, monitor, epochs=1, accumulate_grad_batches=2, log_every_n_steps=2)
    fit.fit(Pairs(), loader)  # 8 batches, 4 optimiser steps
    steps = [int(r["step"]) for r in logged_rows(fit, "heldout/uniform")]
    assert steps == [1, 3]  # after steps 2 and 4: not before the first step, not per batch
    with pytest.raises(InvalidValueError, match="not a multiple of the Trainer's log_every_n"):
        trainer(tmp_path / "3", AlignUniformMonitor(x, every_n_steps=3), log_every_n_steps=2).fit(
            Pairs(), loader
        )


class Words(pl.LightningModule):
    """Tokenised text in, mean of word vectors out: held-out data is a dict of tensors."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.words = nn.Embedding(50, 8)

    def forward(self, batch):
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return (self.words(batch["input_ids"]) * mask).sum(1) / mask.sum(1)

    def training_step(self, batch, batch_idx):
        z = F.normalize(self(batch), dim=1)
        return au.uniform_loss(z)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def tokens(n: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, 7, (n,), generator=g)
    return {
        "input_ids": torch.randint(1, 50, (n, 6), generator=g),
        "attention_mask": (torch.arange(6) < lengths[:, None]).long(),
    }


def test_tokenised_text_as_a_dict_of_tensors_is_measured(tmp_path):
    heldout = tokens(30, 1)
    monitor = AlignUniformMonitor(heldout, every_n_steps=2, normalize=True, batch_size=7)
    train = tokens(16, 0)
    loader = torch.utils.data.DataLoader(
        [{k: v[i] for k, v in train.items()} for i in range(16)], batch_size=4
    )
    fit = trainer(tmp_path, monitor, epochs=1)
    module = Words()
    fit.fit(module, loader)
    rows = logged_rows(fit, "heldout/uniform")
    assert [int(r["step"]) for r in rows] == [1, 3] and "heldout/align" not in fit.callback_metrics
    with torch.no_grad():
        value = float(au.uniformity(module(heldout), normalize=True))
    assert float(rows[-1]["heldout/uniform"]) == pytest.approx(value, rel=1e-6)


def test_a_metric_collection_of_both_metrics_in_a_lightning_module(tmp_path):
    train, val = loaders()
    fit = trainer(tmp_path, epochs=2)
    module = Pairs(collection=True)
    fit.fit(module, train, val)
    rows = logged_rows(fit, "UniformityMetric")
    assert len(rows) == 2  # one epoch value per validation: the whole set, not batch means
    x, y = val.dataset.tensors
    with torch.no_grad():
        za, zb = module.embed(x), module.embed(y)
    assert float(rows[-1]["AlignmentMetric"]) == pytest.approx(au.alignment(za, zb), rel=1e-6)
    assert float(rows[-1]["UniformityMetric"]) == pytest.approx(float(au.uniformity(za)), rel=1e-6)


class Record(pl.Callback):
    """Every rank writes what it holds at the end: its callback metrics."""

    def __init__(self, folder: Path):
        self.folder = folder

    def on_train_end(self, trainer, pl_module):
        values = {k: float(v) for k, v in trainer.callback_metrics.items()}
        (self.folder / f"rank{trainer.global_rank}.json").write_text(json.dumps(values))


def fit_pairs(folder: Path, devices: int) -> list[dict[str, str]]:
    """2 epochs of one step on all 32 pairs (Lightning's DistributedSampler shuffles: only the
    whole set is the same global batch in both runs); monitors on the validation batches and on
    45 given held-out pairs (uneven shares across 2 ranks); the rows of metrics.csv."""
    folder.mkdir()
    train, val = loaders(train_batch=32 // devices)
    x, y = pairs(45, 7)
    monitors = [
        AlignUniformMonitor(embed=both_views),
        AlignUniformMonitor(x, y, batch_size=10, prefix="given/"),
    ]
    strategy = {"strategy": "ddp_spawn"} if devices > 1 else {}
    fit = trainer(folder, *monitors, Record(folder), devices=devices, **strategy)
    fit.fit(Pairs(), train, val)
    with open(folder / "csv" / "version_0" / "metrics.csv") as f:
        return [row for row in csv.DictReader(f) if row.get("heldout/uniform")]


@pytest.mark.slow
def test_two_lightning_ddp_processes_log_what_one_process_logs(tmp_path):
    one = fit_pairs(tmp_path / "one", 1)
    two = fit_pairs(tmp_path / "two", 2)
    print("1 process:", one, "\n2 processes:", two)
    assert [r["step"] for r in two] == [r["step"] for r in one] == ["0", "1"]  # each step once
    for a, b in zip(one, two, strict=True):
        for key in ("heldout/align", "heldout/uniform", "given/align", "given/uniform"):
            assert float(b[key]) == pytest.approx(float(a[key]), rel=1e-5), key
    ranks = [json.loads((tmp_path / "two" / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0] == ranks[1]  # every rank holds the same values
    assert ranks[0]["given/uniform"] == pytest.approx(float(two[-1]["given/uniform"]))
