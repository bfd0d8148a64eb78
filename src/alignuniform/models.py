"""Encoders with named layer taps, built by name from a registry (timm style).

    encoder = create_encoder("small_alexnet", out_dim=128)
    z = encoder(x)                                 # "out": L2-normalised [B, out_dim]
    h = encoder(x, layer="fc7")                    # any tap ("penultimate": last hidden layer)
    feats = encoder.features(x, ["conv5", "fc7"])  # several taps in ONE forward pass

Every encoder is a chain of named stages; the output of each stage is a tap. ``features`` runs the
chain only as far as the deepest requested tap. ``spec`` rebuilds the architecture:
``create_encoder(spec["name"], out_dim=spec["out_dim"], **spec["kwargs"])``.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

PENULTIMATE = "penultimate"
_REGISTRY: dict[str, Callable[..., Encoder]] = {}


class L2Normalize(nn.Module):
    """x / ||x||_2 along dim 1 (the last step of every encoder: outputs lie on the sphere)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1)


class Encoder(nn.Module):
    """A chain of named stages ending in "out" (L2-normalised [B, out_dim]); each stage is a tap."""

    registry_name: str = ""

    def __init__(self, stages: Sequence[tuple[str, nn.Module]], *, out_dim: int, penultimate: str,
                 in_channels: int, input_size: int | None, config: dict) -> None:
        super().__init__()
        self.stages = nn.ModuleDict(stages)
        self.taps: tuple[str, ...] = tuple(self.stages)
        if self.taps[-1] != "out" or penultimate not in self.taps:
            raise ValueError(f"stages {self.taps} must end in 'out' and contain {penultimate!r}")
        self.out_dim = out_dim
        self.penultimate = penultimate
        self.in_channels = in_channels
        self.input_size = input_size
        self.config = config

    @property
    def spec(self) -> dict:
        """{"name", "out_dim", "kwargs"}: what `create_encoder` needs to rebuild this network."""
        return {"name": self.registry_name, "out_dim": self.out_dim, "kwargs": dict(self.config)}

    def resolve(self, layer: str) -> str:
        """The tap name of ``layer`` ("penultimate" is an alias); unknown names are an error."""
        name = self.penultimate if layer == PENULTIMATE else layer
        if name not in self.taps:
            raise ValueError(f"unknown layer {layer!r} for encoder {self.registry_name!r}; "
                             f"its taps are {', '.join(self.taps)} (or {PENULTIMATE!r})")
        return name

    def check_input(self, x: torch.Tensor) -> None:
        """A clear error unless x is a float [B, in_channels, H, W] batch of the right size."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"x must be a float tensor [B, C, H, W] (augmented/normalised images), "
                            f"got {getattr(x, 'dtype', type(x).__name__)}")
        size = self.input_size
        expected = f"[B, {self.in_channels}, {size or 'H'}, {size or 'W'}]"
        if x.dim() != 4 or x.shape[1] != self.in_channels or (
                size is not None and tuple(x.shape[2:]) != (size, size)):
            raise ValueError(f"x must have shape {expected} for {self.registry_name!r}, got "
                             f"{tuple(x.shape)}; pass in_channels/input_size to create_encoder "
                             f"to build it for other images")

    def features(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """{layer: output} for each requested layer (keys as given), from one forward pass."""
        if isinstance(layers, str) or not layers:
            raise TypeError(f"layers must be a non-empty sequence of layer names such as "
                            f"[{self.penultimate!r}], got {layers!r}")
        wanted = {layer: self.resolve(layer) for layer in layers}
        last = max(self.taps.index(name) for name in wanted.values())
        self.check_input(x)
        outputs: dict[str, torch.Tensor] = {}
        for tap in self.taps[:last + 1]:
            x = self.stages[tap](x)
            outputs[tap] = x
        return {layer: outputs[name] for layer, name in wanted.items()}

    def forward(self, x: torch.Tensor, layer: str = "out") -> torch.Tensor:
        return self.features(x, [layer])[layer]


def register_encoder(name: str) -> Callable:
    """Decorator: register ``factory(out_dim, **kwargs) -> Encoder`` under ``name``."""
    def decorate(factory: Callable[..., Encoder]) -> Callable[..., Encoder]:
        if name in _REGISTRY:
            raise ValueError(f"an encoder named {name!r} is already registered")
        _REGISTRY[name] = factory
        if isinstance(factory, type):
            factory.registry_name = name
        return factory
    return decorate


def list_encoders() -> list[str]:
    """Names of all registered encoders, sorted."""
    return sorted(_REGISTRY)


def create_encoder(name: str, out_dim: int = 128, **kwargs) -> Encoder:
    """Build the encoder registered as ``name`` with an L2-normalised output of size ``out_dim``."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown encoder {name!r}; valid names: {', '.join(list_encoders())}")
    if isinstance(out_dim, bool) or not isinstance(out_dim, int) or out_dim < 2:
        raise ValueError(f"out_dim must be an int >= 2 (2 draws the circle figures), got "
                         f"{out_dim!r}")
    factory = _REGISTRY[name]
    try:
        inspect.signature(factory).bind(out_dim=out_dim, **kwargs)
    except TypeError as err:
        params = [p for p in inspect.signature(factory).parameters if p != "out_dim"]
        raise TypeError(f"encoder {name!r} got bad keyword arguments {sorted(kwargs)} ({err}); "
                        f"it accepts {', '.join(params) or 'none'}") from err
    encoder = factory(out_dim=out_dim, **kwargs)
    encoder.registry_name = name
    return encoder


