import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deep_learning_suite.layer_utils import (
    affine_relu_backward,
    affine_relu_forward,
    conv_bn_relu_backward,
    conv_bn_relu_forward,
    conv_relu_backward,
    conv_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from deep_learning_suite.utils import eval_numerical_gradient_array, rel_error


def check_grads(fwd, inputs, grads, dout, tol=1e-6):
    """Each analytic gradient against the centred difference of ``sum(fwd(*inputs) * dout)``."""
    for k, (a, g) in enumerate(zip(inputs, grads)):
        def f(v, k=k):
            args = list(inputs)
            args[k] = v
            return fwd(*args)
        num = eval_numerical_gradient_array(f, a, dout)
        assert g.shape == a.shape
        assert rel_error(g, num) < tol, f"input {k}"


def test_affine_relu(rng):
    x = rng.standard_normal((3, 2, 4))
    w = rng.standard_normal((8, 5))
    b = rng.standard_normal(5)
    out, cache = affine_relu_forward(x, w, b)
    assert np.allclose(out, np.maximum(x.reshape(3, 8) @ w + b, 0))
    dout = rng.standard_normal(out.shape)
    grads = affine_relu_backward(dout, cache)
    check_grads(lambda *a: affine_relu_forward(*a)[0], (x, w, b), grads, dout, tol=1e-7)


@pytest.mark.parametrize("stride, pad", [(1, 1), (2, 0)])
def test_conv_relu(rng, stride, pad):
    x = rng.standard_normal((2, 3, 7, 7))
    w = rng.standard_normal((3, 3, 3, 3))
    b = rng.standard_normal(3)
    cp = {"stride": stride, "pad": pad}
    out, cache = conv_relu_forward(x, w, b, cp)
    dout = rng.standard_normal(out.shape)
    grads = conv_relu_backward(dout, cache)
    check_grads(lambda *a: conv_relu_forward(*a, cp)[0], (x, w, b), grads, dout)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = torch.relu(F.conv2d(tx, tw, tb, stride=stride, padding=pad))
    tout.backward(torch.tensor(dout))
    assert rel_error(out, tout.detach().numpy()) < 1e-10
    for g, t in zip(grads, (tx, tw, tb)):
        assert rel_error(g, t.grad.numpy()) < 1e-10


@pytest.mark.parametrize("pool", [(2, 2, 2), (3, 3, 2)])
def test_conv_relu_pool(rng, pool):
    PH, PW, ps = pool
    x = rng.standard_normal((2, 3, 8, 8) if PH == 2 else (2, 3, 7, 7))
    w = rng.standard_normal((3, 3, 3, 3))
    b = rng.standard_normal(3)
    cp = {"stride": 1, "pad": 1}
    pp = {"pool_height": PH, "pool_width": PW, "stride": ps}
    out, cache = conv_relu_pool_forward(x, w, b, cp, pp)
    dout = rng.standard_normal(out.shape)
    grads = conv_relu_pool_backward(dout, cache)
    check_grads(lambda *a: conv_relu_pool_forward(*a, cp, pp)[0], (x, w, b), grads, dout)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = F.max_pool2d(torch.relu(F.conv2d(tx, tw, tb, padding=1)), (PH, PW), stride=ps)
    tout.backward(torch.tensor(dout))
    assert rel_error(out, tout.detach().numpy()) < 1e-10
    for g, t in zip(grads, (tx, tw, tb)):
        assert rel_error(g, t.grad.numpy()) < 1e-10


def test_conv_bn_relu(rng):
    x = rng.standard_normal((4, 3, 6, 6))
    w = rng.standard_normal((3, 3, 3, 3))
    b = rng.standard_normal(3)
    gamma = 1.0 + 0.1 * rng.standard_normal(3)
    beta = 0.1 * rng.standard_normal(3)
    cp = {"stride": 1, "pad": 1}
    out, cache = conv_bn_relu_forward(x, w, b, gamma, beta, cp, {"mode": "train"})
    dout = rng.standard_normal(out.shape)
    grads = conv_bn_relu_backward(dout, cache)
    assert len(grads) == 5
    dx, dw, db, dgamma, dbeta = grads
    fwd = lambda x, w, gamma, beta: conv_bn_relu_forward(x, w, b, gamma, beta, cp, {"mode": "train"})[0]
    check_grads(fwd, (x, w, gamma, beta), (dx, dw, dgamma, dbeta), dout)
    # Batchnorm subtracts the per-channel mean, so the conv bias has no effect: db = 0.
    num_db = eval_numerical_gradient_array(
        lambda v: conv_bn_relu_forward(x, w, v, gamma, beta, cp, {"mode": "train"})[0], b, dout)
    assert np.allclose(db, 0, atol=1e-12) and np.allclose(num_db, 0, atol=1e-8)

    tx, tw, tb, tg, tbeta = (torch.tensor(a, requires_grad=True) for a in (x, w, b, gamma, beta))
    a = F.conv2d(tx, tw, tb, padding=1)
    tout = torch.relu(F.batch_norm(a, None, None, tg, tbeta, training=True, eps=1e-5))
    tout.backward(torch.tensor(dout))
    assert rel_error(out, tout.detach().numpy()) < 1e-8
    for g, t in zip(grads, (tx, tw, tb, tg, tbeta)):
        # db is zero in exact arithmetic (batchnorm removes the bias): compare absolutely.
        assert np.allclose(g, t.grad.numpy(), rtol=1e-7, atol=1e-9)


def test_conv_bn_relu_updates_running_stats_and_test_mode(rng):
    x = rng.standard_normal((4, 2, 5, 5))
    w = rng.standard_normal((3, 2, 3, 3))
    b, gamma, beta = np.zeros(3), np.ones(3), np.zeros(3)
    bn_param = {"mode": "train"}
    conv_bn_relu_forward(x, w, b, gamma, beta, {"stride": 1, "pad": 1}, bn_param)
    assert bn_param["running_mean"].shape == (3,) and np.any(bn_param["running_mean"] != 0)
    bn_param["mode"] = "test"
    out, _ = conv_bn_relu_forward(x, w, b, gamma, beta, {"stride": 1, "pad": 1}, bn_param)
    assert out.shape == (4, 3, 5, 5) and np.all(out >= 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sandwiches_preserve_dtype(rng, dtype):
    x = rng.standard_normal((2, 3, 8, 8)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    b = np.zeros(4, dtype)
    cp = {"stride": 1, "pad": 1}
    pp = {"pool_height": 2, "pool_width": 2, "stride": 2}
    out, cache = conv_relu_pool_forward(x, w, b, cp, pp)
    assert out.dtype == dtype
    assert all(g.dtype == dtype for g in conv_relu_pool_backward(out, cache))
    out, cache = conv_bn_relu_forward(x, w, b, np.ones(4, dtype), np.zeros(4, dtype), cp, {"mode": "train"})
    assert out.dtype == dtype
    assert all(g.dtype == dtype for g in conv_bn_relu_backward(out, cache))


def test_conv_bn_relu_running_statistics_and_test_mode_include_the_conv_bias():
    # In training, batch norm cancels the conv bias in the output, but not in the running mean
    # that test mode then uses.
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    b, gamma, beta = np.array([1.0, -2.0, 0.5]), np.array([1.0, 2.0, 0.5]), np.array([0.1, 0.0, -0.3])
    cp, bn = {"stride": 1, "pad": 1}, {"mode": "train", "momentum": 0.9}
    conv_bn_relu_forward(x, w, b, gamma, beta, cp, bn)
    a = F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), padding=1).numpy()
    assert np.allclose(bn["running_mean"], 0.1 * a.mean(axis=(0, 2, 3)), rtol=1e-12)
    assert np.allclose(bn["running_var"], 0.1 * a.var(axis=(0, 2, 3)), rtol=1e-12)
    bn["mode"] = "test"
    out, _ = conv_bn_relu_forward(x, w, b, gamma, beta, cp, bn)
    shape = (1, 3, 1, 1)
    z = (a - bn["running_mean"].reshape(shape)) / np.sqrt(bn["running_var"].reshape(shape) + 1e-5)
    assert np.allclose(out, np.maximum(gamma.reshape(shape) * z + beta.reshape(shape), 0), rtol=1e-12)
