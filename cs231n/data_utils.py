"""``cs231n.data_utils``: CIFAR-10 and the 25 ImageNet validation images, read with restricted
unpicklers."""

from deep_learning_suite.data import get_CIFAR10_data, load_CIFAR10, load_CIFAR_batch
from deep_learning_suite.imagenet import load_imagenet_val

__all__ = ["load_CIFAR_batch", "load_CIFAR10", "get_CIFAR10_data", "load_imagenet_val"]
