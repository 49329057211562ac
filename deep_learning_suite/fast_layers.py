"""Fast convolution and max pooling in pure NumPy: same signatures and results as the naive ones.

Convolution is a matrix product per image over an im2col column matrix
(``im2col.py``); no Python loop runs over H or W. With ``K = C * HH * WW``
and ``L = H' * Wq`` output positions (``Wq`` is ``W'``, or ``Wp`` under the
row trick described in ``im2col.py``)::

    forward   out[n]   = [w2 | b] @ [cols[n]; 1]          w2 = w.reshape(F, K)
    backward  [dw | db] = sum_n dout[n] @ [cols[n]; 1].T   (F, L) @ (L, K + 1)
              dcols[n] = w2.T @ dout[n]                   (K, F) @ (F, L)
              dx       = col2im(dcols)                    HH * WW strided adds

The columns end with a row of ones whose weight is the bias, so the GEMMs add
the bias and compute db (no separate passes over the output and dout). At
stride 1, when it is no more work (``_dx_geometry``), dx is instead the
transposed convolution: dout padded by ``HH - 1 - pad``, convolved with the
flipped filters whose F and C axes are swapped (one more im2col and GEMM).

Chunks: the column matrix of the whole batch is large (160 MB for 64 images of
64 channels, 3x3), and the forward's GEMM ran 1.4x slower reading it back from
memory than reading it from cache. So the forward builds it a few images at a
time (``_column_chunks``, about 4 MB per chunk) and multiplies each chunk right
after its im2col, while it is still in cache. The chunks are written into one
whole-batch buffer that the cache keeps for the backward's dw (measured faster
than rebuilding them there); the backward walks the same chunks, and on the
col2im path turns each chunk into its dcols, so col2im also works on cache-sized
pieces. Dead buffers are kept for the next call of the same shape (``_take`` /
``_recycle``): faulting in a fresh array of a few hundred MB costs as much as
filling it. All products go to BLAS GEMM on contiguous operands and float32
stays float32.

Max pooling reads its windows through ``im2col.pool_windows`` and loops over
the ``pool_height * pool_width`` positions inside the window (a small loop),
on cache-sized blocks of images.

Caches are opaque: pass them back to the matching backward, nothing else.
"""

import numpy as np

from ._validate import check_same_dtype
from .conv_layers import conv_geometry, pool_geometry
from .im2col import add_bias, col2im, im2col, over_batch, padded_buffer, pool_windows, row_length


# Spare work arrays, keyed by (shape, dtype): the column buffers of the conv are
# kept for the next call of the same shape (a training loop asks for the same
# shapes every step) instead of being allocated and faulted in again. Only
# arrays that nothing else refers to are recycled; at most a few are kept.
_SPARE = {}
_SPARE_MAX = 4

# Elements of a chunk's column matrix: a few MB, so that it stays in cache between
# the im2col that writes it and the GEMM that reads it (see the module docstring).
_CHUNK_SIZE = 1 << 20


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
    """Free the spare work buffers kept between calls (e.g. after training, before inference)."""
    _SPARE.clear()


