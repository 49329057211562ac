"""Sandwich layers: common chains of layers as one forward/backward pair.

Each backward undoes its forward in reverse order. The convolution and pooling
inside are the fast versions from ``fast_layers``.
"""

from .batchnorm import spatial_batchnorm_backward, spatial_batchnorm_forward
from .fast_layers import (
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from .layers import affine_backward, affine_forward, relu_backward, relu_forward


def affine_relu_forward(x, w, b):
    """Affine then ReLU.

    Parameters
    ----------
    x : (N, d_1, ..., d_k);  w : (D, M);  b : (M,)

    Returns
    -------
    out : (N, M);  cache : for ``affine_relu_backward``
    """
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout, cache):
    """Backward of ``affine_relu_forward``: returns ``dx, dw, db``."""
    fc_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    return affine_backward(da, fc_cache)


def conv_relu_forward(x, w, b, conv_param):
    """Convolution then ReLU.

    Parameters
    ----------
    x : (N, C, H, W);  w : (F, C, HH, WW);  b : (F,);  conv_param : {'stride', 'pad'}

    Returns
    -------
    out : (N, F, H', W') with ``H' = 1 + (H + 2 * pad - HH) // stride``;
    cache : for ``conv_relu_backward``
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    out, relu_cache = relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(dout, cache):
    """Backward of ``conv_relu_forward``: returns ``dx, dw, db``."""
    conv_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    return conv_backward_fast(da, conv_cache)


def conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    """Convolution, ReLU, then max pooling.

    Parameters
    ----------
    x : (N, C, H, W);  w : (F, C, HH, WW);  b : (F,)
    conv_param : {'stride', 'pad'}
    pool_param : {'pool_height', 'pool_width', 'stride'}

    Returns
    -------
    out : (N, F, H'', W'') where ``H'`` is the conv output height and
        ``H'' = 1 + (H' - pool_height) // pool_stride``;
    cache : for ``conv_relu_pool_backward``
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    s, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward_fast(s, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout, cache):
    """Backward of ``conv_relu_pool_forward``: returns ``dx, dw, db``."""
    conv_cache, relu_cache, pool_cache = cache
    ds = max_pool_backward_fast(dout, pool_cache)
    da = relu_backward(ds, relu_cache)
    return conv_backward_fast(da, conv_cache)


def conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param):
    """Convolution, spatial batch normalization, then ReLU.

    Parameters
    ----------
    x : (N, C, H, W);  w : (F, C, HH, WW);  b : (F,)
    gamma, beta : (F,), scale and shift of the batchnorm
    conv_param : {'stride', 'pad'}
    bn_param : dict for ``spatial_batchnorm_forward`` ('mode' required; running
        statistics are updated in it in 'train' mode)

    Returns
    -------
    out : (N, F, H', W');  cache : for ``conv_bn_relu_backward``
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    an, bn_cache = spatial_batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(an)
    return out, (conv_cache, bn_cache, relu_cache)


def conv_bn_relu_backward(dout, cache):
    """Backward of ``conv_bn_relu_forward``: returns ``dx, dw, db, dgamma, dbeta``."""
    conv_cache, bn_cache, relu_cache = cache
    dan = relu_backward(dout, relu_cache)
    da, dgamma, dbeta = spatial_batchnorm_backward(dan, bn_cache)
    dx, dw, db = conv_backward_fast(da, conv_cache)
    return dx, dw, db, dgamma, dbeta
