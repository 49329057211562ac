"""Convolution and max pooling, the naive teaching versions.

These loop over output positions and vectorise over everything else, so each
line reads like the defining formula. ``fast_layers`` has the same functions
built on im2col; the tests check that both agree to rounding error.

Geometry (both layers)::

    H' = 1 + (H + 2 * pad - HH) // stride
    W' = 1 + (W + 2 * pad - WW) // stride

The division must be exact: a window that would hang over the padded edge is
almost always a mistake in the architecture, so it raises ``ValueError``
instead of silently dropping the last row or column.
"""

import numpy as np

from ._validate import (check_float, check_int, check_ndim, check_param, check_same_dtype,
                        conv_output_size)


def conv_geometry(x, w, b, conv_param):
    """Validate the inputs of a convolution and return ``(x, w, b, stride, pad, H', W')``.

    ``x`` comes back as a float ndarray, ``w`` and ``b`` as ndarrays of x's dtype (integer
    parameters converted to it), ``stride`` and ``pad`` as ints, and ``H'``, ``W'`` are the
    output sizes; use the returned arrays, not the arguments, which may be lists.
    """
    x = check_float("x", x)
    w, b = check_param("w", w, x.dtype), check_param("b", b, x.dtype)
    check_ndim("x", x, 4, "(N, C, H, W)")
    check_ndim("w", w, 4, "(F, C, HH, WW)")
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"conv: x of shape {x.shape} has C = {x.shape[1]} channels but w of shape {w.shape} "
            f"expects C = {w.shape[1]}; w must be (F, C, HH, WW) with the C of x"
        )
    if 0 in w.shape:
        raise ValueError(f"conv: w of shape {w.shape} is empty; it needs at least one filter "
                         f"(F >= 1) of at least 1 x 1")
    if b.shape != (w.shape[0],):
        raise ValueError(f"conv: b must have shape ({w.shape[0]},) (one per filter), got {b.shape}")
    check_same_dtype("conv", "x", x.dtype, w=w, b=b)
    if not isinstance(conv_param, dict) or "stride" not in conv_param or "pad" not in conv_param:
        raise ValueError(f"conv_param must be a dict with 'stride' and 'pad', got {conv_param!r}")
    stride, pad = conv_param["stride"], conv_param["pad"]
    _, _, H, W = x.shape
    _, _, HH, WW = w.shape
    H_out = conv_output_size(H, HH, pad, stride, "conv", "H")
    W_out = conv_output_size(W, WW, pad, stride, "conv", "W")
    return x, w, b, int(stride), int(pad), H_out, W_out


def conv_forward_naive(x, w, b, conv_param):
    """Convolution (cross-correlation, as in every DL library) of N images with F filters.

    Parameters
    ----------
    x : ndarray, (N, C, H, W)
    w : ndarray, (F, C, HH, WW)
    b : ndarray, (F,)
    conv_param : dict
        ``'stride'``: step between windows; ``'pad'``: zeros added on each side of H and W.

    Returns
    -------
    out : ndarray, (N, F, H', W') with ``H' = 1 + (H + 2 * pad - HH) // stride`` and
        ``W' = 1 + (W + 2 * pad - WW) // stride``
    cache : (x, w, b, conv_param)
    """
    x, w, b, stride, pad, H_out, W_out = conv_geometry(x, w, b, conv_param)
    N = x.shape[0]
    F, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, F, H_out, W_out), dtype=x.dtype)
    for i in range(H_out):
        for j in range(W_out):
            window = xp[:, :, i * stride:i * stride + HH, j * stride:j * stride + WW]  # (N, C, HH, WW)
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    """Backward of ``conv_forward_naive``.

    Every output ``out[n, f, i, j]`` is ``sum(window(n, i, j) * w[f]) + b[f]``, so its
    upstream gradient flows to that window of x (times ``w[f]``), to ``w[f]`` (times
    the window) and to ``b[f]``.

    Parameters
    ----------
    dout : ndarray, (N, F, H', W')
    cache : from ``conv_forward_naive``

    Returns
    -------
    dx : (N, C, H, W);  dw : (F, C, HH, WW);  db : (F,)
    """
    x, w, b, conv_param = cache
    stride, pad = int(conv_param["stride"]), int(conv_param["pad"])
    N, _, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out = 1 + (H + 2 * pad - HH) // stride
    W_out = 1 + (W + 2 * pad - WW) // stride
    if dout.shape != (N, F, H_out, W_out):
        raise ValueError(f"conv_backward: dout must have shape {(N, F, H_out, W_out)}, got {dout.shape}")
    check_same_dtype("conv_backward", "the forward's x", x.dtype, dout=dout)
    dtype = x.dtype
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros(xp.shape, dtype=dtype)
    dw = np.zeros(w.shape, dtype=dtype)
    for i in range(H_out):
        for j in range(W_out):
            rows = slice(i * stride, i * stride + HH)
            cols = slice(j * stride, j * stride + WW)
            g = dout[:, :, i, j]  # (N, F)
            dw += np.tensordot(g, xp[:, :, rows, cols], axes=([0], [0]))
            dxp[:, :, rows, cols] += np.tensordot(g, w, axes=([1], [0]))
    dx = dxp[:, :, pad:pad + H, pad:pad + W].copy()
    db = dout.sum(axis=(0, 2, 3))
    return dx, dw, db


