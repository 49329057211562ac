"""Multiclass SVM (hinge) loss of a linear classifier, naive and vectorised.

For scores ``s = X[i] @ W`` the loss of sample ``i`` is
``L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + 1)``; the total is the mean over the
batch plus the penalty ``reg * sum(W**2)`` (so the penalty's gradient is ``2 * reg * W``).
At a kink (a margin of exactly 0) the subgradient 0 is used.
"""

import numpy as np

from ._checks import check_loss_inputs


def svm_loss_naive(W, X, y, reg):
    """Structured SVM loss with explicit loops over samples and classes.

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
    W, X, y, dtype = check_loss_inputs(W, X, y, reg, "svm_loss_naive")
    num_train, num_classes = X.shape[0], W.shape[1]
    dW = np.zeros(W.shape, dtype=dtype)
    loss = 0.0
    for i in range(num_train):
        scores = X[i] @ W
        correct_class_score = scores[y[i]]
        for j in range(num_classes):
            if j == y[i]:
                continue
            margin = scores[j] - correct_class_score + 1
            if margin > 0:
                loss += margin
                dW[:, j] += X[i]
                dW[:, y[i]] -= X[i]
    loss = loss / num_train + reg * np.sum(W * W)
    dW = dW / num_train + 2 * reg * W
    return W.dtype.type(loss), dW.astype(W.dtype, copy=False)


def svm_loss_vectorized(W, X, y, reg):
    """Structured SVM loss without loops; same inputs and outputs as ``svm_loss_naive``."""
    W, X, y, dtype = check_loss_inputs(W, X, y, reg, "svm_loss_vectorized")
    num_train = X.shape[0]
    rows = np.arange(num_train)
    scores = X @ W
    margins = np.maximum(0, scores - scores[rows, y][:, None] + 1)
    margins[rows, y] = 0
    loss = margins.sum() / num_train + reg * np.sum(W * W)

    # Each positive margin adds X[i] to its class column and subtracts it from y[i]'s.
    coeff = (margins > 0).astype(dtype)
    coeff[rows, y] = -coeff.sum(axis=1)
    # (coeff.T @ X).T equals X.T @ coeff; OpenBLAS runs it about twice as fast for a wide X.
    dW = (coeff.T @ X).T / num_train + 2 * reg * W
    return W.dtype.type(loss), dW.astype(W.dtype, copy=False)
