"""The paper's linear-evaluation recipes: a linear layer trained on a frozen encoder layer.

Each image of a batch is drawn through the probe's augmentation and the encoder; the classifier
is tested on eval-transform features. Two recipes (`PAPER_PROBES`), by linear-protocol name:

- ``paper`` (STL-10, official align_uniform linear_eval.py, App. B.1): Adam (betas (0.5, 0.999),
  lr 1e-3), batch 128, 100 epochs, lr x0.2 at 60 and 80; training views RandomResizedCrop of
  the recipe + horizontal flip only (no colour jitter, no grayscale).
- ``paper-imagenet100`` (ImageNet-100, App. B.2; CMC's eval_moco_ins.py, whose defaults the
  paper's schedule matches): SGD (momentum 0.9, no weight decay), lr 10, batch 256, 60 epochs,
  lr x0.2 at 30, 40 and 50, on the 2048-d pooled (penultimate) ResNet features; training views
  CMC's default ``CJ`` augmentation: the recipe's crop and flip, RandomGrayscale(0.2), then
  ColorJitter(0.4, 0.4, 0.4, 0.4).

Milestones sit at the same fractions of ``epochs`` when that is changed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from alignuniform.core.schedule import milestones_at
from alignuniform.core.seeding import seeded
from alignuniform.core.validation import check_positive_int
from alignuniform.evaluate.validate import percent_correct


@dataclass(frozen=True)
class PaperProbe:
    """What one linear-probe recipe sets: optimiser, schedule and the training views' colour ops
    (the crop and the flip are the evaluated recipe's own; blur never)."""

    optimizer: str  # "adam" | "sgd"
    lr: float
    epochs: int
    batch_size: int
    milestone_fractions: tuple[float, ...]
    gamma: float = 0.2
    betas: tuple[float, float] = (0.5, 0.999)
    momentum: float = 0.9
    jitter: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    grayscale_p: float = 0.0

    def milestones(self, epochs: int) -> list[int]:
        """The epochs after which the learning rate drops ([60, 80] of 100 for ``paper``)."""
        return milestones_at(epochs, self.milestone_fractions)

    def build_optimizer(self, parameters) -> torch.optim.Optimizer:
        if self.optimizer == "adam":
            return torch.optim.Adam(parameters, lr=self.lr, betas=self.betas)
        return torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum)

    def view_recipe(self, recipe):
        """``recipe`` (a `Recipe`) with this probe's colour ops in place of its own."""
        return dataclasses.replace(
            recipe,
            jitter=self.jitter,
            jitter_p=1.0,
            grayscale_p=self.grayscale_p,
            grayscale_first=True,
            blur_p=0.0,
        )


PAPER_PROBES: dict[str, PaperProbe] = {
    "paper": PaperProbe("adam", 1e-3, 100, 128, (0.6, 0.8)),
    "paper-imagenet100": PaperProbe(
        "sgd", 10.0, 60, 256, (30 / 60, 40 / 60, 50 / 60), jitter=(0.4,) * 4, grayscale_p=0.2
    ),
}


def milestones(epochs: int) -> list[int]:
    """The ``paper`` probe's milestones: [60, 80] for 100 epochs."""
    return PAPER_PROBES["paper"].milestones(epochs)


def probe_augmentation(protocol: str, recipe, size: int) -> nn.Module:
    """The training views of the probe ``protocol`` for images of ``recipe`` at side ``size``."""
    from alignuniform.data import build_augmentation
    from alignuniform.data.augment import get_recipe

    view = PAPER_PROBES[protocol].view_recipe(get_recipe(recipe))
    return build_augmentation(view, image_size=size)


def train_paper_probe(
    encoder: nn.Module,
    layer: str,
    data,
    indices: torch.Tensor,
    augment: nn.Module,
    num_classes: int,
    *,
    probe: PaperProbe = PAPER_PROBES["paper"],
    epochs: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = False,
) -> nn.Linear:
    """Train a linear classifier on ``encoder.features(augment(images), [layer])`` of the rows
    ``indices`` of ``data`` (an ImageData) by ``probe``'s recipe (``epochs`` / ``batch_size``:
    the recipe's unless given); the encoder stays frozen in eval mode. Shuffling and
    augmentation are seeded with ``seed``."""
    epochs = check_positive_int(probe.epochs if epochs is None else epochs, "epochs")
    batch_size = probe.batch_size if batch_size is None else batch_size
    check_positive_int(batch_size, "batch_size")
    encoder.eval().to(device)
    augment = augment.to(device)

    def features_of(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = data.get_batch(rows)
        with torch.no_grad():
            features = encoder.features(augment(images.to(device)), [layer])[layer]
        return features.flatten(1), labels.to(device)

    with seeded(seed, device):
        classifier = nn.Linear(features_of(indices[:1])[0].shape[1], num_classes).to(device)
        optimizer = probe.build_optimizer(classifier.parameters())
        scheduler = torch.optim.lr_scheduler.MultiStepLR(
            optimizer, probe.milestones(epochs), probe.gamma
        )
        for _ in tqdm(
            range(epochs), desc=f"paper linear probe {layer}", disable=not progress, leave=False
        ):
            for rows in indices[torch.randperm(len(indices))].split(batch_size):
                features, labels = features_of(rows)
                loss = F.cross_entropy(classifier(features), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            scheduler.step()
    return classifier.eval()


def probe_accuracy(classifier: nn.Linear, features: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy in percent (0-100) of ``classifier`` on precomputed features [N, D]."""
    device = classifier.weight.device
    with torch.no_grad():
        predicted = torch.cat(
            [classifier(chunk.to(device)).argmax(dim=1).cpu() for chunk in features.split(8192)]
        )
    return percent_correct(predicted, labels)
