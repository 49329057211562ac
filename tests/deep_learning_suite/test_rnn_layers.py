import numpy as np
import pytest
import torch

from deep_learning_suite.rnn_layers import (
    lstm_backward,
    lstm_forward,
    lstm_step_backward,
    lstm_step_forward,
    rnn_backward,
    rnn_forward,
    rnn_step_backward,
    rnn_step_forward,
    sigmoid,
    temporal_affine_backward,
    temporal_affine_forward,
    temporal_softmax_loss,
    word_embedding_backward,
    word_embedding_forward,
)
from deep_learning_suite.utils import eval_numerical_gradient, eval_numerical_gradient_array, rel_error


def _numerical(forward, inputs, i, dout, out_index=0):
    def f(v):
        args = list(inputs)
        args[i] = v
        out = forward(*args)
        return out[out_index]
    return eval_numerical_gradient_array(f, inputs[i].copy(), dout)


def _cell_inputs(rng, N, D, H, gates, T=None, dtype=np.float64):
    x = rng.standard_normal((N, D) if T is None else (N, T, D))
    h = rng.standard_normal((N, H))
    Wx = rng.standard_normal((D, gates * H)) / np.sqrt(D)
    Wh = rng.standard_normal((H, gates * H)) / np.sqrt(H)
    b = rng.standard_normal(gates * H)
    return [a.astype(dtype) for a in (x, h, Wx, Wh, b)]


def _torch_rnn(kind, x, h0, Wx, Wh, b):
    """PyTorch's own RNN / LSTM module loaded with our weights; returns (module, output)."""
    D, H = x.shape[-1], h0.shape[1]
    if kind == "rnn":
        mod = torch.nn.RNN(D, H, nonlinearity="tanh", batch_first=True).double()
        order = np.arange(H)
    else:
        mod = torch.nn.LSTM(D, H, batch_first=True).double()
        # CS231n stacks the gates i, f, o, g; PyTorch i, f, g, o.
        order = np.concatenate([np.arange(k * H, (k + 1) * H) for k in (0, 1, 3, 2)])
    with torch.no_grad():
        mod.weight_ih_l0.copy_(torch.tensor(Wx[:, order].T))
        mod.weight_hh_l0.copy_(torch.tensor(Wh[:, order].T))
        mod.bias_ih_l0.copy_(torch.tensor(b[order]))
        mod.bias_hh_l0.zero_()
    tx, th0 = torch.tensor(x, requires_grad=True), torch.tensor(h0[None], requires_grad=True)
    state = th0 if kind == "rnn" else (th0, torch.zeros_like(th0))
    out, _ = mod(tx, state)
    return mod, tx, th0, out, order


def test_sigmoid_is_stable_and_exact():
    x = np.array([-1000.0, -30.0, -1.0, 0.0, 2.5, 1000.0])
    with np.errstate(all="raise", under="ignore"):    # exp(-1000) -> 0 is exact enough
        s = sigmoid(x)
    assert rel_error(s[1:-1], 1 / (1 + np.exp(-x[1:-1]))) < 1e-15
    assert s[0] == 0.0 and s[-1] == 1.0
    assert sigmoid(np.float32(3.0)).dtype == np.float32


def test_rnn_step_forward_matches_course_values():
    # The RNN_Captioning notebook's rnn_step_forward check ("error less than 1e-8").
    N, D, H = 3, 10, 4
    x = np.linspace(-0.4, 0.7, num=N * D).reshape(N, D)
    prev_h = np.linspace(-0.2, 0.5, num=N * H).reshape(N, H)
    Wx = np.linspace(-0.1, 0.9, num=D * H).reshape(D, H)
    Wh = np.linspace(-0.3, 0.7, num=H * H).reshape(H, H)
    b = np.linspace(-0.2, 0.4, num=H)
    next_h, _ = rnn_step_forward(x, prev_h, Wx, Wh, b)
    expected = np.asarray([[-0.58172089, -0.50182032, -0.41232771, -0.31410098],
                           [0.66854692, 0.79562378, 0.87755553, 0.92795967],
                           [0.97934501, 0.99144213, 0.99646691, 0.99854353]])
    assert rel_error(expected, next_h) < 1e-8


