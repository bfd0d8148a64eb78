"""The paper's linear-evaluation recipe (official align_uniform linear_eval.py, App. B.1).

A linear layer on a frozen encoder layer, trained by Adam (betas (0.5, 0.999), lr 1e-3) on batches
of 128 training images, each drawn through the training augmentation (RandomResizedCrop + flip
+ ...) and the encoder, for 100 epochs with the learning rate x0.2 at epochs 60 and 80
(at 60% and 80% of ``epochs`` when that is changed); tested on eval-transform features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from alignuniform.core.schedule import milestones_at
from alignuniform.core.seeding import seeded
from alignuniform.core.validation import check_positive_int

EPOCHS = 100
BATCH_SIZE = 128
LR = 1e-3
BETAS = (0.5, 0.999)
GAMMA = 0.2
MILESTONE_FRACTIONS = (0.6, 0.8)


def milestones(epochs: int) -> list[int]:
    """The epochs after which the learning rate drops: [60, 80] for 100 epochs."""
    return milestones_at(epochs, MILESTONE_FRACTIONS)


def train_paper_probe(
    encoder: nn.Module,
    layer: str,
    data,
    indices: torch.Tensor,
    augment: nn.Module,
    num_classes: int,
    *,
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = False,
) -> nn.Linear:
    """Train a linear classifier on ``encoder.features(augment(images), [layer])`` of the rows
    ``indices`` of ``data`` (an ImageData); the encoder stays frozen in eval mode. Shuffling and
    augmentation are seeded with ``seed``."""
    check_positive_int(epochs, "epochs")
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
        optimizer = torch.optim.Adam(classifier.parameters(), lr=LR, betas=BETAS)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones(epochs), GAMMA)
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
    return 100.0 * float((predicted == labels.cpu()).double().mean())
