import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deep_learning_suite import layers, rnn_layers as np_layers  # noqa: E402
from deep_learning_suite.rnn_layers_pytorch import (  # noqa: E402
    affine_forward,
    lstm_forward,
    lstm_step_forward,
    rnn_forward,
    rnn_step_forward,
    temporal_affine_forward,
    temporal_softmax_loss,
    word_embedding_forward,
)
from deep_learning_suite.utils import eval_numerical_gradient_array, rel_error  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _t(*arrays, grad=False):
    out = [torch.tensor(a, requires_grad=grad) for a in arrays]
    return out if len(out) > 1 else out[0]


def _cell_inputs(rng, N, D, H, gates, T=None, dtype=np.float64):
    x = rng.standard_normal((N, D) if T is None else (N, T, D))
    h = rng.standard_normal((N, H))
    Wx = rng.standard_normal((D, gates * H)) / np.sqrt(D)
    Wh = rng.standard_normal((H, gates * H)) / np.sqrt(H)
    b = rng.standard_normal(gates * H)
    return [a.astype(dtype) for a in (x, h, Wx, Wh, b)]


def _grads(tensors):
    return [t.grad.numpy() for t in tensors]


# ----------------------------------------------------------------------------- the notebooks' values

def test_rnn_step_forward_matches_course_values():
    N, D, H = 3, 10, 4
    x = torch.from_numpy(np.linspace(-0.4, 0.7, num=N * D).reshape(N, D))
    prev_h = torch.from_numpy(np.linspace(-0.2, 0.5, num=N * H).reshape(N, H))
    Wx = torch.from_numpy(np.linspace(-0.1, 0.9, num=D * H).reshape(D, H))
    Wh = torch.from_numpy(np.linspace(-0.3, 0.7, num=H * H).reshape(H, H))
    b = torch.from_numpy(np.linspace(-0.2, 0.4, num=H))
    next_h = rnn_step_forward(x, prev_h, Wx, Wh, b).numpy()
    expected = np.asarray([[-0.58172089, -0.50182032, -0.41232771, -0.31410098],
                           [0.66854692, 0.79562378, 0.87755553, 0.92795967],
                           [0.97934501, 0.99144213, 0.99646691, 0.99854353]])
    assert rel_error(expected, next_h) < 1e-8


def test_rnn_forward_matches_course_values():
    N, T, D, H = 2, 3, 4, 5
    x = torch.from_numpy(np.linspace(-0.1, 0.3, num=N * T * D).reshape(N, T, D))
    h0 = torch.from_numpy(np.linspace(-0.3, 0.1, num=N * H).reshape(N, H))
    Wx = torch.from_numpy(np.linspace(-0.2, 0.4, num=D * H).reshape(D, H))
    Wh = torch.from_numpy(np.linspace(-0.4, 0.1, num=H * H).reshape(H, H))
    b = torch.from_numpy(np.linspace(-0.7, 0.1, num=H))
    h = rnn_forward(x, h0, Wx, Wh, b).numpy()
    expected = np.asarray([
        [[-0.42070749, -0.27279261, -0.11074945, 0.05740409, 0.22236251],
         [-0.39525808, -0.22554661, -0.0409454, 0.14649412, 0.32397316],
         [-0.42305111, -0.24223728, -0.04287027, 0.15997045, 0.35014525]],
        [[-0.55857474, -0.39065825, -0.19198182, 0.02378408, 0.23735671],
         [-0.27150199, -0.07088804, 0.13562939, 0.33099728, 0.50158768],
         [-0.51014825, -0.30524429, -0.06755202, 0.17806392, 0.40333043]]])
    assert rel_error(expected, h) < 1e-7


