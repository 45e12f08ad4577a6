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

import torch
from torch import nn

from featviz import validation

# Square root of the color covariance of ImageNet pixels (the SVD factor used by Lucid).
COLOR_CORRELATION_SVD_SQRT = torch.tensor(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]]
)
# Scaled so that no decorrelated channel's color vector is longer than 1.
COLOR_CORRELATION = COLOR_CORRELATION_SVD_SQRT / COLOR_CORRELATION_SVD_SQRT.norm(dim=0).max()
STD_EPSILON = 1e-8


MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 1024
MAX_FOURIER_DECAY = 4.0


class Parameterization(nn.Module):
    """Learnable tensors for a batch of images of ``size`` x ``size``; ``forward()`` renders them.

    ``default_lr`` and ``default_optimizer`` are the settings this parameterization was tuned
    with; the optimization engine uses them unless told otherwise.
    """

    default_lr: float
    default_optimizer: str

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size


class PixelImage(Parameterization):
    default_lr = 0.2
    default_optimizer = "adamw"

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


class FourierImage(Parameterization):
    default_lr = 0.05
    default_optimizer = "adam"
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


class MacoImage(Parameterization):
    default_lr = 0.05
    default_optimizer = "adam"
    contrast = 2.0  # the pre-sigmoid image's std: +-1 std spans sigmoid's 0.12..0.88

    def __init__(
        self, batch: int, size: int, generator: torch.Generator, alpha: float = 1.0
    ) -> None:
        super().__init__(size)
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


PARAMETERIZATIONS: dict[str, type[Parameterization]] = {
    "pixel": PixelImage,
    "fourier": FourierImage,
    "maco": MacoImage,
}


def check_parameterization(kind: str, size: int, fourier_decay: float = 1.0) -> None:
    validation.choice(kind, "parameterization", PARAMETERIZATIONS)
    validation.integer(size, "image_size", MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
    validation.number(fourier_decay, "fourier_decay", positive=True, maximum=MAX_FOURIER_DECAY)


def make_parameterization(
    kind: str, batch: int, size: int, generator: torch.Generator, fourier_decay: float = 1.0
) -> Parameterization:
    """``fourier_decay``: the power of the ``fourier`` spectrum's 1/frequency scaling (the
    other parameterizations have none)."""
    check_parameterization(kind, size, fourier_decay)
    if kind == "fourier":
        return FourierImage(batch, size, generator, fourier_decay)
    return PARAMETERIZATIONS[kind](batch, size, generator)
