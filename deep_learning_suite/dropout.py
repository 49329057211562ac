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


def _check_scale(p, dtype):
    """Require the kept units' scale ``1 / p`` to be finite in ``dtype``.

    The mask is built in x's dtype, where a tiny p can round to 0 (float32: below about
    1e-45) or give 1 / p above the largest float (about 3e38), and the mask would hold
    inf and NaN instead of 0 and 1 / p.
    """
    with np.errstate(over="ignore", divide="ignore", under="ignore"):
        scale = np.divide(1, np.asarray(p, dtype=dtype))
    if not np.isfinite(scale):
        raise ValueError(
            f"dropout_param['p'] = {p!r} is too small for {np.dtype(dtype)} x: the kept units' "
            f"scale 1 / p is not finite in that dtype; use p >= {1 / np.finfo(dtype).max:.3g} "
            f"or a wider dtype"
        )


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
    cache : (dropout_param, mask), mask of x's dtype holding 0 or 1 / p. In test mode
        ``(dropout_param, None, shape, dtype)``: no mask, but x's shape and dtype, so that
        ``dropout_backward`` can check dout against them there too.
    """
    mode = check_mode("dropout_param", dropout_param)
    p = _check_keep_prob(dropout_param)
    x = check_float("x", x)
    # In both modes: a p that cannot train in x's dtype is a configuration error even
    # when this call happens to be at test time.
    _check_scale(p, x.dtype)
    if mode == "test":
        return x, (dropout_param, None, x.shape, x.dtype)
    seed = dropout_param.get("seed")
    # A private generator, so a seeded layer never resets the caller's global stream.
    uniform = np.random.default_rng(seed).random(x.shape) if seed is not None else np.random.random_sample(x.shape)
    mask = (uniform < p).astype(x.dtype)
    mask /= p
    return x * mask, (dropout_param, mask)


def dropout_backward(dout, cache):
    """Backward of ``dropout_forward``: ``dx = dout * mask`` in training, ``dout`` at test time.

    Parameters
    ----------
    dout : ndarray, shaped like the forward's x and of its dtype (checked in both modes)
    cache : from ``dropout_forward``; a two-element test-mode cache ``(dropout_param, None)``
        (the course's) is accepted and skips the checks, having nothing to check against

    Returns
    -------
    dx : ndarray, shaped like x
    """
    dropout_param, mask = cache[:2]
    if mask is None:
        if len(cache) < 4:
            return dout
        shape, dtype = cache[2:4]
    else:
        shape, dtype = mask.shape, mask.dtype
    dout = np.asarray(dout)
    if dout.shape != shape:
        raise ValueError(f"dropout_backward: dout shape {dout.shape} differs from x shape {shape}")
    check_same_dtype("dropout_backward", "the forward's x", dtype, dout=dout)
    return dout if mask is None else dout * mask