def test_lstm_step_forward_matches_course_values():
    N, D, H = 3, 4, 5
    x = np.linspace(-0.4, 1.2, num=N * D).reshape(N, D)
    prev_h = np.linspace(-0.3, 0.7, num=N * H).reshape(N, H)
    prev_c = np.linspace(-0.4, 0.9, num=N * H).reshape(N, H)
    Wx = np.linspace(-2.1, 1.3, num=4 * D * H).reshape(D, 4 * H)
    Wh = np.linspace(-0.7, 2.2, num=4 * H * H).reshape(H, 4 * H)
    b = np.linspace(0.3, 0.7, num=4 * H)
    next_h, next_c = lstm_step_forward(*_t(x, prev_h, prev_c, Wx, Wh, b))
    expected_h = np.asarray([[0.24635157, 0.28610883, 0.32240467, 0.35525807, 0.38474904],
                             [0.49223563, 0.55611431, 0.61507696, 0.66844003, 0.7159181],
                             [0.56735664, 0.66310127, 0.74419266, 0.80889665, 0.858299]])
    expected_c = np.asarray([[0.32986176, 0.39145139, 0.451556, 0.51014116, 0.56717407],
                             [0.66382255, 0.76674007, 0.87195994, 0.97902709, 1.08751345],
                             [0.74192008, 0.90592151, 1.07717006, 1.25120233, 1.42395676]])
    assert rel_error(expected_h, next_h.numpy()) < 1e-7
    assert rel_error(expected_c, next_c.numpy()) < 1e-7


def test_lstm_forward_matches_course_values():
    N, D, H, T = 2, 5, 4, 3
    x = np.linspace(-0.4, 0.6, num=N * T * D).reshape(N, T, D)
    h0 = np.linspace(-0.4, 0.8, num=N * H).reshape(N, H)
    Wx = np.linspace(-0.2, 0.9, num=4 * D * H).reshape(D, 4 * H)
    Wh = np.linspace(-0.3, 0.6, num=4 * H * H).reshape(H, 4 * H)
    b = np.linspace(0.2, 0.7, num=4 * H)
    h = lstm_forward(*_t(x, h0, Wx, Wh, b)).numpy()
    expected = np.asarray([
        [[0.01764008, 0.01823233, 0.01882671, 0.0194232],
         [0.11287491, 0.12146228, 0.13018446, 0.13902939],
         [0.31358768, 0.33338627, 0.35304453, 0.37250975]],
        [[0.45767879, 0.4761092, 0.4936887, 0.51041945],
         [0.6704845, 0.69350089, 0.71486014, 0.7346449],
         [0.81733511, 0.83677871, 0.85403753, 0.86935314]]])
    assert rel_error(expected, h) < 1e-7


def test_word_embedding_matches_course_values():
    x = torch.from_numpy(np.asarray([[0, 3, 1, 2], [2, 1, 0, 3]]))
    W = torch.from_numpy(np.linspace(0, 1, num=5 * 3).reshape(5, 3))
    out = word_embedding_forward(x, W).numpy()
    expected = np.asarray([
        [[0., 0.07142857, 0.14285714], [0.64285714, 0.71428571, 0.78571429],
         [0.21428571, 0.28571429, 0.35714286], [0.42857143, 0.5, 0.57142857]],
        [[0.42857143, 0.5, 0.57142857], [0.21428571, 0.28571429, 0.35714286],
         [0., 0.07142857, 0.14285714], [0.64285714, 0.71428571, 0.78571429]]])
    assert rel_error(expected, out) < 1e-7


@pytest.mark.parametrize("N, T, V, p, expected", [(100, 1, 10, 1.0, np.log(10)),
                                                  (100, 10, 10, 1.0, 10 * np.log(10)),
                                                  (5000, 10, 10, 0.1, np.log(10))])
def test_temporal_softmax_loss_sanity(rng, N, T, V, p, expected):
    # The notebook's sanity check: about 2.3, 23 and 2.2-2.4.
    x = torch.from_numpy(0.001 * rng.standard_normal((N, T, V)))
    y = torch.from_numpy(rng.integers(V, size=(N, T)))
    mask = torch.from_numpy(rng.random((N, T))) <= p
    loss = temporal_softmax_loss(x, y, mask)
    assert loss.dim() == 0 and loss.dtype == torch.float64
    assert loss.item() == pytest.approx(expected * mask.double().mean().item() / p, rel=2e-2)