@pytest.mark.parametrize("N, D, H", [(4, 5, 6), (1, 3, 2)])
def test_rnn_step_backward_numerical(rng, N, D, H):
    inputs = _cell_inputs(rng, N, D, H, 1)
    out, cache = rnn_step_forward(*inputs)
    dout = rng.standard_normal(out.shape)
    grads = rnn_step_backward(dout, cache)
    for i, g in enumerate(grads):
        assert g.shape == inputs[i].shape
        assert rel_error(g, _numerical(rnn_step_forward, inputs, i, dout)) < 1e-7


def test_rnn_forward_matches_course_values():
    N, T, D, H = 2, 3, 4, 5
    x = np.linspace(-0.1, 0.3, num=N * T * D).reshape(N, T, D)
    h0 = np.linspace(-0.3, 0.1, num=N * H).reshape(N, H)
    Wx = np.linspace(-0.2, 0.4, num=D * H).reshape(D, H)
    Wh = np.linspace(-0.4, 0.1, num=H * H).reshape(H, H)
    b = np.linspace(-0.7, 0.1, num=H)
    h, _ = rnn_forward(x, h0, Wx, Wh, b)
    expected = np.asarray([
        [[-0.42070749, -0.27279261, -0.11074945, 0.05740409, 0.22236251],
         [-0.39525808, -0.22554661, -0.0409454, 0.14649412, 0.32397316],
         [-0.42305111, -0.24223728, -0.04287027, 0.15997045, 0.35014525]],
        [[-0.55857474, -0.39065825, -0.19198182, 0.02378408, 0.23735671],
         [-0.27150199, -0.07088804, 0.13562939, 0.33099728, 0.50158768],
         [-0.51014825, -0.30524429, -0.06755202, 0.17806392, 0.40333043]]])
    assert rel_error(expected, h) < 1e-7


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
@pytest.mark.parametrize("N, T, D, H", [(2, 10, 3, 5), (3, 1, 4, 2), (1, 4, 2, 3)])
def test_sequence_backward_numerical(rng, kind, N, T, D, H):
    forward, backward = (rnn_forward, rnn_backward) if kind == "rnn" else (lstm_forward, lstm_backward)
    inputs = _cell_inputs(rng, N, D, H, 1 if kind == "rnn" else 4, T=T)
    out, cache = forward(*inputs)
    assert out.shape == (N, T, H)
    dout = rng.standard_normal(out.shape)
    grads = backward(dout, cache)
    for i, g in enumerate(grads):
        assert g.shape == inputs[i].shape
        assert rel_error(g, _numerical(forward, inputs, i, dout)) < 1e-7


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_sequence_forward_and_backward_match_torch(rng, torch_one_thread, kind):
    forward, backward = (rnn_forward, rnn_backward) if kind == "rnn" else (lstm_forward, lstm_backward)
    x, h0, Wx, Wh, b = _cell_inputs(rng, 3, 4, 5, 1 if kind == "rnn" else 4, T=6)
    out, cache = forward(x, h0, Wx, Wh, b)
    dout = rng.standard_normal(out.shape)
    dx, dh0, dWx, dWh, db = backward(dout, cache)

    mod, tx, th0, tout, order = _torch_rnn(kind, x, h0, Wx, Wh, b)
    tout.backward(torch.tensor(dout))
    back = np.argsort(order)          # PyTorch's gate order back to ours
    assert rel_error(out, tout.detach().numpy()) < 1e-12
    assert rel_error(dx, tx.grad.numpy()) < 1e-10
    assert rel_error(dh0, th0.grad[0].numpy()) < 1e-10
    assert rel_error(dWx, mod.weight_ih_l0.grad.numpy().T[:, back]) < 1e-10
    assert rel_error(dWh, mod.weight_hh_l0.grad.numpy().T[:, back]) < 1e-10
    assert rel_error(db, mod.bias_ih_l0.grad.numpy()[back]) < 1e-10


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_sequence_layers_keep_dtype(rng, dtype, kind):
    forward, backward = (rnn_forward, rnn_backward) if kind == "rnn" else (lstm_forward, lstm_backward)
    inputs = _cell_inputs(rng, 2, 3, 4, 1 if kind == "rnn" else 4, T=5, dtype=dtype)
    out, cache = forward(*inputs)
    grads = backward(np.ones_like(out), cache)
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    ref, ref_cache = forward(*[a.astype(np.float64) for a in inputs])
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert rel_error(out, ref) < tol


