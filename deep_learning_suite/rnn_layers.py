"""Recurrent layers: vanilla RNN and LSTM cells, word embeddings, and per-timestep affine and loss.

Shapes: N sequences, T timesteps, D input features, H hidden units, V words in the
vocabulary. Sequences are batch-first, ``x: (N, T, D)``, as in CS231n.

The sequence layers do the input projection ``x @ Wx`` for all T timesteps in one matrix
product, outside the time loop, since it does not depend on the hidden state; only ``h @ Wh``
and the nonlinearities stay in the loop. Their backward passes likewise form ``dx``, ``dWx``
and ``dWh`` after the loop, each as one product over all N*T rows instead of T small ones
(``benchmarks/bench_rnn.py``: 0.56-0.88x the time of the step-by-step loop). Inside, arrays
are time-major, (T, N, .), so that each step reads and writes one contiguous block.

LSTM gates are stacked in the order input, forget, output, block input (``i, f, o, g``)
along the 4H columns of ``Wx``, ``Wh`` and ``b``: CS231n's order (PyTorch uses i, f, g, o).
"""

import numpy as np

from ._validate import check_float, check_indices, check_ndim, check_same_dtype
from .layers import affine_backward, affine_forward, log_softmax


def sigmoid(x):
    """Logistic function ``1 / (1 + exp(-x))``, accurate to round-off for every ``x``.

    For x below about -88 (float32) or -709 (float64) ``exp(-x)`` overflows to inf and the
    result is the correct limit 0, so that overflow is silenced rather than warned about.
    """
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def _check_cell(what, x, prev_h, Wx, Wh, b, gates, x_layout):
    """Validate one cell's arrays; ``gates`` is 1 for the RNN, 4 for the LSTM."""
    x, prev_h = check_float("x", x), check_float("h", prev_h)
    Wx, Wh, b = check_float("Wx", Wx), check_float("Wh", Wh), check_float("b", b)
    check_ndim("x", x, len(x_layout.split(",")), x_layout)
    check_ndim("h", prev_h, 2, "(N, H)")
    check_ndim("Wx", Wx, 2)
    check_ndim("Wh", Wh, 2)
    N, D, H = x.shape[0], x.shape[-1], prev_h.shape[1]
    g = "" if gates == 1 else f"{gates} * "
    if prev_h.shape[0] != N:
        raise ValueError(f"{what}: x holds {N} sequences but the hidden state {prev_h.shape} holds "
                         f"{prev_h.shape[0]}; both need the same N")
    if Wx.shape != (D, gates * H):
        raise ValueError(f"{what}: Wx must be (D, {g}H) = {(D, gates * H)} for x {x.shape} and hidden "
                         f"state {prev_h.shape}, got {Wx.shape}")
    if Wh.shape != (H, gates * H):
        raise ValueError(f"{what}: Wh must be (H, {g}H) = {(H, gates * H)}, got {Wh.shape}")
    if b.shape != (gates * H,):
        raise ValueError(f"{what}: b must be ({g}H,) = ({gates * H},), got {b.shape}")
    check_same_dtype(what, "x", x.dtype, h=prev_h, Wx=Wx, Wh=Wh, b=b)
    return x, prev_h, Wx, Wh, b


def _check_grad(what, name, d, shape, dtype):
    if d.shape != shape:
        raise ValueError(f"{what}: {name} must have the forward output's shape {shape}, got {d.shape}")
    check_same_dtype(what, "the forward's x", dtype, **{name: d})


def _time_major(x):
    """(N, T, D) -> contiguous (T, N, D): each step then reads one contiguous block."""
    return np.ascontiguousarray(x.transpose(1, 0, 2))


def _batch_major(a):
    return np.ascontiguousarray(a.transpose(1, 0, 2))


