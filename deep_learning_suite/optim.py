"""First-order update rules.

Every rule has the signature ``rule(w, dw, config=None) -> (next_w, config)``:

w : ndarray
    Current weights (left untouched; ``next_w`` is a new array of w's dtype).
dw : ndarray
    Gradient of the loss with respect to ``w``, same shape.
config : dict or None
    Hyperparameters, filled in with the defaults below via ``setdefault``, plus the
    rule's state (velocity, moment estimates...), created as zeros of w's dtype on the
    first call. Pass the returned config back in at the next step. A hyperparameter must lie where
    the rule works, else ``ValueError``: ``learning_rate``, ``epsilon`` and ``weight_decay``
    >= 0, ``momentum`` in [0, 1], ``decay_rate``, ``beta1`` and ``beta2`` in [0, 1).

Learning rates follow PyTorch's conventions, so ``torch.optim`` with the same
hyperparameters takes the same steps (the tests check this).
"""

import numpy as np

from ._validate import check_float, check_real, check_same_dtype


def _start(name, w, dw, config):
    w, dw = check_float("w", w), check_float("dw", dw)
    if w.shape != dw.shape:
        raise ValueError(f"{name}: w has shape {w.shape} but dw has shape {dw.shape}; they must match")
    # A float64 dw would silently turn a float32 parameter into float64 after one step.
    check_same_dtype(name, "w", w.dtype, dw=dw)
    if config is None:
        config = {}
    elif not isinstance(config, dict):
        raise ValueError(f"{name}: config must be a dict or None, got {type(config).__name__}")
    return w, dw, config


def _hyper(name, config, key, default, low=-np.inf, high=np.inf, below=False):
    """``config[key]`` (``default`` at first) as a Python float in ``[low, high]``, or in
    ``[low, high)`` when ``below``.

    A Python float, because an ``np.float64`` learning rate (``np.logspace(-4, -2, 5)[0]``)
    would turn float32 weights into float64 (NumPy 2). The bounds refuse settings that
    cannot work rather than letting them turn the weights to NaN or junk a step later:
    ``beta1 = 1`` divides the bias correction by ``1 - beta1**t = 0``, ``decay_rate = 1``
    keeps RMSProp's cache at 0 and steps by ``learning_rate * dw / epsilon``.
    """
    return check_real(name, f"config['{key}']", config.setdefault(key, default), low, high, high_open=below)


