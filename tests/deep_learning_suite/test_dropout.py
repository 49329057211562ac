import numpy as np
import pytest

from deep_learning_suite.dropout import dropout_backward, dropout_forward
from deep_learning_suite.utils import eval_numerical_gradient_array, rel_error


@pytest.mark.parametrize("p", [0.25, 0.4, 0.7, 0.9])
def test_keep_fraction_and_mean_preserved(rng, p):
    x = rng.standard_normal((500, 500)) + 10
    out, (_, mask) = dropout_forward(x, {"mode": "train", "p": p, "seed": 123})
    kept = np.mean(out != 0)
    # 250k Bernoulli(p) draws: the standard error is < 1e-3.
    assert abs(kept - p) < 5e-3
    assert abs(out.mean() - x.mean()) / x.mean() < 1e-2
    # Kept units are scaled by 1 / p, dropped ones are 0.
    assert np.allclose(out[out != 0], x[out != 0] / p)
    assert set(np.unique(mask)) <= {0.0, 1.0 / p}


@pytest.mark.parametrize("p", [0.3, 1.0])
def test_test_mode_is_identity(rng, p):
    x = rng.standard_normal((20, 30))
    out, cache = dropout_forward(x, {"mode": "test", "p": p})
    assert np.array_equal(out, x)
    dout = rng.standard_normal(x.shape)
    assert np.array_equal(dropout_backward(dout, cache), dout)


def test_keep_probability_one_is_identity_in_training(rng):
    x = rng.standard_normal((30, 40))
    out, _ = dropout_forward(x, {"mode": "train", "p": 1})
    assert np.array_equal(out, x)


def test_same_seed_same_mask_and_different_seed_different_mask(rng):
    x = rng.standard_normal((40, 50))
    a, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 7})
    b, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 7})
    c, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 8})
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_seeded_dropout_leaves_global_stream_alone(rng):
    np.random.seed(0)
    expected = np.random.random_sample(3)
    np.random.seed(0)
    dropout_forward(rng.standard_normal((10, 10)), {"mode": "train", "p": 0.5, "seed": 1})
    assert np.array_equal(np.random.random_sample(3), expected)


def test_unseeded_dropout_follows_np_random_seed(rng):
    x = rng.standard_normal((10, 10))
    np.random.seed(5)
    a, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    b, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    np.random.seed(5)
    a2, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    assert np.array_equal(a, a2) and not np.array_equal(a, b)


def test_unseeded_dropout_reproduces_the_course_notebook_output():
    # The Dropout notebook's first check, with the reference solution's printed figures: the
    # mask is np.random.rand(*x.shape) < p, drawn right after x from the seeded global stream.
    state = np.random.get_state()
    try:
        np.random.seed(231)
        x = np.random.randn(500, 500) + 10
        printed = {0.25: (10.014059116977283, 0.749784), 0.4: (9.977917658761159, 0.600796),
                   0.7: (9.987811912159426, 0.30074)}
        for p, (train_mean, zero_fraction) in printed.items():
            out, _ = dropout_forward(x, {"mode": "train", "p": p})
            out_test, _ = dropout_forward(x, {"mode": "test", "p": p})
            assert abs(out.mean() - train_mean) < 1e-12 * train_mean  # the order of the sum's rounding
            assert (out == 0).mean() == zero_fraction
            assert np.array_equal(out_test, x)
    finally:
        np.random.set_state(state)


@pytest.mark.parametrize("shape, p", [((10, 10), 0.2), ((3, 4, 5), 0.6), ((2, 3, 2, 2), 0.9)])
def test_gradient_is_the_mask(rng, shape, p):
    x = rng.standard_normal(shape) + 10
    param = {"mode": "train", "p": p, "seed": 42}
    out, cache = dropout_forward(x, param)
    dout = rng.standard_normal(shape)
    dx = dropout_backward(dout, cache)
    assert np.array_equal(dx, dout * cache[1])
    num = eval_numerical_gradient_array(lambda v: dropout_forward(v, param)[0], x, dout)
    assert rel_error(dx, num) < 1e-9


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(rng, dtype):
    x = rng.standard_normal((8, 9)).astype(dtype)
    out, cache = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 0})
    assert out.dtype == dtype and cache[1].dtype == dtype
    assert dropout_backward(out, cache).dtype == dtype


@pytest.mark.parametrize("p", [0, -0.1, 1.5, "0.5", None, True])
def test_rejects_bad_keep_probability(rng, p):
    with pytest.raises(ValueError, match="probability of KEEPING"):
        dropout_forward(rng.standard_normal((3, 3)), {"mode": "train", "p": p})


@pytest.mark.parametrize("param, msg", [({"p": 0.5}, "no 'mode'"), ({"mode": "val", "p": 0.5}, "'train' or 'test'"),
                                        ({"mode": "train"}, "no 'p'")])
def test_rejects_bad_param(rng, param, msg):
    with pytest.raises(ValueError, match=msg):
        dropout_forward(rng.standard_normal((3, 3)), param)


def test_backward_rejects_wrong_shape(rng):
    _, cache = dropout_forward(rng.standard_normal((3, 4)), {"mode": "train", "p": 0.5})
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(3, 4\)"):
        dropout_backward(np.ones((4, 3)), cache)


@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("dtype, p", [(np.float32, 1e-300), (np.float32, 1e-40), (np.float16, 1e-5),
                                      (np.float64, 1e-310)])
def test_rejects_a_keep_probability_whose_scale_overflows_the_dtype(rng, mode, dtype, p):
    # float32: 1e-300 rounds to 0 and 1e-40 gives 1 / p > 3.4e38; the mask held NaN and inf.
    x = rng.standard_normal((4, 4)).astype(dtype)
    with pytest.raises(ValueError, match=r"too small for .* x: the kept units' scale 1 / p is not finite"):
        dropout_forward(x, {"mode": mode, "p": p, "seed": 0})


@pytest.mark.parametrize("dtype, p", [(np.float32, 1e-38), (np.float16, 1e-4), (np.float64, 1e-300)])
def test_tiny_representable_keep_probability_gives_a_finite_mask(rng, dtype, p):
    x = rng.standard_normal((4, 4)).astype(dtype)
    _, (_, mask) = dropout_forward(x, {"mode": "train", "p": p, "seed": 0})
    assert mask.dtype == dtype and np.all(np.isfinite(mask))


@pytest.mark.parametrize("dout, match", [
    (np.ones((4, 3)), r"dout shape \(4, 3\) differs from x shape \(3, 4\)"),
    (np.ones(12), r"dout shape \(12,\) differs from x shape \(3, 4\)"),
    (np.ones((3, 4), np.float32), r"dout is float32 but the forward's x is float64"),
])
def test_test_mode_backward_checks_dout_against_the_forward(rng, dout, match):
    x = rng.standard_normal((3, 4))
    _, cache = dropout_forward(x, {"mode": "test", "p": 0.5})
    with pytest.raises(ValueError, match=match):
        dropout_backward(dout, cache)
    good = rng.standard_normal((3, 4))
    assert dropout_backward(good, cache) is good
    # The course's two-element test-mode cache still works: nothing to check against.
    assert dropout_backward(dout, ({"mode": "test", "p": 0.5}, None)) is dout
