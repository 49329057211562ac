"""The dtype rule every layer shares (``_validate.check_same_dtype``): one array of another
float dtype is refused with a message that names it and the fix, instead of NumPy quietly
promoting the whole layer (outputs, gradients, and their cost) to float64."""

import re

import numpy as np
import pytest

from deep_learning_suite import batchnorm as bn
from deep_learning_suite import conv_layers, dropout, fast_layers, layers, optim, rnn_layers

CONV = {"stride": 1, "pad": 1}
POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}
PAIRS = [(np.float32, np.float64), (np.float64, np.float32)]


def _arrays(rng, dtype):
    """Inputs for each layer with parameters, all of ``dtype``."""
    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)
    return {
        "affine_forward": (layers.affine_forward, dict(x=r(2, 3, 2), w=r(6, 4), b=r(4))),
        "conv_forward_naive": (conv_layers.conv_forward_naive,
                               dict(x=r(2, 3, 4, 4), w=r(2, 3, 3, 3), b=r(2), conv_param=CONV)),
        "conv_forward_fast": (fast_layers.conv_forward_fast,
                              dict(x=r(2, 3, 4, 4), w=r(2, 3, 3, 3), b=r(2), conv_param=CONV)),
        "batchnorm_forward": (bn.batchnorm_forward,
                              dict(x=r(4, 3), gamma=r(3), beta=r(3), bn_param={"mode": "train"})),
        "spatial_batchnorm_forward": (bn.spatial_batchnorm_forward,
                                      dict(x=r(2, 3, 2, 2), gamma=r(3), beta=r(3),
                                           bn_param={"mode": "train"})),
        "layernorm_forward": (bn.layernorm_forward,
                              dict(x=r(4, 3), gamma=r(3), beta=r(3), ln_param={})),
        "spatial_groupnorm_forward": (bn.spatial_groupnorm_forward,
                                      dict(x=r(2, 4, 2, 2), gamma=r(1, 4, 1, 1),
                                           beta=r(1, 4, 1, 1), G=2, gn_param={})),
    }


FORWARD_PARAMS = [("affine_forward", "w"), ("affine_forward", "b"),
                  ("conv_forward_naive", "w"), ("conv_forward_naive", "b"),
                  ("conv_forward_fast", "w"), ("conv_forward_fast", "b")] + [
    (name, p) for name in ("batchnorm_forward", "spatial_batchnorm_forward",
                           "layernorm_forward", "spatial_groupnorm_forward")
    for p in ("gamma", "beta")]


@pytest.mark.parametrize("x_dtype, other", PAIRS)
@pytest.mark.parametrize("name, param", FORWARD_PARAMS)
def test_forward_refuses_a_parameter_of_another_dtype(rng, name, param, x_dtype, other):
    forward, kwargs = _arrays(rng, x_dtype)[name]
    forward(**kwargs)  # all of one dtype: accepted
    kwargs[param] = kwargs[param].astype(other)
    want, got = np.dtype(x_dtype).name, np.dtype(other).name
    with pytest.raises(ValueError, match=rf"{param} is {got} but x is {want}; .*"
                                         rf"{param}\.astype\(np\.{want}\)"):
        forward(**kwargs)


BACKWARD = {
    "affine_forward": layers.affine_backward,
    "conv_forward_naive": conv_layers.conv_backward_naive,
    "conv_forward_fast": fast_layers.conv_backward_fast,
    "batchnorm_forward": bn.batchnorm_backward,
    "batchnorm_forward, alt": bn.batchnorm_backward_alt,
    "spatial_batchnorm_forward": bn.spatial_batchnorm_backward,
    "layernorm_forward": bn.layernorm_backward,
    "spatial_groupnorm_forward": bn.spatial_groupnorm_backward,
    "relu_forward": layers.relu_backward,
    "max_pool_forward_naive": conv_layers.max_pool_backward_naive,
    "max_pool_forward_fast": fast_layers.max_pool_backward_fast,
    "dropout_forward": dropout.dropout_backward,
}


