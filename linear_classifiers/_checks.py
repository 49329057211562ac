"""Input checks shared by the linear losses and classifiers.

They build on ``deep_learning_suite._validate`` so that a bad shape or label reads
the same everywhere in the toolkit.
"""

import numbers

import numpy as np

from deep_learning_suite._validate import check_float, check_labels, check_ndim
from deep_learning_suite._validate import check_reg as _check_reg


def check_loss_inputs(W, X, y, reg, what):
    """Validate the arguments of a linear loss ``f(W, X, y, reg)``.

    Parameters
    ----------
    W : array_like, (D, C) float weights
    X : array_like, (N, D) float data, one sample per row
    y : array_like of int, (N,) with 0 <= y[i] < C
    reg : float >= 0, the strength of the penalty ``reg * sum(W**2)``
    what : str, the caller's name for error messages

    Returns
    -------
    W, X, y as ndarrays, and the dtype the loss is computed in.
    """
    W = check_ndim("W", check_float("W", W), 2, "(D, C): one column of weights per class")
    X = check_ndim("X", check_float("X", X), 2, "(N, D): one flattened sample per row")
    if X.shape[1] != W.shape[0]:
        raise ValueError(
            f"{what}: X has shape {X.shape}, so D = {X.shape[1]}, but W has shape {W.shape} "
            f"with {W.shape[0]} rows; W must be (D, C) = ({X.shape[1]}, C) "
            f"(did you forget or add the bias column?)"
        )
    if X.shape[0] == 0:
        raise ValueError(f"{what}: empty batch (X has N = 0 rows)")
    y = check_labels(y, X.shape[0], W.shape[1])
    check_reg(reg, what)
    return W, X, y, np.result_type(W.dtype, X.dtype)


def check_reg(reg, what):
    """``reg`` must be a finite real number >= 0 (the package's one check, argument order kept)."""
    _check_reg(what, reg)


def check_features(name, X, num_features=None):
    """Require a 2-D float ``(N, D)`` array, with ``D == num_features`` when given."""
    X = check_ndim(name, check_float(name, X), 2, "(N, D): one flattened sample per row")
    if num_features is not None and X.shape[1] != num_features:
        raise ValueError(
            f"{name} has shape {X.shape} but the model was trained on D = {num_features} "
            f"features; pass ({X.shape[0]}, {num_features}) (same preprocessing as in train)"
        )
    return X


def check_positive_int(name, value, what):
    """Require a Python or NumPy integer >= 1 (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{what}: {name} must be a positive integer, got {value!r}")
    return int(value)


def check_class_labels(y, num_samples, name="y"):
    """Integer labels >= 0, one per sample, when the number of classes is ``y.max() + 1``."""
    y = np.asarray(y)
    if y.size and np.issubdtype(y.dtype, np.integer) and y.min() < 0:
        raise ValueError(
            f"{name} holds negative labels {y[y < 0][:5].tolist()}; class labels must be 0, 1, 2, ..."
        )
    num_classes = int(y.max()) + 1 if y.size and np.issubdtype(y.dtype, np.integer) else 1
    return check_labels(y, num_samples, num_classes, name=name)
