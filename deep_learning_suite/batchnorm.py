"""Batch, layer and group normalisation.

All three normalise some group of entries to zero mean and unit (biased) variance,
``xhat = (x - mean) / sqrt(var + eps)``, then scale and shift per feature,
``out = gamma * xhat + beta``. They differ only in which entries form a group:

* batch norm: each feature over the batch (axis 0 of ``(N, D)``);
* layer norm: each sample over its features (axis 1 of ``(N, D)``);
* group norm: each sample over a group of ``C // G`` channels and all pixels.

Each backward sits right below its forward. The derivation of the closed-form
gradient used by ``batchnorm_backward_alt`` is in ``deep_learning_suite/README.md``.
"""

import numpy as np

from ._validate import check_float, check_mode, check_ndim, check_param, check_real, check_same_dtype


def _check_scale_shift(what, gamma, beta, shape, x):
    """Require gamma and beta of ``shape`` and x's dtype; the message names x's shape so the
    fix is obvious."""
    gamma, beta = check_param("gamma", gamma, x.dtype), check_param("beta", beta, x.dtype)
    for name, a in (("gamma", gamma), ("beta", beta)):
        if a.shape != tuple(shape):
            raise ValueError(
                f"{what}: {name} must have shape {tuple(shape)} to match x of shape "
                f"{tuple(x.shape)}, got {a.shape}"
            )
    check_same_dtype(what, "x", x.dtype, gamma=gamma, beta=beta)
    return gamma, beta


def _check_dout(what, dout, shape, dtype):
    if dout.shape != tuple(shape):
        raise ValueError(f"{what}: dout must have shape {tuple(shape)} (the forward's output), got {dout.shape}")
    check_same_dtype(what, "the forward's x", dtype, dout=dout)


def _setting(what, param, key, default, low, high=np.inf):
    """``param[key]`` as a Python float in [low, high] (``check_real``): an ``np.float64`` eps or
    momentum would promote a float32 batch, a negative eps make ``sqrt(var + eps)`` NaN."""
    return check_real(what, key, (param or {}).get(key, default), low, high)


def _normalized_backward(dxhat, xhat, inv_std, axis):
    """Gradient through ``xhat = (x - mean) / std`` where mean and std are taken over ``axis``.

    ``dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))``, means over ``axis``.
    Shared by layer and group norm; batch norm's ``_alt`` is the same formula on axis 0.
    """
    mean_dxhat = dxhat.mean(axis=axis, keepdims=True)
    mean_dxhat_xhat = (dxhat * xhat).mean(axis=axis, keepdims=True)
    return inv_std * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)


# --------------------------------------------------------------------------- batch norm


