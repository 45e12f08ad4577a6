"""Image parameterizations: learnable tensors for a batch of images, rendered as RGB in [0, 1].

- ``pixel``: one logit per pixel and channel, squashed by a sigmoid (the reference recipe).
- ``fourier``: a 2-D spectrum scaled by 1/frequency^decay, with ImageNet color decorrelation
  (Olah et al., "Feature Visualization", Distill 2017). Spatial frequencies are decoupled, so
  gradient steps do not pile up high-frequency noise; a decay above Lucid's 1 damps the high
  frequencies further.
- ``maco``: only the Fourier *phase* is learned; the magnitude is fixed to a natural-image
  spectrum (Fel et al., MACO, NeurIPS 2023). The paper averages ImageNet spectra; we use the
  1/f law that such spectra follow closely (amplitude ~ 1/f^alpha with alpha near 1, Field 1987),
  so the magnitude is computed offline from a formula rather than shipped data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import nn

from featviz import validation
from featviz.errors import InputError
from featviz.validation import quoted

# Square root of the color covariance of ImageNet pixels (the SVD factor used by Lucid).
COLOR_CORRELATION_SVD_SQRT = torch.tensor(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]]
)
# Scaled so that no decorrelated channel's color vector is longer than 1.
COLOR_CORRELATION = COLOR_CORRELATION_SVD_SQRT / COLOR_CORRELATION_SVD_SQRT.norm(dim=0).max()
STD_EPSILON = 1e-8
RENDER_MARGIN = 1e-3  # how far inside [0, 1] a real image is kept to be rendered from


MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 1024
MAX_DECAY = 4.0  # a power of 1/frequency: 4 leaves only the coarsest shapes
MAX_CONTRAST = 10.0


class ImageTensors(nn.Module):
    """Learnable tensors for a batch of images of ``size`` x ``size``; ``forward()`` renders them
    as RGB in [0, 1]."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size


class PixelImage(ImageTensors):
    def __init__(self, batch: int, size: int, generator: torch.Generator) -> None:
        super().__init__(size)
        self.logits = nn.Parameter(0.1 * torch.randn(batch, 3, size, size, generator=generator))

    def forward(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)


def _frequency_radius(size: int) -> torch.Tensor:
    """|f| for every coefficient of an rfft2 of a size x size image, in cycles per pixel."""
    fy = torch.fft.fftfreq(size)[:, None]
    fx = torch.fft.rfftfreq(size)[None, :]
    return torch.sqrt(fx * fx + fy * fy)


def _decorrelated_to_rgb(image: torch.Tensor) -> torch.Tensor:
    mixed = torch.einsum("nchw,dc->ndhw", image, COLOR_CORRELATION.to(image))
    return torch.sigmoid(mixed)


