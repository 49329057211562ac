import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deep_learning_suite.conv_layers import (
    conv_backward_naive,
    conv_forward_naive,
    max_pool_backward_naive,
    max_pool_forward_naive,
)
from deep_learning_suite.fast_layers import conv_backward_fast, conv_forward_fast, max_pool_forward_fast
from deep_learning_suite.utils import eval_numerical_gradient_array, rel_error


def conv_by_definition(x, w, b, stride, pad):
    """out[n, f, i, j] = b[f] + sum_{c, k, l} w[f, c, k, l] * x_padded[n, c, i*stride + k, j*stride + l]."""
    N, C, H, W = x.shape
    Fn, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = 1 + (H + 2 * pad - HH) // stride, 1 + (W + 2 * pad - WW) // stride
    out = np.zeros((N, Fn, Ho, Wo))
    for n in range(N):
        for f in range(Fn):
            for i in range(Ho):
                for j in range(Wo):
                    s = b[f]
                    for c in range(C):
                        for k in range(HH):
                            for l in range(WW):
                                s += w[f, c, k, l] * xp[n, c, i * stride + k, j * stride + l]
                    out[n, f, i, j] = s
    return out


def test_conv_forward_matches_course_values():
    # The CS231n notebook's check: linspace inputs, stride 2, pad 1. The expected
    # numbers are recomputed here from the definition, and the notebook's printed
    # values (8 digits) must agree with that recomputation.
    x_shape, w_shape = (2, 3, 4, 4), (3, 3, 4, 4)
    x = np.linspace(-0.1, 0.5, num=np.prod(x_shape)).reshape(x_shape)
    w = np.linspace(-0.2, 0.3, num=np.prod(w_shape)).reshape(w_shape)
    b = np.linspace(-0.1, 0.2, num=3)
    out, _ = conv_forward_naive(x, w, b, {"stride": 2, "pad": 1})
    expected = conv_by_definition(x, w, b, 2, 1)
    assert rel_error(out, expected) < 1e-12
    notebook = np.array([
        [[[-0.08759809, -0.10987781], [-0.18387192, -0.2109216]],
         [[0.21027089, 0.21661097], [0.22847626, 0.23004637]],
         [[0.50813986, 0.54309974], [0.64082444, 0.67101435]]],
        [[[-0.98053589, -1.03143541], [-1.19128892, -1.24695841]],
         [[0.69108355, 0.66880383], [0.59480972, 0.56776003]],
         [[2.36270298, 2.36904306], [2.38090835, 2.38247847]]],
    ])
    assert rel_error(out, notebook) < 1e-7


@pytest.mark.parametrize("forward", [max_pool_forward_naive, max_pool_forward_fast])
def test_max_pool_forward_matches_course_values(forward):
    # The CS231n notebook's max_pool_forward_naive check (difference "on the order of e-8").
    x_shape = (2, 3, 4, 4)
    x = np.linspace(-0.3, 0.4, num=np.prod(x_shape)).reshape(x_shape)
    out, _ = forward(x, {"pool_width": 2, "pool_height": 2, "stride": 2})
    correct_out = np.array([
        [[[-0.26315789, -0.24842105], [-0.20421053, -0.18947368]],
         [[-0.14526316, -0.13052632], [-0.08631579, -0.07157895]],
         [[-0.02736842, -0.01263158], [0.03157895, 0.04631579]]],
        [[[0.09052632, 0.10526316], [0.14947368, 0.16421053]],
         [[0.20842105, 0.22315789], [0.26736842, 0.28210526]],
         [[0.32631579, 0.34105263], [0.38526316, 0.4]]],
    ])
    assert rel_error(out, correct_out) < 1e-7


CONV_CASES = [
    # x shape, (F, HH, WW), stride, pad
    ((2, 3, 5, 5), (4, 3, 3), 1, 1),
    ((1, 2, 7, 5), (3, 3, 1), 2, 0),
    ((2, 1, 6, 6), (2, 2, 2), 2, 0),
    ((2, 2, 4, 7), (3, 2, 3), 2, 2),
    ((1, 3, 5, 5), (2, 1, 1), 1, 0),
    ((2, 2, 5, 7), (2, 3, 2), 3, 2),
]