def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalisation of a batch of feature vectors.

    In 'train' mode the batch mean and biased variance normalise ``x`` and update the
    running averages stored in ``bn_param``::

        running_mean = momentum * running_mean + (1 - momentum) * batch_mean

    (the same for ``running_var``). In 'test' mode the running averages are used instead.

    Parameters
    ----------
    x : ndarray, (N, D)
    gamma, beta : ndarray, (D,)
        Per-feature scale and shift.
    bn_param : dict
        ``mode`` ('train' or 'test', required); ``eps`` (1e-5); ``momentum`` (0.9);
        ``running_mean``, ``running_var`` ((D,), created as zeros of x's dtype when absent,
        and replaced in the dict after each training step).

    Returns
    -------
    out : ndarray, (N, D), x's dtype
    cache : opaque, for ``batchnorm_backward`` / ``batchnorm_backward_alt``
    """
    mode = check_mode("bn_param", bn_param)
    x = check_float("x", x)
    check_ndim("x", x, 2, "(N, D); use spatial_batchnorm_forward for (N, C, H, W)")
    N, D = x.shape
    gamma, beta = _check_scale_shift("batchnorm_forward", gamma, beta, (D,), x)
    eps = _setting("batchnorm_forward", bn_param, "eps", 1e-5, 0.0)
    momentum = _setting("batchnorm_forward", bn_param, "momentum", 0.9, 0.0, 1.0)
    running_mean = bn_param.get("running_mean")
    running_var = bn_param.get("running_var")
    if running_mean is None:
        running_mean = np.zeros(D, dtype=x.dtype)
    if running_var is None:
        running_var = np.zeros(D, dtype=x.dtype)
    for name, a in (("running_mean", running_mean), ("running_var", running_var)):
        if np.shape(a) != (D,):
            raise ValueError(
                f"batchnorm_forward: bn_param['{name}'] has shape {np.shape(a)} but x has D = {D} "
                f"features; it must be ({D},) (drop it from bn_param to start afresh)"
            )

    if mode == "train":
        if N == 0:
            raise ValueError("batchnorm_forward: empty batch (N = 0) has no statistics")
        # Staged exactly as batchnorm_backward walks the graph back.
        mu = x.mean(axis=0)
        xmu = x - mu
        var = (xmu * xmu).mean(axis=0)
        std = np.sqrt(var + eps)
        inv_std = 1.0 / std
        xhat = xmu * inv_std
        out = gamma * xhat + beta
        bn_param["running_mean"] = momentum * running_mean + (1 - momentum) * mu
        bn_param["running_var"] = momentum * running_var + (1 - momentum) * var
        cache = {"mode": "train", "xmu": xmu, "xhat": xhat, "std": std, "inv_std": inv_std, "gamma": gamma}
    else:
        # Cast so that float64 running stats never promote a float32 batch.
        inv_std = (1.0 / np.sqrt(np.asarray(running_var) + eps)).astype(x.dtype, copy=False)
        xhat = (x - np.asarray(running_mean).astype(x.dtype, copy=False)) * inv_std
        out = gamma * xhat + beta
        bn_param["running_mean"] = running_mean
        bn_param["running_var"] = running_var
        cache = {"mode": "test", "xhat": xhat, "inv_std": inv_std, "gamma": gamma}
    return out, cache


def batchnorm_backward(dout, cache):
    """Backward of ``batchnorm_forward``, one node of the computation graph at a time.

    Parameters
    ----------
    dout : ndarray, (N, D)
    cache : from ``batchnorm_forward``

    Returns
    -------
    dx : (N, D);  dgamma : (D,);  dbeta : (D,)
    """
    xhat, inv_std, gamma = cache["xhat"], cache["inv_std"], cache["gamma"]
    _check_dout("batchnorm_backward", dout, xhat.shape, xhat.dtype)
    N = xhat.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    if cache["mode"] == "test":
        # Running statistics are constants: the layer is affine in x.
        return dxhat * inv_std, dgamma, dbeta

    xmu, std = cache["xmu"], cache["std"]
    # xhat = xmu * inv_std
    dinv_std = (dxhat * xmu).sum(axis=0)
    dxmu = dxhat * inv_std
    # inv_std = 1 / std
    dstd = -dinv_std / (std * std)
    # std = sqrt(var + eps)
    dvar = 0.5 * dstd / std
    # var = mean(xmu ** 2): every xmu[i] feeds var
    dxmu += (2.0 / N) * xmu * dvar
    # xmu = x - mu, and mu = mean(x)
    dmu = -dxmu.sum(axis=0)
    dx = dxmu + dmu / N
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    """Backward of ``batchnorm_forward`` through the simplified closed form.

    ``dx = gamma / (N * std) * (N * dout - sum(dout) - xhat * sum(dout * xhat))``,
    sums over the batch (derivation in the package README). Same cache and results as
    ``batchnorm_backward`` in fewer passes over memory.

    Returns
    -------
    dx : (N, D);  dgamma : (D,);  dbeta : (D,)
    """
    xhat, inv_std, gamma = cache["xhat"], cache["inv_std"], cache["gamma"]
    _check_dout("batchnorm_backward_alt", dout, xhat.shape, xhat.dtype)
    N = xhat.shape[0]
    dbeta = dout.sum(axis=0)
    # einsum reduces without materialising the (N, D) product.
    dgamma = np.einsum("nd,nd->d", dout, xhat)
    if cache["mode"] == "test":
        return dout * (gamma * inv_std), dgamma, dbeta
    # dx = (gamma / std) * (dout - (dbeta + xhat * dgamma) / N), built in one buffer.
    dx = xhat * (dgamma / N)
    dx += dbeta / N
    np.subtract(dout, dx, out=dx)
    dx *= gamma * inv_std
    return dx, dgamma, dbeta


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Batch norm of images: one mean and variance per channel over (N, H, W).

    Parameters
    ----------
    x : ndarray, (N, C, H, W)
    gamma, beta : ndarray, (C,)
    bn_param : dict, as for ``batchnorm_forward``

    Returns
    -------
    out : ndarray, (N, C, H, W)
    cache : opaque, for ``spatial_batchnorm_backward``
    """
    x = check_float("x", x)
    check_ndim("x", x, 4, "(N, C, H, W)")
    N, C, H, W = x.shape
    _check_scale_shift("spatial_batchnorm_forward", gamma, beta, (C,), x)
    if check_mode("bn_param", bn_param) == "train" and N * H * W == 0:
        raise ValueError(f"spatial_batchnorm_forward: x of shape {x.shape} has no pixels "
                         f"(N * H * W = 0) to take the batch statistics over")
    # Channels last, then every pixel of every image is one row of the vanilla layer.
    flat = x.transpose(0, 2, 3, 1).reshape(-1, C)
    out, bn_cache = batchnorm_forward(flat, gamma, beta, bn_param)
    out = np.ascontiguousarray(out.reshape(N, H, W, C).transpose(0, 3, 1, 2))
    return out, (bn_cache, x.shape)


