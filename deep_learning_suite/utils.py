"""Gradient checking and ``rel_error``: the toolkit's one numerical-gradient oracle.

Every test and the ``gradcheck`` command use these functions; they follow the
CS231n signatures so that notebook cells run unchanged. Data loading lives in
``deep_learning_suite.data`` and is re-exported here under the course's names.
"""

import math

import numpy as np


def generator(seed=None):
    """A ``np.random.Generator`` seeded by ``seed``, or without one by NumPy's global stream.

    The second case is what keeps the course's habit working: ``np.random.seed(231)`` at the
    top of a notebook makes every later run repeatable, while an explicit seed gives a
    stream that neither reads nor moves the global one.
    """
    return np.random.default_rng(seed if seed is not None else np.random.randint(2**31 - 1))


def rel_error(x, y):
    """Maximum relative error ``max(|x - y| / max(1e-8, |x| + |y|))``.

    ``x`` and ``y`` may be arrays, lists, scalars or CPU torch tensors. They are compared
    elementwise, so their shapes must agree, with two exceptions: shapes that differ only by
    length-1 axes, such as (3, 1) and (3,), are compared after ``np.squeeze``, and a 0-d value
    (a scalar loss, say) is compared with every entry of the other. Any other pair of shapes
    raises ``ValueError`` rather than broadcasting into an outer comparison.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape and x.ndim and y.ndim:
        xs, ys = np.squeeze(x), np.squeeze(y)
        if xs.shape != ys.shape:
            raise ValueError(f"rel_error: shapes {x.shape} and {y.shape} differ; it compares "
                             "elementwise and will not broadcast them against each other")
        x, y = xs, ys
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


_SCALAR_HINT = "f must return a scalar loss (e.g. lambda W: model.loss(X, y)[0])"


def _check_point(x, h, who):
    """Refuse an ``x`` the in-place perturbation cannot work on and a step that is not positive."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{who}: x must be a NumPy array (it is perturbed in place), not "
                        f"{type(x).__name__}; for a torch tensor pass t.detach().numpy() and "
                        "convert back inside f with torch.from_numpy")
    if x.dtype.kind in "biu":
        raise ValueError(f"{who}: x has dtype {x.dtype}, so x + h would be truncated to an "
                         "integer; pass x.astype(np.float64)")
    try:
        ok = not isinstance(h, bool) and np.ndim(h) == 0 and math.isfinite(h) and h > 0
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"{who}: h must be a positive finite number, got {h!r}")


def _unchanged(who, ix, old, h, x):
    """The error for an entry that ``old + h`` or ``old - h`` rounds back to (x's dtype)."""
    where = ", ".join(map(str, ix)) if ix else "()"
    fix = "a larger h" if x.dtype.itemsize >= 8 else "a larger h or x.astype(np.float64)"
    return ValueError(f"{who}: x[{where}] = {old} is unchanged by a step of h={h} in {x.dtype}, "
                      f"so its gradient would read 0; use {fix}")


def _centred(f, x, ix, h, who, output):
    """``output(f(x))`` with ``x[ix]`` moved to ``old + h`` and to ``old - h`` (then restored),
    and the step between those two points as stored.

    In float32 ``old + h`` rounds: at ``x = 100`` a step of 1e-5 is stored as 7.6e-6, at 200 as
    1.5e-5, so dividing by ``2 * h`` would be off by a quarter or a half. Dividing by the step
    actually taken (the difference of two nearby floats is exact) keeps the quotient right.
    """
    old = x[ix]
    points, values = [], []
    try:
        for delta in (h, -h):
            x[ix] = old + delta
            if x[ix] == old:
                raise _unchanged(who, ix, old, h, x)
            points.append(x[ix])
            values.append(output(f(x), who))
    finally:
        x[ix] = old
    step = 2 * h if x.dtype.kind == "c" else float(points[0]) - float(points[1])
    return values[0], values[1], step


