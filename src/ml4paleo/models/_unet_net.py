"""The network of :class:`ml4paleo.models.unet.UNetSegmenter`: a small 2D U-Net in PyTorch.

Input (n, C, h, w): C neighbouring z slices (2.5D) as channels, h and w multiples of
``2**depth``. Output (n, K, h, w) class logits. Each level is two 3x3 convolutions (zero
"same" padding) with batch normalisation and ReLU; down by 2x2 max pooling, up by a 2x2
transposed convolution and concatenation with the encoder's features. ``dilation`` spreads the
two convolutions of the coarsest level: the network sees farther (grain statistics over a wider
patch) for the same weights and work.

:func:`receptive_radius` bounds how far an output voxel sees, so tiled inference with that
margin equals whole-slice inference; :func:`fused` folds each batch normalisation into the
convolution before it for inference (fewer passes over memory, same values up to rounding).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["UNet", "fused", "receptive_radius"]


def _block(c_in: int, c_out: int, dilation: int = 1) -> nn.Sequential:
    d = dilation
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=d, dilation=d, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=d, dilation=d, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net with ``depth`` poolings and ``width`` channels at full resolution (doubling per level),
    the coarsest level's convolutions dilated by ``dilation``."""

    def __init__(self, in_channels: int, n_classes: int, width: int = 8, depth: int = 2, dilation: int = 1) -> None:
        super().__init__()
        self.depth = depth
        widths = [width * 2**level for level in range(depth + 1)]
        self.down = nn.ModuleList()
        c = in_channels
        for level, w in enumerate(widths):
            self.down.append(_block(c, w, dilation if level == depth else 1))
            c = w
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(depth)))
        self.dec = nn.ModuleList(_block(2 * widths[i], widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < self.depth:
                skips.append(x)
                x = self.pool(x)
        for up, dec in zip(self.up, self.dec):
            x = dec(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)


def receptive_radius(depth: int, dilation: int = 1) -> int:
    """Voxels an output sees on each side (an upper bound): 3x3 convolutions add ``2**level``
    each (two per level down, two per level up), the two at the bottom ``dilation * 2**depth``,
    pooling ``2**level``."""
    convs = 4 * sum(2**level for level in range(depth)) + 2 * dilation * 2**depth
    pools = sum(2**level for level in range(depth))
    return convs + pools


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, padding=conv.padding,
                    dilation=conv.dilation, bias=True)
    with torch.no_grad():
        out.weight.copy_(conv.weight * scale[:, None, None, None])
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        out.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return out.to(conv.weight.device)


def fused(net: UNet) -> UNet:
    """An inference copy of ``net`` (eval mode, no gradients) with batch norms folded into convs."""
    out = copy.deepcopy(net).eval()
    for seq in [*out.down, *out.dec]:
        layers = list(seq)
        folded: list[nn.Module] = []
        i = 0
        while i < len(layers):
            if isinstance(layers[i], nn.Conv2d) and i + 1 < len(layers) and isinstance(layers[i + 1], nn.BatchNorm2d):
                folded.append(_fold(layers[i], layers[i + 1]))
                i += 2
            else:
                folded.append(layers[i])
                i += 1
        for j in range(len(seq) - 1, -1, -1):
            del seq[j]
        for layer in folded:
            seq.append(layer)
    for p in out.parameters():
        p.requires_grad_(False)
    return out