def spatial_batchnorm_backward(dout, cache):
    """Backward of ``spatial_batchnorm_forward``.

    Returns
    -------
    dx : (N, C, H, W);  dgamma : (C,);  dbeta : (C,)
    """
    bn_cache, shape = cache
    _check_dout("spatial_batchnorm_backward", dout, shape, bn_cache["xhat"].dtype)
    N, C, H, W = shape
    flat = dout.transpose(0, 2, 3, 1).reshape(-1, C)
    dx, dgamma, dbeta = batchnorm_backward_alt(flat, bn_cache)
    dx = np.ascontiguousarray(dx.reshape(N, H, W, C).transpose(0, 3, 1, 2))
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------- layer norm


def layernorm_forward(x, gamma, beta, ln_param):
    """Layer normalisation: each sample normalised over its own features.

    The same in training and at test time (no running statistics), so ``mode`` is ignored.

    Parameters
    ----------
    x : ndarray, (N, D)
    gamma, beta : ndarray, (D,)
    ln_param : dict or None
        ``eps`` (1e-5).

    Returns
    -------
    out : ndarray, (N, D)
    cache : opaque, for ``layernorm_backward``
    """
    x = check_float("x", x)
    check_ndim("x", x, 2, "(N, D)")
    gamma, beta = _check_scale_shift("layernorm_forward", gamma, beta, (x.shape[1],), x)
    eps = _setting("layernorm_forward", ln_param, "eps", 1e-5, 0.0)
    if x.shape[1] == 0:
        raise ValueError(f"layernorm_forward: x of shape {x.shape} has no features to normalise")
    mu = x.mean(axis=1, keepdims=True)
    xmu = x - mu
    inv_std = 1.0 / np.sqrt((xmu * xmu).mean(axis=1, keepdims=True) + eps)
    xhat = xmu * inv_std
    out = gamma * xhat + beta
    return out, (xhat, inv_std, gamma)


def layernorm_backward(dout, cache):
    """Backward of ``layernorm_forward``.

    Returns
    -------
    dx : (N, D);  dgamma : (D,);  dbeta : (D,)
    """
    xhat, inv_std, gamma = cache
    _check_dout("layernorm_backward", dout, xhat.shape, xhat.dtype)
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dx = _normalized_backward(dout * gamma, xhat, inv_std, axis=1)
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------- group norm


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    """Group normalisation: per sample, over each group of ``C // G`` channels and all pixels.

    ``G = 1`` is layer norm over (C, H, W); ``G = C`` is instance norm.

    Parameters
    ----------
    x : ndarray, (N, C, H, W)
    gamma, beta : ndarray, (1, C, 1, 1)
    G : int
        Number of groups; must divide C.
    gn_param : dict or None
        ``eps`` (1e-5).

    Returns
    -------
    out : ndarray, (N, C, H, W)
    cache : opaque, for ``spatial_groupnorm_backward``
    """
    x = check_float("x", x)
    check_ndim("x", x, 4, "(N, C, H, W)")
    N, C, H, W = x.shape
    gamma, beta = _check_scale_shift("spatial_groupnorm_forward", gamma, beta, (1, C, 1, 1), x)
    if isinstance(G, bool) or not isinstance(G, (int, np.integer)) or G <= 0:
        raise ValueError(f"spatial_groupnorm_forward: G must be a positive integer, got {G!r}")
    if C % G != 0:
        raise ValueError(
            f"spatial_groupnorm_forward: C = {C} channels (x of shape {x.shape}) cannot be split "
            f"into G = {G} equal groups; pick G among the divisors of {C}"
        )
    eps = _setting("spatial_groupnorm_forward", gn_param, "eps", 1e-5, 0.0)
    # Explicit sizes: reshape cannot infer a -1 when N = 0.
    grouped = x.reshape(N, G, C // G * H * W)
    mu = grouped.mean(axis=2, keepdims=True)
    xmu = grouped - mu
    inv_std = 1.0 / np.sqrt((xmu * xmu).mean(axis=2, keepdims=True) + eps)
    xhat = xmu * inv_std
    out = gamma * xhat.reshape(x.shape) + beta
    return out, (xhat, inv_std, gamma, x.shape)


def spatial_groupnorm_backward(dout, cache):
    """Backward of ``spatial_groupnorm_forward``.

    Returns
    -------
    dx : (N, C, H, W);  dgamma : (1, C, 1, 1);  dbeta : (1, C, 1, 1)
    """
    xhat, inv_std, gamma, shape = cache
    _check_dout("spatial_groupnorm_backward", dout, shape, xhat.dtype)
    dbeta = dout.sum(axis=(0, 2, 3), keepdims=True)
    dgamma = (dout * xhat.reshape(shape)).sum(axis=(0, 2, 3), keepdims=True)
    dxhat = (dout * gamma).reshape(xhat.shape)
    dx = _normalized_backward(dxhat, xhat, inv_std, axis=2).reshape(shape)
    return dx, dgamma, dbeta