# ----------------------------------------------------------------------------- against the NumPy layers

@pytest.mark.parametrize("N, D, H", [(4, 5, 6), (1, 3, 2)])
def test_rnn_step_matches_numpy_forward_and_backward(rng, N, D, H):
    inputs = _cell_inputs(rng, N, D, H, 1)
    ref, cache = np_layers.rnn_step_forward(*inputs)
    dout = rng.standard_normal(ref.shape)
    ref_grads = np_layers.rnn_step_backward(dout, cache)
    tensors = _t(*inputs, grad=True)
    out = rnn_step_forward(*tensors)
    out.backward(torch.from_numpy(dout))
    assert rel_error(out.detach().numpy(), ref) < 1e-12
    for mine, theirs in zip(_grads(tensors), ref_grads):
        assert rel_error(mine, theirs) < 1e-10


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
@pytest.mark.parametrize("N, T, D, H", [(2, 10, 3, 5), (3, 1, 4, 2), (1, 4, 2, 3)])
def test_sequence_layers_match_numpy_forward_and_backward(rng, kind, N, T, D, H):
    np_fwd, np_bwd, fwd = {"rnn": (np_layers.rnn_forward, np_layers.rnn_backward, rnn_forward),
                           "lstm": (np_layers.lstm_forward, np_layers.lstm_backward, lstm_forward)}[kind]
    inputs = _cell_inputs(rng, N, D, H, 1 if kind == "rnn" else 4, T=T)
    ref, cache = np_fwd(*inputs)
    dout = rng.standard_normal(ref.shape)
    ref_grads = np_bwd(dout, cache)
    tensors = _t(*inputs, grad=True)
    out = fwd(*tensors)
    assert tuple(out.shape) == (N, T, H)
    out.backward(torch.from_numpy(dout))
    assert rel_error(out.detach().numpy(), ref) < 1e-12
    for mine, theirs in zip(_grads(tensors), ref_grads):
        assert rel_error(mine, theirs) < 1e-10


@pytest.mark.parametrize("N, D, H", [(4, 5, 6), (2, 1, 3)])
def test_lstm_step_matches_numpy_forward_and_backward(rng, N, D, H):
    x, h, Wx, Wh, b = _cell_inputs(rng, N, D, H, 4)
    c = rng.standard_normal((N, H))
    inputs = [x, h, c, Wx, Wh, b]
    ref_h, ref_c, cache = np_layers.lstm_step_forward(*inputs)
    dh, dc = rng.standard_normal(ref_h.shape), rng.standard_normal(ref_c.shape)
    ref_grads = np_layers.lstm_step_backward(dh, dc, cache)
    tensors = _t(*inputs, grad=True)
    next_h, next_c = lstm_step_forward(*tensors)
    torch.autograd.backward([next_h, next_c], [torch.from_numpy(dh), torch.from_numpy(dc)])
    assert rel_error(next_h.detach().numpy(), ref_h) < 1e-12
    assert rel_error(next_c.detach().numpy(), ref_c) < 1e-12
    for mine, theirs in zip(_grads(tensors), ref_grads):
        assert rel_error(mine, theirs) < 1e-10


