"""AlignUniformMonitor inside a real Lightning Trainer.fit, logging to a CSV logger."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from torch import nn

import alignuniform as au
from alignuniform.core.errors import InvalidValueError
from alignuniform.nn import AlignUniformLoss

pl = pytest.importorskip(
    "lightning.pytorch", reason="needs the lightning extra: pip install '.[lightning]'"
)
from alignuniform.integrations.lightning_callback import AlignUniformMonitor  # noqa: E402


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


def trainer(tmp_path: Path, callback, epochs: int = 2) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=pl.loggers.CSVLogger(tmp_path, name="csv"),
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
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
    assert [int(r["step"]) for r in rows] == [4, 8]  # 512 images / 128 a step, 2 epochs
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
    assert [int(r["step"]) for r in rows] == [2, 4]
    assert "heldout/align" not in rows[0] or not rows[0]["heldout/align"]  # no y, no alignment
    with torch.no_grad():
        value = au.uniformity(expected(module.net(heldout)), t=1, normalize=True)
    assert float(rows[-1]["heldout/uniform"]) == pytest.approx(float(value), rel=1e-6)


def test_settings_are_checked_up_front():
    x = torch.randn(4, 3)
    with pytest.raises(InvalidValueError, match="nothing to log"):
        AlignUniformMonitor(x, every_n_steps=None, every_n_epochs=None)
    with pytest.raises(InvalidValueError, match="one positive per row"):
        AlignUniformMonitor(x, x[:2])
    with pytest.raises(InvalidValueError, match="every_n_steps"):
        AlignUniformMonitor(x, every_n_steps=0)
    with pytest.raises(InvalidValueError, match="no method 'encode'"):
        AlignUniformMonitor(x, embed="encode").measure(Plain())
