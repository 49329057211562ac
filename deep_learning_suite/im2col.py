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
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided


def padded_buffer(x, pad, pad_w=None):
    """Zero buffer ``(N, C, H + 2 * pad + 1, W + 2 * pad_w)`` with ``x`` copied in the middle.

    ``pad_w`` defaults to ``pad``. The extra bottom row is the guard row of the
    row trick (see module docstring).
    """
    pad_w = pad if pad_w is None else pad_w
    N, C, H, W = x.shape
    xp = np.zeros((N, C, H + 2 * pad + 1, W + 2 * pad_w), dtype=x.dtype)
    xp[:, :, pad:pad + H, pad_w:pad_w + W] = x
    return xp


def window_view(xp, HH, WW, H_out, Wq, stride):
    """6-D strided view ``(N, C, HH, WW, H_out, Wq)`` of the windows of ``xp``.

    ``xp`` must be C-contiguous and large enough for every window (``padded_buffer``
    guarantees that, guard row included). The view aliases ``xp``: writing to it
    writes to ``xp``, and within one ``[:, :, i, j]`` slice no element repeats,
    so ``view[:, :, i, j] += ...`` is a safe accumulation.
    """
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
    used only at stride 1 and when the waste is at most one column in eight.
    """
    Wp = W + 2 * pad
    if stride == 1 and 8 * (Wp - W_out) <= W_out:
        return Wp
    return W_out


def im2col(xp, HH, WW, H_out, Wq, stride, out=None):
    """Copy the windows of ``xp`` into the column matrix ``(N, C * HH * WW, H_out * Wq)``.

    Row ``(c, i, j)`` of image ``n`` holds ``x_padded[n, c, h * stride + i, w * stride + j]``
    for all output positions ``(h, w)`` in row-major order, so that
    ``out[n] = w.reshape(F, -1) @ cols[n]``.
    """
    N, C = xp.shape[:2]
    view = window_view(xp, HH, WW, H_out, Wq, stride)
    if out is None:
        out = np.empty((N, C, HH, WW, H_out, Wq), dtype=xp.dtype)
    else:
        out = out.reshape(N, C, HH, WW, H_out, Wq)
    np.copyto(out, view)
    return out.reshape(N, C * HH * WW, H_out * Wq)


def col2im(cols, xp_shape, HH, WW, H_out, Wq, stride):
    """Adjoint of ``im2col``: sum every column entry back onto the input pixel it came from.

    Parameters
    ----------
    cols : ndarray, (N, C * HH * WW, H_out * Wq)
    xp_shape : shape of the padded buffer, ``(N, C, Hp + 1, Wp)``

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
    cols6 = cols.reshape(N, C, HH, WW, H_out, Wq)
    for i in range(HH):
        for j in range(WW):
            view[:, :, i, j] += cols6[:, :, i, j]
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
    if PH == stride and PW == stride and H == PH * H_out and W == PW * W_out:
        return x.reshape(N, C, H_out, PH, W_out, PW).transpose(3, 5, 0, 1, 2, 4)
    sN, sC, sH, sW = x.strides
    return as_strided(
        x,
        shape=(PH, PW, N, C, H_out, W_out),
        strides=(sH, sW, sN, sC, sH * stride, sW * stride),
        writeable=True,
    )