@pytest.mark.parametrize("N, T, V, D", [(50, 3, 5, 6), (1, 1, 4, 2)])
def test_word_embedding_matches_numpy_and_accumulates_repeats(rng, N, T, V, D):
    x = rng.integers(V, size=(N, T))
    W = rng.standard_normal((V, D))
    ref, cache = np_layers.word_embedding_forward(x, W)
    dout = rng.standard_normal(ref.shape)
    tW = _t(W, grad=True)
    out = word_embedding_forward(torch.from_numpy(x), tW)
    out.backward(torch.from_numpy(dout))
    assert np.array_equal(out.detach().numpy(), ref)
    assert rel_error(tW.grad.numpy(), np_layers.word_embedding_backward(dout, cache)) < 1e-12
    # int32 indices, as load_coco_data's captions are, and plain arrays work too.
    assert torch.equal(word_embedding_forward(torch.from_numpy(x.astype(np.int32)), tW), out)
    assert torch.equal(word_embedding_forward(x, tW), out)


@pytest.mark.parametrize("N, T, D, M", [(2, 3, 4, 5), (1, 1, 3, 1)])
def test_temporal_affine_matches_numpy(rng, N, T, D, M):
    x, w, b = rng.standard_normal((N, T, D)), rng.standard_normal((D, M)), rng.standard_normal(M)
    ref, cache = np_layers.temporal_affine_forward(x, w, b)
    dout = rng.standard_normal(ref.shape)
    ref_grads = np_layers.temporal_affine_backward(dout, cache)
    tensors = _t(x, w, b, grad=True)
    out = temporal_affine_forward(*tensors)
    out.backward(torch.from_numpy(dout))
    assert rel_error(out.detach().numpy(), ref) < 1e-12
    for mine, theirs in zip(_grads(tensors), ref_grads):
        assert rel_error(mine, theirs) < 1e-10


def test_affine_forward_flattens_and_matches_numpy(rng):
    x, w, b = rng.standard_normal((3, 2, 4)), rng.standard_normal((8, 5)), rng.standard_normal(5)
    ref, cache = layers.affine_forward(x, w, b)
    dout = rng.standard_normal(ref.shape)
    tensors = _t(x, w, b, grad=True)
    out = affine_forward(*tensors)
    out.backward(torch.from_numpy(dout))
    assert tuple(out.shape) == (3, 5) and rel_error(out.detach().numpy(), ref) < 1e-12
    for mine, theirs in zip(_grads(tensors), layers.affine_backward(dout, cache)):
        assert rel_error(mine, theirs) < 1e-10


@pytest.mark.parametrize("N, T, V", [(7, 8, 9), (1, 2, 3)])
def test_temporal_softmax_loss_matches_numpy(rng, N, T, V):
    x = 0.5 * rng.standard_normal((N, T, V))
    y = rng.integers(V, size=(N, T))
    mask = rng.random((N, T)) > 0.5
    mask[0, 0] = True
    ref_loss, ref_dx = np_layers.temporal_softmax_loss(x, y, mask)
    tx = _t(x, grad=True)
    loss = temporal_softmax_loss(tx, torch.from_numpy(y), torch.from_numpy(mask))
    loss.backward()
    assert abs(loss.item() - ref_loss) < 1e-12
    assert rel_error(tx.grad.numpy(), ref_dx) < 1e-10
    assert torch.all(tx.grad[torch.from_numpy(~mask)] == 0)
    # NumPy labels and a 0/1 float mask give the same loss.
    same = temporal_softmax_loss(tx, y, mask.astype(np.float64))
    assert abs(same.item() - ref_loss) < 1e-12


def test_temporal_softmax_loss_large_scores_finite():
    x = torch.tensor([[[1e4, 0.0, -1e4]]], dtype=torch.float32, requires_grad=True)
    loss = temporal_softmax_loss(x, torch.tensor([[1]]), torch.tensor([[True]]))
    loss.backward()
    assert loss.item() == pytest.approx(1e4, rel=1e-6)
    assert torch.all(torch.isfinite(x.grad)) and loss.dtype == torch.float32


def test_temporal_softmax_loss_verbose_prints_shape(capsys):
    temporal_softmax_loss(torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long),
                          torch.ones(2, 3, dtype=torch.bool), verbose=True)
    assert "(6, 4)" in capsys.readouterr().out
    temporal_softmax_loss(torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 3, dtype=torch.bool))
    assert capsys.readouterr().out == ""       # quiet by default