def test_sequence_layers_are_the_step_layers_in_a_loop(rng):
    # rnn_forward / lstm_forward hoist x @ Wx out of the loop; the result must be the step's.
    x, h0, Wx, Wh, b = _cell_inputs(rng, 2, 3, 4, 1, T=4)
    h, _ = rnn_forward(x, h0, Wx, Wh, b)
    prev = h0
    for t in range(4):
        prev, _ = rnn_step_forward(x[:, t], prev, Wx, Wh, b)
        assert rel_error(h[:, t], prev) < 1e-14
    x, h0, Wx, Wh, b = _cell_inputs(rng, 2, 3, 4, 4, T=4)
    h, _ = lstm_forward(x, h0, Wx, Wh, b)
    prev, c = h0, np.zeros_like(h0)
    for t in range(4):
        prev, c, _ = lstm_step_forward(x[:, t], prev, c, Wx, Wh, b)
        assert rel_error(h[:, t], prev) < 1e-14


def test_lstm_step_forward_matches_course_values():
    N, D, H = 3, 4, 5
    x = np.linspace(-0.4, 1.2, num=N * D).reshape(N, D)
    prev_h = np.linspace(-0.3, 0.7, num=N * H).reshape(N, H)
    prev_c = np.linspace(-0.4, 0.9, num=N * H).reshape(N, H)
    Wx = np.linspace(-2.1, 1.3, num=4 * D * H).reshape(D, 4 * H)
    Wh = np.linspace(-0.7, 2.2, num=4 * H * H).reshape(H, 4 * H)
    b = np.linspace(0.3, 0.7, num=4 * H)
    next_h, next_c, _ = lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
    expected_h = np.asarray([[0.24635157, 0.28610883, 0.32240467, 0.35525807, 0.38474904],
                             [0.49223563, 0.55611431, 0.61507696, 0.66844003, 0.7159181],
                             [0.56735664, 0.66310127, 0.74419266, 0.80889665, 0.858299]])
    expected_c = np.asarray([[0.32986176, 0.39145139, 0.451556, 0.51014116, 0.56717407],
                             [0.66382255, 0.76674007, 0.87195994, 0.97902709, 1.08751345],
                             [0.74192008, 0.90592151, 1.07717006, 1.25120233, 1.42395676]])
    assert rel_error(expected_h, next_h) < 1e-7
    assert rel_error(expected_c, next_c) < 1e-7


@pytest.mark.parametrize("N, D, H", [(4, 5, 6), (2, 1, 3)])
def test_lstm_step_backward_numerical_and_torch(rng, N, D, H):
    x, h, Wx, Wh, b = _cell_inputs(rng, N, D, H, 4)
    c = rng.standard_normal((N, H))
    inputs = [x, h, c, Wx, Wh, b]
    next_h, next_c, cache = lstm_step_forward(*inputs)
    dnext_h, dnext_c = rng.standard_normal(next_h.shape), rng.standard_normal(next_c.shape)
    grads = lstm_step_backward(dnext_h, dnext_c, cache)
    for i, g in enumerate(grads):
        num = (_numerical(lstm_step_forward, inputs, i, dnext_h, 0)
               + _numerical(lstm_step_forward, inputs, i, dnext_c, 1))
        assert rel_error(g, num) < 1e-7

    order = np.concatenate([np.arange(k * H, (k + 1) * H) for k in (0, 1, 3, 2)])
    cell = torch.nn.LSTMCell(D, H).double()
    with torch.no_grad():
        cell.weight_ih.copy_(torch.tensor(Wx[:, order].T))
        cell.weight_hh.copy_(torch.tensor(Wh[:, order].T))
        cell.bias_ih.copy_(torch.tensor(b[order]))
        cell.bias_hh.zero_()
    tx, th, tc = (torch.tensor(a, requires_grad=True) for a in (x, h, c))
    th_next, tc_next = cell(tx, (th, tc))
    assert rel_error(next_h, th_next.detach().numpy()) < 1e-12
    assert rel_error(next_c, tc_next.detach().numpy()) < 1e-12
    torch.autograd.backward([th_next, tc_next], [torch.tensor(dnext_h), torch.tensor(dnext_c)])
    for mine, ref in zip(grads[:3], (tx, th, tc)):
        assert rel_error(mine, ref.grad.numpy()) < 1e-10