def _scalar(v, who):
    """``v`` if it is a single number (a Python or NumPy scalar, or a 0-d or size-1 array or
    tensor, which is reshaped to 0-d); otherwise a ``ValueError`` saying what ``f`` returned."""
    if isinstance(v, (float, int, np.number)):
        return v
    shape = getattr(v, "shape", None)
    if shape is not None and not isinstance(v, (tuple, list)):
        if len(shape) == 0:
            return v
        if math.prod(shape) == 1:
            return v.reshape(())
        what = f"an array of shape {tuple(shape)}"
    elif isinstance(v, tuple):
        what = f"a tuple of length {len(v)}"
    elif isinstance(v, complex):
        return v
    else:
        what = f"a {type(v).__name__}"
    raise ValueError(f"{who}: {_SCALAR_HINT}; it returned {what}")


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

    Raises
    ------
    ValueError
        If ``x`` has an integer or bool dtype (convert it with ``x.astype(np.float64)``), if
        ``h`` is not a positive finite number, if ``x[ix] + h`` or ``x[ix] - h`` rounds back
        to ``x[ix]`` in ``x``'s dtype (the gradient would silently read 0), or if ``f`` does
        not return a single number. A Python or NumPy scalar, a 0-d array or tensor, and a
        size-1 array or tensor all count as one; a ``(loss, grads)`` tuple does not.
    TypeError
        If ``x`` is not a NumPy array.
    """
    who = "eval_numerical_gradient"
    _check_point(x, h, who)
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        fxph, fxmh, step = _centred(f, x, ix, h, who, _scalar)
        grad[ix] = (fxph - fxmh) / step
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

    Raises
    ------
    ValueError
        For an integer or bool ``x``, a step ``h`` that is not positive and finite or that
        leaves an entry of ``x`` unchanged, as ``eval_numerical_gradient`` does; and when ``f``
        returns something that is not an array, such as a layer's ``(out, cache)`` tuple.
    TypeError
        If ``x`` is not a NumPy array.
    """
    who = "eval_numerical_gradient_array"
    _check_point(x, h, who)
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        pos, neg, step = _centred(f, x, ix, h, who, _output)
        grad[ix] = np.sum((pos - neg) * df) / step
        it.iternext()
    return grad


def _output(v, who):
    """A copy of ``f``'s output as an array; a clear error for ``(out, cache)`` and the like."""
    try:
        out = np.asarray(v).copy()   # asarray: torch's __array__ takes no copy keyword
    except (ValueError, TypeError) as e:
        raise ValueError(f"{who}: f must return the output array (e.g. "
                         f"lambda x: affine_forward(x, w, b)[0]); it returned a "
                         f"{type(v).__name__} that is not one ({e})") from None
    if out.dtype == object:
        raise ValueError(f"{who}: f must return the output array (e.g. "
                         f"lambda x: affine_forward(x, w, b)[0]); it returned a "
                         f"{type(v).__name__} that is not one")
    return out


def grad_check_sparse(f, x, analytic_grad, num_checks=10, h=1e-5, seed=None, verbose=True):
    """Compare ``analytic_grad`` with a centred difference at ``num_checks`` random entries.

    ``seed`` fixes the sampled entries; without one they follow NumPy's global stream,
    so ``np.random.seed`` makes a check repeatable.

    Returns
    -------
    errors : list of float
        The relative error at each sampled entry (also printed when ``verbose``).

    Raises
    ------
    ValueError
        As ``eval_numerical_gradient`` does (integer ``x``, bad or too small ``h``, an ``f``
        that does not return a scalar loss), and when ``analytic_grad`` is not shaped like ``x``.
    TypeError
        If ``x`` is not a NumPy array.
    """
    who = "grad_check_sparse"
    _check_point(x, h, who)
    if np.shape(analytic_grad) != x.shape:
        raise ValueError(f"{who}: analytic_grad has shape {np.shape(analytic_grad)}, "
                         f"x has shape {x.shape}; they must match")
    rng = generator(seed)
    errors = []
    for _ in range(num_checks):
        ix = tuple(int(rng.integers(m)) for m in x.shape)
        fxph, fxmh, step = _centred(f, x, ix, h, who, _scalar)
        num = (fxph - fxmh) / step
        ana = analytic_grad[ix]
        err = abs(num - ana) / max(1e-12, abs(num) + abs(ana))
        errors.append(float(err))
        if verbose:
            print(f"numerical: {num:f} analytic: {ana:f}, relative error: {err:e}")
    return errors


# The course's notebooks import the CIFAR-10 loaders from utils; they live in data.py.
from .data import load_CIFAR10, get_cifar10_data, get_CIFAR10_data  # noqa: E402,F401
