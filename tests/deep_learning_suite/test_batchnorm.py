import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deep_learning_suite.batchnorm import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)
from deep_learning_suite.utils import eval_numerical_gradient_array, rel_error

NUM_TOL = 1e-6  # numerical vs analytic, float64, house rule for norms
TORCH_TOL = 1e-9  # same maths in a different order of operations


def _bn_train(x, gamma, beta, **extra):
    return batchnorm_forward(x, gamma, beta, {"mode": "train", **extra})[0]


def _check_numerical(forward, args, grads, dout):
    """Each gradient in ``grads`` against the centred difference of ``forward(*args)`` w.r.t. that arg."""
    for i, grad in enumerate(grads):
        def f(v, i=i):
            return forward(*args[:i], v, *args[i + 1:])

        num = eval_numerical_gradient_array(f, args[i], dout)
        assert grad.shape == args[i].shape
        assert rel_error(grad, num) < NUM_TOL, f"argument {i}"


# --------------------------------------------------------------------------- batch norm


@pytest.mark.parametrize("N, D", [(4, 5), (10, 3), (3, 1), (50, 2)])
def test_batchnorm_train_forward_matches_definition_and_torch(rng, N, D):
    x = 4 * rng.standard_normal((N, D)) + 7
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    bn_param = {"mode": "train"}
    out, _ = batchnorm_forward(x, gamma, beta, bn_param)

    xhat = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)
    assert rel_error(out, gamma * xhat + beta) < 1e-12
    ref = F.batch_norm(torch.tensor(x), None, None, torch.tensor(gamma), torch.tensor(beta), training=True, eps=1e-5)
    assert rel_error(out, ref.numpy()) < TORCH_TOL
    # With unit scale and no shift every feature has mean 0 and (biased) variance ~1.
    z, _ = batchnorm_forward(x, np.ones(D), np.zeros(D), {"mode": "train"})
    assert np.allclose(z.mean(0), 0, atol=1e-10)
    assert np.allclose(z.var(0), x.var(0) / (x.var(0) + 1e-5), atol=1e-10)


def test_running_averages_follow_momentum_formula(rng):
    D = 4
    gamma, beta = np.ones(D), np.zeros(D)
    bn_param = {"mode": "train", "momentum": 0.8}
    mean, var = np.zeros(D), np.zeros(D)
    for step in range(3):
        x = rng.standard_normal((16, D)) * (step + 1) + step
        batchnorm_forward(x, gamma, beta, bn_param)
        mean = 0.8 * mean + 0.2 * x.mean(0)
        var = 0.8 * var + 0.2 * x.var(0)  # biased: the statistic the forward normalised with
        assert np.allclose(bn_param["running_mean"], mean, rtol=1e-13, atol=0)
        assert np.allclose(bn_param["running_var"], var, rtol=1e-13, atol=0)


def test_running_averages_default_momentum_and_zero_start(rng):
    x = rng.standard_normal((8, 3)) + 5
    bn_param = {"mode": "train"}
    batchnorm_forward(x, np.ones(3), np.zeros(3), bn_param)
    assert np.allclose(bn_param["running_mean"], 0.1 * x.mean(0), rtol=1e-13)
    assert np.allclose(bn_param["running_var"], 0.1 * x.var(0), rtol=1e-13)
    # Torch's running_mean uses momentum = 1 - ours and agrees (its running_var is unbiased).
    rm, rv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    F.batch_norm(torch.tensor(x), rm, rv, training=True, momentum=0.1)
    assert rel_error(bn_param["running_mean"], rm.numpy()) < 1e-12


def test_test_mode_uses_running_statistics_and_leaves_them(rng):
    D = 5
    x = rng.standard_normal((6, D))
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    rm, rv = rng.standard_normal(D), rng.random(D) + 0.5
    bn_param = {"mode": "test", "running_mean": rm.copy(), "running_var": rv.copy(), "eps": 1e-3}
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    assert rel_error(out, gamma * (x - rm) / np.sqrt(rv + 1e-3) + beta) < 1e-12
    assert np.array_equal(bn_param["running_mean"], rm) and np.array_equal(bn_param["running_var"], rv)
    ref = F.batch_norm(torch.tensor(x), torch.tensor(rm), torch.tensor(rv), torch.tensor(gamma),
                       torch.tensor(beta), training=False, eps=1e-3)
    assert rel_error(out, ref.numpy()) < TORCH_TOL

    # In test mode the layer is affine in x; both backwards give its exact gradient.
    dout = rng.standard_normal(out.shape)

    def fwd(x_, g_, b_):
        return batchnorm_forward(x_, g_, b_, dict(bn_param))[0]

    for backward in (batchnorm_backward, batchnorm_backward_alt):
        _check_numerical(fwd, (x, gamma, beta), backward(dout, cache), dout)