def test_lstm_forward_matches_course_values():
    N, D, H, T = 2, 5, 4, 3
    x = np.linspace(-0.4, 0.6, num=N * T * D).reshape(N, T, D)
    h0 = np.linspace(-0.4, 0.8, num=N * H).reshape(N, H)
    Wx = np.linspace(-0.2, 0.9, num=4 * D * H).reshape(D, 4 * H)
    Wh = np.linspace(-0.3, 0.6, num=4 * H * H).reshape(H, 4 * H)
    b = np.linspace(0.2, 0.7, num=4 * H)
    h, _ = lstm_forward(x, h0, Wx, Wh, b)
    expected = np.asarray([
        [[0.01764008, 0.01823233, 0.01882671, 0.0194232],
         [0.11287491, 0.12146228, 0.13018446, 0.13902939],
         [0.31358768, 0.33338627, 0.35304453, 0.37250975]],
        [[0.45767879, 0.4761092, 0.4936887, 0.51041945],
         [0.6704845, 0.69350089, 0.71486014, 0.7346449],
         [0.81733511, 0.83677871, 0.85403753, 0.86935314]]])
    assert rel_error(expected, h) < 1e-7


def test_word_embedding_matches_course_values():
    x = np.asarray([[0, 3, 1, 2], [2, 1, 0, 3]])
    W = np.linspace(0, 1, num=5 * 3).reshape(5, 3)
    out, _ = word_embedding_forward(x, W)
    expected = np.asarray([
        [[0., 0.07142857, 0.14285714], [0.64285714, 0.71428571, 0.78571429],
         [0.21428571, 0.28571429, 0.35714286], [0.42857143, 0.5, 0.57142857]],
        [[0.42857143, 0.5, 0.57142857], [0.21428571, 0.28571429, 0.35714286],
         [0., 0.07142857, 0.14285714], [0.64285714, 0.71428571, 0.78571429]]])
    assert rel_error(expected, out) < 1e-7


@pytest.mark.parametrize("N, T, V, D", [(50, 3, 5, 6), (1, 1, 4, 2)])
def test_word_embedding_backward_accumulates_repeats(rng, N, T, V, D):
    x = rng.integers(V, size=(N, T))
    W = rng.standard_normal((V, D))
    out, cache = word_embedding_forward(x, W)
    dout = rng.standard_normal(out.shape)
    dW = word_embedding_backward(dout, cache)
    num = eval_numerical_gradient_array(lambda v: word_embedding_forward(x, v)[0], W, dout)
    assert rel_error(dW, num) < 1e-10
    tW = torch.tensor(W, requires_grad=True)
    torch.nn.functional.embedding(torch.tensor(x), tW).backward(torch.tensor(dout))
    assert rel_error(dW, tW.grad.numpy()) < 1e-12


@pytest.mark.parametrize("N, T, D, M", [(2, 3, 4, 5), (1, 1, 3, 1)])
def test_temporal_affine_gradients(rng, N, T, D, M):
    x, w, b = rng.standard_normal((N, T, D)), rng.standard_normal((D, M)), rng.standard_normal(M)
    out, cache = temporal_affine_forward(x, w, b)
    assert rel_error(out, np.einsum("ntd,dm->ntm", x, w) + b) < 1e-12
    dout = rng.standard_normal(out.shape)
    grads = temporal_affine_backward(dout, cache)
    for i, g in enumerate(grads):
        assert g.shape == [x, w, b][i].shape
        assert rel_error(g, _numerical(temporal_affine_forward, [x, w, b], i, dout)) < 1e-7


@pytest.mark.parametrize("N, T, V, p, expected", [(100, 1, 10, 1.0, np.log(10)),
                                                  (100, 10, 10, 1.0, 10 * np.log(10)),
                                                  (5000, 10, 10, 0.1, np.log(10))])
def test_temporal_softmax_loss_sanity(rng, N, T, V, p, expected):
    # The notebook's sanity check: about 2.3, 23 and 2.3.
    x = 0.001 * rng.standard_normal((N, T, V))
    y = rng.integers(V, size=(N, T))
    mask = rng.random((N, T)) <= p
    loss, _ = temporal_softmax_loss(x, y, mask)
    assert loss == pytest.approx(expected * mask.mean() / p, rel=2e-2)


