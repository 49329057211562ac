"""``cs231n.data_utils``: CIFAR-10, Tiny ImageNet, the 25 ImageNet validation images and the
course's ``load_models``, read with restricted unpicklers.

``load_CIFAR_batch`` is the one name that is not the toolkit's own object: the course's
returns float64 images, and notebook arithmetic on them (``X - mean``, kNN distances) would
wrap around on the toolkit's uint8. ``load_CIFAR10`` gives float64 already.
"""

import numpy as _np

from deep_learning_suite import data as _data
from deep_learning_suite.data import get_CIFAR10_data, load_CIFAR10
from deep_learning_suite.imagenet import load_imagenet_val, load_tiny_imagenet
from deep_learning_suite.saved_params import load_models

__all__ = ["load_CIFAR_batch", "load_CIFAR10", "get_CIFAR10_data", "load_imagenet_val",
           "load_tiny_imagenet", "load_models"]


def load_CIFAR_batch(filename):
    """One CIFAR-10 batch file as the course reads it: ``X`` float64 (N, 32, 32, 3), ``y`` int64 (N,).

    ``deep_learning_suite.data.load_CIFAR_batch`` (uint8 images), converted; see it for the
    checks made and the errors raised.
    """
    X, y = _data.load_CIFAR_batch(filename)
    return X.astype(_np.float64), y
