"""The networks of the PyTorch trainer: the fast ResNet-9-style ``FastNet`` and a CIFAR ResNet-18.

Both map normalised (N, 3, 32, 32) images to (N, num_classes) logits. Why ``FastNet`` is
built the way it is (whitening stem, pooling inside the stage, Dirac-initialised convs,
frozen BN scales) is in the docstring of :mod:`deep_learning_suite.pytorch_cifar10`.
"""

import math
from numbers import Real

import torch
import torch.nn as nn
import torch.nn.functional as F

from deep_learning_suite.torch_data import UsageError

MODELS = ("fastnet", "resnet18")


def conv3x3(c_in, c_out):
    """Bias-free 3x3 conv whose first ``min(c_in, c_out)`` filters start as identities."""
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[:min(c_in, c_out)])
    return conv


def batchnorm(c, momentum):
    bn = nn.BatchNorm2d(c, momentum=momentum)
    bn.weight.requires_grad_(False)  # scale invariance after BN makes the scale redundant
    return bn


class ConvStage(nn.Module):
    """conv3x3 -> maxpool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU; (N, c_in, H, W) ->
    (N, c_out, H // 2, W // 2)."""

    def __init__(self, c_in, c_out, bn_momentum):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(c_in, c_out), batchnorm(c_out, bn_momentum)
        self.conv2, self.bn2 = conv3x3(c_out, c_out), batchnorm(c_out, bn_momentum)
        self.pool, self.act = nn.MaxPool2d(2), nn.GELU()

    def forward(self, x):
        x = self.act(self.bn1(self.pool(self.conv1(x))))
        return self.act(self.bn2(self.conv2(x)))


class FastNet(nn.Module):
    """The default network (see pytorch_cifar10's docstring): whitening stem + 3 conv stages.

    Input (N, 3, 32, 32) normalised images; output (N, num_classes) logits. Spatial sizes:
    32 -(2x2 stem, no pad)-> 31 -> 15 -> 7 -> 3 -(global max)-> 1.
    """

    def __init__(self, num_classes=10, widths=(64, 256, 256), bn_momentum=0.4,
                 logit_scale=1 / 9):
        super().__init__()
        self.whiten = nn.Conv2d(3, 24, kernel_size=2, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)
        chans = (24,) + tuple(widths)
        self.stages = nn.Sequential(*[ConvStage(chans[i], chans[i + 1], bn_momentum)
                                      for i in range(3)])
        self.head = nn.Linear(chans[-1], num_classes, bias=False)
        self.act = nn.GELU()
        self.logit_scale = logit_scale

    @torch.no_grad()
    def init_whitening(self, x, eps=5e-4, tol=1e-6):
        """Set the stem to whiten 2x2 patches of ``x`` (N, 3, H, W), normalised training images.

        Filters are ``eigenvector / sqrt(eigenvalue + eps)`` of the patch covariance and their
        negatives. Returns how many of the 12 directions the patches vary in (eigenvalue above
        ``tol`` times the largest). Grey images stored as 3 equal channels (padded
        Fashion-MNIST) vary in 4. The other 8 filters then see no signal: in fp32 they output
        constants, in bf16 whatever the rounding of their weights leaves, a small random filter
        of the image. On the H100 that beat both repairs tried: repeating the 4 varying filters
        (94.95% test accuracy) and random mixtures of them (94.89%), against 95.03-95.07%
        (5 seeds each). The risk it keeps: BatchNorm's backward multiplies the gradient of a
        near-constant channel by up to ``1/sqrt(bn eps)``, about 316, per stage, and with bf16
        on CPU a full Fashion-MNIST run blew up at its first step (``train`` warns).
        """
        patches = x.double().unfold(2, 2, 1).unfold(3, 2, 1)       # N, 3, H-1, W-1, 2, 2
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)  # rows in (c, kh, kw) order
        eigval, eigvec = torch.linalg.eigh(torch.cov(patches.T))
        w = (eigvec.T / torch.sqrt(eigval.clamp_min(0) + eps)[:, None]).reshape(12, 3, 2, 2)
        self.whiten.weight.copy_(torch.cat([w, -w]).to(self.whiten.weight))
        self.whiten.bias.zero_()
        return int((eigval > tol * eigval.max()).sum())

    def forward(self, x):
        x = self.stages(self.act(self.whiten(x)))
        # A max pool routes the gradient through saved indices. (torch.amax's backward
        # compares activations with their max, which torch.compile can recompute at another
        # precision than the saved max: no element matched and the gradient became NaN.)
        x = F.adaptive_max_pool2d(x, 1).flatten(1)
        return self.head(x) * self.logit_scale


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv-BN with a projection shortcut when the shape changes."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """The CIFAR ResNet-18: 3x3 stem (no max pool), 4 stages of 2 basic blocks, avg pool, fc."""

    def __init__(self, num_classes=10, widths=(64, 128, 256, 512)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU())
        blocks, c = [], widths[0]
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            blocks += [BasicBlock(c, w, stride), BasicBlock(w, w, 1)]
            c = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(x.mean(dim=(2, 3)))


def build_model(name, num_classes=10, width=1.0):
    """``fastnet`` or ``resnet18``; ``width`` multiplies every channel count (tests use ~0.1)."""
    # inf would end in an OverflowError from int() below, nan in a ValueError
    if not (isinstance(width, Real) and math.isfinite(width) and width > 0):
        raise UsageError(f"the width must be a positive finite number, got {width!r}")

    def scale(ws):
        return tuple(max(4, int(round(w * width))) for w in ws)
    if name == "fastnet":
        return FastNet(num_classes, scale((64, 256, 256)))
    if name == "resnet18":
        return ResNet18(num_classes, scale((64, 128, 256, 512)))
    raise UsageError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
