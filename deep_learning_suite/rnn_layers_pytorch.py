"""Recurrent layers in PyTorch: the forward passes of ``rnn_layers``, differentiated by autograd.

This is the 2025 edition of CS231n's ``rnn_layers_pytorch.py`` (assignment 2,
``RNN_Captioning_pytorch.ipynb``): every function takes and returns ``torch.Tensor``\\ s,
returns no cache, and has no backward pass of its own; ``out.backward(dout)`` gives the
gradients. The values are those of the NumPy layers in :mod:`deep_learning_suite.rnn_layers`
(the tests hold forward values and autograd gradients to their backward passes in float64).

Shapes: N sequences, T timesteps, D input features, H hidden units, V words in the vocabulary;
sequences are batch-first, ``x: (N, T, D)``. LSTM gates are stacked in CS231n's order, input,
forget, output, block input (``i, f, o, g``), along the 4H columns of ``Wx``, ``Wh`` and ``b``
(``torch.nn.LSTM`` uses i, f, g, o).

Inputs are checked up front, with a ``ValueError`` that names the argument: a float input
must be a tensor (the point is its gradient), all of a layer's float tensors must share one
dtype and device, and word indices must be integers in range. Indices, labels and masks,
which carry no gradient, may also be NumPy arrays.
"""

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "affine_forward", "rnn_step_forward", "rnn_forward", "word_embedding_forward",
    "lstm_step_forward", "lstm_forward", "temporal_affine_forward", "temporal_softmax_loss",
]


# ----------------------------------------------------------------------------- input checks

def _float_tensor(what, name, a):
    if not isinstance(a, torch.Tensor):
        hint = f"torch.from_numpy({name})" if isinstance(a, np.ndarray) else f"torch.tensor({name})"
        raise ValueError(f"{what}: {name} must be a torch.Tensor, got {type(a).__name__}; "
                         f"convert it with {hint}")
    if not a.dtype.is_floating_point:
        raise ValueError(f"{what}: {name} has dtype {a.dtype}; the layers compute in floating "
                         f"point: convert it with {name}.double() or {name}.float()")
    return a


def _check_ndim(what, name, a, ndim, layout=""):
    if a.dim() != ndim:
        layout = f" {layout}" if layout else ""
        raise ValueError(f"{what}: {name} must be {ndim}-D{layout}, got shape {tuple(a.shape)}")


def _check_alike(what, ref_name, ref, **tensors):
    """One dtype and one device for a layer's float tensors.

    PyTorch refuses mixed dtypes in a matrix product with a RuntimeError that names neither
    argument; a float32 layer handed one float64 tensor is a slip worth naming here.
    """
    for name, a in tensors.items():
        if a.dtype != ref.dtype:
            raise ValueError(f"{what}: {name} is {a.dtype} but {ref_name} is {ref.dtype}; the "
                             f"tensors of a layer must share one dtype: convert with "
                             f"{name}.to({ref.dtype})")
        if a.device != ref.device:
            raise ValueError(f"{what}: {name} is on {a.device} but {ref_name} is on {ref.device}; "
                             f"move it with {name}.to({str(ref.device)!r})")


def _index_tensor(what, name, a, V, device):
    """``a`` as a long tensor on ``device`` of indices in [0, V); arrays are converted."""
    if not isinstance(a, torch.Tensor):
        a = torch.as_tensor(np.asarray(a))
    if a.dtype.is_floating_point or a.dtype.is_complex or a.dtype == torch.bool:
        raise ValueError(f"{what}: {name} must hold integer word indices, got dtype {a.dtype}; "
                         f"convert with {name}.long()")
    a = a.to(device=device, dtype=torch.long)
    if a.numel():
        bad = a[(a < 0) | (a >= V)]
        if bad.numel():
            raise ValueError(f"{what}: {name} holds indices out of range: {bad[:5].tolist()} "
                             f"(expected 0 <= index < {V}, the vocabulary size)")
    return a


