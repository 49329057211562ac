"""``cs231n.image_utils``: ImageNet normalisation, image loading, ``image_from_url``, and the
course's NumPy ``blur_image``.

``blur_image`` is written here because it is the one name with no toolkit module of its own
to come from. It is left out of ``__all__``: ``cs231n.net_visualization_pytorch`` has a
different ``blur_image`` (a PyTorch Gaussian, the one the notebooks call), and a star import
of this module, before or after that one, must not replace it. Import it by name.
"""

import numpy as _np

from deep_learning_suite._validate import check_ndim as _check_ndim
from deep_learning_suite._validate import check_param as _check_param
from deep_learning_suite.fast_layers import conv_forward_fast as _conv_forward_fast
from deep_learning_suite.imagenet import (
    SQUEEZENET_MEAN,
    SQUEEZENET_STD,
    deprocess_image,
    load_image,
    preprocess_image,
)
from deep_learning_suite.plots import image_from_url

__all__ = ["SQUEEZENET_MEAN", "SQUEEZENET_STD", "deprocess_image", "image_from_url", "load_image",
           "preprocess_image"]

# The course's gentle blur: nearly all of each pixel, a little of its eight neighbours.
_BLUR_KERNEL = _np.array([[1, 2, 1], [2, 188, 2], [1, 2, 1]]) / 200.0


def blur_image(X):
    """A very gentle blur of each channel, as the course's ``image_utils.blur_image``.

    A 3x3 convolution (stride 1, one pixel of zero padding, so the border darkens slightly)
    with the kernel ``[[1, 2, 1], [2, 188, 2], [1, 2, 1]] / 200`` on every channel on its own;
    channels are not mixed. Used as a regulariser when generating images.

    Parameters
    ----------
    X : ndarray, (N, C, H, W), images (the course's are (N, 3, H, W)); floating point keeps
        its dtype, integers are blurred in float64.

    Returns
    -------
    X_blur : ndarray, (N, C, H, W), of X's (floating) dtype.
    """
    X = _check_param("X", X, _np.float64)
    _check_ndim("blur_image: X", X, 4, "(N, C, H, W); (N, H, W, C) images need .transpose(0, 3, 1, 2)")
    C = X.shape[1]
    # filter c sees only input channel c: the kernel on the diagonal, zeros elsewhere
    w = _np.zeros((C, C, 3, 3), dtype=X.dtype)
    w[_np.arange(C), _np.arange(C)] = _BLUR_KERNEL
    return _conv_forward_fast(X, w, _np.zeros(C, dtype=X.dtype), {"stride": 1, "pad": 1})[0]