def test_test_mode_reproduces_the_course_notebook_output():
    # The BatchNormalization notebook's test-time check, with the reference solution's printed
    # means and stds: 50 training batches warm up the running averages (momentum 0.9, zeros
    # at first), then a fresh batch is normalised with them.
    state = np.random.get_state()
    try:
        np.random.seed(231)
        N, D1, D2, D3 = 200, 50, 60, 3
        W1 = np.random.randn(D1, D2)
        W2 = np.random.randn(D2, D3)
        bn_param = {"mode": "train"}
        gamma, beta = np.ones(D3), np.zeros(D3)
        for _ in range(50):
            a = np.maximum(0, np.random.randn(N, D1).dot(W1)).dot(W2)
            batchnorm_forward(a, gamma, beta, bn_param)
        bn_param["mode"] = "test"
        a = np.maximum(0, np.random.randn(N, D1).dot(W1)).dot(W2)
        a_norm, _ = batchnorm_forward(a, gamma, beta, bn_param)
    finally:
        np.random.set_state(state)
    assert np.allclose(a_norm.mean(axis=0), [-0.03927354, -0.04349152, -0.10452688], rtol=0, atol=1e-8)
    assert np.allclose(a_norm.std(axis=0), [1.01531428, 1.01238373, 0.97819988], rtol=0, atol=1e-8)


def test_test_mode_after_training_recovers_scale_and_shift(rng):
    # The CS231n check: after many training batches the running statistics
    # normalise fresh data from the same distribution.
    D = 3
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([0.0, -1.0, -2.0])
    bn_param = {"mode": "train"}
    for _ in range(60):
        batchnorm_forward(2.5 * rng.standard_normal((200, D)) + 4, gamma, beta, bn_param)
    bn_param["mode"] = "test"
    out, _ = batchnorm_forward(2.5 * rng.standard_normal((2000, D)) + 4, gamma, beta, bn_param)
    assert np.allclose(out.mean(0), beta, atol=0.2)
    assert np.allclose(out.std(0), gamma, rtol=0.1)


@pytest.mark.parametrize("N, D", [(4, 5), (10, 3), (3, 1), (7, 6)])
def test_batchnorm_backward_numerical_torch_and_alt(rng, N, D):
    x = 3 * rng.standard_normal((N, D)) + 2
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    out, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dout = rng.standard_normal(out.shape)
    grads = batchnorm_backward(dout, cache)
    grads_alt = batchnorm_backward_alt(dout, cache)

    _check_numerical(_bn_train, (x, gamma, beta), grads, dout)
    for g, g_alt in zip(grads, grads_alt):
        assert rel_error(g, g_alt) < 1e-12

    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    F.batch_norm(tx, None, None, tg, tb, training=True, eps=1e-5).backward(torch.tensor(dout))
    for mine, ref in zip(grads_alt, (tx, tg, tb)):
        assert rel_error(mine, ref.grad.numpy()) < TORCH_TOL


def test_batchnorm_backward_alt_equals_graph_version_on_a_large_batch(rng):
    x = rng.standard_normal((256, 64)) * 10 - 3
    gamma, beta = rng.standard_normal(64), rng.standard_normal(64)
    out, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dout = rng.standard_normal(out.shape)
    for g, g_alt in zip(batchnorm_backward(dout, cache), batchnorm_backward_alt(dout, cache)):
        assert rel_error(g, g_alt) < 1e-11


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_dtype_preserved(rng, dtype):
    x = rng.standard_normal((6, 4)).astype(dtype)
    gamma, beta = np.ones(4, dtype=dtype), np.zeros(4, dtype=dtype)
    bn_param = {"mode": "train"}
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    assert out.dtype == dtype
    assert bn_param["running_mean"].dtype == dtype and bn_param["running_var"].dtype == dtype
    for backward in (batchnorm_backward, batchnorm_backward_alt):
        assert all(g.dtype == dtype for g in backward(out, cache))
    bn_param["mode"] = "test"
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    assert out.dtype == dtype
    assert all(g.dtype == dtype for g in batchnorm_backward_alt(out, cache))


def test_float32_batch_with_float64_running_stats_stays_float32(rng):
    x = rng.standard_normal((5, 3)).astype(np.float32)
    bn_param = {"mode": "test", "running_mean": np.zeros(3), "running_var": np.ones(3)}
    out, _ = batchnorm_forward(x, np.ones(3, np.float32), np.zeros(3, np.float32), bn_param)
    assert out.dtype == np.float32


