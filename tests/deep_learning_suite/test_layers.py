import numpy as np
import pytest
import torch

from deep_learning_suite.layers import (
    affine_backward,
    affine_forward,
    relu_backward,
    relu_forward,
    softmax_loss,
    svm_loss,
)
from deep_learning_suite.utils import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    rel_error,
)


@pytest.mark.parametrize("x_shape, M", [((4, 5), 3), ((2, 3, 4, 2), 5), ((1, 7), 1)])
def test_affine_gradients_numerical_and_torch(rng, x_shape, M):
    x = rng.standard_normal(x_shape)
    D = int(np.prod(x_shape[1:]))
    w = rng.standard_normal((D, M))
    b = rng.standard_normal(M)
    out, cache = affine_forward(x, w, b)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = affine_backward(dout, cache)

    assert dx.shape == x.shape
    assert rel_error(dx, eval_numerical_gradient_array(lambda v: affine_forward(v, w, b)[0], x, dout)) < 1e-7
    assert rel_error(dw, eval_numerical_gradient_array(lambda v: affine_forward(x, v, b)[0], w, dout)) < 1e-7
    assert rel_error(db, eval_numerical_gradient_array(lambda v: affine_forward(x, w, v)[0], b, dout)) < 1e-7

    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = tx.reshape(x_shape[0], -1) @ tw + tb
    tout.backward(torch.tensor(dout))
    assert rel_error(out, tout.detach().numpy()) < 1e-12
    for mine, ref in ((dx, tx), (dw, tw), (db, tb)):
        assert rel_error(mine, ref.grad.numpy()) < 1e-10


def test_affine_matches_course_values():
    # The CS231n notebook's fixed check: linspace inputs, known output.
    num_inputs, input_shape, output_dim = 2, (4, 5, 6), 3
    input_size = num_inputs * np.prod(input_shape)
    weight_size = output_dim * np.prod(input_shape)
    x = np.linspace(-0.1, 0.5, num=input_size).reshape(num_inputs, *input_shape)
    w = np.linspace(-0.2, 0.3, num=weight_size).reshape(np.prod(input_shape), output_dim)
    b = np.linspace(-0.3, 0.1, num=output_dim)
    out, _ = affine_forward(x, w, b)
    correct_out = np.array([[1.49834967, 1.70660132, 1.91485297], [3.25553199, 3.5141327, 3.77273342]])
    assert rel_error(out, correct_out) < 1e-7


def test_relu_matches_course_values():
    # The CS231n notebook's relu_forward check ("the error should be on the order of e-8").
    x = np.linspace(-0.5, 0.5, num=12).reshape(3, 4)
    out, _ = relu_forward(x)
    correct_out = np.array([[0., 0., 0., 0.],
                            [0., 0., 0.04545455, 0.13636364],
                            [0.22727273, 0.31818182, 0.40909091, 0.5]])
    assert rel_error(out, correct_out) < 1e-7


def test_relu_gradients(rng):
    # Keep entries away from the kink at 0 so the centred difference is exact.
    x = rng.standard_normal((5, 6, 3))
    x[np.abs(x) < 1e-3] = 0.5
    out, cache = relu_forward(x)
    assert np.array_equal(out, np.maximum(x, 0))
    dout = rng.standard_normal(x.shape)
    dx = relu_backward(dout, cache)
    assert rel_error(dx, eval_numerical_gradient_array(lambda v: relu_forward(v)[0], x, dout)) < 1e-7
    tx = torch.tensor(x, requires_grad=True)
    torch.relu(tx).backward(torch.tensor(dout))
    assert rel_error(dx, tx.grad.numpy()) < 1e-12


@pytest.mark.parametrize("N, C", [(50, 10), (1, 3), (7, 2)])
def test_softmax_loss_gradient_and_torch(rng, N, C):
    x = 0.5 * rng.standard_normal((N, C))
    y = rng.integers(C, size=N)
    loss, dx = softmax_loss(x, y)
    num = eval_numerical_gradient(lambda v: softmax_loss(v, y)[0], x, verbose=False)
    assert rel_error(dx, num) < 1e-7
    tx = torch.tensor(x, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(tx, torch.tensor(y))
    tloss.backward()
    assert abs(loss - tloss.item()) < 1e-12
    assert rel_error(dx, tx.grad.numpy()) < 1e-10


def test_softmax_initial_loss_is_log_num_classes(rng):
    x = 1e-3 * rng.standard_normal((500, 10))
    y = rng.integers(10, size=500)
    loss, _ = softmax_loss(x, y)
    assert abs(loss - np.log(10)) < 1e-2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_loss_large_logits_finite_and_warning_free(dtype):
    x = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 1e4]], dtype=dtype)
    y = np.array([0, 0])
    # Underflow of exp(-1e4) to 0 is exact enough and silent by default; anything else must not happen.
    with np.errstate(all="raise", under="ignore"):
        loss, dx = softmax_loss(x, y)
    assert np.isfinite(loss) and np.all(np.isfinite(dx))
    # Row 0 is certain and right (loss 0); row 1 puts mass 1/2 on each of two wrong classes.
    assert loss == pytest.approx((1e4 + np.log(2)) / 2, rel=1e-6)
    assert dx.dtype == dtype