def _check_cell(what, x, prev_h, Wx, Wh, b, gates, x_layout):
    """Validate one cell's tensors; ``gates`` is 1 for the RNN, 4 for the LSTM."""
    for name, a in (("x", x), ("h", prev_h), ("Wx", Wx), ("Wh", Wh), ("b", b)):
        _float_tensor(what, name, a)
    _check_ndim(what, "x", x, len(x_layout.split(",")), x_layout)
    _check_ndim(what, "h", prev_h, 2, "(N, H)")
    _check_ndim(what, "Wx", Wx, 2)
    _check_ndim(what, "Wh", Wh, 2)
    N, D, H = x.shape[0], x.shape[-1], prev_h.shape[1]
    g = "" if gates == 1 else f"{gates} * "
    if prev_h.shape[0] != N:
        raise ValueError(f"{what}: x holds {N} sequences but the hidden state {tuple(prev_h.shape)} "
                         f"holds {prev_h.shape[0]}; both need the same N")
    if tuple(Wx.shape) != (D, gates * H):
        raise ValueError(f"{what}: Wx must be (D, {g}H) = {(D, gates * H)} for x {tuple(x.shape)} "
                         f"and hidden state {tuple(prev_h.shape)}, got {tuple(Wx.shape)}")
    if tuple(Wh.shape) != (H, gates * H):
        raise ValueError(f"{what}: Wh must be (H, {g}H) = {(H, gates * H)}, got {tuple(Wh.shape)}")
    if tuple(b.shape) != (gates * H,):
        raise ValueError(f"{what}: b must be ({g}H,) = ({gates * H},), got {tuple(b.shape)}")
    _check_alike(what, "x", x, h=prev_h, Wx=Wx, Wh=Wh, b=b)


def _check_affine(what, x, w, b, x_rows):
    """``x_rows`` is x reshaped to (rows, D); w must be (D, M) and b (M,)."""
    for name, a in (("w", w), ("b", b)):
        _float_tensor(what, name, a)
    _check_ndim(what, "w", w, 2, "(D, M)")
    D = x_rows.shape[1]
    if w.shape[0] != D:
        raise ValueError(f"{what}: w must have D = {D} rows to match x {tuple(x.shape)}, got "
                         f"{tuple(w.shape)}")
    if tuple(b.shape) != (w.shape[1],):
        raise ValueError(f"{what}: b must be (M,) = ({w.shape[1]},) to match w {tuple(w.shape)}, "
                         f"got {tuple(b.shape)}")
    _check_alike(what, "x", x, w=w, b=b)


# ----------------------------------------------------------------------------- affine

def affine_forward(x, w, b):
    """A fully connected layer, ``out = x.reshape(N, D) @ w + b``.

    The course's file keeps this here, for ``CaptioningRNN``'s projection of image features
    to the initial hidden state.

    Parameters
    ----------
    x : tensor, (N, d_1, ..., d_k), with D = d_1 * ... * d_k
    w : tensor, (D, M);  b : tensor, (M,)

    Returns
    -------
    out : tensor, (N, M)
    """
    what = "affine_forward"
    _float_tensor(what, "x", x)
    if x.dim() < 1:
        raise ValueError(f"{what}: x must have a leading batch axis N, got a scalar")
    rows = x.reshape(x.shape[0], -1)
    _check_affine(what, x, w, b, rows)
    return rows @ w + b


# ----------------------------------------------------------------------------- vanilla RNN

def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """One timestep of a tanh RNN: ``next_h = tanh(x @ Wx + prev_h @ Wh + b)``.

    Parameters
    ----------
    x : tensor, (N, D);  prev_h : tensor, (N, H)
    Wx : tensor, (D, H);  Wh : tensor, (H, H);  b : tensor, (H,)

    Returns
    -------
    next_h : tensor, (N, H)
    """
    _check_cell("rnn_step_forward", x, prev_h, Wx, Wh, b, 1, "(N, D)")
    return torch.tanh(x @ Wx + prev_h @ Wh + b)