@pytest.mark.parametrize("N, T, V", [(7, 8, 9), (1, 2, 3)])
def test_temporal_softmax_loss_gradient_and_torch(rng, N, T, V):
    # Moderate scores, as in test_layers: with near-zero probabilities the centred
    # difference's round-off (about 1e-10 here) would dominate the relative error.
    x = 0.5 * rng.standard_normal((N, T, V))
    y = rng.integers(V, size=(N, T))
    mask = rng.random((N, T)) > 0.5
    mask[0, 0] = True
    loss, dx = temporal_softmax_loss(x, y, mask)
    num = eval_numerical_gradient(lambda v: temporal_softmax_loss(v, y, mask)[0], x, verbose=False)
    assert rel_error(dx, num) < 1e-7
    assert np.all(dx[~mask] == 0)
    tx = torch.tensor(x, requires_grad=True)
    per = torch.nn.functional.cross_entropy(tx.reshape(-1, V), torch.tensor(y.ravel()), reduction="none")
    tloss = (per * torch.tensor(mask.ravel(), dtype=torch.float64)).sum() / N
    tloss.backward()
    assert abs(loss - tloss.item()) < 1e-12
    assert rel_error(dx, tx.grad.numpy()) < 1e-10


def test_temporal_softmax_loss_large_scores_finite():
    x = np.array([[[1e4, 0.0, -1e4]]], dtype=np.float32)
    with np.errstate(all="raise", under="ignore"):
        loss, dx = temporal_softmax_loss(x, np.array([[1]]), np.array([[True]]))
    assert loss == pytest.approx(1e4, rel=1e-6) and np.all(np.isfinite(dx)) and dx.dtype == np.float32


@pytest.mark.parametrize("call, message", [
    (lambda: rnn_step_forward(np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((3, 5)), np.zeros((4, 4)),
                              np.zeros(4)), r"Wx must be \(D, H\) = \(3, 4\)"),
    (lambda: rnn_forward(np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((3, 4)), np.zeros((4, 4)),
                         np.zeros(4)), r"x must be 3-D \(N, T, D\)"),
    (lambda: rnn_forward(np.zeros((2, 5, 3)), np.zeros((3, 4)), np.zeros((3, 4)), np.zeros((4, 4)),
                         np.zeros(4)), "same N"),
    (lambda: lstm_forward(np.zeros((2, 5, 3)), np.zeros((2, 4)), np.zeros((3, 4)), np.zeros((4, 4)),
                          np.zeros(4)), r"Wx must be \(D, 4 \* H\) = \(3, 16\)"),
    (lambda: lstm_step_forward(np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((2, 5)), np.zeros((3, 16)),
                               np.zeros((4, 16)), np.zeros(16)), "prev_c must have prev_h's shape"),
    (lambda: rnn_forward(np.zeros((2, 5, 3), np.float32), np.zeros((2, 4)), np.zeros((3, 4)),
                         np.zeros((4, 4)), np.zeros(4)), "share one dtype"),
    (lambda: word_embedding_forward(np.array([[0, 5]]), np.zeros((5, 2))), r"out of range: \[5\]"),
    (lambda: word_embedding_forward(np.array([[0.0, 1.0]]), np.zeros((5, 2))), "integer word indices"),
    (lambda: temporal_softmax_loss(np.zeros((2, 3, 4)), np.zeros((2, 3), int), np.ones((3, 2), bool)),
     r"mask must be \(N, T\) = \(2, 3\)"),
    (lambda: temporal_softmax_loss(np.zeros((2, 3, 4)), np.full((2, 3), 4), np.ones((2, 3), bool)),
     "vocabulary size"),
    (lambda: temporal_softmax_loss(np.zeros((2, 3)), np.zeros((2, 3), int), np.ones((2, 3), bool)),
     r"x must be 3-D \(N, T, V\)"),
    (lambda: temporal_softmax_loss(np.zeros((2, 3, 4), int), np.zeros((2, 3), int), np.ones((2, 3), bool)),
     "x has dtype int"),
    (lambda: word_embedding_forward(np.zeros((2, 3), int), np.zeros(5)), r"W must be 2-D \(V, D\)"),
    (lambda: word_embedding_forward(np.zeros((2, 3), int), np.zeros((5, 2), int)), "W has dtype int"),
    (lambda: temporal_affine_forward(np.zeros((2, 3)), np.zeros((3, 4)), np.zeros(4)), r"x must be 3-D \(N, T, D\)"),
])
def test_bad_inputs_get_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def _cell_call(kind, rng, which, bad):
    """Call ``kind``'s forward on valid inputs with the one named by ``which`` replaced by ``bad``."""
    N, T, D, H = 2, 3, 4, 5
    gates = 4 if kind.startswith("lstm") else 1
    x, h, Wx, Wh, b = _cell_inputs(rng, N, D, H, gates, T=None if "step" in kind else T)
    args = {"x": x, "h": h, "Wx": Wx, "Wh": Wh, "b": b}
    args[which] = bad(N, H)
    forward = {"rnn_step_forward": rnn_step_forward, "rnn_forward": rnn_forward,
               "lstm_step_forward": lstm_step_forward, "lstm_forward": lstm_forward}[kind]
    if kind == "lstm_step_forward":
        return forward(args["x"], args["h"], np.zeros((N, H)), args["Wx"], args["Wh"], args["b"])
    return forward(*args.values())


