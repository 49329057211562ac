"""``cs231n.simclr.data_utils``: the SimCLR augmentations and the dataset of augmented pairs.

The course's ``CIFAR10Pair`` subclasses torchvision's CIFAR10; the toolkit's takes the same
arguments, ``CIFAR10Pair(root='data', train=True, transform=..., download=True)``, reading
the ``cifar-10-batches-py`` files itself, and also wraps arrays:
``CIFAR10Pair(data, targets, transform)``. Its transform is given the (32, 32, 3) uint8 array.
"""

from deep_learning_suite.simclr import CIFAR10Pair
from deep_learning_suite.simclr_augment import compute_test_transform, compute_train_transform

__all__ = ["compute_train_transform", "compute_test_transform", "CIFAR10Pair"]
