"""Batched, differentiable random augmentations with one independent draw per sample.

Every random number comes from the ``torch.Generator`` passed in, so a seed fixes every view.
Geometric transforms are 3x3 homographies in normalized coordinates ([-1, 1], as
``grid_sample`` uses) that map an output pixel to the source pixel it samples; they are
multiplied together and applied in a single ``grid_sample``, so a whole chain costs one
resampling and has no per-sample Python loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from featviz import validation
from featviz.errors import InputError

CROP_RATIO = (3 / 4, 4 / 3)  # aspect ratios of random resized crops, as torchvision's default
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma, as torchvision's rgb_to_grayscale

def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def _identity(n: int) -> torch.Tensor:
    return torch.eye(3, dtype=torch.float64).repeat(n, 1, 1)


def crop_matrices(
    n: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator,
    overhang: float = 0.0,
) -> torch.Tensor:
    """Random resized crops: area fraction in ``scale``, aspect ratio log-uniform in ``ratio``,
    reaching past the image edges by up to ``overhang`` of their own size (0: inside)."""
    area = _uniform(n, *scale, generator)
    aspect = torch.exp(_uniform(n, math.log(ratio[0]), math.log(ratio[1]), generator))
    width = torch.sqrt(area * aspect).clamp(max=1.0)
    height = torch.sqrt(area / aspect).clamp(max=1.0)
    reach_x = (1 - (1 - overhang) * width).clamp(max=1.0)
    reach_y = (1 - (1 - overhang) * height).clamp(max=1.0)
    center_x = reach_x * _uniform(n, -1.0, 1.0, generator)
    center_y = reach_y * _uniform(n, -1.0, 1.0, generator)
    matrix = _identity(n)
    matrix[:, 0, 0], matrix[:, 1, 1] = width, height
    matrix[:, 0, 2], matrix[:, 1, 2] = center_x, center_y
    return matrix


def rotation_matrices(n: int, degrees: float, generator: torch.Generator) -> torch.Tensor:
    angle = torch.deg2rad(_uniform(n, -degrees, degrees, generator))
    matrix = _identity(n)
    matrix[:, 0, 0], matrix[:, 0, 1] = torch.cos(angle), -torch.sin(angle)
    matrix[:, 1, 0], matrix[:, 1, 1] = torch.sin(angle), torch.cos(angle)
    return matrix


def flip_matrices(n: int, p: float, generator: torch.Generator) -> torch.Tensor:
    flipped = torch.rand(n, generator=generator, dtype=torch.float64) < p
    matrix = _identity(n)
    matrix[:, 0, 0] = torch.where(flipped, -1.0, 1.0)
    return matrix


def translation_matrices(n: int, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Shift by up to ``fraction`` of the image side in each direction."""
    matrix = _identity(n)
    matrix[:, 0, 2] = _uniform(n, -2 * fraction, 2 * fraction, generator)
    matrix[:, 1, 2] = _uniform(n, -2 * fraction, 2 * fraction, generator)
    return matrix


_CORNERS = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], dtype=torch.float64)


def perspective_matrices(
    n: int, distortion: float, p: float, generator: torch.Generator
) -> torch.Tensor:
    """Like torchvision's RandomPerspective: each corner moves inward by up to ``distortion``
    of the half side; the homography maps the moved corners back onto the original ones."""
    inward = -_CORNERS.sign()
    shift = distortion * torch.rand(n, 4, 2, generator=generator, dtype=torch.float64)
    moved = _CORNERS + inward * shift
    matrix = homographies(moved, _CORNERS.expand(n, 4, 2))
    applied = torch.rand(n, generator=generator, dtype=torch.float64) < p
    return torch.where(applied[:, None, None], matrix, _identity(n))


