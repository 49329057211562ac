import numpy as np
import pytest
import torch

from deep_learning_suite.utils import eval_numerical_gradient, rel_error
from linear_classifiers.linear_svm import svm_loss_naive, svm_loss_vectorized

LOSSES = [svm_loss_naive, svm_loss_vectorized]


def data_away_from_kinks(rng, N, D, C, gap=1e-2):
    """Random W, X, y, keeping only the samples whose margins are all at least ``gap`` from 0.

    The hinge is not differentiable at margin 0; a centred difference is exact only if no
    margin crosses 0 within the step, which moves a margin by at most ``max|X| * h``.
    """
    W = 0.5 * rng.standard_normal((D, C))
    X = rng.standard_normal((4 * N, D))
    y = rng.integers(C, size=4 * N)
    scores = X @ W
    margins = scores - scores[np.arange(4 * N), y][:, None] + 1
    margins[np.arange(4 * N), y] = np.inf
    keep = np.flatnonzero(np.abs(margins).min(axis=1) > gap)[:N]
    assert len(keep) == N, "not enough samples away from the kinks; change the seed"
    return W, X[keep], y[keep]


@pytest.mark.parametrize("N, D, C, reg", [(20, 8, 5, 0.1), (1, 3, 2, 0.0), (12, 15, 10, 2.5), (30, 4, 3, 1e-3)])
def test_naive_and_vectorized_agree(rng, N, D, C, reg):
    W = 1e-2 * rng.standard_normal((D, C))
    X = rng.standard_normal((N, D))
    y = rng.integers(C, size=N)
    loss_n, dW_n = svm_loss_naive(W, X, y, reg)
    loss_v, dW_v = svm_loss_vectorized(W, X, y, reg)
    assert abs(loss_n - loss_v) <= 1e-9 * max(1.0, abs(loss_n))
    assert rel_error(dW_n, dW_v) < 1e-9
    assert dW_n.shape == dW_v.shape == (D, C)