@pytest.mark.parametrize("bn_param, msg", [({}, "no 'mode'"), ({"mode": "eval"}, "'train' or 'test'"),
                                           (None, "must be a dict")])
def test_batchnorm_requires_a_valid_mode(rng, bn_param, msg):
    with pytest.raises(ValueError, match=msg):
        batchnorm_forward(rng.standard_normal((4, 3)), np.ones(3), np.zeros(3), bn_param)


def test_batchnorm_rejects_mismatched_shapes(rng):
    x = rng.standard_normal((4, 3))
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\).*\(4, 3\).*\(5,\)"):
        batchnorm_forward(x, np.ones(5), np.zeros(3), {"mode": "train"})
    with pytest.raises(ValueError, match=r"beta must have shape \(3,\)"):
        batchnorm_forward(x, np.ones(3), np.zeros((1, 3)), {"mode": "train"})
    with pytest.raises(ValueError, match="spatial_batchnorm_forward"):
        batchnorm_forward(rng.standard_normal((2, 3, 4, 4)), np.ones(3), np.zeros(3), {"mode": "train"})
    with pytest.raises(ValueError, match="running_mean"):
        batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "test", "running_mean": np.zeros(4)})
    _, cache = batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "train"})
    for backward in (batchnorm_backward, batchnorm_backward_alt):
        with pytest.raises(ValueError, match="dout must have shape"):
            backward(np.ones((3, 4)), cache)


# --------------------------------------------------------------------------- spatial batch norm


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 2, 1, 1), (1, 4, 3, 2)])
def test_spatial_batchnorm_forward_backward(rng, shape):
    C = shape[1]
    x = 2 * rng.standard_normal(shape) + 1
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    bn_param = {"mode": "train"}
    out, cache = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    mu, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    assert np.allclose(bn_param["running_mean"], 0.1 * mu, rtol=1e-12)
    assert np.allclose(bn_param["running_var"], 0.1 * var, rtol=1e-12)
    ref = F.batch_norm(torch.tensor(x), None, None, torch.tensor(gamma), torch.tensor(beta), training=True)
    assert rel_error(out, ref.numpy()) < TORCH_TOL

    dout = rng.standard_normal(shape)
    grads = spatial_batchnorm_backward(dout, cache)

    def fwd(x_, g_, b_):
        return spatial_batchnorm_forward(x_, g_, b_, {"mode": "train"})[0]

    _check_numerical(fwd, (x, gamma, beta), grads, dout)
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    F.batch_norm(tx, None, None, tg, tb, training=True).backward(torch.tensor(dout))
    for mine, ref_t in zip(grads, (tx, tg, tb)):
        assert rel_error(mine, ref_t.grad.numpy()) < TORCH_TOL


def test_spatial_batchnorm_test_mode_and_dtype(rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    gamma, beta = np.ones(3, np.float32), np.zeros(3, np.float32)
    bn_param = {"mode": "test", "running_mean": np.array([1.0, 2.0, 3.0], np.float32),
                "running_var": np.array([4.0, 1.0, 0.25], np.float32)}
    out, cache = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    expect = (x - bn_param["running_mean"][:, None, None]) / np.sqrt(bn_param["running_var"][:, None, None] + 1e-5)
    assert out.dtype == np.float32 and np.allclose(out, expect, atol=1e-5)
    assert all(g.dtype == np.float32 for g in spatial_batchnorm_backward(out, cache))


def test_spatial_batchnorm_rejects_bad_shapes(rng):
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\).*\(2, 3, 4, 4\)"):
        spatial_batchnorm_forward(rng.standard_normal((2, 3, 4, 4)), np.ones(4), np.zeros(4), {"mode": "train"})
    with pytest.raises(ValueError, match="4-D"):
        spatial_batchnorm_forward(rng.standard_normal((2, 3)), np.ones(3), np.zeros(3), {"mode": "train"})


# --------------------------------------------------------------------------- layer norm