def homographies(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The (n, 3, 3) homographies that map each set of 4 ``source`` points onto ``target``."""
    x, y = source[..., 0], source[..., 1]
    u, v = target[..., 0], target[..., 1]
    zero, one = torch.zeros_like(x), torch.ones_like(x)
    rows_u = torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y], dim=-1)
    rows_v = torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y], dim=-1)
    system = torch.cat([rows_u, rows_v], dim=1)
    solution = torch.linalg.solve(system, torch.cat([u, v], dim=1))
    return torch.cat([solution, torch.ones_like(solution[:, :1])], dim=1).view(-1, 3, 3)


def warp(images: torch.Tensor, matrices: torch.Tensor, size: int,
         outside: str = "zeros") -> torch.Tensor:
    """Resample each image through its homography onto a ``size`` x ``size`` grid; points
    outside the image read black (``outside="zeros"``) or the image mirrored at its edges
    (``"reflection"``)."""
    coords = torch.linspace(-1 + 1 / size, 1 - 1 / size, size, device=images.device)
    grid_y, grid_x = torch.meshgrid(coords, coords, indexing="ij")
    points = torch.stack([grid_x, grid_y, torch.ones_like(grid_x)], dim=-1).view(-1, 3)
    mapped = points @ matrices.to(images.device, torch.float32).transpose(1, 2)
    grid = (mapped[..., :2] / mapped[..., 2:]).view(-1, size, size, 2)
    return F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode=outside,
                         align_corners=False)


def _per_sample(values: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    return values.to(images.device, images.dtype).view(-1, 1, 1, 1)


def grayscale(images: torch.Tensor) -> torch.Tensor:
    """(n, 3, h, w) RGB -> (n, 1, h, w) luma."""
    weights = images.new_tensor(LUMA_WEIGHTS).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def color_jitter(
    images: torch.Tensor,
    brightness: float,
    contrast: float,
    saturation: float,
    hue: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """torchvision's ColorJitter semantics, one factor of each kind per sample; the hue shift
    is a rotation of chroma in YIQ space, which keeps it differentiable."""
    n = images.shape[0]
    b = _per_sample(_uniform(n, 1 - brightness, 1 + brightness, generator), images)
    c = _per_sample(_uniform(n, 1 - contrast, 1 + contrast, generator), images)
    s = _per_sample(_uniform(n, 1 - saturation, 1 + saturation, generator), images)
    angle = 2 * math.pi * _uniform(n, -hue, hue, generator)
    images = images * b
    mean = grayscale(images).mean(dim=(2, 3), keepdim=True)
    images = (images - mean) * c + mean
    gray = grayscale(images)
    images = (images - gray) * s + gray
    return _rotate_hue(images, angle).clamp(0, 1)


# NTSC's YIQ: Y is the BT.601 luma, I and Q the two chroma axes that a hue shift rotates.
_RGB_TO_YIQ = torch.tensor(
    [LUMA_WEIGHTS, [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64
)


def _rotate_hue(images: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = _identity(len(angle))
    rotation[:, 1, 1], rotation[:, 1, 2] = cos, -sin
    rotation[:, 2, 1], rotation[:, 2, 2] = sin, cos
    matrix = torch.linalg.inv(_RGB_TO_YIQ) @ rotation @ _RGB_TO_YIQ
    return torch.einsum("ndc,nchw->ndhw", matrix.to(images.device, images.dtype), images)


def gaussian_blur(
    images: torch.Tensor,
    kernel_size: int,
    sigma: tuple[float, float],
    generator: torch.Generator,
) -> torch.Tensor:
    n, channels, height, width = images.shape
    sigmas = _uniform(n, *sigma, generator)
    offsets = torch.arange(kernel_size, dtype=torch.float64) - (kernel_size - 1) / 2
    kernel_1d = torch.exp(-(offsets[None, :] ** 2) / (2 * sigmas[:, None] ** 2))
    kernel_1d = kernel_1d / kernel_1d.sum(dim=1, keepdim=True)
    kernel = (kernel_1d[:, :, None] * kernel_1d[:, None, :]).repeat_interleave(channels, dim=0)
    kernel = kernel.to(images.device, images.dtype)[:, None]
    pad = kernel_size // 2
    padded = F.pad(images.reshape(1, n * channels, height, width), (pad,) * 4, mode="reflect")
    return F.conv2d(padded, kernel, groups=n * channels).view(n, channels, height, width)


def add_noise(images: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise drawn on the images' device, seeded from ``generator``."""
    seed = int(torch.randint(2**62, (1,), generator=generator))
    device_generator = torch.Generator(images.device).manual_seed(seed)
    noise = torch.randn(images.shape, generator=device_generator, device=images.device)
    return images + std * noise.to(images.dtype)


def center_view(images: torch.Tensor, size: int) -> torch.Tensor:
    """The whole image resized to ``size`` x ``size``: the deterministic view."""
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True,
                         align_corners=False)


MAX_BLUR_KERNEL = 31
REFERENCE_VIEW_SIZE = 224  # the view side at which the blur's pixel sizes hold as written
CROP_RATIO_RANGE = (0.1, 10.0)  # aspect ratios a crop may take
BLUR_SIGMA_RANGE = (0.01, 100.0)  # below 0.01 the kernel's weights underflow to 0/0
MAX_NOISE = 1.0  # the images lie in [0, 1]