@pytest.mark.parametrize("loss_fn", LOSSES)
@pytest.mark.parametrize("N, D, C, reg", [(15, 6, 4, 0.3), (5, 10, 7, 0.0), (8, 3, 3, 5.0)])
def test_gradient_numerical_and_torch(rng, loss_fn, N, D, C, reg):
    W, X, y = data_away_from_kinks(rng, N, D, C)
    loss, dW = loss_fn(W, X, y, reg)
    # Away from the kinks the loss is quadratic in each W[d, c], where a centred difference is
    # exact; so take the largest step that cannot move a margin across 0 (a margin moves by at
    # most |X| * h) and the loss's rounding, divided by 2h, stays far below the 1e-7 bound even
    # for gradient entries near 1e-4 (with h = 1e-5 it reached 1.2e-7 on some CPUs).
    h = 0.5 * 1e-2 / np.abs(X).max()
    num = eval_numerical_gradient(lambda w: loss_fn(w, X, y, reg)[0], W, verbose=False, h=h)
    assert rel_error(dW, num) < 1e-7

    # torch's multi_margin_loss divides each sample's sum over j != y by C.
    tW = torch.tensor(W, requires_grad=True)
    tloss = (torch.nn.functional.multi_margin_loss(torch.tensor(X) @ tW, torch.tensor(y), margin=1.0,
                                                   reduction="sum") * C / N
             + reg * (tW ** 2).sum())
    tloss.backward()
    assert abs(loss - tloss.item()) <= 1e-12 * max(1.0, abs(loss))
    assert rel_error(dW, tW.grad.numpy()) < 1e-10


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_matches_a_hand_computed_example(loss_fn):
    # Two samples, D = 2, C = 3. Scores row 0: [1, 2, -1], y = 0 -> margins [-, 2, 0] -> 2.
    # Row 1: [0.5, 0, 3], y = 2 -> margins [-1.5, -2, -] -> 0.  Mean 1, plus 0.5 * sum(W**2).
    W = np.array([[1.0, 2.0, -1.0], [0.5, 0.0, 3.0]])
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    y = np.array([0, 2])
    loss, dW = loss_fn(W, X, y, 0.5)
    assert loss == pytest.approx(1.0 + 0.5 * np.sum(W ** 2))
    expected = np.array([[-0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]) + 2 * 0.5 * W
    assert np.allclose(dW, expected)


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_a_margin_of_exactly_zero_adds_nothing_to_the_gradient(loss_fn):
    # Scores [1, 0] with y = 0: class 1's margin is 0 - 1 + 1 = 0 exactly, the kink, where
    # the course's `if margin > 0` takes the subgradient 0; below it, margin -1 (class 0's).
    W = np.eye(2)
    X = np.array([[1.0, 0.0], [0.0, 2.0]])
    y = np.array([0, 1])
    loss, dW = loss_fn(W, X, y, 0.0)
    assert loss == 0.0
    assert np.array_equal(dW, np.zeros((2, 2)))


def svm_gradient_by_loops(W, X, y):
    """The course's rule, written out: only margins strictly above 0 move the gradient."""
    dW = np.zeros_like(W)
    for i in range(X.shape[0]):
        scores = [X[i] @ W[:, j] for j in range(W.shape[1])]
        for j in range(W.shape[1]):
            if j != y[i] and scores[j] - scores[y[i]] + 1 > 0:
                dW[:, j] += X[i]
                dW[:, y[i]] -= X[i]
    return dW / X.shape[0]


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_many_exact_zero_margins_follow_the_strict_rule(rng, loss_fn):
    # Entries -1, 0, 1 in float64: every score is an exact integer, so many margins are exactly 0.
    W = rng.integers(-1, 2, size=(4, 5)).astype(np.float64)
    X = rng.integers(-1, 2, size=(40, 4)).astype(np.float64)
    y = rng.integers(5, size=40)
    scores = X @ W
    margins = scores - scores[np.arange(40), y][:, None] + 1
    margins[np.arange(40), y] = -1
    assert np.sum(margins == 0) >= 10 and np.sum(margins > 0) >= 10   # the case under test is there
    loss, dW = loss_fn(W, X, y, 0.5)
    assert loss == pytest.approx(np.maximum(margins, 0).sum() / 40 + 0.5 * np.sum(W ** 2), rel=1e-12)
    assert np.allclose(dW, svm_gradient_by_loops(W, X, y) + 2 * 0.5 * W, rtol=0, atol=1e-12)


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_initial_loss_is_num_classes_minus_one(rng, loss_fn):
    W = 1e-6 * rng.standard_normal((20, 10))
    X = rng.standard_normal((100, 20))
    loss, _ = loss_fn(W, X, rng.integers(10, size=100), 0.0)
    assert abs(loss - 9.0) < 1e-3


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
        ((4,), (5, 4), np.zeros(5, dtype=int), r"W must be 2-D"),
        ((4, 3), (5, 4), np.zeros(4, dtype=int), "5 labels"),
        ((4, 3), (5, 4), np.array([0, 1, 2, 3, 0]), "out of range"),
        ((4, 3), (5, 4), np.array([0, 1, -1, 0, 0]), "out of range"),
        ((4, 3), (5, 4), np.array([0.0, 1.0, 2.0, 0.0, 0.0]), "integer"),
    ],
)
def test_rejects_bad_shapes_and_labels(rng, loss_fn, W_shape, X_shape, y, msg):
    with pytest.raises(ValueError, match=msg):
        loss_fn(rng.standard_normal(W_shape), rng.standard_normal(X_shape), y, 0.1)


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_rejects_negative_reg_and_integer_data(rng, loss_fn):
    W, X, y = rng.standard_normal((4, 3)), rng.standard_normal((5, 4)), np.zeros(5, dtype=int)
    with pytest.raises(ValueError, match="reg"):
        loss_fn(W, X, y, -1.0)
    with pytest.raises(ValueError, match="astype"):
        loss_fn(W, np.ones((5, 4), dtype=np.uint8), y, 0.1)


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
    ref_loss, ref_dW = svm_loss_vectorized(W.astype(np.float64), X.astype(np.float64), y, 0.1)
    assert abs(float(loss) - ref_loss) <= 1e-6 * max(1.0, abs(ref_loss))
    assert rel_error(dW, ref_dW) < 1e-5