def pool_geometry(x, pool_param):
    """Validate a max-pool call and return ``(x, pool_height, pool_width, stride, H', W')``.

    ``x`` comes back as a float ndarray (an array-like argument converted), the pool sizes and
    ``stride`` as ints, and ``H'``, ``W'`` are the output sizes.
    """
    x = check_float("x", x)
    check_ndim("x", x, 4, "(N, C, H, W)")
    keys = ("pool_height", "pool_width", "stride")
    if not isinstance(pool_param, dict) or any(k not in pool_param for k in keys):
        raise ValueError(f"pool_param must be a dict with {keys}, got {pool_param!r}")
    PH, PW, stride = (pool_param[k] for k in keys)
    PH, PW = check_int("max_pool", "pool_height", PH, 1), check_int("max_pool", "pool_width", PW, 1)
    _, _, H, W = x.shape
    H_out = conv_output_size(H, PH, 0, stride, "max_pool", "H")
    W_out = conv_output_size(W, PW, 0, stride, "max_pool", "W")
    return x, PH, PW, int(stride), H_out, W_out


def max_pool_forward_naive(x, pool_param):
    """Max pooling over ``pool_height x pool_width`` windows, ``stride`` apart, no padding.

    Parameters
    ----------
    x : ndarray, (N, C, H, W)
    pool_param : dict with ``'pool_height'``, ``'pool_width'``, ``'stride'``

    Returns
    -------
    out : ndarray, (N, C, H', W') with ``H' = 1 + (H - pool_height) // stride`` and
        ``W' = 1 + (W - pool_width) // stride``
    cache : (x, pool_param)
    """
    x, PH, PW, stride, H_out, W_out = pool_geometry(x, pool_param)
    N, C = x.shape[:2]
    out = np.empty((N, C, H_out, W_out), dtype=x.dtype)
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * stride:i * stride + PH, j * stride:j * stride + PW]
            out[:, :, i, j] = window.max(axis=(2, 3))
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    """Backward of ``max_pool_forward_naive``.

    Each window's upstream gradient goes to exactly ONE element: the window's
    maximum, and on ties the first maximum in row-major order within the window
    (what ``np.argmax`` returns). Overlapping windows add their contributions.
    ``max_pool_backward_fast`` follows the same rule.

    Parameters
    ----------
    dout : ndarray, (N, C, H', W')
    cache : from ``max_pool_forward_naive``

    Returns
    -------
    dx : ndarray, (N, C, H, W)
    """
    x, pool_param = cache
    _, PH, PW, stride, H_out, W_out = pool_geometry(x, pool_param)
    N, C = x.shape[:2]
    if dout.shape != (N, C, H_out, W_out):
        raise ValueError(f"max_pool_backward: dout must have shape {(N, C, H_out, W_out)}, got {dout.shape}")
    check_same_dtype("max_pool_backward", "the forward's x", x.dtype, dout=dout)
    dx = np.zeros(x.shape, dtype=x.dtype)
    positions = np.arange(PH * PW)
    for i in range(H_out):
        for j in range(W_out):
            rows = slice(i * stride, i * stride + PH)
            cols = slice(j * stride, j * stride + PW)
            first_max = x[:, :, rows, cols].reshape(N, C, PH * PW).argmax(axis=2)  # (N, C)
            onehot = (positions == first_max[:, :, None]).reshape(N, C, PH, PW)
            dx[:, :, rows, cols] += onehot * dout[:, :, i, j][:, :, None, None]
    return dx
