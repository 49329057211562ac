"""Fast convolution and max pooling in pure NumPy: same signatures and results as the naive ones.

Convolution is one matrix product per image over an im2col column matrix
(``im2col.py``); no Python loop runs over N, H or W. With ``K = C * HH * WW``
and ``L = H' * Wq`` output positions (``Wq`` is ``W'``, or ``Wp`` under the
row trick described in ``im2col.py``)::

    forward   out[n]   = w2 @ cols[n]                     w2 = w.reshape(F, K)
    backward  dw       = sum_n dout[n] @ cols[n].T        (F, L) @ (L, K)
              db       = dout.sum(axis=(0, 2, 3))
              dcols[n] = w2.T @ dout[n]                   (K, F) @ (F, L)
              dx       = col2im(dcols)                    HH * WW strided adds

or, at stride 1 when it is no more work (``_dx_geometry``), dx as the
transposed convolution: dout padded by ``HH - 1 - pad``, convolved with the
flipped filters whose F and C axes are swapped (one more im2col and GEMM).

All products go to BLAS GEMM on contiguous operands (``np.matmul`` over the
image axis), and float32 stays float32. The forward caches the column matrix
so the backward does not rebuild it; once ``dw`` is known the backward reuses
that buffer for ``dcols``, and the dead column buffers are kept for the next
call of the same shape (``_take`` / ``_recycle``), because faulting in a fresh
array of a few hundred MB costs as much as filling it. A second backward on
the same cache rebuilds the columns from ``x``.

Max pooling gathers its windows into contiguous pool columns the same way and
loops over the ``pool_height * pool_width`` positions inside the window (a
small loop), each step a whole-batch array operation.

Caches are opaque: pass them back to the matching backward, nothing else.
"""

import numpy as np

from .conv_layers import conv_geometry, pool_geometry
from .im2col import (add_bias, col2im, crop_columns, im2col, over_batch, pad_columns, padded_buffer,
                     pool_windows, row_length)


# Spare work arrays, keyed by (shape, dtype). A fresh array of a few hundred MB
# costs as much in page faults as filling it, so the column matrices that die in
# a backward are kept for the next forward of the same shape (a training loop
# asks for the same shapes every step). Only arrays that nothing else refers to
# are recycled; at most a few are kept.
_SPARE = {}
_SPARE_MAX = 4


def _take(shape, dtype):
    """An uninitialised array: a recycled one of this shape and dtype if there is one."""
    buf = _SPARE.pop((tuple(shape), np.dtype(dtype)), None)
    return np.empty(shape, dtype=dtype) if buf is None else buf


def _recycle(buf):
    """Keep ``buf`` (which the caller no longer uses) for a later ``_take``."""
    if len(_SPARE) >= _SPARE_MAX:
        _SPARE.pop(next(iter(_SPARE)))
    _SPARE[(buf.shape, buf.dtype)] = buf


def clear_workspace():
    """Free the spare column buffers kept between calls (e.g. after training, before inference)."""
    _SPARE.clear()


def _columns(x, HH, WW, pad_h, pad_w, stride, H_out, Wq, ones=False):
    """Column matrix ``(N, C * HH * WW, H' * Wq)`` of ``x``, and whether it is our own buffer.

    With ``ones``, our own buffer (not the 1x1 case) gets an extra last row of ones,
    ``(N, K + 1, L)``: the constant input whose weight is the bias (see the forward).
    """
    N, C = x.shape[:2]
    if HH == 1 and WW == 1 and pad_h == 0 and pad_w == 0:
        # A 1x1 filter sees one pixel per window: the columns are x itself (subsampled).
        xs = x if stride == 1 else x[:, :, ::stride, ::stride]
        cols = np.ascontiguousarray(xs).reshape(N, C, H_out * Wq)
        return cols, False
    xp = padded_buffer(x, pad_h, pad_w)
    K = C * HH * WW
    out = _take((N, K + 1 if ones else K, H_out * Wq), x.dtype)
    im2col(xp, HH, WW, H_out, Wq, stride, out=out[:, :K])
    if ones:
        out[:, K] = 1
    return out, True