@dataclass(frozen=True)
class Augmentation:
    """A chain of random transforms, applied in the reference's order: resized crop, rotation,
    flip, perspective, translation, then color jitter, blur and noise. Zero disables a step.

    ``overhang``: how far a crop may reach past the image edges, as a fraction of its own size.
    At 0 (the reference) every crop lies inside the image, so pixels near the edges are seen
    less often than central ones and a corner only by the crops that reach it: corners fade.
    Above 0 the image is mirrored past its edges (no view holds black borders), and at 1 crops
    are centered anywhere, so every pixel is in view equally often (the mirrored plane repeats
    the image, each pixel once per tile).

    Every setting is relative to the view but the blur's, which is in pixels of a 224-pixel
    view (``REFERENCE_VIEW_SIZE``, the ImageNet models' input) and scales with the view: a
    32-pixel model's views get a blur of the same reach across its view as a 224-pixel model's.
    """

    crop_scale: tuple[float, float] = (0.1, 1.0)
    crop_ratio: tuple[float, float] = CROP_RATIO
    rotation: float = 0.0
    flip: float = 0.0
    perspective: float = 0.0
    perspective_p: float = 0.5
    translate: float = 0.0
    color_jitter: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    blur_kernel: int = 0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    noise: float = 0.0
    overhang: float = 0.0

    def __post_init__(self) -> None:
        low, high = validation.numbers(self.crop_scale, "crop_scale", 2)
        if not 0 < low <= high <= 1:
            raise InputError(f"crop_scale must satisfy 0 < low <= high <= 1, got {self.crop_scale}")
        low, high = validation.numbers(self.crop_ratio, "crop_ratio", 2, *CROP_RATIO_RANGE)
        if not low <= high:
            raise InputError(f"crop_ratio must satisfy low <= high, got {self.crop_ratio}")
        for name in ("flip", "perspective", "perspective_p"):
            validation.number(getattr(self, name), name, minimum=0, maximum=1)
        validation.number(self.rotation, "rotation", minimum=0, maximum=180)
        validation.number(self.translate, "translate", minimum=0, maximum=1)
        validation.number(self.noise, "noise", minimum=0, maximum=MAX_NOISE)
        jitter = validation.numbers(self.color_jitter, "color_jitter (brightness, contrast, "
                                    "saturation, hue)", 4)
        for name, value in zip(("brightness", "contrast", "saturation"), jitter):
            validation.number(value, f"color_jitter {name}", minimum=0, maximum=1)
        validation.number(jitter[3], "color_jitter hue", minimum=0, maximum=0.5)
        validation.integer(self.blur_kernel, "blur_kernel", 0, MAX_BLUR_KERNEL)
        if self.blur_kernel and (self.blur_kernel < 3 or self.blur_kernel % 2 == 0):
            raise InputError(f"blur_kernel must be 0 or an odd number >= 3, got {self.blur_kernel}")
        low, high = validation.numbers(self.blur_sigma, "blur_sigma", 2, *BLUR_SIGMA_RANGE)
        if not low <= high:
            raise InputError(f"blur_sigma must satisfy low <= high, got {self.blur_sigma}")
        validation.number(self.overhang, "overhang", minimum=0, maximum=1)

    def blur_at(self, size: int) -> tuple[int, tuple[float, float]]:
        """The blur's kernel size and sigma range for views of ``size`` pixels: the written ones
        scaled by ``size / REFERENCE_VIEW_SIZE`` (the kernel odd, at least 3)."""
        scale = size / REFERENCE_VIEW_SIZE
        kernel = max(3, round(self.blur_kernel * scale))
        low, high = self.blur_sigma
        return kernel + 1 - kernel % 2, (max(low * scale, BLUR_SIGMA_RANGE[0]),
                                         max(high * scale, BLUR_SIGMA_RANGE[0]))

    @classmethod
    def from_dict(cls, values: dict) -> Augmentation:
        known = {field.name for field in fields(cls)}
        unknown = [key for key in values if key not in known]
        if unknown:
            raise InputError(f"unknown augmentation key {validation.quoted(unknown[0])}: use "
                             f"{', '.join(sorted(known))}")
        return cls(**{key: tuple(v) if isinstance(v, list) else v for key, v in values.items()})

    def __call__(
        self, images: torch.Tensor, size: int, generator: torch.Generator,
        crops_inside: bool = False,
    ) -> torch.Tensor:
        """Views of ``images`` at ``size`` x ``size``. ``crops_inside`` keeps every crop inside
        the image whatever the overhang (views of the image itself, as an evaluation takes
        them); what a rotation or perspective pulls in from past an edge is still mirrored."""
        n = images.shape[0]
        matrix = crop_matrices(n, self.crop_scale, self.crop_ratio, generator,
                               overhang=0.0 if crops_inside else self.overhang)
        if self.rotation:
            matrix = matrix @ rotation_matrices(n, self.rotation, generator)
        if self.flip:
            matrix = matrix @ flip_matrices(n, self.flip, generator)
        if self.perspective:
            matrix = matrix @ perspective_matrices(n, self.perspective, self.perspective_p,
                                                   generator)
        if self.translate:
            matrix = matrix @ translation_matrices(n, self.translate, generator)
        views = warp(images, matrix, size, "reflection" if self.overhang else "zeros")
        if any(self.color_jitter):
            views = color_jitter(views, *self.color_jitter, generator)
        if self.blur_kernel:
            kernel, sigma = self.blur_at(size)
            views = gaussian_blur(views, kernel, sigma, generator)
        if self.noise:
            views = add_noise(views, self.noise, generator)
        return views
