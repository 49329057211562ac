"""``python -m deep_learning_suite gradcheck``: every backward pass against a numerical gradient.

Each check builds a small float64 problem, runs the layer's forward and backward, and compares
each analytic gradient with ``utils.eval_numerical_gradient_array`` (or
``eval_numerical_gradient`` for losses and models) through ``utils.rel_error``. Modules are
imported inside the checks, so a missing or broken module shows up as one FAIL row with the
import error instead of stopping the whole table.

Tolerances: 1e-7 for affine, ReLU, dropout, the recurrent layers and the losses; 1e-6 for the norms, conv and pool;
1e-5 for whole models (their loss sums many terms, so the centred difference is noisier);
a model gradient that is zero in exact arithmetic (a bias feeding batchnorm) is compared
absolutely, within 1e-8, and marked ``[~0, abs]``.
"""

import importlib

import numpy as np

_PKG = __package__


def _mod(name):
    return importlib.import_module(f"{_PKG}.{name}")


def _num(f, x, dout):
    return _mod("utils").eval_numerical_gradient_array(f, x, dout)


def _layer(forward, backward, inputs, names, rng, tol):
    """Rows for a layer ``forward(*inputs) -> (out, cache)`` whose backward returns one gradient
    per name in ``names`` (``"dx", "dw", "db"``), those of the first ``len(names)`` inputs."""
    rel_error = _mod("utils").rel_error
    out, cache = forward(*inputs)
    dout = rng.standard_normal(out.shape)
    grads = backward(dout, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    if len(grads) != len(names):
        raise ValueError(f"the backward returned {len(grads)} gradient(s), expected {', '.join(names)}")
    rows = []
    for i, (name, g) in enumerate(zip(names, grads)):
        def f(v, i=i):
            args = list(inputs)
            args[i] = v
            return forward(*args)[0]
        rows.append((name, rel_error(g, _num(f, inputs[i], dout)), tol))
    return rows


_XWB = ("dx", "dw", "db")
_NORM = ("dx", "dgamma", "dbeta")
_RNN_SEQ = ("dx", "dh0", "dWx", "dWh", "db")


def check_affine(rng):
    L = _mod("layers")
    x, w, b = rng.standard_normal((4, 3, 2)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    return _layer(L.affine_forward, L.affine_backward, [x, w, b], _XWB, rng, 1e-7)


def check_relu(rng):
    L = _mod("layers")
    x = rng.standard_normal((5, 7))
    x[np.abs(x) < 1e-2] = 0.5            # away from the kink
    return _layer(L.relu_forward, L.relu_backward, [x], ("dx",), rng, 1e-7)


def _loss_rows(loss_fn, rng):
    u = _mod("utils")
    x, y = 0.5 * rng.standard_normal((8, 5)), rng.integers(5, size=8)
    _, dx = loss_fn(x, y)
    return [("dx", u.rel_error(dx, u.eval_numerical_gradient(lambda v: loss_fn(v, y)[0], x,
                                                              verbose=False)), 1e-7)]


def check_softmax_loss(rng):
    return _loss_rows(_mod("layers").softmax_loss, rng)


def check_svm_loss(rng):
    return _loss_rows(_mod("layers").svm_loss, rng)


def _norm_inputs(rng, shape, gshape):
    x = 3 * rng.standard_normal(shape) + 1
    return x, 1 + 0.2 * rng.standard_normal(gshape), 0.3 * rng.standard_normal(gshape)


def check_batchnorm(rng):
    B = _mod("batchnorm")
    x, g, b = _norm_inputs(rng, (6, 4), (4,))
    fwd = lambda x, g, b: B.batchnorm_forward(x, g, b, {"mode": "train"})
    return [(f"{n} (backward)", e, t) for n, e, t in
            _layer(fwd, B.batchnorm_backward, [x, g, b], _NORM, rng, 1e-6)] + \
        [(f"{n} (backward_alt)", e, t) for n, e, t in
         _layer(fwd, B.batchnorm_backward_alt, [x, g, b], _NORM, rng, 1e-6)]


def check_spatial_batchnorm(rng):
    B = _mod("batchnorm")
    x, g, b = _norm_inputs(rng, (3, 2, 3, 4), (2,))
    fwd = lambda x, g, b: B.spatial_batchnorm_forward(x, g, b, {"mode": "train"})
    return _layer(fwd, B.spatial_batchnorm_backward, [x, g, b], _NORM, rng, 1e-6)


def check_layernorm(rng):
    B = _mod("batchnorm")
    x, g, b = _norm_inputs(rng, (4, 6), (6,))
    fwd = lambda x, g, b: B.layernorm_forward(x, g, b, {})
    return _layer(fwd, B.layernorm_backward, [x, g, b], _NORM, rng, 1e-6)


def check_groupnorm(rng):
    B = _mod("batchnorm")
    x, g, b = _norm_inputs(rng, (2, 6, 3, 3), (1, 6, 1, 1))
    fwd = lambda x, g, b: B.spatial_groupnorm_forward(x, g, b, 2, {})
    return _layer(fwd, B.spatial_groupnorm_backward, [x, g, b], _NORM, rng, 1e-6)


def check_dropout(rng):
    D = _mod("dropout")
    x = rng.standard_normal((6, 5))
    fwd = lambda x: D.dropout_forward(x, {"mode": "train", "p": 0.7, "seed": 123})
    return _layer(fwd, D.dropout_backward, [x], ("dx",), rng, 1e-7)


def _conv_rows(forward, backward, rng):
    x, w, b = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3)), \
        rng.standard_normal(4)
    rows = []
    for stride, pad in ((1, 1), (2, 0)):
        fwd = lambda x, w, b: forward(x, w, b, {"stride": stride, "pad": pad})
        rows += [(f"{n} s{stride}p{pad}", e, t) for n, e, t in
                 _layer(fwd, backward, [x, w, b], _XWB, rng, 1e-6)]
    return rows