class FourierImage(ImageTensors):
    output_scale = 0.25  # Lucid's: the default lr was tuned with it

    def __init__(
        self, batch: int, size: int, generator: torch.Generator, decay: float = 1.0
    ) -> None:
        super().__init__(size)
        # Coefficients scale as 1/frequency^decay, normalized so that the lowest frequency's
        # scale (the image side) does not depend on the decay: a stronger decay only damps.
        cycles = _frequency_radius(size).clamp(min=1.0 / size) * size
        self.register_buffer("scale", size * cycles ** (-decay))
        shape = (batch, 3, *cycles.shape, 2)
        self.spectrum = nn.Parameter(0.01 * torch.randn(shape, generator=generator))

    def forward(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        image = torch.fft.irfft2(spectrum, s=(self.size, self.size), norm="ortho")
        return _decorrelated_to_rgb(image * self.output_scale)

    @classmethod
    def of(cls, images: torch.Tensor, decay: float = 1.0) -> FourierImage:
        """The spectrum that renders ``images`` ((n, 3, S, S) in [0, 1], kept a little inside
        so that the sigmoid can be inverted): an optimization that starts from real images."""
        n, _, size, _ = images.shape
        fourier = cls(n, size, torch.Generator().manual_seed(0), decay).to(images.device)
        squashed = torch.logit(images.float().clamp(RENDER_MARGIN, 1 - RENDER_MARGIN))
        mixed = torch.einsum("ndhw,cd->nchw", squashed,
                             torch.linalg.inv(COLOR_CORRELATION).to(images))
        spectrum = torch.fft.rfft2(mixed / cls.output_scale, norm="ortho") / fourier.scale
        with torch.no_grad():
            fourier.spectrum.copy_(torch.view_as_real(spectrum))
        return fourier


class MacoImage(ImageTensors):
    def __init__(self, batch: int, size: int, generator: torch.Generator, alpha: float = 1.0,
                 contrast: float = 2.0) -> None:
        super().__init__(size)
        self.contrast = contrast
        radius = _frequency_radius(size).clamp(min=1.0 / size)
        self.register_buffer("magnitude", radius ** (-alpha))
        phase = (torch.rand(batch, 3, *radius.shape, generator=generator) * 2 - 1) * math.pi
        self.phase = nn.Parameter(phase)

    def forward(self) -> torch.Tensor:
        spectrum = torch.polar(self.magnitude.expand_as(self.phase), self.phase)
        image = torch.fft.irfft2(spectrum, s=(self.size, self.size), norm="ortho")
        mean = image.mean(dim=(2, 3), keepdim=True)
        std = image.std(dim=(2, 3), keepdim=True)
        return _decorrelated_to_rgb(self.contrast * (image - mean) / (std + STD_EPSILON))


# kind -> its settings' class; every subclass of Parameterization that names its kind
# registers itself here.
PARAMETERIZATIONS: dict[str, type[Parameterization]] = {}


@dataclass(frozen=True)
class Parameterization:
    """A kind of image parameterization and its options (the dataclass fields, each checked
    when set): what ``OptimizationConfig.parameterization`` holds. params.yaml sets an option
    as ``<kind>_<option>`` (``fourier_decay``). ``default_lr`` and ``default_optimizer`` are the
    settings the kind was tuned with; the engine uses them unless told otherwise."""

    kind: ClassVar[str]
    default_lr: ClassVar[float]
    default_optimizer: ClassVar[str]

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            PARAMETERIZATIONS[cls.kind] = cls

    def build(self, batch: int, size: int, generator: torch.Generator) -> ImageTensors:
        raise NotImplementedError

    def _check(self, option: str, value: object, maximum: float) -> None:
        validation.number(value, f"{self.kind}_{option}", positive=True, maximum=maximum)

    def __str__(self) -> str:
        options = ", ".join(f"{f.name}={getattr(self, f.name):g}" for f in fields(self))
        return f"{self.kind}({options})" if options else self.kind


@dataclass(frozen=True)
class Pixel(Parameterization):
    kind = "pixel"
    default_lr = 0.2
    default_optimizer = "adamw"

    def build(self, batch, size, generator):
        return PixelImage(batch, size, generator)


@dataclass(frozen=True)
class Fourier(Parameterization):
    """``decay``: the spectrum scales as 1/frequency^decay (1: Lucid's)."""

    decay: float = 1.0
    kind = "fourier"
    default_lr = 0.05
    default_optimizer = "adam"

    def __post_init__(self) -> None:
        self._check("decay", self.decay, MAX_DECAY)

    def build(self, batch, size, generator):
        return FourierImage(batch, size, generator, self.decay)


@dataclass(frozen=True)
class Maco(Parameterization):
    """``alpha``: the fixed magnitude's 1/frequency^alpha; ``contrast``: the pre-sigmoid
    image's standard deviation (2: +-1 std spans sigmoid's 0.12..0.88)."""

    alpha: float = 1.0
    contrast: float = 2.0
    kind = "maco"
    default_lr = 0.05
    default_optimizer = "adam"

    def __post_init__(self) -> None:
        self._check("alpha", self.alpha, MAX_DECAY)
        self._check("contrast", self.contrast, MAX_CONTRAST)

    def build(self, batch, size, generator):
        return MacoImage(batch, size, generator, self.alpha, self.contrast)


def parameterization(kind: str, **options: object) -> Parameterization:
    """The parameterization ``kind`` with ``options`` (the rest at their defaults)."""
    validation.choice(kind, "parameterization", PARAMETERIZATIONS)
    known = [f.name for f in fields(PARAMETERIZATIONS[kind])]
    unknown = [name for name in options if name not in known]
    if unknown:
        raise InputError(f"{kind} has no option {quoted(unknown[0])}: it takes "
                         f"{', '.join(known) or 'none'}")
    return PARAMETERIZATIONS[kind](**options)


def option_keys() -> dict[str, tuple[str, str]]:
    """params.yaml's key of every option of every kind -> (kind, option): ``fourier_decay``."""
    return {f"{kind}_{f.name}": (kind, f.name)
            for kind, cls in PARAMETERIZATIONS.items() for f in fields(cls)}