# ----------------------------------------------------------------------------- structure and dtypes

def test_sequence_layers_are_the_step_layers_in_a_loop(rng):
    # rnn_forward / lstm_forward hoist x @ Wx + b out of the loop; each step must be the step's.
    x, h0, Wx, Wh, b = _t(*_cell_inputs(rng, 2, 3, 4, 1, T=4))
    h, prev = rnn_forward(x, h0, Wx, Wh, b), h0
    for t in range(4):
        prev = rnn_step_forward(x[:, t], prev, Wx, Wh, b)
        assert rel_error(h[:, t].numpy(), prev.numpy()) < 1e-14
    x, h0, Wx, Wh, b = _t(*_cell_inputs(rng, 2, 3, 4, 4, T=4))
    h, prev, c = lstm_forward(x, h0, Wx, Wh, b), h0, torch.zeros_like(h0)
    for t in range(4):
        prev, c = lstm_step_forward(x[:, t], prev, c, Wx, Wh, b)
        assert rel_error(h[:, t].numpy(), prev.numpy()) < 1e-14


def test_sequence_backward_matches_numerical_gradient(rng):
    # Autograd against centred differences, as the notebook's backward cells check.
    x, h0, Wx, Wh, b = _cell_inputs(rng, 2, 3, 3, 4, T=5)
    dout = rng.standard_normal((2, 5, 3))
    tensors = _t(x, h0, Wx, Wh, b, grad=True)
    lstm_forward(*tensors).backward(torch.from_numpy(dout))
    arrays = [x, h0, Wx, Wh, b]
    for i, t in enumerate(tensors):
        def f(v, i=i):
            args = list(arrays)
            args[i] = v
            with torch.no_grad():
                return lstm_forward(*_t(*args)).numpy()
        # h = 1e-4, not the default 1e-5: one entry of dWh is 1e-4, where the outputs' rounding
        # divided by 2h alone reached 1.3e-7 relative on some CPUs; at 1e-4 the error is the
        # difference's own O(h^2) term (7e-8 at most here), the same on every machine.
        num = eval_numerical_gradient_array(f, arrays[i].copy(), dout, h=1e-4)
        assert rel_error(t.grad.numpy(), num) < 1e-7


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_float32_stays_float32(rng, kind):
    fwd = rnn_forward if kind == "rnn" else lstm_forward
    inputs = _cell_inputs(rng, 2, 3, 4, 1 if kind == "rnn" else 4, T=5)
    out32 = fwd(*_t(*[a.astype(np.float32) for a in inputs]))
    out64 = fwd(*_t(*inputs))
    assert out32.dtype == torch.float32
    assert rel_error(out32.numpy(), out64.numpy()) < 1e-5


@pytest.mark.parametrize("fwd, gates", [(rnn_forward, 1), (lstm_forward, 4)])
def test_empty_sequence_gives_empty_hidden_states(rng, fwd, gates):
    x, h0, Wx, Wh, b = _t(*_cell_inputs(rng, 2, 3, 4, gates, T=0))
    h = fwd(x, h0, Wx, Wh, b)
    assert tuple(h.shape) == (2, 0, 4) and h.dtype == torch.float64


# ----------------------------------------------------------------------------- input checks

def _z(*shape, dtype=torch.float64):
    return torch.zeros(*shape, dtype=dtype)