def positive_int(name: str, value: object) -> int:
    """``value`` if it is a positive int, else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def pooled_size(size: int, pools: int, kernel: int, stride: int, argument: str) -> int:
    """Side length after ``pools`` max-pools: s -> floor((s - kernel) / stride) + 1 each time."""
    out = size
    for _ in range(pools):
        out = (out - kernel) // stride + 1
    if out < 1:
        raise ValueError(f"{argument}={size} is too small: {pools} poolings leave nothing; "
                         f"use larger images")
    return out


def conv_bn_relu(c_in: int, c_out: int, *extra: nn.Module, stride: int = 1) -> nn.Sequential:
    """3x3 conv (pad 1, no bias) -> BatchNorm -> ReLU, then any ``extra`` modules (pooling)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True), *extra)


def linear_bn_relu(d_in: int, d_out: int) -> nn.Sequential:
    """Linear (no bias) -> BatchNorm1d -> ReLU."""
    return nn.Sequential(nn.Linear(d_in, d_out, bias=False), nn.BatchNorm1d(d_out),
                         nn.ReLU(inplace=True))


def projection(d_in: int, out_dim: int) -> nn.Sequential:
    """The "out" stage: Linear(d_in, out_dim) then L2 normalisation."""
    return nn.Sequential(nn.Linear(d_in, out_dim), L2Normalize())


@register_encoder("small_alexnet")
class SmallAlexNet(Encoder):
    """The paper's STL-10 encoder (CMC's AlexNet variant, 64x64 input).

    conv1..conv5: 3x3 pad 1, BN, ReLU, 96/192/384/384/192 channels, MaxPool(3, 2) after conv1,
    conv2, conv5; fc6: 192*s*s -> 4096, BN, ReLU (s = 7 at 64 px); fc7: 4096 -> 4096, BN, ReLU;
    out (fc8): 4096 -> out_dim, L2-normalised. Weights ~ N(0, 0.02), biases 0.
    """

    def __init__(self, out_dim: int = 128, *, in_channels: int = 3, input_size: int = 64) -> None:
        positive_int("in_channels", in_channels)
        side = pooled_size(positive_int("input_size", input_size), 3, 3, 2, "input_size")
        stages = [
            ("conv1", conv_bn_relu(in_channels, 96, nn.MaxPool2d(3, 2))),
            ("conv2", conv_bn_relu(96, 192, nn.MaxPool2d(3, 2))),
            ("conv3", conv_bn_relu(192, 384)),
            ("conv4", conv_bn_relu(384, 384)),
            ("conv5", conv_bn_relu(384, 192, nn.MaxPool2d(3, 2))),
            ("fc6", nn.Sequential(nn.Flatten(), *linear_bn_relu(192 * side * side, 4096))),
            ("fc7", linear_bn_relu(4096, 4096)),
            ("out", projection(4096, out_dim)),
        ]
        super().__init__(stages, out_dim=out_dim, penultimate="fc7", in_channels=in_channels,
                         input_size=input_size,
                         config={"in_channels": in_channels, "input_size": input_size})
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

@register_encoder("convnet")
class ConvNet(Encoder):
    """A small fast CNN for 28x28 grayscale (the default CPU encoder).

    conv1..convK: 3x3 conv with ``widths`` channels, BN, ReLU, halving the side either with a
    stride-2 conv (``downsample="stride"``, the default: ~6.4 MFLOPs per 28x28 image, 3x faster
    on a CPU) or a stride-1 conv then MaxPool(2) (``"pool"``: ~16 MFLOPs); fc: flatten ->
    ``hidden``, BN, ReLU (penultimate); out: hidden -> out_dim, L2-normalised.
    """

    def __init__(self, out_dim: int = 128, *, in_channels: int = 1, input_size: int = 28,
                 widths: Sequence[int] = (32, 64, 128), hidden: int = 512,
                 downsample: str = "stride") -> None:
        positive_int("in_channels", in_channels)
        widths = [positive_int("widths[i]", w) for w in widths]
        if not widths:
            raise ValueError("widths must name at least one conv stage's channels, e.g. [32, 64]")
        if downsample not in ("pool", "stride"):
            raise ValueError(f"downsample must be 'pool' (conv then MaxPool(2)) or 'stride' "
                             f"(a stride-2 conv, ~3x cheaper), got {downsample!r}")
        size = positive_int("input_size", input_size)
        side = (pooled_size(size, len(widths), 2, 2, "input_size") if downsample == "pool"
                else math.ceil(size / 2 ** len(widths)))  # stride-2, pad-1 convs: s -> ceil(s/2)
        channels = [in_channels, *widths]
        stages: list[tuple[str, nn.Module]] = [
            (f"conv{i + 1}", conv_bn_relu(c_in, c_out, nn.MaxPool2d(2)) if downsample == "pool"
             else conv_bn_relu(c_in, c_out, stride=2))
            for i, (c_in, c_out) in enumerate(itertools.pairwise(channels))]
        stages += [
            ("fc", nn.Sequential(nn.Flatten(), *linear_bn_relu(
                widths[-1] * side * side, positive_int("hidden", hidden)))),
            ("out", projection(hidden, out_dim)),
        ]
        super().__init__(stages, out_dim=out_dim, penultimate="fc", in_channels=in_channels,
                         input_size=input_size,
                         config={"in_channels": in_channels, "input_size": input_size,
                                 "widths": widths, "hidden": hidden, "downsample": downsample})


