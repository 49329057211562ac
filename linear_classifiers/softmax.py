"""Softmax (cross-entropy) loss of a linear classifier, naive and vectorised.

For scores ``s = X[i] @ W`` the loss of sample ``i`` is ``-log softmax(s)[y_i]``; the
total is the mean over the batch plus ``reg * sum(W**2)``. Both versions go through
log-sum-exp with the row maximum subtracted, ``log p_j = s_j - m - log(sum_k exp(s_k - m))``,
so scores of 1e4 give a finite loss without overflow warnings.
"""

import numpy as np

from ._checks import check_loss_inputs


def softmax_loss_naive(W, X, y, reg):
    """Softmax loss with an explicit loop over samples (and over classes for the gradient).

    Parameters
    ----------
    W : ndarray, (D, C) weights
    X : ndarray, (N, D) minibatch of data
    y : ndarray of int, (N,) labels, 0 <= y[i] < C
    reg : float, regularisation strength

    Returns
    -------
    loss : float (a scalar of W's dtype)
    dW : ndarray, (D, C), gradient of the loss with respect to W, in W's dtype

    Notes
    -----
    float32 and float64 both work. If X has a wider dtype than W (float64 data, float32
    weights), the loss is computed in the wider one and rounded once to W's dtype at the
    end, so that ``W -= learning_rate * dW`` (and the optimisers, which require ``dw``
    to match ``w``) never meet a silently promoted gradient.
    """
    W, X, y, dtype = check_loss_inputs(W, X, y, reg, "softmax_loss_naive")
    num_train, num_classes = X.shape[0], W.shape[1]
    dW = np.zeros(W.shape, dtype=dtype)
    loss = 0.0
    for i in range(num_train):
        scores = X[i] @ W
        shifted = scores - np.max(scores)
        log_sum_exp = np.log(np.sum(np.exp(shifted)))
        loss -= shifted[y[i]] - log_sum_exp
        for j in range(num_classes):
            p_j = np.exp(shifted[j] - log_sum_exp)
            # d(-log p_y)/ds_j = p_j - [j == y_i]
            dW[:, j] += (p_j - (1 if j == y[i] else 0)) * X[i]
    loss = loss / num_train + reg * np.sum(W * W)
    dW = dW / num_train + 2 * reg * W
    return W.dtype.type(loss), dW.astype(W.dtype, copy=False)


def softmax_loss_vectorized(W, X, y, reg):
    """Softmax loss without loops; same inputs and outputs as ``softmax_loss_naive``."""
    W, X, y, dtype = check_loss_inputs(W, X, y, reg, "softmax_loss_vectorized")
    num_train = X.shape[0]
    rows = np.arange(num_train)
    scores = X @ W
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[rows, y].sum() / num_train + reg * np.sum(W * W)

    dscores = np.exp(log_probs)
    dscores[rows, y] -= 1
    # (dscores.T @ X).T equals X.T @ dscores; OpenBLAS runs it about twice as fast for a wide X.
    dW = (dscores.T @ X).T / num_train + 2 * reg * W
    return W.dtype.type(loss), dW.astype(W.dtype, copy=False)