@pytest.mark.parametrize("call, message", [
    (lambda: rnn_step_forward(np.zeros((2, 3)), _z(2, 4), _z(3, 4), _z(4, 4), _z(4)),
     r"x must be a torch.Tensor, got ndarray; convert it with torch.from_numpy\(x\)"),
    (lambda: rnn_step_forward(_z(2, 3, dtype=torch.long), _z(2, 4), _z(3, 4), _z(4, 4), _z(4)),
     "x has dtype torch.int64"),
    (lambda: rnn_step_forward(_z(2, 3), _z(2, 4), _z(3, 5), _z(4, 4), _z(4)),
     r"Wx must be \(D, H\) = \(3, 4\)"),
    (lambda: rnn_forward(_z(2, 3), _z(2, 4), _z(3, 4), _z(4, 4), _z(4)), r"x must be 3-D \(N, T, D\)"),
    (lambda: rnn_forward(_z(2, 5, 3), _z(3, 4), _z(3, 4), _z(4, 4), _z(4)), "same N"),
    (lambda: rnn_forward(_z(2, 5, 3), _z(2, 4), _z(3, 4), _z(4, 4), _z(5)), r"b must be \(H,\) = \(4,\)"),
    (lambda: lstm_forward(_z(2, 5, 3), _z(2, 4), _z(3, 4), _z(4, 4), _z(4)),
     r"Wx must be \(D, 4 \* H\) = \(3, 16\)"),
    (lambda: lstm_step_forward(_z(2, 3), _z(2, 4), _z(2, 5), _z(3, 16), _z(4, 16), _z(16)),
     "prev_c must have prev_h's shape"),
    (lambda: rnn_forward(_z(2, 5, 3, dtype=torch.float32), _z(2, 4), _z(3, 4), _z(4, 4), _z(4)),
     "h is torch.float64 but x is torch.float32"),
    (lambda: rnn_step_forward(_z(2, 3), torch.zeros(2, 4, dtype=torch.float64, device="meta"), _z(3, 4),
                              _z(4, 4), _z(4)), "h is on meta but x is on cpu"),
    (lambda: word_embedding_forward(torch.tensor([[0, 5]]), _z(5, 2)), r"out of range: \[5\]"),
    (lambda: word_embedding_forward(torch.tensor([[0.0, 1.0]]), _z(5, 2)), "integer word indices"),
    (lambda: word_embedding_forward(torch.tensor([0, 1]), _z(5, 2)), r"x must be 2-D \(N, T\)"),
    (lambda: temporal_affine_forward(_z(2, 3, 4), _z(5, 2), _z(2)), "w must have D = 4 rows"),
    (lambda: temporal_affine_forward(_z(2, 3, 4), _z(4, 2), _z(3)), r"b must be \(M,\) = \(2,\)"),
    (lambda: affine_forward(_z(2, 3), _z(3, 2), _z(2, dtype=torch.float32)), "b is torch.float32"),
    (lambda: temporal_softmax_loss(_z(2, 3, 4), torch.zeros(2, 3, dtype=torch.long),
                                   torch.ones(3, 2, dtype=torch.bool)), r"mask must be \(N, T\) = \(2, 3\)"),
    (lambda: temporal_softmax_loss(_z(2, 3, 4), torch.full((2, 3), 4), torch.ones(2, 3, dtype=torch.bool)),
     "vocabulary size"),
    (lambda: temporal_softmax_loss(_z(0, 3, 4), torch.zeros(0, 3, dtype=torch.long),
                                   torch.ones(0, 3, dtype=torch.bool)), "empty batch"),
])
def test_bad_inputs_get_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("bad", [2.0, -1.0, float("nan"), 0.5])
def test_temporal_softmax_loss_refuses_a_mask_that_is_not_0_or_1(bad):
    # As the NumPy layer: a -1 mask gave a negative loss, NaN a NaN one.
    x = torch.zeros(2, 3, 4, dtype=torch.float64)
    y = torch.zeros(2, 3, dtype=torch.long)
    mask = torch.ones(2, 3, dtype=torch.float64)
    mask[1, 2] = bad
    with pytest.raises(ValueError, match="mask must be boolean .* or hold only 0 and 1"):
        temporal_softmax_loss(x, y, mask)
    assert float(temporal_softmax_loss(x, y, torch.ones(2, 3, dtype=torch.uint8))) > 0


