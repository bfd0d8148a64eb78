"""The fast linear probe: multinomial logistic regression on standardised features (L-BFGS).

    s(x)    = (x - mean) / std                     (training-set statistics; std 0 -> 1)
    L(W, b) = mean_i CE(W s(x_i) + b, y_i) + (l2 / 2) ||W||_F^2       (W: [classes, d])

L is smooth and, with l2 > 0, strongly convex in W, so L-BFGS with a strong-Wolfe line search
converges to its unique minimiser; it stops when the gradient's largest entry falls below
``tolerance`` or after ``max_iter`` iterations. The defaults (l2 = 1e-3, tolerance 1e-4) converge
in ~120 iterations on 128-d features and ~550 on raw Fashion-MNIST pixels (84.8% test accuracy,
the scikit-learn logistic-regression baseline is ~84%).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.validation import check_positive_int
from alignuniform.evaluate.validate import check_features, check_labels, percent_correct

L2 = 1e-3
MAX_ITER = 1000
TOLERANCE = 1e-4


@dataclass
class LinearProbe:
    """A fitted probe: standardisation (mean, std), then logits = s(x) @ weight^T + bias."""

    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor
    iterations: int

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """Class scores [N, C] of features [N, d]."""
        features = check_features(features, "features", dim=self.weight.shape[1])
        x = features.to(self.weight)
        return torch.nn.functional.linear((x - self.mean) / self.std, self.weight, self.bias)

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted classes int64 [N] (ties to the lower class index)."""
        return self.logits(features).argmax(dim=1)


def standardization(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-column mean and std (population); constant columns get std 1 so they map to 0."""
    mean = features.mean(dim=0)
    std = features.std(dim=0, correction=0)
    return mean, torch.where(std > 1e-6 * std.max().clamp_min(1e-30), std, torch.ones_like(std))


def fit_linear_probe(
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_classes: int | None = None,
    l2: float = L2,
    max_iter: int = MAX_ITER,
    tolerance: float = TOLERANCE,
) -> LinearProbe:
    """Fit the probe of the module docstring on features [N, d] (float32) and labels [N]."""
    features = check_features(features, "features")
    labels = check_labels(labels, "labels", len(features)).to(features.device)
    needed = int(labels.max()) + 1
    num_classes = needed if num_classes is None else check_positive_int(num_classes, "num_classes")
    if num_classes < needed:
        raise InvalidValueError(f"num_classes={num_classes} but labels go up to {needed - 1}")
    if not float(l2) > 0:
        raise InvalidValueError(f"l2 must be > 0 (it makes the problem strongly convex), got {l2}")
    check_positive_int(max_iter, "max_iter")
    x = features.to(torch.promote_types(features.dtype, torch.float32))
    mean, std = standardization(x)
    x = (x - mean) / std
    weight = torch.zeros(num_classes, x.shape[1], dtype=x.dtype, device=x.device)
    bias = torch.zeros(num_classes, dtype=x.dtype, device=x.device)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1,
        max_iter=max_iter,
        history_size=10,
        tolerance_grad=tolerance,
        tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )

    rows, scale = torch.arange(len(labels), device=x.device), 1.0 / len(labels)

    def closure() -> torch.Tensor:
        """L and its exact gradient: dL/dlogits = (softmax - onehot) / N, dL/dW = that^T x + l2 W.

        W is stored [C, d] so its gradient is the product dlogits^T x: BLAS is an order of
        magnitude slower at x^T dlogits (the layout autograd gives a [d, C] weight) for tall x.
        """
        log_p = torch.addmm(bias, x, weight.T).log_softmax(dim=1)
        loss = -log_p[rows, labels].sum() * scale + 0.5 * l2 * weight.pow(2).sum()
        dlogits = log_p.exp_()
        dlogits[rows, labels] -= 1
        weight.grad = torch.addmm(weight, dlogits.T, x, beta=l2, alpha=scale)
        bias.grad = dlogits.sum(dim=0).mul_(scale)
        return loss

    with torch.no_grad():
        optimizer.step(closure)
    iterations = optimizer.state[weight].get("n_iter", 0)
    return LinearProbe(mean, std, weight.detach(), bias.detach(), iterations)


def linear_probe_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    **options,
) -> float:
    """Test accuracy in percent (0-100) of `fit_linear_probe` trained on the training rows."""
    test_labels = check_labels(test_labels, "test_labels", len(test_features))
    probe = fit_linear_probe(train_features, train_labels, **options)
    return percent_correct(probe.predict(test_features), test_labels)