def _dx_geometry(x_shape, w_shape, stride, pad, H_out, Wq):
    """How ``conv_backward_fast`` computes dx: ``None`` for col2im, else ``(pad_h, pad_w, Wq_dx)``.

    At stride 1, dx is the convolution of dout, zero-padded by ``HH - 1 - pad``
    rows and ``WW - 1 - pad`` columns, with the filters flipped and their F and C
    axes swapped: an im2col of dout and one GEMM per image, like the forward,
    instead of a GEMM into ``dcols`` followed by the ``HH * WW`` adds of col2im.
    It is used when those pads are not negative and its column matrix is no
    larger than the forward's (so roughly when F <= C); otherwise col2im.
    """
    _, C, H, W = x_shape
    F, _, HH, WW = w_shape
    if stride != 1 or pad > HH - 1 or pad > WW - 1 or (HH == 1 and WW == 1):
        return None
    pad_h, pad_w = HH - 1 - pad, WW - 1 - pad
    W_out = W + 2 * pad - WW + 1
    Wq_dx = row_length(W_out, W, WW, pad_w, 1)
    if F * H * Wq_dx > C * H_out * Wq:
        return None
    return pad_h, pad_w, Wq_dx


def conv_forward_fast(x, w, b, conv_param):
    """Convolution as ``w.reshape(F, K) @ cols`` per image (see ``conv_forward_naive``).

    Parameters
    ----------
    x : ndarray, (N, C, H, W)
    w : ndarray, (F, C, HH, WW)
    b : ndarray, (F,)
    conv_param : dict with ``'stride'`` and ``'pad'``

    Returns
    -------
    out : ndarray, (N, F, H', W') with ``H' = 1 + (H + 2 * pad - HH) // stride`` and
        ``W' = 1 + (W + 2 * pad - WW) // stride``
    cache : opaque, for ``conv_backward_fast``
    """
    x, w, b, stride, pad, H_out, W_out = conv_geometry(x, w, b, conv_param)
    dtype = np.result_type(x, w, b)
    x = x.astype(dtype, copy=False)
    N = x.shape[0]
    F, _, HH, WW = w.shape
    w = w.astype(dtype, copy=False)
    b = b.astype(dtype, copy=False)
    one_by_one = HH == 1 and WW == 1 and pad == 0
    Wq = W_out if one_by_one else row_length(x.shape[3], W_out, WW, pad, stride)

    cols, owned = _columns(x, HH, WW, pad, pad, stride, H_out, Wq, ones=True)
    w2 = w.reshape(F, -1)
    if owned:
        # The columns end with a row of ones: the bias is its weight, so the GEMM adds it
        # (no separate pass over the output) and the backward's dw GEMM yields db.
        w2 = np.concatenate([w2, b[:, None]], axis=1)
    bias = None if owned else b
    if Wq == W_out:
        out = np.matmul(w2, cols).reshape(N, F, H_out, W_out)
        if bias is not None:
            add_bias(out, bias)
    else:
        # The product with junk columns is a temporary: a recycled buffer, then cropped
        # (junk columns dropped) in one pass.
        y = np.matmul(w2, cols, out=_take((N, F, H_out * Wq), dtype))
        out = crop_columns(y.reshape(N, F, H_out, Wq), W_out, bias)
        _recycle(y)

    geometry = (x.shape, w.shape, stride, pad, H_out, W_out, Wq)
    cache = {"x": x, "w": w, "geometry": geometry, "cols": [(cols, owned)]}
    return out, cache