@pytest.mark.parametrize("N, D", [(4, 5), (1, 7), (6, 3)])
def test_layernorm_forward_backward(rng, N, D):
    x = 3 * rng.standard_normal((N, D)) - 1
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    out, cache = layernorm_forward(x, gamma, beta, {})
    ref = F.layer_norm(torch.tensor(x), (D,), torch.tensor(gamma), torch.tensor(beta), eps=1e-5)
    assert rel_error(out, ref.numpy()) < TORCH_TOL

    dout = rng.standard_normal(out.shape)
    grads = layernorm_backward(dout, cache)

    def fwd(x_, g_, b_):
        return layernorm_forward(x_, g_, b_, {})[0]

    _check_numerical(fwd, (x, gamma, beta), grads, dout)
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    F.layer_norm(tx, (D,), tg, tb, eps=1e-5).backward(torch.tensor(dout))
    for mine, ref_t in zip(grads, (tx, tg, tb)):
        assert rel_error(mine, ref_t.grad.numpy()) < TORCH_TOL


def test_layernorm_normalises_each_sample_and_ignores_mode(rng):
    x = rng.standard_normal((5, 8)) * np.arange(1, 6)[:, None] + np.arange(5)[:, None]
    out, _ = layernorm_forward(x, np.ones(8), np.zeros(8), {"eps": 0.0})
    assert np.allclose(out.mean(1), 0, atol=1e-12) and np.allclose(out.var(1), 1)
    train, _ = layernorm_forward(x, np.ones(8), np.zeros(8), {"mode": "train"})
    test, _ = layernorm_forward(x, np.ones(8), np.zeros(8), {"mode": "test"})
    assert np.array_equal(train, test)
    # eps is read from ln_param
    big_eps, _ = layernorm_forward(x, np.ones(8), np.zeros(8), {"eps": 1e3})
    assert np.abs(big_eps).max() < np.abs(train).max() / 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layernorm_dtype_and_shape_checks(rng, dtype):
    x = rng.standard_normal((3, 4)).astype(dtype)
    out, cache = layernorm_forward(x, np.ones(4, dtype), np.zeros(4, dtype), None)
    assert out.dtype == dtype and all(g.dtype == dtype for g in layernorm_backward(out, cache))
    with pytest.raises(ValueError, match=r"gamma must have shape \(4,\).*\(3, 4\)"):
        layernorm_forward(x, np.ones(3), np.zeros(4), {})


# --------------------------------------------------------------------------- group norm


@pytest.mark.parametrize("shape, G", [((2, 6, 4, 5), 2), ((3, 4, 2, 2), 4), ((2, 3, 3, 1), 1), ((1, 6, 2, 3), 3)])
def test_groupnorm_forward_backward(rng, shape, G):
    C = shape[1]
    x = 2 * rng.standard_normal(shape) + 0.5
    gamma, beta = rng.standard_normal((1, C, 1, 1)), rng.standard_normal((1, C, 1, 1))
    out, cache = spatial_groupnorm_forward(x, gamma, beta, G, {})
    ref = F.group_norm(torch.tensor(x), G, torch.tensor(gamma.ravel()), torch.tensor(beta.ravel()), eps=1e-5)
    assert rel_error(out, ref.numpy()) < TORCH_TOL

    dout = rng.standard_normal(shape)
    grads = spatial_groupnorm_backward(dout, cache)

    def fwd(x_, g_, b_):
        return spatial_groupnorm_forward(x_, g_, b_, G, {})[0]

    _check_numerical(fwd, (x, gamma, beta), grads, dout)
    tx = torch.tensor(x, requires_grad=True)
    tg = torch.tensor(gamma.ravel(), requires_grad=True)
    tb = torch.tensor(beta.ravel(), requires_grad=True)
    F.group_norm(tx, G, tg, tb, eps=1e-5).backward(torch.tensor(dout))
    for mine, ref_t in zip(grads, (tx, tg, tb)):
        assert rel_error(mine.reshape(ref_t.shape), ref_t.grad.numpy()) < TORCH_TOL


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_groupnorm_dtype(rng, dtype):
    x = rng.standard_normal((2, 4, 3, 3)).astype(dtype)
    g, b = np.ones((1, 4, 1, 1), dtype), np.zeros((1, 4, 1, 1), dtype)
    out, cache = spatial_groupnorm_forward(x, g, b, 2, {"eps": 1e-5})
    assert out.dtype == dtype and all(gr.dtype == dtype for gr in spatial_groupnorm_backward(out, cache))


def test_groupnorm_rejects_bad_groups_and_shapes(rng):
    x = rng.standard_normal((2, 6, 3, 3))
    g, b = np.ones((1, 6, 1, 1)), np.zeros((1, 6, 1, 1))
    with pytest.raises(ValueError, match=r"C = 6.*G = 4"):
        spatial_groupnorm_forward(x, g, b, 4, {})
    for G in (0, -2, 1.5):
        with pytest.raises(ValueError, match="positive integer"):
            spatial_groupnorm_forward(x, g, b, G, {})
    with pytest.raises(ValueError, match=r"gamma must have shape \(1, 6, 1, 1\).*\(6,\)"):
        spatial_groupnorm_forward(x, np.ones(6), b, 3, {})


