"""Input checks shared by every layer.

Each helper raises ``ValueError`` with a message that names the argument, what it
got and how to fix it, so that a shape slip is caught where it happens rather
than as a broadcasting error three layers later.
"""

import numpy as np


def check_float(name, a):
    """Return ``a`` as an ndarray, requiring a floating dtype."""
    if not isinstance(a, np.ndarray):
        a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(
            f"{name} has dtype {a.dtype}; layers compute in floating point: "
            f"convert it with {name}.astype(np.float32) or .astype(np.float64)"
        )
    return a


def check_param(name, a, dtype):
    """Return the parameter ``a`` as an ndarray; integers become ``dtype`` (x's).

    The course's notebooks pass integer parameters, such as the bias
    ``b = np.array([0, 128])`` of the image-processing cell or the spatial batch norm's
    ``gamma = np.asarray([3, 4, 5])``, which NumPy would simply promote. An integer array
    has no dtype of its own to keep, so it takes x's; a float of another precision is
    still an error (``check_same_dtype``), because there the choice matters.
    """
    a = np.asarray(a)
    if a.dtype.kind in "biu":
        a = a.astype(dtype)
    return check_float(name, a)


def check_real(what, name, value, low=-np.inf, high=np.inf, high_open=False):
    """``value`` as a Python float, which must be finite and in ``[low, high]`` (``[low, high)``
    with ``high_open``).

    Hyperparameters (learning rates, reg, eps, momentum) go through here. A Python float
    takes the dtype of the arrays it scales, where an ``np.float64`` (from ``np.logspace``, say)
    would promote float32 weights or outputs to float64 under NumPy 2; a string such as "1e-3"
    from a config file, a bool or None is refused rather than failing later in a ufunc.
    """
    number = None
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        try:
            number = float(value)
        except OverflowError:               # an int too large for a float
            pass
    in_range = number is not None and low <= number and (number < high if high_open else number <= high)
    if not (in_range and np.isfinite(number)):
        where = "" if (low, high) == (-np.inf, np.inf) else \
            f" >= {low:g}" if high == np.inf else f" in [{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{what}: {name} must be a finite number{where}, got {value!r}")
    return number


def check_reg(what, reg):
    """``reg`` as a Python float, finite and >= 0 (see ``check_real``)."""
    return check_real(what, "reg", reg, 0.0)


def check_same_dtype(what, ref_name, dtype, **arrays):
    """Require each of ``arrays`` to have ``dtype``, the dtype of ``ref_name``.

    NumPy would quietly promote a float32 layer given one float64 argument to float64:
    outputs, gradients and the time they take. A layer's arrays share one dtype instead,
    so that float32 in gives float32 out.
    """
    for name, a in arrays.items():
        if a.dtype != dtype:
            raise ValueError(
                f"{what}: {name} is {a.dtype} but {ref_name} is {dtype}; the arrays of a "
                f"layer must share one dtype: convert with {name}.astype(np.{dtype})"
            )


def check_ndim(name, a, ndim, layout=None):
    """Require ``a.ndim == ndim``; ``layout`` (e.g. '(N, C, H, W)') goes in the message."""
    if a.ndim != ndim:
        want = f" {layout}" if layout else ""
        raise ValueError(f"{name} must be {ndim}-D{want}, got shape {a.shape}")
    return a