@pytest.mark.parametrize("kind", ["rnn_step_forward", "rnn_forward", "lstm_step_forward", "lstm_forward"])
@pytest.mark.parametrize("which, bad, message", [
    # Each of these would broadcast against the (N, gH) pre-activation and give a wrong-sized
    # (or silently wrong) hidden state instead of an error.
    ("h", lambda N, H: np.zeros((N, H, H)), r"h must be 2-D \(N, H\)"),
    ("Wh", lambda N, H: np.zeros((H, 1)), r"Wh must be \(H, "),
    ("b", lambda N, H: np.zeros(1), r"b must be \("),
])
def test_shapes_that_would_broadcast_are_refused(rng, kind, which, bad, message):
    with pytest.raises(ValueError, match=message):
        _cell_call(kind, rng, which, bad)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_backward_refuses_a_gradient_of_another_dtype(rng, kind):
    # A float32 dh into a float64 forward would quietly promote or demote the gradients.
    forward, backward = (rnn_forward, rnn_backward) if kind == "rnn" else (lstm_forward, lstm_backward)
    out, cache = forward(*_cell_inputs(rng, 2, 4, 5, 1 if kind == "rnn" else 4, T=3))
    with pytest.raises(ValueError, match="dh is float32 but the forward's x is float64"):
        backward(out.astype(np.float32), cache)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstm_step_keeps_dtype(rng, dtype):
    N, D, H = 2, 3, 4
    x, h, Wx, Wh, b = _cell_inputs(rng, N, D, H, 4, dtype=dtype)
    c = rng.standard_normal((N, H)).astype(dtype)
    next_h, next_c, cache = lstm_step_forward(x, h, c, Wx, Wh, b)
    assert next_h.dtype == dtype and next_c.dtype == dtype
    grads = lstm_step_backward(np.ones_like(next_h), np.ones_like(next_c), cache)
    assert len(grads) == 6 and all(g.dtype == dtype for g in grads)


def test_lstm_step_checks_prev_c_like_the_other_inputs(rng):
    x, h, Wx, Wh, b = _cell_inputs(rng, 1, 3, 2, 4)
    # A nested list is taken as the array it spells, as for x and h ...
    next_h, next_c, _ = lstm_step_forward(x, h, [[0.0, 0.0]], Wx, Wh, b)
    assert next_c.shape == (1, 2)
    np.testing.assert_array_equal(next_c, lstm_step_forward(x, h, np.zeros((1, 2)), Wx, Wh, b)[1])
    # ... but integers and a second float dtype are refused, not promoted.
    with pytest.raises(ValueError, match="prev_c has dtype int"):
        lstm_step_forward(x, h, np.zeros((1, 2), int), Wx, Wh, b)
    with pytest.raises(ValueError, match="prev_c is float32 but x is float64"):
        lstm_step_forward(x, h, np.zeros((1, 2), np.float32), Wx, Wh, b)


def test_temporal_softmax_loss_refuses_an_empty_batch():
    # The loss averages over N sequences: N = 0 would give nan (0 / 0) rather than an error.
    with pytest.raises(ValueError, match=r"empty batch \(N = 0\)"):
        temporal_softmax_loss(np.zeros((0, 3, 4)), np.zeros((0, 3), int), np.ones((0, 3), bool))


def test_temporal_softmax_loss_is_quiet_unless_verbose(capsys):
    args = np.zeros((1, 2, 3)), np.zeros((1, 2), int), np.ones((1, 2), bool)
    temporal_softmax_loss(*args)
    assert capsys.readouterr().out == ""
    temporal_softmax_loss(*args, verbose=True)
    assert "dx_flat" in capsys.readouterr().out


