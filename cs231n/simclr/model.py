"""``cs231n.simclr.model``: the SimCLR network, the course's ``Model(feature_dim=128)``.

The encoder ``f`` is the course's CIFAR ResNet-50 (torchvision's with a 3x3 stride-1 ``conv1``
and no max pool or ``fc``; (N, 3, H, W) -> (N, 2048, 1, 1)), written without torchvision
with the same module layout, so the course's pretrained state dict loads into it and the
notebook's ``Classifier`` (``Model().f`` then ``nn.Linear(2048, num_class)``) works.
``Model(feature_dim, arch="resnet18")`` gives the toolkit's lighter 512-wide encoder.
"""

from deep_learning_suite.simclr_model import Model

__all__ = ["Model"]