def check_labels(y, num_samples, num_classes, name="y"):
    """Return ``y`` as a 1-D integer array of length ``num_samples`` in ``[0, num_classes)``."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != num_samples:
        raise ValueError(
            f"{name} must be a 1-D array of {num_samples} labels (one per row of the scores), "
            f"got shape {y.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
            raise ValueError(
                f"{name} must hold integer class labels, got dtype {y.dtype}; "
                f"convert with {name}.astype(np.int64)"
            )
        raise ValueError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if num_samples and (y.min() < 0 or y.max() >= num_classes):
        bad = y[(y < 0) | (y >= num_classes)]
        raise ValueError(
            f"{name} holds labels out of range: {bad[:5].tolist()} (expected 0 <= label < "
            f"{num_classes}, the number of score columns)"
        )
    return y


def check_mode(name, param):
    """Return ``param['mode']``, which must be 'train' or 'test'."""
    if not isinstance(param, dict):
        raise ValueError(f"{name} must be a dict, got {type(param).__name__}")
    if "mode" not in param:
        raise ValueError(f"{name} has no 'mode': set {name}['mode'] to 'train' or 'test'")
    mode = param["mode"]
    if mode not in ("train", "test"):
        raise ValueError(f"{name}['mode'] must be 'train' or 'test', got {mode!r}")
    return mode


def check_int(what, name, value, minimum):
    """``value`` as an int >= minimum; 2.0 passes (as 2), 2.5, "2" and True do not."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not np.isfinite(value) or int(value) != value or value < minimum:
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{what}: {name} must be a {kind} integer, got {value!r}")
    return int(value)


def conv_output_size(size, field, pad, stride, what="conv", axis="H"):
    """Output length ``1 + (size + 2 * pad - field) // stride``, which must divide evenly.

    A whole-number float such as ``2.0`` is accepted as its int; anything else is refused.
    For ``what="max_pool"`` the error messages name ``pool_height`` (``axis="H"``) or
    ``pool_width`` (``axis="W"``) and leave pad out, since pooling takes no pad.
    """
    stride = check_int(what, "stride", stride, 1)
    pad = check_int(what, "pad", pad, 0)
    span = size + 2 * pad - field
    if what == "max_pool":
        # Pooling takes no pad: advising one would send the user looking for a key pool_param lacks.
        name = "pool_height" if axis == "H" else "pool_width"
        too_big = f"{name} = {field} does not fit {axis} = {size}; use a {name} of at most {size}"
        expr, values, knobs = f"({axis} - {name})", f"({size} - {field})", f"{name}, stride"
    else:
        too_big = f"window of {field} does not fit {axis} = {size} with pad {pad}"
        expr, values, knobs = f"({axis} + 2 * pad - field)", f"({size} + 2*{pad} - {field})", "pad, stride"
    if span < 0:
        raise ValueError(f"{what}: {too_big}")
    if span % stride != 0:
        raise ValueError(
            f"{what}: geometry does not divide evenly along {axis}: {expr} = {values} = {span} is not a "
            f"multiple of stride {stride}; change {knobs} or the input size"
        )
    return 1 + span // stride


def check_indices(what, x, V, name="x"):
    """Return ``x`` as an integer array of indices in ``[0, V)`` (word indices, any shape)."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"{what}: {name} must hold integer word indices, got dtype {x.dtype}; "
                         f"convert with {name}.astype(np.int64)")
    if x.size and (x.min() < 0 or x.max() >= V):
        bad = x[(x < 0) | (x >= V)]
        raise ValueError(f"{what}: {name} holds indices out of range: {bad[:5].tolist()} "
                         f"(expected 0 <= index < {V}, the vocabulary size)")
    return x


def nonfinite_rows(X):
    """Indices of the rows of the 2-D array ``X`` that hold NaN or inf (int64, ascending).

    A finite float64 sum, one pass with no temporary array, rules them out; only
    otherwise (NaN, inf, or finite values so large the sum overflows) are rows scanned.
    """
    if np.isfinite(X.sum(dtype=np.float64)):
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(~np.isfinite(X).all(axis=1))


def nonfinite_data_advice(name):
    """How to find and fix the NaN/inf rows of ``name``, for error messages."""
    return (f"fix the data, not the hyperparameters: np.flatnonzero(~np.isfinite({name}).all(axis=1)) "
            f"lists every such row, and a feature divided by a zero std gives 0 / 0 = NaN "
            f"(divide by std + 1e-8, or drop the constant feature)")
