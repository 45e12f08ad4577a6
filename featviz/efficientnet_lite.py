"""EfficientNet-Lite0..2 (Tan & Le, 2019; Google's TensorFlow Lite variants) as plain PyTorch.

The embedded models need only this network, so loading them imports neither timm nor
torchvision (seconds saved at every start of a featviz command). Module names, tensor order and
arithmetic are those of timm's ``tf_efficientnet_lite{0,1,2}``: TensorFlow's "same" padding,
batch-norm epsilon 1e-3, ReLU6, no squeeze-excitation, a fixed stem (32) and head (1280).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BATCH_NORM_EPSILON = 1e-3  # TensorFlow's default, which the ported weights were trained with
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280
# Per stage: kernel, stride, expansion ratio; then per variant the repeats and output channels.
STAGES = ((3, 1, 1), (3, 2, 6), (5, 2, 6), (3, 2, 6), (5, 1, 6), (5, 2, 6), (3, 1, 6))
REPEATS = {0: (1, 2, 2, 3, 3, 4, 1), 1: (1, 3, 3, 4, 4, 5, 1), 2: (1, 3, 3, 4, 4, 5, 1)}
CHANNELS = {0: (16, 24, 40, 80, 112, 192, 320), 1: (16, 24, 40, 80, 112, 192, 320),
            2: (16, 24, 48, 88, 120, 208, 352)}
INPUT_SIZES = {0: 224, 1: 240, 2: 260}


class SamePaddingConv2d(nn.Conv2d):
    """A convolution with TensorFlow's "same" padding: the output has ceil(input / stride)
    pixels, and an odd total padding puts the extra pixel at the right and bottom. With stride
    1 (and an odd kernel) that is the usual symmetric padding, done inside the convolution;
    only strided convolutions pad separately, for their padding depends on the input size."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1) -> None:
        padding = kernel_size // 2 if stride == 1 else 0
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=padding,
                         groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] == 1:
            return super().forward(x)
        pads = []
        for size in (x.shape[-1], x.shape[-2]):
            stride, kernel = self.stride[0], self.kernel_size[0]
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BATCH_NORM_EPSILON)


class DepthwiseSeparable(nn.Module):
    """Depthwise k x k convolution, then a linear 1 x 1 projection (the first stage)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.conv_dw = SamePaddingConv2d(in_channels, in_channels, kernel, stride,
                                         groups=in_channels)
        self.bn1 = _batch_norm(in_channels)
        self.act1 = nn.ReLU6()
        self.conv_pw = SamePaddingConv2d(in_channels, out_channels, 1)
        self.bn2 = _batch_norm(out_channels)
        self.has_skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv_pw(self.act1(self.bn1(self.conv_dw(x)))))
        return out + x if self.has_skip else out


class InvertedResidual(nn.Module):
    """1 x 1 expansion, depthwise k x k convolution, linear 1 x 1 projection; a skip
    connection where the shape allows it."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int,
                 expansion: int) -> None:
        super().__init__()
        middle = in_channels * expansion
        self.conv_pw = SamePaddingConv2d(in_channels, middle, 1)
        self.bn1 = _batch_norm(middle)
        self.act1 = nn.ReLU6()
        self.conv_dw = SamePaddingConv2d(middle, middle, kernel, stride, groups=middle)
        self.bn2 = _batch_norm(middle)
        self.act2 = nn.ReLU6()
        self.conv_pwl = SamePaddingConv2d(middle, out_channels, 1)
        self.bn3 = _batch_norm(out_channels)
        self.has_skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv_pw(x)))
        out = self.act2(self.bn2(self.conv_dw(out)))
        out = self.bn3(self.conv_pwl(out))
        return out + x if self.has_skip else out


class EfficientNetLite(nn.Module):
    def __init__(self, variant: int, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv_stem = SamePaddingConv2d(3, STEM_CHANNELS, 3, stride=2)
        self.bn1 = _batch_norm(STEM_CHANNELS)
        self.act1 = nn.ReLU6()
        stages, channels = [], STEM_CHANNELS
        for (kernel, stride, expansion), repeats, out_channels in zip(
                STAGES, REPEATS[variant], CHANNELS[variant]):
            blocks = []
            for index in range(repeats):
                block_stride = stride if index == 0 else 1
                if expansion == 1:
                    blocks.append(DepthwiseSeparable(channels, out_channels, kernel, block_stride))
                else:
                    blocks.append(InvertedResidual(channels, out_channels, kernel, block_stride,
                                                   expansion))
                channels = out_channels
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)
        self.conv_head = SamePaddingConv2d(channels, HEAD_CHANNELS, 1)
        self.bn2 = _batch_norm(HEAD_CHANNELS)
        self.act2 = nn.ReLU6()
        self.classifier = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv_stem(images)))
        x = self.blocks(x)
        x = self.act2(self.bn2(self.conv_head(x)))
        return self.classifier(x.mean(dim=(2, 3)))