@pytest.mark.parametrize("x_shape, f_shape, stride, pad", CONV_CASES)
def test_conv_naive_forward_and_gradients(rng, x_shape, f_shape, stride, pad):
    Fn, HH, WW = f_shape
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((Fn, x_shape[1], HH, WW))
    b = rng.standard_normal(Fn)
    cp = {"stride": stride, "pad": pad}
    out, cache = conv_forward_naive(x, w, b, cp)
    assert rel_error(out, conv_by_definition(x, w, b, stride, pad)) < 1e-12
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv_backward_naive(dout, cache)

    fx = lambda v: conv_forward_naive(v, w, b, cp)[0]
    fw = lambda v: conv_forward_naive(x, v, b, cp)[0]
    fb = lambda v: conv_forward_naive(x, w, v, cp)[0]
    assert rel_error(dx, eval_numerical_gradient_array(fx, x, dout)) < 1e-6
    assert rel_error(dw, eval_numerical_gradient_array(fw, w, dout)) < 1e-6
    assert rel_error(db, eval_numerical_gradient_array(fb, b, dout)) < 1e-6

    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = F.conv2d(tx, tw, tb, stride=stride, padding=pad)
    tout.backward(torch.tensor(dout))
    assert rel_error(out, tout.detach().numpy()) < 1e-10
    for mine, ref in ((dx, tx), (dw, tw), (db, tb)):
        assert rel_error(mine, ref.grad.numpy()) < 1e-10