def _column_chunks(x, HH, WW, pad_h, pad_w, stride, H_out, Wq, ones, store=None, built=False):
    """Yield ``(n0, n1, cols)``: the column matrix ``(n1 - n0, K [+ 1], H' * Wq)`` of ``x[n0:n1]``.

    Consecutive chunks of a few images (about ``_CHUNK_SIZE`` elements) cover
    the batch. With ``store`` (a whole-batch ``(N, K [+ 1], L)`` buffer) the
    chunks are its slices, built in place, or, with ``built``, already built;
    without it ``cols`` is one small reused buffer, valid until the next chunk
    is asked for. The caller may overwrite a chunk's first K rows. With
    ``ones`` the columns have a last row of ones (the bias input).
    """
    N, C = x.shape[:2]
    K = C * HH * WW
    L = H_out * Wq
    rows = K + 1 if ones else K
    chunk = max(1, min(N, _CHUNK_SIZE // (rows * L)))
    buf = _take((chunk, rows, L), x.dtype) if store is None else store
    if ones and not built:
        buf[:, K] = 1
    for n0 in range(0, N, chunk):
        n1 = min(n0 + chunk, N)
        cols = buf[:n1 - n0] if store is None else store[n0:n1]
        if not built:
            xp = padded_buffer(x[n0:n1], pad_h, pad_w)
            im2col(xp, HH, WW, H_out, Wq, stride, out=cols[:, :K], parallel=False)
        yield n0, n1, cols
    if store is None:
        _recycle(buf)


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


def _store(y, out, W_out):
    """Write a GEMM result ``y`` ``(n, F, H' * Wq)`` into ``out`` ``(n, F, H', W')``, junk columns dropped."""
    n, F, H_out, _ = out.shape
    np.copyto(out, y.reshape(n, F, H_out, -1)[:, :, :, :W_out])


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
    dtype = x.dtype  # conv_geometry has checked that w and b share it
    N, C = x.shape[:2]
    F, _, HH, WW = w.shape
    K = C * HH * WW
    geometry = (x.shape, w.shape, stride, pad, H_out, W_out)
    cache = {"x": x, "w": w, "geometry": geometry}

    if HH == 1 and WW == 1 and pad == 0:
        # A 1x1 filter sees one pixel per window: the columns are x itself (subsampled).
        xs = x if stride == 1 else x[:, :, ::stride, ::stride]
        cols = np.ascontiguousarray(xs).reshape(N, C, H_out * W_out)
        out = np.matmul(w.reshape(F, C), cols).reshape(N, F, H_out, W_out)
        return add_bias(out, b), cache

    Wq = row_length(x.shape[3], W_out, WW, pad, stride)
    w2b = np.concatenate([w.reshape(F, -1), b[:, None]], axis=1)
    out = np.empty((N, F, H_out, W_out), dtype=dtype)
    # The columns are built chunk by chunk into one whole-batch buffer that the cache
    # keeps for the backward's dw (measured faster than rebuilding them there).
    store = _take((N, K + 1, H_out * Wq), dtype)
    cache["cols"] = store
    for n0, n1, cols in _column_chunks(x, HH, WW, pad, pad, stride, H_out, Wq, ones=True, store=store):
        if Wq == W_out:
            np.matmul(w2b, cols, out=out[n0:n1].reshape(n1 - n0, F, H_out * W_out))
        else:
            _store(np.matmul(w2b, cols), out[n0:n1], W_out)
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
    x_shape, w_shape, stride, pad, H_out, W_out = cache["geometry"]
    N, C, H, W = x_shape
    F, _, HH, WW = w_shape
    K = C * HH * WW
    if dout.shape != (N, F, H_out, W_out):
        raise ValueError(f"conv_backward: dout must have shape {(N, F, H_out, W_out)}, got {dout.shape}")
    check_same_dtype("conv_backward", "the forward's x", x.dtype, dout=dout)
    dout = np.ascontiguousarray(dout)
    w2 = w.reshape(F, K)

    if HH == 1 and WW == 1 and pad == 0:
        xs = x if stride == 1 else x[:, :, ::stride, ::stride]
        cols = np.ascontiguousarray(xs).reshape(N, C, H_out * W_out)
        d = dout.reshape(N, F, H_out * W_out)
        dw = np.matmul(cols, d.transpose(0, 2, 1)).sum(axis=0).T.reshape(w_shape)
        db = dout.sum(axis=(0, 2, 3))
        if not need_dx:
            return None, dw, db
        dcols = np.matmul(w2.T, d)
        if stride == 1:
            return dcols.reshape(x_shape), dw, db
        dx = np.zeros(x_shape, dtype=dcols.dtype)
        dx[:, :, ::stride, ::stride] = dcols.reshape(N, C, H_out, W_out)
        return dx, dw, db

    Wq = row_length(W, W_out, WW, pad, stride)
    transposed = _dx_geometry(x_shape, w_shape, stride, pad, H_out, Wq) if need_dx else None
    use_col2im = need_dx and transposed is None
    if use_col2im:
        dx = np.empty(x_shape, dtype=dout.dtype)
        xp_shape = (H + 2 * pad + 1, W + 2 * pad)
    # [dw | db].T, summed chunk by chunk; the ones row of the columns gives db.
    dwt = np.zeros((K + 1, F), dtype=dout.dtype)
    # The forward's columns; a second backward on the same cache finds none (this one
    # recycles them) and rebuilds them from x in a small chunk buffer.
    store = cache.pop("cols", None)
    for n0, n1, cols in _column_chunks(x, HH, WW, pad, pad, stride, H_out, Wq, ones=True, store=store,
                                       built=store is not None):
        n = n1 - n0
        if Wq != W_out:
            # Junk columns get zero gradient, so they add nothing to dw or dx.
            d = np.zeros((n, F, H_out, Wq), dtype=dout.dtype)
            d[:, :, :, :W_out] = dout[n0:n1]
            d = d.reshape(n, F, H_out * Wq)
        else:
            d = dout[n0:n1].reshape(n, F, H_out * W_out)
        # cols @ d.T rather than d @ cols.T: the same product, but OpenBLAS measured
        # 15-30% faster in this orientation (benchmark shapes).
        dwt += np.matmul(cols, d.transpose(0, 2, 1)).sum(axis=0)
        if use_col2im:
            # This chunk's columns are dead once its dw is known: their buffer takes dcols.
            dcols = np.matmul(w2.T, d, out=cols[:, :K])
            dxp = col2im(dcols, (n, C) + xp_shape, HH, WW, H_out, Wq, stride, parallel=False)
            dx[n0:n1] = dxp[:, :, pad:pad + H, pad:pad + W]
    if store is not None:
        _recycle(store)
    dw = dwt[:K].T.reshape(w_shape)
    db = dwt[K].copy()
    if not need_dx:
        return None, dw, db
    if use_col2im:
        return dx, dw, db

    pad_h, pad_w, Wq_dx = transposed
    w_flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)).reshape(C, -1)
    dx = np.empty(x_shape, dtype=dout.dtype)
    for n0, n1, cols in _column_chunks(dout, HH, WW, pad_h, pad_w, 1, H, Wq_dx, ones=False):
        if Wq_dx == W:
            np.matmul(w_flipped, cols, out=dx[n0:n1].reshape(n1 - n0, C, H * W))
        else:
            _store(np.matmul(w_flipped, cols), dx[n0:n1], W)
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
    leaves the first maximum in row-major order, the naive tie rule. A window
    holding NaN has the maximum NaN and, as ``np.argmax`` in the naive version,
    its first NaN as the position. The backward then routes each gradient
    with one comparison per position instead of recomputing the equality
    masks. The passes run split over the batch on the ``over_batch`` threads.

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
            if PH * PW == 1:
                np.copyto(o, cols[0])
                a.fill(0)
            else:
                # Positions 0 and 1 in one step: cols[1] > cols[0] is the position, 0 or 1.
                np.maximum(cols[0], cols[1], out=o)  # not a copy where greater: NaN propagates like np.max
                np.greater(cols[1], cols[0], out=a)
            wins = np.empty(o.shape, dtype=bool)
            moved = np.empty(o.shape, dtype=a.dtype)
            for k in range(2, PH * PW):
                np.greater(cols[k], o, out=wins)
                np.maximum(o, cols[k], out=o)
                # a = where(wins, k, a) without copyto(where=), which is 30x slower on a random
                # mask: k exceeds every earlier position, so a = max(a, wins * k).
                np.multiply(wins, a.dtype.type(k), out=moved)
                np.maximum(a, moved, out=a)
            # NaN is never greater, so a window holding NaN has kept the position of its largest
            # number before the first NaN; np.argmax (the naive rule) takes the first NaN. The
            # min of the in-cache block is NaN exactly when some window is; the one step saved
            # above pays for it.
            if o.size and np.isnan(o.min()):
                nan = np.isnan(o)
                a[nan] = np.isnan(cols[:, nan]).argmax(axis=0)

    # At least 1: an empty channel axis (C = 0) would make the divisor 0.
    block = max(1, _POOL_BLOCK // max(1, PH * PW * C * H_out * W_out))
    over_batch(reduce, N, out.size * PH * PW)
    return out, (x.shape, argmax, out.dtype, (PH, PW, stride, H_out, W_out))


def max_pool_backward_fast(dout, cache):
    """Backward of ``max_pool_forward_fast``: same tie rule as the naive version.

    Each window's gradient goes to one element, the first maximum in row-major
    order inside the window (its first NaN if it holds one), as recorded by the forward.

    Returns
    -------
    dx : ndarray, (N, C, H, W)
    """
    x_shape, argmax, out_dtype, (PH, PW, stride, H_out, W_out) = cache
    if dout.shape != argmax.shape:
        raise ValueError(f"max_pool_backward: dout must have shape {argmax.shape}, got {dout.shape}")
    check_same_dtype("max_pool_backward", "the forward's x", out_dtype, dout=dout)
    dtype = out_dtype
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


# --------------------------------------------------------------------------- the course's other names
# The course's fast_layers.py has two convolutions (strides, im2col) and two max pools
# (reshape for windows that tile the input, im2col otherwise), and its *_fast functions
# pick one. Here one implementation serves each layer, under all the course's names; each
# backward takes the cache of any forward of its layer.
conv_forward_strides = conv_forward_fast
conv_backward_strides = conv_backward_fast
conv_forward_im2col = conv_forward_fast
conv_backward_im2col = conv_backward_fast
max_pool_forward_im2col = max_pool_forward_fast
max_pool_backward_im2col = max_pool_backward_fast
max_pool_backward_reshape = max_pool_backward_fast


def max_pool_forward_reshape(x, pool_param):
    """The course's max pool for square windows that tile x; computed by ``max_pool_forward_fast``.

    Keeps the course's precondition, ``pool_height == pool_width == stride`` with H and W
    multiples of it, so that code written against the course's version fails the same way.

    Returns
    -------
    out : ndarray, (N, C, H / stride, W / stride)
    cache : opaque, for ``max_pool_backward_reshape`` (or ``max_pool_backward_fast``)

    Raises
    ------
    ValueError
        The windows are not square or not ``stride`` apart (the course's "Invalid pool
        params"), or do not divide H and W; ``max_pool_forward_fast`` takes any pool.
    """
    _, PH, PW, stride, _, _ = pool_geometry(x, pool_param)  # also: the sizes divide evenly
    if not PH == PW == stride:
        raise ValueError(
            f"max_pool_forward_reshape: the reshape pool needs square windows that tile x, "
            f"pool_height == pool_width == stride, got pool_height={PH}, pool_width={PW}, "
            f"stride={stride}; max_pool_forward_fast (or max_pool_forward_im2col) takes any pool"
        )
    return max_pool_forward_fast(x, pool_param)
