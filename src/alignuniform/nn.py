"""Loss modules for anyone's training loop, called like lightly's ``HypersphereLoss``.

    loss_fn = alignuniform.nn.AlignUniformLoss()  # L_align(2) + (L_unif(a; 2) + L_unif(b; 2)) / 2
    loss = loss_fn(z_a, z_b)                      # z_a, z_b: [B, d], the two views
    # lightly HypersphereLoss(t, lam, alpha) == AlignUniformLoss(1, lam, alpha=alpha, t=t)
    out = ObjectiveLoss(Objective.parse("align + 0.5*contrastive"))(z_a, z_b)  # .total, .terms

Defined in `alignuniform.core.modules` (torch only); see there for the formulas.
"""

from alignuniform.core.modules import AlignUniformLoss, ContrastiveLoss, ObjectiveLoss

__all__ = ["AlignUniformLoss", "ContrastiveLoss", "ObjectiveLoss"]
