"""Name-only tables that must load without torch (the CLI's parser, the config schema).

Each table is the only source of its names: the code that implements the names imports them
from here (`core.device.autocast`, `core.losses.moco_uniform_loss`, `data.datasets`,
`models.external.hf`), and so do the config schema and the CLI. ``ENCODERS`` names the
built-in families of the encoder registry (`alignuniform.models.list_encoders`, which also
knows the ones users register), for help texts.
"""

from __future__ import annotations

PRECISIONS = ("fp32", "bf16", "fp16")  # compute precision: autocast dtypes in `core.device`
UNIFORM_FORMS = ("eq18", "eq17")  # MoCo uniformity: queue + batch pairs | queue only
DECODES = ("full", "center")  # folder datasets: crops from the whole image | from its centre
ENCODERS = ("convnet", "small_alexnet", "resnet18", "resnet50", "depth_alexnet", "mlp", "identity")
POOLERS = ("cls", "cls_before_pooler", "avg", "avg_first_last", "avg_top2")  # hf text encoders