def _state(config, key, w):
    """The state array ``config[key]``, zeros like w at first; a shape left over from another w is an error."""
    value = config.setdefault(key, np.zeros_like(w))
    if np.shape(value) != w.shape:
        raise ValueError(
            f"config['{key}'] has shape {np.shape(value)} but w has shape {w.shape}: "
            f"each parameter needs its own config dict"
        )
    if getattr(value, "dtype", w.dtype) != w.dtype:
        raise ValueError(f"config['{key}'] is {value.dtype} but w is {w.dtype}; the state must "
                         f"have the parameter's dtype (start from a fresh config after a cast)")
    return value


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: ``w - learning_rate * dw``.

    config: ``learning_rate`` (1e-2).
    """
    w, dw, config = _start("sgd", w, dw, config)
    lr = _hyper("sgd", config, "learning_rate", 1e-2, 0.0)
    return w - lr * dw, config


def sgd_momentum(w, dw, config=None):
    """SGD with momentum: ``v = momentum * v - learning_rate * dw``; ``w + v``.

    With a constant learning rate this is ``torch.optim.SGD(momentum=...)``, whose
    buffer ``b`` relates as ``v = -learning_rate * b``.

    config: ``learning_rate`` (1e-2), ``momentum`` (0.9); state ``velocity``.
    """
    w, dw, config = _start("sgd_momentum", w, dw, config)
    lr = _hyper("sgd_momentum", config, "learning_rate", 1e-2, 0.0)
    mu = _hyper("sgd_momentum", config, "momentum", 0.9, 0.0, 1.0)
    v = mu * _state(config, "velocity", w) - lr * dw
    config["velocity"] = v
    return w + v, config


def nesterov_momentum(w, dw, config=None):
    """Nesterov momentum in the look-ahead form of CS231n.

    ``v_prev = v; v = momentum * v - learning_rate * dw;``
    ``w + (-momentum * v_prev + (1 + momentum) * v)``. Algebraically equal to
    ``torch.optim.SGD(momentum=..., nesterov=True)`` at a constant learning rate.

    config: ``learning_rate`` (1e-2), ``momentum`` (0.9); state ``velocity``.
    """
    w, dw, config = _start("nesterov_momentum", w, dw, config)
    lr = _hyper("nesterov_momentum", config, "learning_rate", 1e-2, 0.0)
    mu = _hyper("nesterov_momentum", config, "momentum", 0.9, 0.0, 1.0)
    v_prev = _state(config, "velocity", w)
    v = mu * v_prev - lr * dw
    config["velocity"] = v
    return w - mu * v_prev + (1 + mu) * v, config


def rmsprop(w, dw, config=None):
    """RMSProp: a running mean of squared gradients scales each step.

    ``cache = decay_rate * cache + (1 - decay_rate) * dw**2``;
    ``w - learning_rate * dw / (sqrt(cache) + epsilon)``
    (``torch.optim.RMSprop(alpha=decay_rate, eps=epsilon)``).

    config: ``learning_rate`` (1e-2), ``decay_rate`` (0.99), ``epsilon`` (1e-8); state ``cache``.
    """
    w, dw, config = _start("rmsprop", w, dw, config)
    lr = _hyper("rmsprop", config, "learning_rate", 1e-2, 0.0)
    decay = _hyper("rmsprop", config, "decay_rate", 0.99, 0.0, 1.0, below=True)
    eps = _hyper("rmsprop", config, "epsilon", 1e-8, 0.0)
    cache = decay * _state(config, "cache", w) + (1 - decay) * (dw * dw)
    config["cache"] = cache
    return w - lr * dw / (np.sqrt(cache) + eps), config


def _adam_step(name, w, dw, config):
    """Advance Adam's moments in ``config`` and return the step ``-lr * m_hat / (sqrt(v_hat) + eps)``."""
    lr = _hyper(name, config, "learning_rate", 1e-3, 0.0)
    beta1 = _hyper(name, config, "beta1", 0.9, 0.0, 1.0, below=True)
    beta2 = _hyper(name, config, "beta2", 0.999, 0.0, 1.0, below=True)
    eps = _hyper(name, config, "epsilon", 1e-8, 0.0)
    config.setdefault("t", 0)
    m = beta1 * _state(config, "m", w) + (1 - beta1) * dw
    v = beta2 * _state(config, "v", w) + (1 - beta2) * (dw * dw)
    # t counts this step before the bias correction, so the first step divides by (1 - beta).
    config["t"] = t = int(config["t"]) + 1
    config["m"], config["v"] = m, v
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return -lr * m_hat / (np.sqrt(v_hat) + eps)


def adam(w, dw, config=None):
    """Adam: bias-corrected running means of the gradient and its square.

    ``m = beta1 * m + (1 - beta1) * dw``; ``v = beta2 * v + (1 - beta2) * dw**2``;
    ``t += 1``; ``w - learning_rate * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + epsilon)``
    (``torch.optim.Adam``).

    config: ``learning_rate`` (1e-3), ``beta1`` (0.9), ``beta2`` (0.999), ``epsilon`` (1e-8);
    state ``m``, ``v``, ``t``.
    """
    w, dw, config = _start("adam", w, dw, config)
    return w + _adam_step("adam", w, dw, config), config


def adamw(w, dw, config=None):
    """Adam with decoupled weight decay (Loshchilov & Hutter).

    The decay shrinks the weights directly, ``w * (1 - learning_rate * weight_decay)``,
    instead of entering the gradient, so Adam's per-weight scaling does not weaken it
    (``torch.optim.AdamW``).

    config: as ``adam``, plus ``weight_decay`` (1e-2).
    """
    w, dw, config = _start("adamw", w, dw, config)
    decay = _hyper("adamw", config, "weight_decay", 1e-2, 0.0)
    step = _adam_step("adamw", w, dw, config)
    return w * (1 - float(config["learning_rate"]) * decay) + step, config