def check_conv_naive(rng):
    C = _mod("conv_layers")
    return _conv_rows(C.conv_forward_naive, C.conv_backward_naive, rng)


def check_conv_fast(rng):
    F = _mod("fast_layers")
    return _conv_rows(F.conv_forward_fast, F.conv_backward_fast, rng)


def _pool_rows(forward, backward, rng):
    # distinct values, so no window has a tie the numerical gradient could straddle
    x = rng.permutation(2 * 3 * 6 * 6).reshape(2, 3, 6, 6).astype(np.float64) / 10
    fwd = lambda x: forward(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    return _layer(fwd, backward, [x], ("dx",), rng, 1e-6)


def check_pool_naive(rng):
    C = _mod("conv_layers")
    return _pool_rows(C.max_pool_forward_naive, C.max_pool_backward_naive, rng)


def check_pool_fast(rng):
    F = _mod("fast_layers")
    return _pool_rows(F.max_pool_forward_fast, F.max_pool_backward_fast, rng)


def _model_rows(model, X, y):
    u = _mod("utils")
    _, grads = model.loss(X, y)
    rows = []
    for name in sorted(model.params):
        num = u.eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name],
                                        verbose=False, h=1e-6)
        if max(np.abs(num).max(), np.abs(grads[name]).max()) < 1e-8:
            # A bias right before batchnorm has a zero gradient: a relative error of two
            # round-off values means nothing, so compare absolutely.
            rows.append((f"{name} [~0, abs]", float(np.abs(grads[name] - num).max()), 1e-8))
        else:
            rows.append((name, u.rel_error(grads[name], num), 1e-5))
    return rows


def check_fc_net(rng):
    FC = _mod("fully_connected_net").FullyConnectedNet
    X, y = rng.standard_normal((3, 8)), rng.integers(4, size=3)
    rows = []
    for norm in (None, "batchnorm", "layernorm"):
        model = FC([6, 5], input_dim=8, num_classes=4, normalization=norm, reg=0.1,
                   weight_scale=0.5, dtype=np.float64, seed=0)
        rows += [(f"{n} ({norm or 'plain'})", e, t) for n, e, t in _model_rows(model, X, y)]
    return rows


def check_cnn(rng):
    CNN = _mod("cnn_model").ThreeLayerConvNet
    np.random.seed(0)
    model = CNN(input_dim=(2, 6, 6), num_filters=3, filter_size=3, hidden_dim=5, num_classes=4,
                weight_scale=0.3, reg=0.05, dtype=np.float64)
    X, y = rng.standard_normal((2, 2, 6, 6)), rng.integers(4, size=2)
    return _model_rows(model, X, y)


def _cell(rng, N, D, H, gates, T=None):
    x = rng.standard_normal((N, D) if T is None else (N, T, D))
    return [x, rng.standard_normal((N, H)), rng.standard_normal((D, gates * H)) / np.sqrt(D),
            rng.standard_normal((H, gates * H)) / np.sqrt(H), rng.standard_normal(gates * H)]


def check_rnn(rng):
    R = _mod("rnn_layers")
    step = _layer(R.rnn_step_forward, R.rnn_step_backward, _cell(rng, 3, 4, 5, 1),
                  ("dx", "dprev_h", "dWx", "dWh", "db"), rng, 1e-7)
    return [(f"{n} (step)", e, t) for n, e, t in step] + \
        [(f"{n} (sequence)", e, t) for n, e, t in
         _layer(R.rnn_forward, R.rnn_backward, _cell(rng, 2, 3, 4, 1, T=6), _RNN_SEQ, rng, 1e-7)]


