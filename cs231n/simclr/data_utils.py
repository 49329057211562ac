"""``cs231n.simclr.data_utils``: the SimCLR augmentations and the dataset of augmented pairs.

The course's ``CIFAR10Pair`` subclasses torchvision's CIFAR10; the toolkit's wraps arrays:
``CIFAR10Pair(data, targets, transform)`` or ``CIFAR10Pair.from_cifar10(root, train, transform)``.
"""

from deep_learning_suite.simclr import CIFAR10Pair
from deep_learning_suite.simclr_augment import compute_test_transform, compute_train_transform

__all__ = ["compute_train_transform", "compute_test_transform", "CIFAR10Pair"]