def _forward(rng, name, dtype):
    """``(out, cache)`` of the forward that ``BACKWARD[name]`` undoes, on ``dtype`` inputs."""
    x = rng.standard_normal((2, 3, 4, 4)).astype(dtype)
    if name == "relu_forward":
        return layers.relu_forward(x)
    if name == "max_pool_forward_naive":
        return conv_layers.max_pool_forward_naive(x, POOL)
    if name == "max_pool_forward_fast":
        return fast_layers.max_pool_forward_fast(x, POOL)
    if name == "dropout_forward":
        return dropout.dropout_forward(x, {"p": 0.5, "mode": "train", "seed": 0})
    forward, kwargs = _arrays(rng, dtype)[name.removesuffix(", alt")]
    return forward(**kwargs)


@pytest.mark.parametrize("x_dtype, other", PAIRS)
@pytest.mark.parametrize("name", BACKWARD)
def test_backward_refuses_a_dout_of_another_dtype(rng, name, x_dtype, other):
    out, cache = _forward(rng, name, x_dtype)
    backward = BACKWARD[name]
    grads = backward(np.ones_like(out), cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    assert all(g.dtype == x_dtype for g in grads)
    with pytest.raises(ValueError, match=rf"dout is {np.dtype(other).name} but the forward's x "
                                         rf"is {np.dtype(x_dtype).name}"):
        backward(np.ones(out.shape, other), cache)


@pytest.mark.parametrize("w_dtype, other", PAIRS)
@pytest.mark.parametrize("rule", ["sgd", "sgd_momentum", "nesterov_momentum", "rmsprop", "adam",
                                  "adamw"])
def test_update_rules_refuse_a_gradient_of_another_dtype(rng, rule, w_dtype, other):
    # Accepted, a float64 dw would turn a float32 parameter into float64 after one step.
    w = rng.standard_normal(5).astype(w_dtype)
    next_w, _ = getattr(optim, rule)(w, np.ones(5, w_dtype))
    assert next_w.dtype == w_dtype
    with pytest.raises(ValueError, match=rf"{rule}: dw is {np.dtype(other).name} but w is "
                                         rf"{np.dtype(w_dtype).name}"):
        getattr(optim, rule)(w, np.ones(5, other))


@pytest.mark.parametrize("value, kwargs, ok", [
    (0.5, dict(low=0.0, high=1.0), True), (1.0, dict(low=0.0, high=1.0), True),
    (1.0, dict(low=0.0, high=1.0, high_open=True), False), (0.999, dict(low=0.0, high=1.0, high_open=True), True),
    (-1e-9, dict(low=0.0), False), (np.float32(2.0), {}, True), (float("inf"), {}, False),
    (True, {}, False), ("1e-3", {}, False), (None, {}, False), (10**400, {}, False),
])
def test_check_real_takes_finite_numbers_in_range(value, kwargs, ok):
    from deep_learning_suite._validate import check_real
    if ok:
        got = check_real("f", "x", value, **kwargs)
        assert type(got) is float and got == float(value)
    else:
        closing = ")" if kwargs.get("high_open") else "]"
        with pytest.raises(ValueError, match=r"f: x must be a finite number" +
                           (r" in \[.*" + re.escape(closing) if "high" in kwargs else "")):
            check_real("f", "x", value, **kwargs)


@pytest.mark.parametrize("bad", [-1, 5])
def test_word_indices_below_zero_or_past_the_vocabulary_are_refused(bad):
    # NumPy would read -1 as the last word and train its embedding without a word
    with pytest.raises(ValueError, match=rf"x holds indices out of range: \[{bad}\]"):
        rnn_layers.word_embedding_forward(np.array([[0, bad]]), np.ones((5, 3)))


def test_layers_take_nested_lists():
    out, _ = layers.relu_forward([[1.0, -1.0]])
    assert isinstance(out, np.ndarray) and np.array_equal(out, [[1.0, 0.0]])
