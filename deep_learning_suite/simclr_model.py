"""SimCLR's network (CS231n assignment 3): the encoder ``f`` and projection head ``g``.

The course builds ``f`` from torchvision's ResNet-50 with a 3x3 stride-1 first convolution and
no max pool (CIFAR's 32x32 images), so that its pretrained state dict, and the notebook's
``nn.Linear(2048, 10)`` classifier on top of ``f``, fit. That network is written here without
torchvision, with torchvision's parameter names; ``Model(arch="resnet18")`` uses the toolkit's
lighter CIFAR ResNet-18 instead. Needs PyTorch.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from deep_learning_suite.torch_models import ResNet18

RESNET50_LAYERS = (3, 4, 6, 3)        # Bottleneck blocks per stage
RESNET50_WIDTHS = (64, 128, 256, 512)  # bottleneck width per stage; the output is 4x that
ARCHS = ("resnet50", "resnet18")


class Bottleneck(nn.Module):
    """torchvision's ResNet-50 bottleneck block (v1.5: the stride is on the 3x3 conv).

    ``conv1``/``bn1`` 1x1 to ``planes``, ``conv2``/``bn2`` 3x3 with ``stride``,
    ``conv3``/``bn3`` 1x1 to ``4 * planes``, then ``relu(out + shortcut)``, where the
    shortcut is ``downsample`` (``Sequential(conv 1x1 with stride, BN)``) when the shape
    changes and the identity otherwise (``downsample`` is then None, with no parameters).
    The names are torchvision's, so state-dict keys match.

    Shapes: (N, inplanes, H, W) -> (N, 4 * planes, H / stride, W / stride).
    """

    expansion = 4

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, out, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out))
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def resnet50_encoder():
    """The course's CIFAR ResNet-50 encoder, without torchvision.

    torchvision's ``resnet50()`` children with ``conv1`` replaced by a 3x3 stride-1 conv and
    the max pool and ``fc`` dropped::

        Sequential(conv1 3x3 3->64, bn1, relu, layer1, layer2, layer3, layer4, avgpool)
        #          0                1    2     3       4       5       6       7

    ``layer1..4`` hold 3, 4, 6, 3 :class:`Bottleneck` blocks of widths 64, 128, 256, 512
    (outputs 256, 512, 1024, 2048); the first block of layers 2-4 has stride 2. So keys are
    ``0.weight``, ``1.running_mean``, ``3.0.conv1.weight``, ``3.0.downsample.0.weight`` ...

    Initialisation as the course's: the block convs ``kaiming_normal_`` (fan_out, relu) as
    torchvision does, BN weight 1 and bias 0, no zero-init of the last BN; the replaced
    ``conv1`` keeps PyTorch's default.

    Shapes: (N, 3, H, W) -> (N, 2048, 1, 1); a 32x32 input is 4x4 before the pool.
    """
    layers, inplanes = [], 64
    for i, (planes, blocks) in enumerate(zip(RESNET50_WIDTHS, RESNET50_LAYERS)):
        stage = [Bottleneck(inplanes, planes, stride=1 if i == 0 else 2)]
        inplanes = planes * Bottleneck.expansion
        stage += [Bottleneck(inplanes, planes) for _ in range(1, blocks)]
        layers.append(nn.Sequential(*stage))
    for m in nn.Sequential(*layers).modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return nn.Sequential(nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False),
                         nn.BatchNorm2d(64), nn.ReLU(inplace=True), *layers,
                         nn.AdaptiveAvgPool2d((1, 1)))


class Model(nn.Module):
    """SimCLR network: encoder ``f`` and projection head ``g``, as the course's ``Model``.

    Parameters
    ----------
    feature_dim : int, the projection's width (128 in the course)
    arch : ``"resnet50"`` (default) or ``"resnet18"``
        ``"resnet50"`` is the course's network: ``f`` is :func:`resnet50_encoder`,
        (N, 3, H, W) -> (N, 2048, 1, 1), with the course's module layout, so its state dict
        (``f.0.weight``, ``f.3.0.downsample.0.weight``, ..., ``g.0.weight``, ``g.3.bias``) is
        the course's and its pretrained ``.pth`` loads with ``load_state_dict``, and the
        notebook's ``Classifier`` (``Model().f`` then ``nn.Linear(2048, num_class)``) fits.
        ``"resnet18"`` is the toolkit's lighter CIFAR ResNet-18 (``f``: stem, blocks, pool,
        flatten; (N, 3, H, W) -> (N, 512)); its weights are not the course's.

    Attributes
    ----------
    f : nn.Sequential, the encoder
    g : nn.Sequential, ``Linear(width, 512, bias=False), BatchNorm1d(512), ReLU,
        Linear(512, feature_dim)``
    width : int, the representation width (2048 or 512)

    ``forward(x)``, x (N, 3, H, W), returns ``(feature, out)``, both L2-normalised rows: the
    (N, width) representation ``flatten(f(x))`` used downstream and the (N, feature_dim)
    projection ``g(feature)`` the contrastive loss sees. ``g`` has a BatchNorm1d, so training
    needs N >= 2.
    """

    def __init__(self, feature_dim=128, arch="resnet50"):
        super().__init__()
        if arch == "resnet50":
            self.f = resnet50_encoder()
            self.width = RESNET50_WIDTHS[-1] * Bottleneck.expansion
        elif arch == "resnet18":
            resnet = ResNet18()
            self.f = nn.Sequential(resnet.stem, resnet.blocks, nn.AdaptiveAvgPool2d(1),
                                   nn.Flatten())
            self.width = resnet.fc.in_features
        else:
            raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
        self.arch = arch
        self.g = nn.Sequential(nn.Linear(self.width, 512, bias=False), nn.BatchNorm1d(512),
                               nn.ReLU(inplace=True), nn.Linear(512, feature_dim, bias=True))

    def forward(self, x):
        feature = torch.flatten(self.f(x), start_dim=1)
        out = self.g(feature)
        return F.normalize(feature, dim=-1), F.normalize(out, dim=-1)