def conv_backward_fast(dout, cache, need_dx=True):
    """Backward of ``conv_forward_fast``; same results as ``conv_backward_naive``.

    Parameters
    ----------
    dout : ndarray, (N, F, H', W')
    cache : from ``conv_forward_fast``
    need_dx : bool
        False skips the input gradient (returned as None), for a first layer
        whose input is data: that saves a GEMM and the col2im.

    Returns
    -------
    dx : (N, C, H, W);  dw : (F, C, HH, WW);  db : (F,)
    """
    x, w = cache["x"], cache["w"]
    x_shape, w_shape, stride, pad, H_out, W_out, Wq = cache["geometry"]
    N, C, H, W = x_shape
    F, _, HH, WW = w_shape
    if dout.shape != (N, F, H_out, W_out):
        raise ValueError(f"conv_backward: dout must have shape {(N, F, H_out, W_out)}, got {dout.shape}")
    dout = np.ascontiguousarray(dout, dtype=w.dtype)
    if cache["cols"]:
        cols, owned = cache["cols"].pop()
    else:  # a second backward on the same cache: the first one recycled the columns
        cols, owned = _columns(x, HH, WW, pad, pad, stride, H_out, Wq, ones=True)
    K = C * HH * WW

    if Wq != W_out:
        # Junk columns get zero gradient, so they add nothing to dw or dx.
        d_padded = pad_columns(dout, Wq, _take((N, F, H_out, Wq), dout.dtype))
        d = d_padded.reshape(N, F, H_out * Wq)
    else:
        d_padded = None
        d = dout.reshape(N, F, H_out * Wq)
    w2 = w.reshape(F, -1)

    # dw.T = sum_n cols[n] @ dout[n].T: the same product as dout[n] @ cols[n].T, but in
    # this orientation OpenBLAS measured 15-30% faster (benchmark shapes, one thread).
    dwt = np.matmul(cols, d.transpose(0, 2, 1)).sum(axis=0)
    dw = dwt[:K].T.reshape(w_shape)
    # Owned columns end with the ones row (see the forward): its gradient is db.
    db = dwt[K].copy() if owned else dout.sum(axis=(0, 2, 3))

    transposed = None if not need_dx else _dx_geometry(x_shape, w_shape, stride, pad, H_out, Wq)
    if not need_dx or transposed is not None:
        # Neither the columns nor the padded dout are needed any more.
        for buf, mine in ((cols, owned), (d_padded, d_padded is not None)):
            if mine:
                _recycle(buf)
    if not need_dx:
        return None, dw, db

    if HH == 1 and WW == 1 and pad == 0:
        dcols = np.matmul(w2.T, d)
        if stride == 1:
            return dcols.reshape(x_shape), dw, db
        dx = np.zeros(x_shape, dtype=dcols.dtype)
        dx[:, :, ::stride, ::stride] = dcols.reshape(N, C, H_out, W_out)
        return dx, dw, db

    if transposed is not None:
        pad_h, pad_w, Wq_dx = transposed
        w_flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)).reshape(C, -1)
        dcols_t, owned_t = _columns(dout, HH, WW, pad_h, pad_w, 1, H, Wq_dx)
        if Wq_dx == W:
            dx = np.matmul(w_flipped, dcols_t).reshape(x_shape)
        else:
            y = np.matmul(w_flipped, dcols_t, out=_take((N, C, H * Wq_dx), dcols_t.dtype))
            dx = crop_columns(y.reshape(N, C, H, Wq_dx), W)
            _recycle(y)
        if owned_t:
            _recycle(dcols_t)
        return dx, dw, db

    # The columns are dead once dw is known: their buffer takes dcols.
    dcols = np.matmul(w2.T, d, out=cols[:, :K] if owned else None)
    if d_padded is not None:
        _recycle(d_padded)
    xp_shape = (N, C, H + 2 * pad + 1, W + 2 * pad)
    dxp = col2im(dcols, xp_shape, HH, WW, H_out, Wq, stride)
    if owned:
        _recycle(cols)
    dx = crop_columns(dxp[:, :, pad:pad + H, pad:], W)
    return dx, dw, db


# Elements of pool columns processed at a time: small enough to stay in a core's L2 cache.
_POOL_BLOCK = 1 << 16


def _tiles(x_shape, PH, PW, stride):
    """True when the windows tile the input exactly: no overlap, no gaps, nothing left over."""
    H, W = x_shape[2:]
    return PH == stride and PW == stride and H % PH == 0 and W % PW == 0


