"""Affine, ReLU and the two classification losses.

Each backward sits right below its forward. ``x`` may have any number of
trailing dimensions for ``affine_forward``; it is flattened to ``(N, D)``.
"""

import numpy as np

from ._validate import check_float, check_labels, check_ndim, check_same_dtype


def affine_forward(x, w, b):
    """Fully-connected layer ``out = x.reshape(N, D) @ w + b``.

    Parameters
    ----------
    x : ndarray, (N, d_1, ..., d_k) with D = d_1 * ... * d_k
    w : ndarray, (D, M)
    b : ndarray, (M,)

    Returns
    -------
    out : ndarray, (N, M)
    cache : (x, w, b)
    """
    x, w, b = check_float("x", x), check_float("w", w), check_float("b", b)
    check_ndim("w", w, 2, "(D, M)")
    if x.ndim < 1:
        raise ValueError("x must have a leading batch dimension N, got a scalar")
    N = x.shape[0]
    D = int(np.prod(x.shape[1:]))
    if w.shape[0] != D:
        raise ValueError(
            f"affine_forward: x of shape {x.shape} flattens to (N, D) = ({N}, {D}) but w has "
            f"shape {w.shape}; w must be (D, M) = ({D}, M)"
        )
    if b.shape != (w.shape[1],):
        raise ValueError(f"affine_forward: b must have shape ({w.shape[1]},), got {b.shape}")
    check_same_dtype("affine_forward", "x", x.dtype, w=w, b=b)
    out = x.reshape(N, D) @ w + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    """Backward of ``affine_forward``.

    Parameters
    ----------
    dout : ndarray, (N, M)
    cache : (x, w, b) from the forward

    Returns
    -------
    dx : ndarray, shaped like x;  dw : (D, M);  db : (M,)
    """
    x, w, _ = cache
    N = x.shape[0]
    if dout.shape != (N, w.shape[1]):
        raise ValueError(f"affine_backward: dout must have shape {(N, w.shape[1])}, got {dout.shape}")
    check_same_dtype("affine_backward", "the forward's x", x.dtype, dout=dout)
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(N, w.shape[0]).T @ dout      # D explicit: -1 cannot be inferred when N = 0
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    """Elementwise ``max(0, x)``; any shape. Returns ``(out, cache)``, cache = x."""
    x = check_float("x", x)
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    """Backward of ``relu_forward``: ``dx = dout * (x > 0)``."""
    x = cache
    if dout.shape != x.shape:
        raise ValueError(f"relu_backward: dout shape {dout.shape} differs from x shape {x.shape}")
    check_same_dtype("relu_backward", "the forward's x", x.dtype, dout=dout)
    return dout * (x > 0)


def log_softmax(x):
    """Row-wise ``log(softmax(x))`` of (M, C) scores via log-sum-exp: finite for scores of 1e4."""
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _check_scores(x, y, what):
    x = check_float("x", x)
    check_ndim("x", x, 2, "(N, C) of class scores")
    y = check_labels(y, x.shape[0], x.shape[1])
    if x.shape[0] == 0:
        raise ValueError(f"{what}: empty batch (N = 0)")
    return x, y


def softmax_loss(x, y):
    """Softmax cross-entropy, averaged over the batch.

    Computed through log-sum-exp, ``log p = x - max(x) - log(sum(exp(x - max(x))))``,
    so scores of 1e4 give a finite loss without overflow warnings.

    Parameters
    ----------
    x : ndarray, (N, C) class scores
    y : ndarray of int, (N,) with 0 <= y[i] < C

    Returns
    -------
    loss : float (a scalar of x's dtype)
    dx : ndarray, (N, C)
    """
    x, y = _check_scores(x, y, "softmax_loss")
    N = x.shape[0]
    log_probs = log_softmax(x)
    loss = -log_probs[np.arange(N), y].mean()
    dx = np.exp(log_probs)
    dx[np.arange(N), y] -= 1
    dx /= N
    return loss, dx


def svm_loss(x, y):
    """Multiclass hinge loss with margin 1, averaged over the batch.

    ``L_i = sum_{j != y_i} max(0, x_j - x_{y_i} + 1)``

    Parameters
    ----------
    x : ndarray, (N, C);  y : ndarray of int, (N,)

    Returns
    -------
    loss : float;  dx : ndarray, (N, C)
    """
    x, y = _check_scores(x, y, "svm_loss")
    N = x.shape[0]
    rows = np.arange(N)
    margins = np.maximum(0, x - x[rows, y][:, None] + 1)
    margins[rows, y] = 0
    loss = margins.sum() / N
    dx = (margins > 0).astype(x.dtype)
    dx[rows, y] -= dx.sum(axis=1)
    dx /= N
    return loss, dx