@register_encoder("mlp")
class MLP(Encoder):
    """A multilayer perceptron on the flattened image: the cheapest encoder per image.

    fc1..fcK: linear, BN, ReLU with ``hidden`` units (the last is the penultimate layer);
    out: -> out_dim, L2-normalised. Matrix products only, so it runs near the CPU's peak.
    """

    def __init__(self, out_dim: int = 128, *, in_channels: int = 1, input_size: int = 28,
                 hidden: Sequence[int] = (1024, 512)) -> None:
        sizes = [positive_int("in_channels", in_channels) * positive_int("input_size", input_size)
                 ** 2, *(positive_int("hidden[i]", h) for h in hidden)]
        if len(sizes) < 2:
            raise ValueError("hidden must name at least one layer's width, e.g. [1024, 512]")
        stages: list[tuple[str, nn.Module]] = [
            (f"fc{i + 1}", nn.Sequential(*([nn.Flatten()] if i == 0 else []),
                                         *linear_bn_relu(d_in, d_out)))
            for i, (d_in, d_out) in enumerate(itertools.pairwise(sizes))]
        stages.append(("out", projection(sizes[-1], out_dim)))
        super().__init__(stages, out_dim=out_dim, penultimate=f"fc{len(sizes) - 1}",
                         in_channels=in_channels, input_size=input_size,
                         config={"in_channels": in_channels, "input_size": input_size,
                                 "hidden": list(sizes[1:])})


class ResNet(Encoder):
    """A torchvision ResNet (random init) with taps layer1..layer4, pool (penultimate), out.

    ``cifar_stem`` replaces the 7x7/2 conv + max-pool stem by a 3x3/1 conv (for 32-96 px images).
    """

    def __init__(self, arch: str, out_dim: int, in_channels: int, cifar_stem: bool) -> None:
        positive_int("in_channels", in_channels)
        if not isinstance(cifar_stem, bool):
            raise TypeError(f"cifar_stem must be a bool, got {cifar_stem!r}")
        net = getattr(torchvision.models, arch)(weights=None)
        if cifar_stem or in_channels != 3:
            kernel, stride, pad = (3, 1, 1) if cifar_stem else (7, 2, 3)
            net.conv1 = nn.Conv2d(in_channels, 64, kernel, stride, pad, bias=False)
            nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        stem = [net.conv1, net.bn1, net.relu] + ([] if cifar_stem else [net.maxpool])
        stages = [
            ("layer1", nn.Sequential(*stem, net.layer1)),
            ("layer2", net.layer2),
            ("layer3", net.layer3),
            ("layer4", net.layer4),
            ("pool", nn.Sequential(net.avgpool, nn.Flatten())),
            ("out", projection(net.fc.in_features, out_dim)),
        ]
        super().__init__(stages, out_dim=out_dim, penultimate="pool", in_channels=in_channels,
                         input_size=None,
                         config={"in_channels": in_channels, "cifar_stem": cifar_stem})


@register_encoder("resnet18")
def resnet18(out_dim: int = 128, *, in_channels: int = 3, cifar_stem: bool = False) -> ResNet:
    """torchvision ResNet-18 (512-d pool) with a linear projection to out_dim."""
    return ResNet("resnet18", out_dim, in_channels, cifar_stem)


@register_encoder("resnet50")
def resnet50(out_dim: int = 128, *, in_channels: int = 3, cifar_stem: bool = False) -> ResNet:
    """torchvision ResNet-50 (2048-d pool) with a linear projection to out_dim."""
    return ResNet("resnet50", out_dim, in_channels, cifar_stem)


@register_encoder("identity")
class Identity(Encoder):
    """Raw pixels as features (a baseline without parameters).

    pixels: x flattened to [B, C*H*W] (penultimate); out: pixels / ||pixels||. ``out_dim`` is
    ignored: it is C * input_size**2.
    """

    def __init__(self, out_dim: int = 128, *, in_channels: int = 1, input_size: int = 28) -> None:
        del out_dim  # derived from the image size
        dim = positive_int("in_channels", in_channels) * positive_int("input_size", input_size) ** 2
        super().__init__([("pixels", nn.Flatten()), ("out", L2Normalize())], out_dim=dim,
                         penultimate="pixels", in_channels=in_channels, input_size=input_size,
                         config={"in_channels": in_channels, "input_size": input_size})