def rnn_forward(x, h0, Wx, Wh, b):
    """A tanh RNN over whole sequences, from the initial hidden state ``h0``.

    ``x @ Wx + b`` does not depend on the hidden state, so it is one matrix product over all
    N * T rows before the loop; only ``h @ Wh`` and the tanh stay in it (as in
    :func:`deep_learning_suite.rnn_layers.rnn_forward`). Each step equals
    :func:`rnn_step_forward` up to round-off.

    Parameters
    ----------
    x : tensor, (N, T, D);  h0 : tensor, (N, H)
    Wx : tensor, (D, H);  Wh : tensor, (H, H);  b : tensor, (H,)

    Returns
    -------
    h : tensor, (N, T, H), the hidden state after each timestep
    """
    _check_cell("rnn_forward", x, h0, Wx, Wh, b, 1, "(N, T, D)")
    xw = x @ Wx + b
    hs, prev = [], h0
    for t in range(x.shape[1]):
        prev = torch.tanh(xw[:, t] + prev @ Wh)
        hs.append(prev)
    # Stacking a list, rather than writing into a preallocated tensor, keeps every step an
    # ordinary out-of-place op for autograd.
    return torch.stack(hs, dim=1) if hs else xw.new_zeros(x.shape[0], 0, h0.shape[1])


# ----------------------------------------------------------------------------- LSTM