def max_pool_forward_fast(x, pool_param):
    """Max pooling; same contract as ``max_pool_forward_naive``.

    The windows are read through ``im2col.pool_windows`` (a reshape of x when
    they tile it, a strided view otherwise) and reduced with one pass per
    position ``k = i * pool_width + j`` inside the window. Each pass also
    records, where the new element is strictly greater, that ``k`` now holds
    the maximum: visiting positions in row-major order with a strict ``>``
    leaves the first maximum in row-major order, the naive tie rule. The
    backward then routes each gradient with one comparison per position
    instead of recomputing the equality masks. The passes run split over the
    batch on the ``over_batch`` threads.

    Returns
    -------
    out : ndarray, (N, C, H', W') with ``H' = 1 + (H - pool_height) // stride``
    cache : opaque, for ``max_pool_backward_fast``
    """
    x, PH, PW, stride, H_out, W_out = pool_geometry(x, pool_param)
    N, C = x.shape[:2]
    windows = pool_windows(x, PH, PW, H_out, W_out, stride)
    out = np.empty((N, C, H_out, W_out), dtype=x.dtype)
    # Position of the maximum inside its window: 1 byte per output unless the window is huge.
    argmax = np.empty(out.shape, dtype=np.uint8 if PH * PW <= 256 else np.intp)

    def reduce(lo, hi):
        # Block by block of a few images: the block's windows are copied into
        # contiguous pool columns that stay in cache for the passes below
        # (ufuncs on the strided windows directly measured 2-4x slower).
        for b0 in range(lo, hi, block):
            b1 = min(b0 + block, hi)
            cols = np.ascontiguousarray(windows[:, :, b0:b1]).reshape(PH * PW, b1 - b0, C, H_out, W_out)
            o, a = out[b0:b1], argmax[b0:b1]
            np.copyto(o, cols[0])
            a.fill(0)
            wins = np.empty(o.shape, dtype=bool)
            moved = np.empty(o.shape, dtype=a.dtype)
            for k in range(1, PH * PW):
                np.greater(cols[k], o, out=wins)
                np.maximum(o, cols[k], out=o)  # not copyto(where=wins): keeps NaN propagating like np.max
                # a = where(wins, k, a) without copyto(where=), which is 30x slower on a random
                # mask: k exceeds every earlier position, so a = max(a, wins * k).
                np.multiply(wins, a.dtype.type(k), out=moved)
                np.maximum(a, moved, out=a)

    block = max(1, _POOL_BLOCK // (PH * PW * C * H_out * W_out))
    over_batch(reduce, N, out.size * PH * PW)
    return out, (x.shape, argmax, out.dtype, (PH, PW, stride, H_out, W_out))


def max_pool_backward_fast(dout, cache):
    """Backward of ``max_pool_forward_fast``: same tie rule as the naive version.

    Each window's gradient goes to one element, the first maximum in row-major
    order inside the window, as recorded by the forward.

    Returns
    -------
    dx : ndarray, (N, C, H, W)
    """
    x_shape, argmax, out_dtype, (PH, PW, stride, H_out, W_out) = cache
    if dout.shape != argmax.shape:
        raise ValueError(f"max_pool_backward: dout must have shape {argmax.shape}, got {dout.shape}")
    dtype = np.result_type(dout, out_dtype)
    tiles = _tiles(x_shape, PH, PW, stride)
    # Tiling windows cover every pixel exactly once, so dx is fully written below.
    dx = np.empty(x_shape, dtype=dtype) if tiles else np.zeros(x_shape, dtype=dtype)
    targets = pool_windows(dx, PH, PW, H_out, W_out, stride)

    def route(lo, hi):
        d, a = dout[lo:hi], argmax[lo:hi]
        for k in range(PH * PW):
            target = targets[k // PW, k % PW, lo:hi]
            if tiles:
                np.multiply(d, a == k, out=target)
            else:
                # Overlapping windows: several k reach one pixel, but within one k no
                # pixel repeats, so a plain strided += is exact.
                target += d * (a == k)

    over_batch(route, x_shape[0], dx.size + dout.size * PH * PW)
    return dx
