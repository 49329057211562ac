"""Gradient checking and ``rel_error``: the toolkit's one numerical-gradient oracle.

Every test and the ``gradcheck`` command use these functions; they follow the
CS231n signatures so that notebook cells run unchanged. Data loading lives in
``deep_learning_suite.data`` and is re-exported here under the course's names.
"""

import numpy as np


def generator(seed=None):
    """A ``np.random.Generator`` seeded by ``seed``, or without one by NumPy's global stream.

    The second case is what keeps the course's habit working: ``np.random.seed(231)`` at the
    top of a notebook makes every later run repeatable, while an explicit seed gives a
    stream that neither reads nor moves the global one.
    """
    return np.random.default_rng(seed if seed is not None else np.random.randint(2**31 - 1))


def rel_error(x, y):
    """Maximum relative error ``max(|x - y| / max(1e-8, |x| + |y|))``."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def eval_numerical_gradient(f, x, verbose=True, h=1e-5):
    """Centred numerical gradient of a scalar function ``f`` at ``x``.

    Parameters
    ----------
    f : callable
        ``f(x) -> float``. ``x`` is perturbed in place, one element at a time,
        so ``f`` may also read ``x`` through a closure (as models read ``params``).
    x : ndarray
        Point at which to evaluate the gradient; restored on return.
    verbose : bool
        Print each index and its gradient.
    h : float
        Step of the centred difference ``(f(x + h) - f(x - h)) / (2h)``.

    Returns
    -------
    grad : ndarray, shaped like ``x``
    """
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        fxph = f(x)
        x[ix] = old - h
        fxmh = f(x)
        x[ix] = old
        grad[ix] = (fxph - fxmh) / (2 * h)
        if verbose:
            print(ix, grad[ix])
        it.iternext()
    return grad


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Centred numerical gradient of ``sum(f(x) * df)`` with respect to ``x``.

    This is the vector-Jacobian product that a layer's backward computes: ``f``
    maps an array to an array, ``df`` is the upstream gradient shaped like ``f(x)``.

    Returns
    -------
    grad : ndarray, shaped like ``x``
    """
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        pos = np.array(f(x), copy=True)
        x[ix] = old - h
        neg = np.array(f(x), copy=True)
        x[ix] = old
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
        it.iternext()
    return grad


def grad_check_sparse(f, x, analytic_grad, num_checks=10, h=1e-5, seed=None, verbose=True):
    """Compare ``analytic_grad`` with a centred difference at ``num_checks`` random entries.

    ``seed`` fixes the sampled entries; without one they follow NumPy's global stream,
    so ``np.random.seed`` makes a check repeatable.

    Returns
    -------
    errors : list of float
        The relative error at each sampled entry (also printed when ``verbose``).
    """
    rng = generator(seed)
    errors = []
    for _ in range(num_checks):
        ix = tuple(int(rng.integers(m)) for m in x.shape)
        old = x[ix]
        x[ix] = old + h
        fxph = f(x)
        x[ix] = old - h
        fxmh = f(x)
        x[ix] = old
        num = (fxph - fxmh) / (2 * h)
        ana = analytic_grad[ix]
        err = abs(num - ana) / max(1e-12, abs(num) + abs(ana))
        errors.append(float(err))
        if verbose:
            print(f"numerical: {num:f} analytic: {ana:f}, relative error: {err:e}")
    return errors


# The course's notebooks import the CIFAR-10 loaders from utils; they live in data.py.
from .data import load_CIFAR10, get_cifar10_data, get_CIFAR10_data  # noqa: E402,F401