def check_lstm(rng):
    R = _mod("rnn_layers")
    H = 4
    inputs = _cell(rng, 3, 2, H, 4)
    inputs.insert(2, rng.standard_normal((3, H)))       # prev_c

    def step(*args):                # both outputs as one array, so one dout checks both
        h, c, cache = R.lstm_step_forward(*args)
        return np.concatenate([h, c], axis=1), cache
    rows = _layer(step, lambda d, cache: R.lstm_step_backward(d[:, :H], d[:, H:], cache),
                  inputs, ("dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"), rng, 1e-7)
    return [(f"{n} (step)", e, t) for n, e, t in rows] + \
        [(f"{n} (sequence)", e, t) for n, e, t in
         _layer(R.lstm_forward, R.lstm_backward, _cell(rng, 2, 3, H, 4, T=6), _RNN_SEQ, rng, 1e-7)]


def check_word_embedding(rng):
    R = _mod("rnn_layers")
    x = rng.integers(5, size=(6, 3))
    return _layer(lambda W: R.word_embedding_forward(x, W), R.word_embedding_backward,
                  [rng.standard_normal((5, 4))], ("dW",), rng, 1e-7)


def check_temporal_affine(rng):
    R = _mod("rnn_layers")
    inputs = [rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5)), rng.standard_normal(5)]
    return _layer(R.temporal_affine_forward, R.temporal_affine_backward, inputs, _XWB, rng, 1e-7)


def check_temporal_softmax_loss(rng):
    R, u = _mod("rnn_layers"), _mod("utils")
    x, y = 0.5 * rng.standard_normal((4, 5, 6)), rng.integers(6, size=(4, 5))
    mask = rng.random((4, 5)) > 0.3
    _, dx = R.temporal_softmax_loss(x, y, mask)
    num = u.eval_numerical_gradient(lambda v: R.temporal_softmax_loss(v, y, mask)[0], x, verbose=False)
    return [("dx", u.rel_error(dx, num), 1e-7)]


def check_captioning_rnn(rng):
    CR = _mod("captioning_rnn").CaptioningRNN
    vocab = {"<NULL>": 0, "<START>": 1, "<END>": 2, "a": 3, "cat": 4}
    features, captions = rng.standard_normal((2, 4)), rng.integers(5, size=(2, 5))
    captions[:, 1] = 3
    rows = []
    for cell in ("rnn", "lstm"):
        model = CR(vocab, input_dim=4, wordvec_dim=3, hidden_dim=5, cell_type=cell, dtype=np.float64)
        for k, v in model.params.items():   # O(1) values: initial word vectors are 1e-2 small
            model.params[k] = 0.5 * rng.standard_normal(v.shape)
        rows += [(f"{n} ({cell})", e, t) for n, e, t in _model_rows(model, features, captions)]
    return rows


CHECKS = [
    ("affine", check_affine), ("relu", check_relu), ("softmax_loss", check_softmax_loss),
    ("svm_loss", check_svm_loss), ("batchnorm", check_batchnorm),
    ("spatial_batchnorm", check_spatial_batchnorm), ("layernorm", check_layernorm),
    ("spatial_groupnorm", check_groupnorm), ("dropout", check_dropout),
    ("conv_naive", check_conv_naive), ("conv_fast", check_conv_fast),
    ("max_pool_naive", check_pool_naive), ("max_pool_fast", check_pool_fast),
    ("rnn", check_rnn), ("lstm", check_lstm), ("word_embedding", check_word_embedding),
    ("temporal_affine", check_temporal_affine), ("temporal_softmax_loss", check_temporal_softmax_loss),
    ("FullyConnectedNet", check_fc_net), ("ThreeLayerConvNet", check_cnn),
    ("CaptioningRNN", check_captioning_rnn),
]


def run(only=None, seed=0):
    """Print the table; return the exit code (0 when every row passes)."""
    wanted = [s.strip() for s in only.split(",")] if only else None
    checks = [(n, c) for n, c in CHECKS if not wanted or any(w and w in n for w in wanted)]
    if not checks:
        print(f"no check matches {only!r}; names: {', '.join(n for n, _ in CHECKS)}")
        return 2
    print(f"{'check':<23}{'gradient':<28}{'rel error':>11}{'tol':>8}  result")
    failures = 0
    for name, check in checks:
        try:
            rows = check(np.random.default_rng(seed))
        except Exception as e:      # a missing or broken module is one clear FAIL row
            failures += 1
            print(f"{name:<23}{'-':<28}{'-':>11}{'-':>8}  FAIL ({type(e).__name__}: {e})")
            continue
        for grad, err, tol in rows:
            ok = bool(np.isfinite(err) and err <= tol)
            failures += not ok
            print(f"{name:<23}{grad:<28}{err:>11.2e}{tol:>8.0e}  {'PASS' if ok else 'FAIL'}")
    print(f"{'all gradient checks passed' if not failures else f'{failures} check(s) FAILED'}")
    return 1 if failures else 0