def _norm_call(kind, x32, settings):
    C = x32.shape[1]
    if kind == "batchnorm":
        return batchnorm_forward(x32, np.ones(C, np.float32), np.zeros(C, np.float32),
                                 {"mode": "train", **settings})
    if kind == "layernorm":
        return layernorm_forward(x32, np.ones(C, np.float32), np.zeros(C, np.float32), settings)
    g = np.ones((1, C, 1, 1), np.float32)
    return spatial_groupnorm_forward(x32, g, np.zeros_like(g), 2, settings)


@pytest.mark.parametrize("kind", ["batchnorm", "layernorm", "groupnorm"])
def test_numpy_scalar_eps_and_momentum_keep_float32(rng, kind):
    # np.float64 settings would promote a float32 batch under NumPy 2.
    shape = (4, 6, 3, 3) if kind == "groupnorm" else (5, 6)
    x = rng.standard_normal(shape).astype(np.float32)
    settings = {"eps": np.float64(1e-5)}
    if kind == "batchnorm":
        settings["momentum"] = np.float64(0.9)
    out, _ = _norm_call(kind, x, settings)
    assert out.dtype == np.float32
    if kind == "batchnorm":
        bn_param = {"mode": "train", **settings}
        batchnorm_forward(x, np.ones(6, np.float32), np.zeros(6, np.float32), bn_param)
        assert bn_param["running_mean"].dtype == bn_param["running_var"].dtype == np.float32


@pytest.mark.parametrize("kind", ["batchnorm", "layernorm", "groupnorm"])
@pytest.mark.parametrize("eps", [-1.0, float("nan"), "1e-5", None])
def test_norms_reject_an_eps_that_is_not_a_non_negative_number(rng, kind, eps):
    shape = (4, 6, 3, 3) if kind == "groupnorm" else (5, 6)
    x = rng.standard_normal(shape).astype(np.float32)
    with pytest.raises(ValueError, match="eps must be"):
        _norm_call(kind, x, {"eps": eps})


@pytest.mark.parametrize("momentum", [-0.1, 1.5, "0.9"])
def test_batchnorm_rejects_momentum_outside_0_1(rng, momentum):
    x = rng.standard_normal((5, 6)).astype(np.float32)
    with pytest.raises(ValueError, match="momentum must be"):
        _norm_call("batchnorm", x, {"momentum": momentum})


def test_spatial_batchnorm_names_the_empty_axis(rng):
    x = np.zeros((2, 3, 0, 4))
    with pytest.raises(ValueError, match=r"\(2, 3, 0, 4\) has no pixels"):
        spatial_batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "train"})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_integer_gamma_beta_as_in_the_spatial_batchnorm_cell(rng, dtype):
    # ConvolutionalNetworks.ipynb: gamma, beta = np.asarray([3, 4, 5]), np.asarray([6, 7, 8]).
    x = (4 * rng.standard_normal((2, 3, 4, 5)) + 10).astype(dtype)
    out, cache = spatial_batchnorm_forward(x, np.asarray([3, 4, 5]), np.asarray([6, 7, 8]),
                                           {"mode": "train"})
    assert out.dtype == dtype
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), [6, 7, 8], rtol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), [3, 4, 5], rtol=1e-4)
    assert all(g.dtype == dtype for g in spatial_batchnorm_backward(np.ones_like(out), cache))
    out2, _ = layernorm_forward(x[:, :, 0, 0], np.asarray([1, 2, 3]), np.asarray([0, 0, 0]), {})
    assert out2.dtype == dtype


@pytest.mark.parametrize("G", [1, 2, 6])
def test_groupnorm_on_an_empty_batch(G):
    # Statistics are per sample, so an empty batch is an empty result (as in torch), not an error.
    x = np.zeros((0, 6, 3, 3), np.float32)
    gamma, beta = np.ones((1, 6, 1, 1), np.float32), np.zeros((1, 6, 1, 1), np.float32)
    out, cache = spatial_groupnorm_forward(x, gamma, beta, G, {})
    assert out.shape == x.shape and out.dtype == np.float32
    dx, dgamma, dbeta = spatial_groupnorm_backward(np.zeros_like(out), cache)
    assert dx.shape == x.shape
    assert np.array_equal(dgamma, np.zeros_like(gamma)) and np.array_equal(dbeta, np.zeros_like(beta))