@pytest.mark.parametrize("N, C", [(50, 10), (3, 4)])
def test_svm_loss_gradient_and_torch(rng, N, C):
    x = rng.standard_normal((N, C))
    y = rng.integers(C, size=N)
    loss, dx = svm_loss(x, y)
    num = eval_numerical_gradient(lambda v: svm_loss(v, y)[0], x, verbose=False)
    assert rel_error(dx, num) < 1e-7
    tx = torch.tensor(x, requires_grad=True)
    tloss = torch.nn.functional.multi_margin_loss(tx, torch.tensor(y), margin=1.0, reduction="sum") * C / N
    tloss.backward()
    assert abs(loss - tloss.item()) < 1e-12
    assert rel_error(dx, tx.grad.numpy()) < 1e-10


def test_svm_initial_loss_is_num_classes_minus_one(rng):
    x = 1e-4 * rng.standard_normal((200, 10))
    loss, _ = svm_loss(x, rng.integers(10, size=200))
    assert abs(loss - 9.0) < 1e-2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(rng, dtype):
    x = rng.standard_normal((4, 3, 2)).astype(dtype)
    w = rng.standard_normal((6, 5)).astype(dtype)
    b = np.zeros(5, dtype=dtype)
    out, cache = affine_forward(x, w, b)
    assert out.dtype == dtype
    assert all(g.dtype == dtype for g in affine_backward(out, cache))
    r, rc = relu_forward(out)
    assert r.dtype == dtype and relu_backward(r, rc).dtype == dtype
    y = np.array([0, 1, 2, 4])
    for fn in (softmax_loss, svm_loss):
        loss, dx = fn(out, y)
        assert dx.dtype == dtype and np.asarray(loss).dtype == dtype


def test_affine_rejects_incompatible_shapes(rng):
    x = rng.standard_normal((4, 3, 2))
    with pytest.raises(ValueError, match=r"\(4, 3, 2\).*\(7, 5\)"):
        affine_forward(x, rng.standard_normal((7, 5)), np.zeros(5))
    with pytest.raises(ValueError, match="b must have shape"):
        affine_forward(x, rng.standard_normal((6, 5)), np.zeros(4))


def test_affine_rejects_integer_input():
    with pytest.raises(ValueError, match="astype"):
        affine_forward(np.ones((2, 3), dtype=np.uint8), np.ones((3, 2)), np.zeros(2))


@pytest.mark.parametrize("fn", [softmax_loss, svm_loss])
@pytest.mark.parametrize(
    "y, msg",
    [
        (np.array([0, 1, 3]), "out of range"),
        (np.array([0, -1, 2]), "out of range"),
        (np.array([0.0, 1.0, 2.0]), "integer"),
        (np.array([0, 1]), "3 labels"),
    ],
)
def test_losses_reject_bad_labels(rng, fn, y, msg):
    with pytest.raises(ValueError, match=msg):
        fn(rng.standard_normal((3, 3)), y)


def test_affine_backward_refuses_a_dout_of_the_wrong_shape(rng):
    _, cache = affine_forward(rng.standard_normal((4, 5)), rng.standard_normal((5, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="dout must have shape"):
        affine_backward(np.ones((4, 2)), cache)


def test_relu_gradient_at_exactly_zero_is_zero_as_torch():
    x = np.array([[-1.0, 0.0, 1e-4, 2.0]])
    _, cache = relu_forward(x)
    t = torch.tensor(x, requires_grad=True)
    torch.relu(t).sum().backward()
    assert np.array_equal(relu_backward(np.ones_like(x), cache), t.grad.numpy())


@pytest.mark.parametrize("fn", [softmax_loss, svm_loss])
def test_losses_refuse_an_empty_batch(fn):
    with pytest.raises(ValueError, match="empty batch"):
        fn(np.zeros((0, 3)), np.zeros(0, dtype=np.int64))