def distinct_values(rng, shape):
    """Random input whose entries are all different, so every max-pool window has one maximum."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) / 7.0 - 3.0


POOL_CASES = [
    # x shape, (pool_height, pool_width, stride)
    ((2, 3, 4, 4), (2, 2, 2)),
    ((1, 2, 5, 5), (3, 3, 2)),
    ((2, 1, 6, 4), (3, 2, 1)),
    ((1, 1, 7, 7), (3, 3, 2)),
    ((2, 2, 6, 9), (3, 3, 3)),
]


@pytest.mark.parametrize("x_shape, pool", POOL_CASES)
def test_max_pool_naive_forward_and_gradient(rng, x_shape, pool):
    PH, PW, stride = pool
    pp = {"pool_height": PH, "pool_width": PW, "stride": stride}
    x = distinct_values(rng, x_shape)
    out, cache = max_pool_forward_naive(x, pp)
    dout = rng.standard_normal(out.shape)
    dx = max_pool_backward_naive(dout, cache)
    # Values are 1/7 apart, so the step h = 1e-5 never changes which element is the max.
    num = eval_numerical_gradient_array(lambda v: max_pool_forward_naive(v, pp)[0], x, dout)
    assert rel_error(dx, num) < 1e-6

    tx = torch.tensor(x, requires_grad=True)
    tout = F.max_pool2d(tx, (PH, PW), stride=stride)
    tout.backward(torch.tensor(dout))
    assert np.array_equal(out, tout.detach().numpy())
    assert rel_error(dx, tx.grad.numpy()) < 1e-12


def test_max_pool_naive_ties_go_to_first_max_in_row_major_order():
    x = np.array([[[[1.0, 5.0, 5.0],
                    [5.0, 2.0, 0.0],
                    [0.0, 0.0, 0.0]]]])
    # 2x2 windows, stride 1: window (0, 0) has maxima at (0, 1) and (1, 0) -> (0, 1);
    # window (0, 1) has maxima at (0, 1) and (0, 2) -> (0, 1); window (1, 0) -> (1, 0).
    out, cache = max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2, "stride": 1})
    dout = np.array([[[[1.0, 10.0], [100.0, 1000.0]]]])
    dx = max_pool_backward_naive(dout, cache)
    expected = np.zeros_like(x)
    expected[0, 0, 0, 1] = 1.0 + 10.0
    expected[0, 0, 1, 0] = 100.0
    expected[0, 0, 1, 1] = 1000.0  # window (1, 1) = [[2, 0], [0, 0]]
    assert np.array_equal(out, [[[[5.0, 5.0], [5.0, 2.0]]]])
    assert np.array_equal(dx, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_naive_dtype_preserved(rng, dtype):
    x = rng.standard_normal((2, 2, 4, 4)).astype(dtype)
    w = rng.standard_normal((3, 2, 3, 3)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    out, cache = conv_forward_naive(x, w, b, {"stride": 1, "pad": 1})
    assert out.dtype == dtype
    assert all(g.dtype == dtype for g in conv_backward_naive(out, cache))
    p, pc = max_pool_forward_naive(out, {"pool_height": 2, "pool_width": 2, "stride": 2})
    assert p.dtype == dtype and max_pool_backward_naive(p, pc).dtype == dtype


def test_conv_rejects_bad_input(rng):
    x = rng.standard_normal((2, 3, 5, 5))
    w = rng.standard_normal((4, 3, 3, 3))
    b = np.zeros(4)
    with pytest.raises(ValueError, match="does not divide evenly"):
        conv_forward_naive(x, w, b, {"stride": 3, "pad": 1})
    with pytest.raises(ValueError, match=r"\(2, 3, 5, 5\).*\(4, 2, 3, 3\)"):
        conv_forward_naive(x, rng.standard_normal((4, 2, 3, 3)), b, {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match=r"b must have shape \(4,\)"):
        conv_forward_naive(x, w, np.zeros(3), {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match="4-D"):
        conv_forward_naive(x[0], w, b, {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match="does not fit"):
        conv_forward_naive(x, rng.standard_normal((4, 3, 9, 9)), b, {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match="stride"):
        conv_forward_naive(x, w, b, {"pad": 1})
    with pytest.raises(ValueError, match="stride must be a positive integer"):
        conv_forward_naive(x, w, b, {"stride": 0, "pad": 1})


def test_max_pool_rejects_bad_input(rng):
    x = rng.standard_normal((2, 3, 5, 5))
    with pytest.raises(ValueError, match="does not divide evenly"):
        max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    with pytest.raises(ValueError, match="pool_width"):
        max_pool_forward_naive(x, {"pool_height": 2, "stride": 2})
    with pytest.raises(ValueError, match="4-D"):
        max_pool_forward_naive(x[0], {"pool_height": 2, "pool_width": 2, "stride": 1})


@pytest.mark.parametrize("shape, pool_param, field, message", [
    ((1, 1, 5, 4), {"pool_height": 2, "pool_width": 2, "stride": 2}, "pool_height", "does not divide evenly along H"),
    ((1, 1, 4, 5), {"pool_height": 2, "pool_width": 2, "stride": 2}, "pool_width", "does not divide evenly along W"),
    ((1, 1, 5, 5), {"pool_height": 7, "pool_width": 2, "stride": 1}, "pool_height", "does not fit H"),
    ((1, 1, 5, 5), {"pool_height": 2, "pool_width": 7, "stride": 1}, "pool_width", "does not fit W"),
])
def test_max_pool_geometry_error_names_the_pool_field_not_pad(shape, pool_param, field, message):
    # Pooling takes no pad, so its message must point at the knobs pool_param really has.
    with pytest.raises(ValueError, match=message) as e:
        max_pool_forward_naive(np.zeros(shape), pool_param)
    text = str(e.value)
    assert field in text and "pad" not in text


@pytest.mark.parametrize("forward", [conv_forward_naive, conv_forward_fast])
@pytest.mark.parametrize("stride, pad", [(2.0, 1), (1, 1.0), (np.int64(2), np.float32(1))])
def test_conv_accepts_whole_number_floats_as_ints(rng, forward, stride, pad):
    # A stride read from a JSON config is 2.0; it must mean exactly what 2 means.
    x, w, b = rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    out, _ = forward(x, w, b, {"stride": stride, "pad": pad})
    expected, _ = conv_forward_naive(x, w, b, {"stride": int(stride), "pad": int(pad)})
    assert out.shape == expected.shape and np.allclose(out, expected)


@pytest.mark.parametrize("forward", [conv_forward_naive, conv_forward_fast])
@pytest.mark.parametrize("key, value", [("stride", 1.5), ("stride", "2"), ("stride", True),
                                        ("stride", float("nan")), ("pad", -1), ("pad", 0.5),
                                        ("pad", None)])
def test_conv_rejects_stride_or_pad_that_is_not_a_whole_number(rng, forward, key, value):
    x, w, b = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), np.zeros(3)
    conv_param = {"stride": 1, "pad": 1, key: value}
    with pytest.raises(ValueError, match=f"conv: {key} must be a (positive|non-negative) integer"):
        forward(x, w, b, conv_param)


@pytest.mark.parametrize("forward", [conv_forward_naive, conv_forward_fast])
@pytest.mark.parametrize("w_shape", [(0, 2, 3, 3), (3, 2, 0, 3), (3, 2, 3, 0)])
def test_conv_rejects_empty_filters(rng, forward, w_shape):
    x = rng.standard_normal((1, 2, 5, 5))
    with pytest.raises(ValueError, match="is empty; it needs at least one filter"):
        forward(x, np.zeros(w_shape), np.zeros(w_shape[0]), {"stride": 1, "pad": 1})


@pytest.mark.parametrize("forward", [max_pool_forward_naive, max_pool_forward_fast])
def test_max_pool_accepts_whole_number_floats_as_ints(rng, forward):
    x = rng.standard_normal((2, 3, 5, 6))
    out, _ = forward(x, {"pool_height": 2.0, "pool_width": np.float64(3), "stride": 3.0})
    expected, _ = max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 3, "stride": 3})
    assert out.shape == expected.shape == (2, 3, 2, 2) and np.array_equal(out, expected)
    with pytest.raises(ValueError, match="pool_height must be a positive integer, got 2.5"):
        forward(x, {"pool_height": 2.5, "pool_width": 2, "stride": 2})


@pytest.mark.parametrize("forward", [conv_forward_naive, conv_forward_fast])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_integer_bias_as_in_the_image_processing_cell(rng, forward, dtype):
    # ConvolutionalNetworks.ipynb: grayscale and edge filters with b = np.array([0, 128]).
    x = rng.uniform(0, 255, (2, 3, 8, 8)).astype(dtype)
    w = np.zeros((2, 3, 3, 3), dtype)
    w[0, :, 1, 1] = [0.3, 0.6, 0.1]
    w[1, 2] = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]
    out, cache = forward(x, w, np.array([0, 128]), {"stride": 1, "pad": 1})
    expected, _ = forward(x, w, np.array([0.0, 128.0], dtype), {"stride": 1, "pad": 1})
    assert out.dtype == dtype and np.array_equal(out, expected)
    backward = conv_backward_naive if forward is conv_forward_naive else conv_backward_fast
    assert all(g.dtype == dtype for g in backward(np.ones_like(out), cache))
    with pytest.raises(ValueError, match="b is float32 but x is float64"):
        forward(x.astype(np.float64), w.astype(np.float64), np.zeros(2, np.float32),
                {"stride": 1, "pad": 1})


def test_naive_backwards_refuse_a_dout_of_the_wrong_shape():
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6))
    w, b = np.ones((4, 3, 3, 3)), np.zeros(4)
    _, cache = conv_forward_naive(x, w, b, {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match="dout"):
        conv_backward_naive(np.ones((2, 4, 7, 6)), cache)
    _, cache = max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    with pytest.raises(ValueError, match="dout"):
        max_pool_backward_naive(np.ones((2, 3, 3, 2)), cache)