def _lstm_cell(a, prev_c):
    """next_h, next_c from the pre-activations ``a`` (N, 4H), gates in the order i, f, o, g."""
    H = prev_c.shape[1]
    ifo = torch.sigmoid(a[:, :3 * H])               # the three sigmoid gates in one call
    i, f, o = ifo[:, :H], ifo[:, H:2 * H], ifo[:, 2 * H:]
    next_c = f * prev_c + i * torch.tanh(a[:, 3 * H:])
    return o * torch.tanh(next_c), next_c


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One LSTM timestep.

    ``a = x @ Wx + prev_h @ Wh + b`` split into four (N, H) blocks;
    ``i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o)``, ``g = tanh(a_g)``;
    ``next_c = f * prev_c + i * g``, ``next_h = o * tanh(next_c)``.

    Parameters
    ----------
    x : tensor, (N, D);  prev_h, prev_c : tensor, (N, H)
    Wx : tensor, (D, 4H);  Wh : tensor, (H, 4H);  b : tensor, (4H,)

    Returns
    -------
    next_h, next_c : tensor, (N, H)
    """
    what = "lstm_step_forward"
    _check_cell(what, x, prev_h, Wx, Wh, b, 4, "(N, D)")
    _float_tensor(what, "prev_c", prev_c)
    if prev_c.shape != prev_h.shape:
        raise ValueError(f"{what}: prev_c must have prev_h's shape {tuple(prev_h.shape)}, got "
                         f"{tuple(prev_c.shape)}")
    _check_alike(what, "x", x, prev_c=prev_c)
    return _lstm_cell(x @ Wx + prev_h @ Wh + b, prev_c)


def lstm_forward(x, h0, Wx, Wh, b):
    """An LSTM over whole sequences from hidden state ``h0``; the cell state starts at zero.

    As in :func:`rnn_forward`, ``x @ Wx + b`` is computed for all timesteps before the loop.

    Parameters
    ----------
    x : tensor, (N, T, D);  h0 : tensor, (N, H)
    Wx : tensor, (D, 4H);  Wh : tensor, (H, 4H);  b : tensor, (4H,)

    Returns
    -------
    h : tensor, (N, T, H), the hidden state after each timestep (cell states are internal)
    """
    _check_cell("lstm_forward", x, h0, Wx, Wh, b, 4, "(N, T, D)")
    xw = x @ Wx + b
    hs, prev, c = [], h0, torch.zeros_like(h0)
    for t in range(x.shape[1]):
        prev, c = _lstm_cell(xw[:, t] + prev @ Wh, c)
        hs.append(prev)
    return torch.stack(hs, dim=1) if hs else xw.new_zeros(x.shape[0], 0, h0.shape[1])


# ----------------------------------------------------------------------------- words and outputs

def word_embedding_forward(x, W):
    """Look up a vector for every word: ``out[n, t] = W[x[n, t]]``.

    Autograd's backward of the indexing sums the gradients of a word's repeated uses into
    its row of ``W``, as ``word_embedding_backward`` does with ``np.add.at``.

    Parameters
    ----------
    x : tensor (or array) of int, (N, T), with 0 <= x < V
    W : tensor, (V, D), one row per word

    Returns
    -------
    out : tensor, (N, T, D)
    """
    what = "word_embedding_forward"
    _float_tensor(what, "W", W)
    _check_ndim(what, "W", W, 2, "(V, D)")
    x = _index_tensor(what, "x", x, W.shape[0], W.device)
    _check_ndim(what, "x", x, 2, "(N, T)")
    return W[x]


def temporal_affine_forward(x, w, b):
    """The same affine map at every timestep: ``out[:, t] = x[:, t] @ w + b``.

    Parameters
    ----------
    x : tensor, (N, T, D);  w : tensor, (D, M);  b : tensor, (M,)

    Returns
    -------
    out : tensor, (N, T, M)
    """
    what = "temporal_affine_forward"
    _float_tensor(what, "x", x)
    _check_ndim(what, "x", x, 3, "(N, T, D)")
    N, T, D = x.shape
    rows = x.reshape(N * T, D)
    _check_affine(what, x, w, b, rows)
    return (rows @ w + b).reshape(N, T, w.shape[1])


def temporal_softmax_loss(x, y, mask, verbose=False):
    """Softmax cross-entropy at every timestep, summed over time and averaged over sequences.

    ``loss = -(1 / N) * sum_{n, t} mask[n, t] * log softmax(x[n, t])[y[n, t]]``. The mask
    drops the padding after a sequence's end from the loss, and so from the gradient.

    Parameters
    ----------
    x : tensor, (N, T, V) scores
    y : tensor (or array) of int, (N, T), with 0 <= y < V
    mask : tensor (or array) of bool, (N, T); True where ``x[n, t]`` counts (0/1 numbers work
        too; any other value is refused)
    verbose : bool
        Print the shape of the flattened scores (the NumPy version prints its gradient's).

    Returns
    -------
    loss : tensor, a scalar of x's dtype
    """
    what = "temporal_softmax_loss"
    _float_tensor(what, "x", x)
    _check_ndim(what, "x", x, 3, "(N, T, V) of scores")
    N, T, V = x.shape
    if N == 0:
        raise ValueError(f"{what}: empty batch (N = 0)")
    y = _index_tensor(what, "y", y, V, x.device)
    if not isinstance(mask, torch.Tensor):
        mask = torch.as_tensor(np.asarray(mask))
    for name, a in (("y", y), ("mask", mask)):
        if tuple(a.shape) != (N, T):
            raise ValueError(f"{what}: {name} must be (N, T) = {(N, T)} to match scores "
                             f"{tuple(x.shape)}, got {tuple(a.shape)}")
    if mask.dtype != torch.bool:
        # As the NumPy version: a weight of 2, -1 or NaN would scale, flip or poison the loss.
        binary = (mask == 0) | (mask == 1)
        if not bool(binary.all()):
            raise ValueError(f"{what}: mask must be boolean (True where a score counts) or hold "
                             f"only 0 and 1, got {mask[~binary][:5].tolist()}; use a boolean "
                             f"mask such as captions != NULL")
    x_flat = x.reshape(N * T, V)
    if verbose:
        print("x_flat: ", tuple(x_flat.shape))
    # log_softmax subtracts each row's maximum, so large scores stay finite.
    picked = F.log_softmax(x_flat, dim=1).gather(1, y.reshape(N * T, 1)).squeeze(1)
    weights = mask.reshape(N * T).to(device=x.device, dtype=x.dtype)
    return -(weights * picked).sum() / N
