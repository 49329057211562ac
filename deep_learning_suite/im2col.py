"""The im2col view and its adjoint, col2im: the one place where windows become columns.

A convolution is a matrix product once every receptive field is laid out as a
column. For an input padded to ``(N, C, Hp, Wp)`` the windows form the 6-D view::

    windows[n, c, i, j, h, w] = x_padded[n, c, h * stride + i, w * stride + j]

with ``0 <= i < HH``, ``0 <= j < WW`` (position inside the filter) and
``0 <= h < H'``, ``0 <= w < Wq`` (output position). It is built with
``as_strided``: no data moves until it is copied into the column matrix
``(N, C * HH * WW, H' * Wq)``, one GEMM operand per image.

Row trick for stride 1: with ``Wq = Wp`` instead of ``W'`` the output row
runs over the whole padded row, and the last ``Wp - W'`` columns of each row
are junk (their windows wrap into the next row). In exchange, a fixed
``(c, i, j)`` becomes one contiguous run of ``H' * Wp`` elements in memory, so
both the im2col copy and the col2im accumulation are plain contiguous copies
and adds instead of many short rows. The junk columns are cut from the output
and get zero gradient in the backward. A spare zero row at the bottom of the
padded buffer keeps the junk windows of the last row inside the array.

Threads: the copies and adds here are memory-bound, single-threaded in NumPy,
and release the GIL. ``over_batch`` splits such a pass over the batch axis and
runs the slices on a few threads; on the 2-core benchmark machine that made a
whole-batch im2col copy 1.7x faster (13 ms -> 7.5 ms) and the max pools up to
1.5x faster. Every slice writes its own images only, so the results do not
depend on the split. ``parallel=False`` keeps a pass on the calling thread: the
fast conv works on cache-sized chunks right after BLAS calls, whose threads keep
spinning for a while after a GEMM, and there a second thread measured slower.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.lib.stride_tricks import as_strided

# Threads for the memory-bound passes: one per core, at most 4 (memory bandwidth,
# not cores, is the limit beyond that). Passes over fewer elements than
# PARALLEL_MIN_SIZE run on the calling thread: handing work to a thread costs
# tens of microseconds.
MAX_THREADS = max(1, min(os.cpu_count() or 1, 4))
PARALLEL_MIN_SIZE = 1 << 18
_executor = None


def _forget_executor():
    """Drop the thread pool in a forked child: the child inherits the object but not its threads.

    Work submitted to the inherited pool would never run (``multiprocessing`` with
    ``fork``, after the parent used the fast layers, hung forever); ``over_batch``
    starts a fresh pool on the child's first parallel pass instead.
    """
    global _executor
    _executor = None


if hasattr(os, "register_at_fork"):  # POSIX only; without fork there is nothing to reset
    os.register_at_fork(after_in_child=_forget_executor)


def over_batch(fn, N, size):
    """Call ``fn(lo, hi)`` on slices ``[lo, hi)`` covering ``range(N)``, on up to ``MAX_THREADS`` threads.

    ``size`` is the number of elements the whole pass touches; small passes run
    as one ``fn(0, N)`` on the calling thread. ``fn`` must only write to images
    ``lo..hi-1`` (of its output), so that the slices never race. The calling
    thread runs the first slice itself and waits for the others; an exception
    in any slice is raised here.
    """
    global _executor
    k = min(MAX_THREADS, N)
    if k < 2 or size < PARALLEL_MIN_SIZE:
        fn(0, N)
        return
    if _executor is None:
        _executor = ThreadPoolExecutor(MAX_THREADS - 1, thread_name_prefix="im2col")
    bounds = [N * i // k for i in range(k + 1)]
    futures = [_executor.submit(fn, bounds[i], bounds[i + 1]) for i in range(1, k)]
    try:
        fn(bounds[0], bounds[1])
    finally:
        for f in futures:
            f.result()


def padded_buffer(x, pad, pad_w=None):
    """Zero buffer ``(N, C, H + 2 * pad + 1, W + 2 * pad_w)`` with ``x`` copied in the middle.

    ``pad_w`` defaults to ``pad``. The extra bottom row is the guard row of the
    row trick (see module docstring).
    """
    pad_w = pad if pad_w is None else pad_w
    N, C, H, W = x.shape
    xp = np.zeros((N, C, H + 2 * pad + 1, W + 2 * pad_w), dtype=x.dtype)

    def fill(lo, hi):
        xp[lo:hi, :, pad:pad + H, pad_w:pad_w + W] = x[lo:hi]

    over_batch(fill, N, xp.size)
    return xp


def _view_as(a, shape):
    """``a`` reshaped without a copy (``out`` may be a slice of a larger buffer); raises if impossible.

    A plain ``reshape`` would silently copy, and writes to the copy would be lost.
    """
    v = a.reshape(shape)
    if not np.may_share_memory(v, a):
        raise ValueError(f"cannot view an array of shape {a.shape} and strides {a.strides} as {shape}")
    return v


def _check_sizes(what, **sizes):
    for name, value in sizes.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{what}: {name} must be a positive integer, got {value!r}")


def window_view(xp, HH, WW, H_out, Wq, stride):
    """6-D strided view ``(N, C, HH, WW, H_out, Wq)`` of the windows of ``xp``.

    Parameters
    ----------
    xp : ndarray, (N, C, Hp + 1, Wp), C-contiguous: the padded input with its guard
        row, as ``padded_buffer`` makes it (``Hp = H + 2 * pad``, ``Wp = W + 2 * pad``)
    HH, WW : filter height and width
    H_out : ``H' = 1 + (Hp - HH) // stride``
    Wq : ``W' = 1 + (Wp - WW) // stride``, or ``Wp`` at stride 1 (the row trick)
    stride : step between windows

    The view aliases ``xp``: writing to it writes to ``xp``, and within one
    ``[:, :, i, j]`` slice no element repeats, so ``view[:, :, i, j] += ...`` is a
    safe accumulation. Sizes that put a window outside ``xp`` raise ``ValueError``:
    ``as_strided`` does not check, and would read (or, in ``col2im``, write) memory
    that is not the array's.
    """
    _check_sizes("im2col", HH=HH, WW=WW, H_out=H_out, Wq=Wq, stride=stride)
    if xp.ndim != 4 or not xp.flags.c_contiguous:
        raise ValueError(f"im2col: xp must be a C-contiguous (N, C, Hp + 1, Wp) buffer "
                         f"(see padded_buffer), got shape {xp.shape}")
    Hg, Wp = xp.shape[2:]
    row_trick = stride == 1 and Wq == Wp
    last_row = (H_out - 1) * stride + HH  # rows the windows span, guard row excluded
    last_col = (Wq - 1) * stride + WW
    if last_row > Hg - 1 or (not row_trick and last_col > Wp):
        raise ValueError(
            f"im2col: H_out = {H_out}, Wq = {Wq} windows of {HH} x {WW} at stride {stride} span "
            f"{last_row} x {last_col}, outside the padded input of {Hg - 1} x {Wp} (buffer {xp.shape}); "
            f"use H_out = 1 + (Hp - HH) // stride and Wq = 1 + (Wp - WW) // stride (or Wp at stride 1)"
        )
    sN, sC, sH, sW = xp.strides
    N, C = xp.shape[:2]
    return as_strided(
        xp,
        shape=(N, C, HH, WW, H_out, Wq),
        strides=(sN, sC, sH, sW, sH * stride, sW * stride),
        writeable=True,
    )


def row_length(W, W_out, WW, pad, stride):
    """Output row length ``Wq`` of the column matrix: ``Wp`` (row trick) or ``W'``.

    The row trick wastes ``(Wp - W') / Wp`` of the GEMM on junk columns, so it is
    used only at stride 1 and with at most one junk column per eight output columns.
    """
    Wp = W + 2 * pad
    if stride == 1 and 8 * (Wp - W_out) <= W_out:
        return Wp
    return W_out


def im2col(xp, HH, WW, H_out, Wq, stride, out=None, parallel=True):
    """Copy the windows of ``xp`` into the column matrix ``(N, C * HH * WW, H_out * Wq)``.

    Row ``(c, i, j)`` of image ``n`` holds ``x_padded[n, c, h * stride + i, w * stride + j]``
    for all output positions ``(h, w)`` in row-major order, so that
    ``out[n] = w.reshape(F, -1) @ cols[n]``.

    Parameters
    ----------
    xp, HH, WW, H_out, Wq, stride : the padded buffer and the geometry, as in ``window_view``
    out : ndarray or None
        Where to write the columns (any array of ``N * C * HH * WW * H_out * Wq`` elements
        that reshapes without a copy, e.g. a slice of a larger buffer); None allocates.
    parallel : bool
        False copies on the calling thread only (for small, cache-sized pieces, where
        handing half to a thread costs more than it saves).

    Returns
    -------
    cols : ndarray, (N, C * HH * WW, H_out * Wq), a view of ``out`` when given
    """
    N, C = xp.shape[:2]
    view = window_view(xp, HH, WW, H_out, Wq, stride)
    if out is None:
        out = np.empty((N, C, HH, WW, H_out, Wq), dtype=xp.dtype)
    else:
        out = _view_as(out, (N, C, HH, WW, H_out, Wq))

    def copy(lo, hi):
        np.copyto(out[lo:hi], view[lo:hi])

    if parallel:
        over_batch(copy, N, out.size)
    else:
        copy(0, N)
    return _view_as(out, (N, C * HH * WW, H_out * Wq))


def col2im(cols, xp_shape, HH, WW, H_out, Wq, stride, parallel=True):
    """Adjoint of ``im2col``: sum every column entry back onto the input pixel it came from.

    Parameters
    ----------
    cols : ndarray, (N, C * HH * WW, H_out * Wq)
    xp_shape : shape of the padded buffer, ``(N, C, Hp + 1, Wp)``
    HH, WW, H_out, Wq, stride : the geometry, as in ``window_view``
    parallel : bool, split over the batch on the ``over_batch`` threads (see the module docstring)

    Returns
    -------
    dxp : ndarray, xp_shape, gradient w.r.t. the padded buffer

    Windows overlap, so one pixel collects from several ``(i, j)``. Looping over
    the ``HH * WW`` kernel offsets (a small loop) makes each step a strided add
    with no repeated target, which is why no ``np.add.at`` is needed.
    """
    N, C = xp_shape[:2]
    dxp = np.zeros(xp_shape, dtype=cols.dtype)
    view = window_view(dxp, HH, WW, H_out, Wq, stride)
    cols6 = _view_as(cols, (N, C, HH, WW, H_out, Wq))

    def accumulate(lo, hi):
        for i in range(HH):
            for j in range(WW):
                view[lo:hi, :, i, j] += cols6[lo:hi, :, i, j]

    if parallel:
        over_batch(accumulate, N, cols.size)
    else:
        accumulate(0, N)
    return dxp


def pool_windows(x, PH, PW, H_out, W_out, stride):
    """View ``(PH, PW, N, C, H_out, W_out)`` of the pooling windows of ``x``.

    ``[i, j]`` holds element ``(i, j)`` of every window. When the windows tile
    ``x`` (``PH == PW == stride``, sizes divide) this is a reshape of x,
    ``(N, C, H', PH, W', PW)`` with the window axes moved first; otherwise a
    strided view like ``window_view``. Copying it gives the contiguous "pool
    columns" on which the max and its mask are fast, contiguous operations.
    Writing through the tiling view (of a contiguous ``x``) writes to ``x``.
    """
    N, C, H, W = x.shape
    _check_sizes("max_pool", PH=PH, PW=PW, H_out=H_out, W_out=W_out, stride=stride)
    if (H_out - 1) * stride + PH > H or (W_out - 1) * stride + PW > W:
        raise ValueError(
            f"max_pool: {H_out} x {W_out} windows of {PH} x {PW} at stride {stride} do not fit "
            f"x of shape {x.shape}; use H_out = 1 + (H - PH) // stride and W_out = 1 + (W - PW) // stride"
        )
    if PH == stride and PW == stride and H == PH * H_out and W == PW * W_out:
        return x.reshape(N, C, H_out, PH, W_out, PW).transpose(3, 5, 0, 1, 2, 4)
    sN, sC, sH, sW = x.strides
    return as_strided(
        x,
        shape=(PH, PW, N, C, H_out, W_out),
        strides=(sH, sW, sN, sC, sH * stride, sW * stride),
        writeable=True,
    )


def add_bias(y, bias):
    """``y += bias[c]`` in place for ``y`` of shape ``(N, F, H', W')``."""

    def add(lo, hi):
        y[lo:hi] += bias[:, None, None]

    over_batch(add, y.shape[0], y.size)
    return y
