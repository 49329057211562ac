"""Inverted dropout.

In training each unit is kept with probability ``p`` and the kept units are scaled
by ``1 / p``, so the expected activation is unchanged and test time is the identity.
Note that ``p`` is the probability of KEEPING a unit (as in CS231n), not PyTorch's
probability of dropping one: ``torch.nn.Dropout(1 - p)``.
"""

import numbers

import numpy as np

from ._validate import check_float, check_mode, check_same_dtype


def _check_keep_prob(dropout_param):
    if "p" not in dropout_param:
        raise ValueError("dropout_param has no 'p': set it to the probability of keeping a unit, 0 < p <= 1")
    p = dropout_param["p"]
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 < p <= 1:
        raise ValueError(
            f"dropout_param['p'] is the probability of KEEPING a unit and must satisfy 0 < p <= 1, "
            f"got {p!r} (p = 1 disables dropout; for PyTorch's drop rate q use p = 1 - q)"
        )
    return float(p)


def dropout_forward(x, dropout_param):
    """Inverted dropout.

    Parameters
    ----------
    x : ndarray, any shape
    dropout_param : dict
        ``p``: probability of keeping each unit, 0 < p <= 1 (1 is the identity);
        ``mode``: 'train' or 'test';
        ``seed`` (optional): with a seed the mask depends only on the seed and x's
        shape (the same seed gives the same mask); without one it comes from NumPy's
        global generator, so ``np.random.seed`` makes runs reproducible.

    Returns
    -------
    out : ndarray, shaped like x, x's dtype
    cache : (dropout_param, mask), mask of x's dtype holding 0 or 1 / p (None in test mode)
    """
    mode = check_mode("dropout_param", dropout_param)
    p = _check_keep_prob(dropout_param)
    x = check_float("x", x)
    if mode == "test":
        return x, (dropout_param, None)
    seed = dropout_param.get("seed")
    # A private generator, so a seeded layer never resets the caller's global stream.
    uniform = np.random.default_rng(seed).random(x.shape) if seed is not None else np.random.random_sample(x.shape)
    mask = (uniform < p).astype(x.dtype)
    mask /= p
    return x * mask, (dropout_param, mask)


def dropout_backward(dout, cache):
    """Backward of ``dropout_forward``: ``dx = dout * mask`` in training, ``dout`` at test time."""
    dropout_param, mask = cache
    if mask is None:
        return dout
    if dout.shape != mask.shape:
        raise ValueError(f"dropout_backward: dout shape {dout.shape} differs from x shape {mask.shape}")
    check_same_dtype("dropout_backward", "the forward's x", mask.dtype, dout=dout)
    return dout * mask