def _weight_grads(da, x_tm, h0, h, Wx):
    """dx (N, T, D), dWx, dWh, db from every step's pre-activation gradient ``da`` (T, N, gH),
    each as one GEMM over all T * N rows.

    The reshapes name every length instead of using -1, which NumPy cannot infer for an
    empty array: with T = 0 (or N = 0) the products are over zero rows, so dWx, dWh and db
    come out as zeros, the correct gradients of an empty output.
    """
    T, N, gH = da.shape
    D, H = Wx.shape[0], h0.shape[1]
    da2 = da.reshape(T * N, gH)
    # The state before each step; [:T] keeps only h0 ... h[T - 2] (none when T = 0).
    prev_h = np.concatenate([h0[None], h[:-1]], axis=0)[:T].reshape(T * N, H)
    dx = _batch_major((da2 @ Wx.T).reshape(T, N, D))
    dWx = x_tm.reshape(T * N, D).T @ da2
    return dx, dWx, prev_h.T @ da2, da2.sum(axis=0)


# ----------------------------------------------------------------------------- vanilla RNN

def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """One timestep of a tanh RNN: ``next_h = tanh(x @ Wx + prev_h @ Wh + b)``.

    Parameters
    ----------
    x : ndarray, (N, D);  prev_h : ndarray, (N, H)
    Wx : ndarray, (D, H);  Wh : ndarray, (H, H);  b : ndarray, (H,)

    Returns
    -------
    next_h : ndarray, (N, H)
    cache : for ``rnn_step_backward``
    """
    x, prev_h, Wx, Wh, b = _check_cell("rnn_step_forward", x, prev_h, Wx, Wh, b, 1, "(N, D)")
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    """Backward of ``rnn_step_forward``; ``tanh' = 1 - tanh**2`` reuses the saved output.

    Parameters
    ----------
    dnext_h : ndarray, (N, H), upstream gradient of ``next_h``
    cache : the ``cache`` returned by the ``rnn_step_forward`` call

    Returns
    -------
    dx : (N, D);  dprev_h : (N, H);  dWx : (D, H);  dWh : (H, H);  db : (H,)
    """
    x, prev_h, Wx, Wh, next_h = cache
    _check_grad("rnn_step_backward", "dnext_h", dnext_h, next_h.shape, x.dtype)
    da = dnext_h * (1 - next_h ** 2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def rnn_forward(x, h0, Wx, Wh, b):
    """A tanh RNN over whole sequences, from the initial hidden state ``h0``.

    Parameters
    ----------
    x : ndarray, (N, T, D);  h0 : ndarray, (N, H)
    Wx : ndarray, (D, H);  Wh : ndarray, (H, H);  b : ndarray, (H,)

    Returns
    -------
    h : ndarray, (N, T, H), the hidden state after each timestep; (N, 0, H) for T = 0,
        whose backward gives zero gradients and ``dh0`` of zeros
    cache : for ``rnn_backward``
    """
    x, h0, Wx, Wh, b = _check_cell("rnn_forward", x, h0, Wx, Wh, b, 1, "(N, T, D)")
    x_tm = _time_major(x)
    T, N, H = x_tm.shape[0], x_tm.shape[1], h0.shape[1]
    # Explicit D: reshape(T * N, -1) cannot infer it when T or N is 0.
    xw = (x_tm.reshape(T * N, x_tm.shape[2]) @ Wx + b).reshape(T, N, H)
    h = np.empty((T, N, H), dtype=x.dtype)
    prev = h0
    for t in range(T):
        prev = np.tanh(xw[t] + prev @ Wh, out=h[t])
    return _batch_major(h), (x_tm, h0, Wx, Wh, h)


def rnn_backward(dh, cache):
    """Backward of ``rnn_forward``: backpropagation through time.

    Parameters
    ----------
    dh : ndarray, (N, T, H), upstream gradient of every hidden state (not only the last)
    cache : the ``cache`` returned by the ``rnn_forward`` call (its inputs, time-major, and
        every hidden state); ``dh`` must be of that call's dtype

    Returns
    -------
    dx : (N, T, D);  dh0 : (N, H);  dWx : (D, H);  dWh : (H, H);  db : (H,)
    """
    x_tm, h0, Wx, Wh, h = cache
    T, N, H = h.shape
    _check_grad("rnn_backward", "dh", dh, (N, T, H), h.dtype)
    dh = dh.transpose(1, 0, 2)
    da = np.empty_like(h)           # gradient of each step's tanh input
    dnext = np.zeros_like(h0)
    for t in reversed(range(T)):
        da[t] = (dh[t] + dnext) * (1 - h[t] ** 2)
        dnext = da[t] @ Wh.T
    dx, dWx, dWh, db = _weight_grads(da, x_tm, h0, h, Wx)
    return dx, dnext, dWx, dWh, db


# ----------------------------------------------------------------------------- LSTM

def _lstm_cell(a, prev_c):
    """Gates from the pre-activations ``a`` (N, 4H): returns next_h, next_c and the gates."""
    H = prev_c.shape[1]
    ifo = sigmoid(a[:, :3 * H])                     # i, f, o side by side: one pass
    g = np.tanh(a[:, 3 * H:])
    next_c = ifo[:, H:2 * H] * prev_c + ifo[:, :H] * g
    tanh_c = np.tanh(next_c)
    return ifo[:, 2 * H:] * tanh_c, next_c, (ifo, g, tanh_c)


def _lstm_cell_backward(dnext_h, dnext_c, prev_c, gates):
    """Gradients of ``_lstm_cell``: (da (N, 4H), dprev_c (N, H))."""
    ifo, g, tanh_c = gates
    H = g.shape[1]
    i, f, o = ifo[:, :H], ifo[:, H:2 * H], ifo[:, 2 * H:]
    dc = dnext_c + dnext_h * o * (1 - tanh_c ** 2)
    da = np.empty((g.shape[0], 4 * H), dtype=g.dtype)
    da[:, :H], da[:, H:2 * H], da[:, 2 * H:3 * H] = dc * g, dc * prev_c, dnext_h * tanh_c
    da[:, :3 * H] *= ifo * (1 - ifo)                # sigmoid' = s (1 - s)
    da[:, 3 * H:] = dc * i * (1 - g ** 2)
    return da, dc * f


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One LSTM timestep.

    ``a = x @ Wx + prev_h @ Wh + b`` split into four (N, H) blocks;
    ``i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o)``, ``g = tanh(a_g)``;
    ``next_c = f * prev_c + i * g``, ``next_h = o * tanh(next_c)``.

    Parameters
    ----------
    x : ndarray, (N, D);  prev_h, prev_c : ndarray, (N, H)
    Wx : ndarray, (D, 4H);  Wh : ndarray, (H, 4H);  b : ndarray, (4H,)

    Returns
    -------
    next_h, next_c : ndarray, (N, H)
    cache : for ``lstm_step_backward``
    """
    x, prev_h, Wx, Wh, b = _check_cell("lstm_step_forward", x, prev_h, Wx, Wh, b, 4, "(N, D)")
    prev_c = check_float("prev_c", prev_c)
    if prev_c.shape != prev_h.shape:
        raise ValueError(f"lstm_step_forward: prev_c must have prev_h's shape {prev_h.shape}, "
                         f"got {prev_c.shape}")
    check_same_dtype("lstm_step_forward", "x", x.dtype, prev_c=prev_c)
    next_h, next_c, gates = _lstm_cell(x @ Wx + prev_h @ Wh + b, prev_c)
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, gates)


def lstm_step_backward(dnext_h, dnext_c, cache):
    """Backward of ``lstm_step_forward``.

    Parameters
    ----------
    dnext_h, dnext_c : ndarray, (N, H), upstream gradients of ``next_h`` and ``next_c``
    cache : the ``cache`` returned by the ``lstm_step_forward`` call

    Returns
    -------
    dx : (N, D);  dprev_h, dprev_c : (N, H);  dWx : (D, 4H);  dWh : (H, 4H);  db : (4H,)
    """
    x, prev_h, prev_c, Wx, Wh, gates = cache
    _check_grad("lstm_step_backward", "dnext_h", dnext_h, prev_h.shape, x.dtype)
    _check_grad("lstm_step_backward", "dnext_c", dnext_c, prev_h.shape, x.dtype)
    da, dprev_c = _lstm_cell_backward(dnext_h, dnext_c, prev_c, gates)
    return da @ Wx.T, da @ Wh.T, dprev_c, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def lstm_forward(x, h0, Wx, Wh, b):
    """An LSTM over whole sequences from hidden state ``h0``; the cell state starts at zero.

    Parameters
    ----------
    x : ndarray, (N, T, D);  h0 : ndarray, (N, H)
    Wx : ndarray, (D, 4H);  Wh : ndarray, (H, 4H);  b : ndarray, (4H,)

    Returns
    -------
    h : ndarray, (N, T, H), the hidden state after each timestep (cell states are internal);
        (N, 0, H) for T = 0, whose backward gives zero gradients and ``dh0`` of zeros
    cache : for ``lstm_backward``
    """
    x, h0, Wx, Wh, b = _check_cell("lstm_forward", x, h0, Wx, Wh, b, 4, "(N, T, D)")
    x_tm = _time_major(x)
    T, N, H = x_tm.shape[0], x_tm.shape[1], h0.shape[1]
    # Explicit D: reshape(T * N, -1) cannot infer it when T or N is 0.
    xw = (x_tm.reshape(T * N, x_tm.shape[2]) @ Wx + b).reshape(T, N, 4 * H)
    h = np.empty((T, N, H), dtype=x.dtype)
    c = np.zeros((T + 1, N, H), dtype=x.dtype)      # c[0] is c0, c[t + 1] step t's
    steps, prev = [], h0
    for t in range(T):
        h[t], c[t + 1], gates = _lstm_cell(xw[t] + prev @ Wh, c[t])
        prev = h[t]
        steps.append(gates)
    return _batch_major(h), (x_tm, h0, Wx, Wh, h, c, steps)


def lstm_backward(dh, cache):
    """Backward of ``lstm_forward``: backpropagation through time.

    Parameters
    ----------
    dh : ndarray, (N, T, H), upstream gradient of every hidden state
    cache : the ``cache`` returned by the ``lstm_forward`` call (its inputs, time-major, the
        hidden and cell states and each step's gates); ``dh`` must be of that call's dtype

    Returns
    -------
    dx : (N, T, D);  dh0 : (N, H);  dWx : (D, 4H);  dWh : (H, 4H);  db : (4H,)
    """
    x_tm, h0, Wx, Wh, h, c, steps = cache
    T, N, H = h.shape
    _check_grad("lstm_backward", "dh", dh, (N, T, H), h.dtype)
    dh = dh.transpose(1, 0, 2)
    da = np.empty((T, N, 4 * H), dtype=h.dtype)
    dnext_h, dnext_c = np.zeros_like(h0), np.zeros_like(h0)
    for t in reversed(range(T)):
        da[t], dnext_c = _lstm_cell_backward(dh[t] + dnext_h, dnext_c, c[t], steps[t])
        dnext_h = da[t] @ Wh.T
    dx, dWx, dWh, db = _weight_grads(da, x_tm, h0, h, Wx)
    return dx, dnext_h, dWx, dWh, db


# ----------------------------------------------------------------------------- words and outputs

def word_embedding_forward(x, W):
    """Look up a vector for every word: ``out[n, t] = W[x[n, t]]``.

    Parameters
    ----------
    x : ndarray of int, (N, T), with 0 <= x < V
    W : ndarray, (V, D), one row per word

    Returns
    -------
    out : ndarray, (N, T, D)
    cache : (x, W)
    """
    W = check_ndim("W", check_float("W", W), 2, "(V, D)")
    x = check_ndim("x", check_indices("word_embedding_forward", x, W.shape[0]), 2, "(N, T)")
    return W[x], (x, W)


def word_embedding_backward(dout, cache):
    """Backward of ``word_embedding_forward``: each word's row sums the gradients of its uses.

    Returns
    -------
    dW : ndarray, (V, D)
    """
    x, W = cache
    _check_grad("word_embedding_backward", "dout", dout, x.shape + W.shape[1:], W.dtype)
    dW = np.zeros_like(W)
    np.add.at(dW, x.ravel(), dout.reshape(-1, W.shape[1]))   # repeated words must accumulate
    return dW


def temporal_affine_forward(x, w, b):
    """The same affine map at every timestep: ``out[:, t] = x[:, t] @ w + b``.

    Parameters
    ----------
    x : ndarray, (N, T, D);  w : ndarray, (D, M);  b : ndarray, (M,)

    Returns
    -------
    out : ndarray, (N, T, M)
    cache : for ``temporal_affine_backward``
    """
    x = check_ndim("x", check_float("x", x), 3, "(N, T, D)")
    N, T, D = x.shape
    out, cache = affine_forward(x.reshape(N * T, D), w, b)
    # Explicit widths: -1 cannot be inferred from an empty array (T = 0 after an rnn_forward
    # of no steps, or N = 0).
    return out.reshape(N, T, out.shape[1]), (cache, x.shape)


def temporal_affine_backward(dout, cache):
    """Backward of ``temporal_affine_forward``.

    Returns
    -------
    dx : (N, T, D);  dw : (D, M);  db : (M,)
    """
    affine_cache, shape = cache
    M = affine_cache[1].shape[1]
    _check_grad("temporal_affine_backward", "dout", dout, shape[:2] + (M,), affine_cache[0].dtype)
    # Explicit widths, so that empty batches, T = 0 and M = 0 give empty or zero gradients.
    dx, dw, db = affine_backward(dout.reshape(shape[0] * shape[1], M), affine_cache)
    return dx.reshape(shape), dw, db


def temporal_softmax_loss(x, y, mask, verbose=False):
    """Softmax cross-entropy at every timestep, summed over time and averaged over sequences.

    ``loss = -(1 / N) * sum_{n, t} mask[n, t] * log softmax(x[n, t])[y[n, t]]``. The mask
    drops the padding after a sequence's end from the loss and the gradient.

    Parameters
    ----------
    x : ndarray, (N, T, V) scores
    y : ndarray of int, (N, T), with 0 <= y < V
    mask : ndarray of bool, (N, T); True where ``x[n, t]`` counts. Integers or floats that
        are all 0 or 1 are accepted as the same; other values (0.5, NaN) are refused, since
        a weighted or NaN mask would silently scale or poison the loss.
    verbose : bool
        Print the shape of the flattened gradient, as the course's version does.

    Returns
    -------
    loss : float (a scalar of x's dtype);  dx : ndarray, (N, T, V)
    """
    x = check_ndim("x", check_float("x", x), 3, "(N, T, V) of scores")
    N, T, V = x.shape
    if N == 0:
        raise ValueError("temporal_softmax_loss: empty batch (N = 0)")
    y = check_indices("temporal_softmax_loss", y, V, name="y")
    mask = np.asarray(mask)
    for name, a in (("y", y), ("mask", mask)):
        if a.shape != (N, T):
            raise ValueError(f"temporal_softmax_loss: {name} must be (N, T) = {(N, T)} to match "
                             f"scores {x.shape}, got {a.shape}")
    if mask.dtype != bool:
        # One O(N * T) pass, small beside the O(N * T * V) softmax.
        if mask.dtype.kind not in "iuf":
            raise ValueError(f"temporal_softmax_loss: mask must be boolean (True where a score "
                             f"counts) or hold only 0 and 1, got dtype {mask.dtype}")
        binary = (mask == 0) | (mask == 1)
        if not binary.all():
            raise ValueError(f"temporal_softmax_loss: mask must be boolean (True where a score "
                             f"counts) or hold only 0 and 1, got {mask[~binary][:5].tolist()}; "
                             f"use a boolean mask such as captions != NULL")
    x2, y2, m = x.reshape(N * T, V), y.ravel(), mask.ravel().astype(x.dtype)
    rows = np.arange(N * T)
    log_probs = log_softmax(x2)
    loss = -(m * log_probs[rows, y2]).sum() / N
    dx = np.exp(log_probs)
    dx[rows, y2] -= 1
    dx *= m[:, None] / N
    if verbose:
        print("dx_flat: ", dx.shape)
    return loss, dx.reshape(N, T, V)