@pytest.mark.parametrize("call, message", [
    (lambda: rnn_step_forward([[0.0, 0.0, 0.0]], _z(1, 4), _z(3, 4), _z(4, 4), _z(4)),
     r"x must be a torch.Tensor, got list; convert it with torch.tensor\(x\)"),
    (lambda: rnn_step_forward(_z(2, 3), _z(2, 4, dtype=torch.int32), _z(3, 4), _z(4, 4), _z(4)),
     r"h has dtype torch.int32; .* convert it with h.double\(\) or h.float\(\)"),
    (lambda: rnn_step_forward(_z(2, 3), _z(4), _z(3, 4), _z(4, 4), _z(4)), r"h must be 2-D \(N, H\), got shape \(4,\)"),
    (lambda: rnn_step_forward(_z(2, 3), _z(2, 4), _z(12), _z(4, 4), _z(4)), r"Wx must be 2-D, got shape \(12,\)"),
    (lambda: rnn_step_forward(_z(2, 3), _z(2, 4), _z(3, 4), _z(16), _z(4)), r"Wh must be 2-D, got shape \(16,\)"),
    (lambda: rnn_step_forward(_z(2, 3), _z(2, 4), _z(3, 4), _z(4, 5), _z(4)), r"Wh must be \(H, H\) = \(4, 4\)"),
    (lambda: lstm_step_forward(_z(2, 3), _z(2, 4), _z(2, 4), _z(3, 16), _z(4, 12), _z(16)),
     r"Wh must be \(H, 4 \* H\) = \(4, 16\)"),
    (lambda: lstm_forward(_z(2, 5, 3), _z(2, 4), _z(3, 16), _z(4, 16), _z(4)), r"b must be \(4 \* H,\) = \(16,\)"),
    (lambda: rnn_forward(_z(2, 5, 3), _z(3, 4), _z(3, 4), _z(4, 4), _z(4)),
     r"x holds 2 sequences but the hidden state \(3, 4\) holds 3; both need the same N"),
    (lambda: rnn_step_forward(_z(2, 3), _z(2, 4), _z(3, 4, dtype=torch.float32), _z(4, 4), _z(4)),
     r"Wx is torch.float32 but x is torch.float64; .* Wx.to\(torch.float64\)"),
    (lambda: lstm_forward(_z(2, 5, 3), _z(2, 4), _z(3, 16), _z(4, 16, dtype=torch.float32), _z(16)),
     "Wh is torch.float32 but x is torch.float64"),
    (lambda: rnn_forward(_z(2, 5, 3), _z(2, 4), _z(3, 4), _z(4, 4), _z(4, dtype=torch.float32)),
     "b is torch.float32 but x is torch.float64"),
    (lambda: affine_forward(np.zeros((2, 3)), _z(3, 2), _z(2)), r"x must be a torch.Tensor, got ndarray"),
    (lambda: affine_forward(torch.tensor(1.0, dtype=torch.float64), _z(1, 2), _z(2)), "leading batch axis N"),
    (lambda: affine_forward(_z(2, 3), np.zeros((3, 2)), _z(2)), r"w must be a torch.Tensor, got ndarray"),
    (lambda: affine_forward(_z(2, 3), _z(3, 2), [0.0, 0.0]), r"b must be a torch.Tensor, got list"),
    (lambda: temporal_affine_forward(_z(2, 3, 4), _z(8), _z(2)), r"w must be 2-D \(D, M\), got shape \(8,\)"),
    (lambda: temporal_affine_forward(_z(2, 3, 4), _z(4, 2, dtype=torch.float32), _z(2)),
     "w is torch.float32 but x is torch.float64"),
    (lambda: lstm_step_forward(_z(2, 3), _z(2, 4), np.zeros((2, 4)), _z(3, 16), _z(4, 16), _z(16)),
     r"prev_c must be a torch.Tensor, got ndarray"),
    (lambda: lstm_step_forward(_z(2, 3), _z(2, 4), _z(2, 4, dtype=torch.float32), _z(3, 16), _z(4, 16), _z(16)),
     "prev_c is torch.float32 but x is torch.float64"),
    (lambda: word_embedding_forward(torch.tensor([[0, 1]]), np.zeros((5, 2))),
     r"W must be a torch.Tensor, got ndarray"),
    (lambda: word_embedding_forward(torch.tensor([[0, 1]]), _z(5)), r"W must be 2-D \(V, D\), got shape \(5,\)"),
    (lambda: temporal_affine_forward(np.zeros((2, 3, 4)), _z(4, 2), _z(2)), r"x must be a torch.Tensor, got ndarray"),
    (lambda: temporal_affine_forward(_z(6, 4), _z(4, 2), _z(2)), r"x must be 3-D \(N, T, D\), got shape \(6, 4\)"),
    (lambda: temporal_softmax_loss(np.zeros((2, 3, 4)), np.zeros((2, 3), int), np.ones((2, 3), bool)),
     r"x must be a torch.Tensor, got ndarray"),
    (lambda: temporal_softmax_loss(_z(6, 4), torch.zeros(6, dtype=torch.long), torch.ones(6, dtype=torch.bool)),
     r"x must be 3-D \(N, T, V\) of scores, got shape \(6, 4\)"),
])
def test_cell_shape_errors_name_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_affine_forward_takes_a_batch_of_scalars(rng):
    x, w, b = rng.standard_normal(4), rng.standard_normal((1, 3)), rng.standard_normal(3)
    out = affine_forward(*_t(x, w, b))
    np.testing.assert_allclose(out.numpy(), x[:, None] @ w + b, rtol=1e-12)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int32])