def test_backward_rejects_a_gradient_of_the_wrong_shape(rng):
    inputs = _cell_inputs(rng, 2, 3, 4, 4, T=5)
    out, cache = lstm_forward(*inputs)
    with pytest.raises(ValueError, match=r"dh must have the forward output's shape \(2, 5, 4\)"):
        lstm_backward(out[:, :4], cache)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["rnn", "lstm"])
@pytest.mark.parametrize("N, T", [(3, 0), (0, 4), (0, 0)])
def test_empty_sequences_give_empty_outputs_and_zero_gradients(rng, kind, N, T, dtype):
    # T = 0 used to fail with "cannot reshape array of size 0": the output is empty, so
    # every gradient is zero; dh0 is zero too, since no step reads h0.
    forward, backward = (rnn_forward, rnn_backward) if kind == "rnn" else (lstm_forward, lstm_backward)
    D, H = 3, 4
    inputs = _cell_inputs(rng, N, D, H, 1 if kind == "rnn" else 4, T=T, dtype=dtype)
    out, cache = forward(*inputs)
    assert out.shape == (N, T, H) and out.dtype == dtype
    grads = backward(np.zeros((N, T, H), dtype), cache)
    for g, a in zip(grads, inputs):
        assert g.shape == a.shape and g.dtype == dtype and not g.any()
    with pytest.raises(ValueError, match="dh must have the forward output's shape"):
        backward(np.zeros((N, T + 1, H), dtype), cache)


@pytest.mark.parametrize("mask, match", [
    (np.full((2, 3), np.nan), r"hold only 0 and 1, got \[nan"),
    (np.full((2, 3), 0.5), r"hold only 0 and 1, got \[0.5"),
    (np.array([[1, 2, 0], [0, 1, 1]]), r"got \[2\]"),
    (np.array([[1, -1, 0], [0, 1, 1]], np.int8), r"got \[-1\]"),
    (np.full((2, 3), "a"), r"got dtype <U1"),
    (np.full((2, 3), None), r"got dtype object"),
])
def test_temporal_softmax_loss_rejects_a_mask_not_boolean_or_0_1(mask, match):
    with pytest.raises(ValueError, match=r"mask must be boolean .*" + match):
        temporal_softmax_loss(np.zeros((2, 3, 4)), np.zeros((2, 3), int), mask)


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.float32, np.float64])
def test_temporal_softmax_loss_takes_a_0_1_mask_as_the_boolean_one(rng, dtype):
    x = rng.standard_normal((3, 4, 5))
    y = rng.integers(5, size=(3, 4))
    mask = rng.random((3, 4)) > 0.4
    loss, dx = temporal_softmax_loss(x, y, mask)
    loss2, dx2 = temporal_softmax_loss(x, y, mask.astype(dtype))
    assert loss2 == loss and np.array_equal(dx2, dx)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N, T, D, M", [(3, 0, 4, 5), (0, 2, 4, 5), (0, 0, 4, 5), (2, 3, 4, 0), (2, 3, 0, 5)])
def test_temporal_affine_on_empty_sizes(rng, N, T, D, M, dtype):
    # The vocabulary layer after an rnn_forward of T = 0 (or an empty batch): it used to fail
    # with "cannot reshape array of size 0". Nothing flows through, so dx and dw are zero and
    # db sums no timestep.
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((N, T, D), (D, M), (M,)))
    out, cache = temporal_affine_forward(x, w, b)
    assert out.shape == (N, T, M) and out.dtype == dtype
    assert np.allclose(out, np.einsum("ntd,dm->ntm", x, w) + b)
    dout = rng.standard_normal((N, T, M)).astype(dtype)
    dx, dw, db = temporal_affine_backward(dout, cache)
    for g, a, want in ((dx, x, dout @ w.T), (dw, w, np.einsum("ntd,ntm->dm", x, dout)),
                       (db, b, dout.sum(axis=(0, 1)))):
        assert g.shape == a.shape and g.dtype == dtype
        assert np.allclose(g, want)
    with pytest.raises(ValueError, match="dout must have the forward output's shape"):
        temporal_affine_backward(np.zeros((N, T + 1, M), dtype), cache)
