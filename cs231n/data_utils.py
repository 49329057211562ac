"""``cs231n.data_utils``: CIFAR-10, read with a restricted unpickler."""

from deep_learning_suite.data import get_CIFAR10_data, load_CIFAR10, load_CIFAR_batch

__all__ = ["load_CIFAR_batch", "load_CIFAR10", "get_CIFAR10_data"]