def test_word_indices_of_any_integer_dtype_are_looked_up(rng, dtype):
    # a uint8 tensor used as an index would be a boolean mask in torch: the indices are cast to long first
    x = rng.integers(5, size=(3, 4))
    W = torch.from_numpy(rng.standard_normal((5, 2)))
    out = word_embedding_forward(torch.from_numpy(x).to(dtype), W)
    np.testing.assert_array_equal(out.numpy(), W.numpy()[x])
    scores, mask = torch.from_numpy(rng.standard_normal((3, 4, 5))), torch.ones(3, 4, dtype=torch.bool)
    y = torch.from_numpy(x)
    assert temporal_softmax_loss(scores, y.to(dtype), mask) == temporal_softmax_loss(scores, y, mask)


def test_out_of_range_indices_are_listed_five_at_most():
    with pytest.raises(ValueError, match=r"out of range: \[5, 6, 7, -1, 9\] \(expected 0 <= index < 5"):
        word_embedding_forward(torch.tensor([[0, 5, 6, 7, -1, 9, 10]]), _z(5, 2))


@pytest.mark.parametrize("mask_dtype", [np.float64, np.int64, np.bool_])
def test_temporal_softmax_loss_keeps_the_scores_dtype_whatever_the_mask(rng, mask_dtype):
    x = torch.from_numpy(rng.standard_normal((2, 3, 4)).astype(np.float32))
    y, mask = rng.integers(4, size=(2, 3)), rng.random((2, 3)) > 0.3
    loss = temporal_softmax_loss(x, y, mask.astype(mask_dtype))
    assert loss.dtype == torch.float32
    want = temporal_softmax_loss(x.double(), y, mask)
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)


def test_a_bad_mask_is_listed_five_values_at_most():
    mask = torch.tensor([[2.0, 3, 4], [5, 6, 7]])
    with pytest.raises(ValueError, match=r"got \[2\.0, 3\.0, 4\.0, 5\.0, 6\.0\]; use a boolean mask"):
        temporal_softmax_loss(_z(2, 3, 4), torch.zeros(2, 3, dtype=torch.long), mask)
