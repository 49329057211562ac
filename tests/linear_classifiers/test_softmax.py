import numpy as np
import pytest
import torch

from deep_learning_suite.utils import eval_numerical_gradient, rel_error
from linear_classifiers.softmax import softmax_loss_naive, softmax_loss_vectorized

LOSSES = [softmax_loss_naive, softmax_loss_vectorized]


@pytest.mark.parametrize("N, D, C, reg", [(20, 8, 5, 0.1), (1, 3, 2, 0.0), (12, 15, 10, 2.5), (30, 4, 3, 1e-3)])
def test_naive_and_vectorized_agree(rng, N, D, C, reg):
    W = 0.1 * rng.standard_normal((D, C))
    X = rng.standard_normal((N, D))
    y = rng.integers(C, size=N)
    loss_n, dW_n = softmax_loss_naive(W, X, y, reg)
    loss_v, dW_v = softmax_loss_vectorized(W, X, y, reg)
    assert abs(loss_n - loss_v) <= 1e-9 * max(1.0, abs(loss_n))
    assert rel_error(dW_n, dW_v) < 1e-9
    assert dW_n.shape == dW_v.shape == (D, C)


@pytest.mark.parametrize("loss_fn", LOSSES)
@pytest.mark.parametrize("N, D, C, reg", [(15, 6, 4, 0.3), (5, 10, 7, 0.0), (8, 3, 3, 5.0), (1, 2, 2, 0.1)])
def test_gradient_numerical_and_torch(rng, loss_fn, N, D, C, reg):
    W = 0.5 * rng.standard_normal((D, C))
    X = rng.standard_normal((N, D))
    y = rng.integers(C, size=N)
    loss, dW = loss_fn(W, X, y, reg)
    num = eval_numerical_gradient(lambda w: loss_fn(w, X, y, reg)[0], W, verbose=False)
    assert rel_error(dW, num) < 1e-7

    tW = torch.tensor(W, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(torch.tensor(X) @ tW, torch.tensor(y)) + reg * (tW ** 2).sum()
    tloss.backward()
    assert abs(loss - tloss.item()) <= 1e-12 * max(1.0, abs(loss))
    assert rel_error(dW, tW.grad.numpy()) < 1e-10


@pytest.mark.parametrize("loss_fn", LOSSES)
@pytest.mark.parametrize("C", [3, 10])
def test_initial_loss_is_log_num_classes(rng, loss_fn, C):
    W = 1e-4 * rng.standard_normal((30, C))
    X = rng.standard_normal((200, 30))
    loss, _ = loss_fn(W, X, rng.integers(C, size=200), 0.0)
    assert abs(loss - np.log(C)) < 1e-2


@pytest.mark.parametrize("loss_fn", LOSSES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_for_scores_of_1e4(loss_fn, dtype):
    # Scores X @ W: row 0 = [1e4, 0, -1e4] (right and certain), row 1 = [0, 1e4, 1e4]
    # (half the mass on each of two wrong classes).
    W = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 1e4]], dtype=dtype)
    X = np.eye(2, dtype=dtype)
    y = np.array([0, 0])
    # Underflow of exp(-1e4) to 0 is exact enough and silent by default; nothing else may happen.
    with np.errstate(all="raise", under="ignore"):
        loss, dW = loss_fn(W, X, y, 0.0)
    assert np.isfinite(loss) and np.all(np.isfinite(dW))
    assert loss == pytest.approx((1e4 + np.log(2)) / 2, rel=1e-6)
    expected = np.array([[0.0, 0.0, 0.0], [-0.5, 0.25, 0.25]])
    assert np.allclose(dW, expected, atol=1e-6)
    assert dW.dtype == dtype


@pytest.mark.parametrize("loss_fn", LOSSES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(rng, loss_fn, dtype):
    W = rng.standard_normal((5, 3)).astype(dtype)
    X = rng.standard_normal((4, 5)).astype(dtype)
    loss, dW = loss_fn(W, X, np.array([0, 1, 2, 1]), 0.1)
    assert dW.dtype == dtype and np.asarray(loss).dtype == dtype


@pytest.mark.parametrize("loss_fn", LOSSES)
@pytest.mark.parametrize(
    "W_shape, X_shape, y, msg",
    [
        ((4, 3), (5, 3), np.zeros(5, dtype=int), r"\(5, 3\).*\(4, 3\)"),
        ((4, 3), (5, 4, 1), np.zeros(5, dtype=int), r"X must be 2-D"),
        ((4, 3), (5, 4), np.zeros((5, 1), dtype=int), "5 labels"),
        ((4, 3), (5, 4), np.array([0, 1, 2, 3, 0]), "out of range"),
        ((4, 3), (5, 4), np.array([0.0, 1.0, 2.0, 0.0, 0.0]), "integer"),
        ((4, 3), (0, 4), np.zeros(0, dtype=int), "empty"),
    ],
)
def test_rejects_bad_shapes_and_labels(rng, loss_fn, W_shape, X_shape, y, msg):
    with pytest.raises(ValueError, match=msg):
        loss_fn(rng.standard_normal(W_shape), rng.standard_normal(X_shape), y, 0.1)


@pytest.mark.parametrize("loss_fn", LOSSES)
@pytest.mark.parametrize("W_dtype, X_dtype", [(np.float32, np.float64), (np.float64, np.float32)])
def test_mixed_dtypes_return_the_gradient_in_ws_dtype(rng, loss_fn, W_dtype, X_dtype):
    # dW is the update of W, so it must come back in W's dtype (an optimiser rejects a
    # float64 dw for a float32 w); the work is done in the wider dtype.
    W = (1e-2 * rng.standard_normal((6, 4))).astype(W_dtype)
    X = rng.standard_normal((9, 6)).astype(X_dtype)
    y = rng.integers(4, size=9)
    loss, dW = loss_fn(W, X, y, 0.1)
    assert dW.dtype == W_dtype and np.asarray(loss).dtype == W_dtype
    ref_loss, ref_dW = softmax_loss_vectorized(W.astype(np.float64), X.astype(np.float64), y, 0.1)
    assert abs(float(loss) - ref_loss) <= 1e-6 * max(1.0, abs(ref_loss))
    assert rel_error(dW, ref_dW) < 1e-5
