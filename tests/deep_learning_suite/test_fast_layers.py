import multiprocessing

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
from deep_learning_suite.fast_layers import (
    _dx_geometry,
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from deep_learning_suite import fast_layers
from deep_learning_suite import gradcheck
from deep_learning_suite import im2col as im2col_module
from deep_learning_suite.im2col import col2im, im2col, padded_buffer, pool_windows, row_length
from deep_learning_suite.utils import eval_numerical_gradient_array, rel_error

# x shape, (F, HH, WW), stride, pad: strides 1-3, pads 0-3, square and non-square
# filters, N = 1, C = 1, odd sizes, 1x1 filters (the no-im2col path), and both
# sides of the row-trick rule (stride 1 with small and with large Wp - W').
CONV_CASES = [
    ((2, 3, 8, 8), (4, 3, 3), 1, 1),
    ((1, 3, 9, 9), (5, 3, 3), 2, 1),
    ((3, 1, 7, 11), (2, 3, 5), 1, 2),
    ((2, 4, 10, 7), (3, 2, 1), 2, 0),
    ((2, 2, 13, 13), (3, 7, 7), 1, 3),
    ((1, 2, 11, 8), (3, 5, 2), 3, 0),
    ((2, 3, 5, 5), (2, 1, 1), 1, 0),
    ((2, 3, 7, 9), (2, 1, 1), 2, 0),
    ((2, 2, 6, 6), (3, 1, 1), 1, 1),
    ((1, 1, 6, 6), (1, 4, 4), 3, 2),
    ((4, 3, 16, 16), (6, 3, 3), 1, 1),
    ((2, 5, 31, 31), (3, 3, 3), 2, 1),
    ((1, 2, 5, 21), (2, 2, 3), 1, 1),
    # F <= C at stride 1: dx by transposed convolution (pads 0..3, non-square)
    ((2, 5, 9, 9), (3, 3, 3), 1, 0),
    ((2, 4, 7, 6), (4, 5, 3), 1, 2),
    ((1, 6, 8, 20), (2, 3, 3), 1, 1),
    ((2, 3, 9, 9), (3, 7, 7), 1, 3),
]


def test_cases_cover_both_column_layouts():
    # Both sides of row_length's rule must be exercised by CONV_CASES.
    used = set()
    for x_shape, (_, HH, WW), stride, pad in CONV_CASES:
        W = x_shape[3]
        W_out = 1 + (W + 2 * pad - WW) // stride
        used.add(row_length(W, W_out, WW, pad, stride) == W + 2 * pad != W_out)
    assert used == {True, False}


def test_cases_cover_both_dx_paths():
    used = set()
    for x_shape, (Fn, HH, WW), stride, pad in CONV_CASES:
        if HH == WW == 1 and pad == 0:
            continue
        H, W = x_shape[2:]
        H_out, W_out = 1 + (H + 2 * pad - HH) // stride, 1 + (W + 2 * pad - WW) // stride
        Wq = row_length(W, W_out, WW, pad, stride)
        used.add(_dx_geometry(x_shape, (Fn, x_shape[1], HH, WW), stride, pad, H_out, Wq) is None)
    assert used == {True, False}


def test_conv_fast_interleaved_calls_keep_their_own_columns(rng):
    # Work arrays are recycled between calls of the same shape: interleaving two
    # layers' forwards and backwards must not mix their columns up.
    cp = {"stride": 1, "pad": 1}
    xs = [rng.standard_normal((2, 4, 6, 6)) for _ in range(3)]
    w, b = rng.standard_normal((4, 4, 3, 3)), rng.standard_normal(4)
    dout = rng.standard_normal((2, 4, 6, 6))
    c1 = conv_forward_fast(xs[0], w, b, cp)[1]
    c2 = conv_forward_fast(xs[1], w, b, cp)[1]
    g2 = conv_backward_fast(dout, c2)
    c3 = conv_forward_fast(xs[2], w, b, cp)[1]
    g1 = conv_backward_fast(dout, c1)
    g3 = conv_backward_fast(dout, c3)
    for x, g in zip(xs, (g1, g2, g3)):
        ref = conv_backward_naive(dout, conv_forward_naive(x, w, b, cp)[1])
        for a, r in zip(g, ref):
            assert rel_error(a, r) <= 1e-9
    assert fast_layers._SPARE  # the buffers were kept ...
    fast_layers.clear_workspace()
    assert not fast_layers._SPARE  # ... and can be freed


@pytest.mark.parametrize("x_shape, f_shape, stride, pad", [
    ((2, 3, 5, 5), (4, 1, 1), 1, 0),    # 1x1: the branch without im2col, dx a plain GEMM
    ((2, 3, 7, 9), (4, 1, 1), 2, 0),    # 1x1 at stride 2: dx scattered onto every other pixel
    ((2, 3, 8, 8), (4, 3, 3), 1, 1),    # F > C: dx by col2im
    ((2, 5, 9, 9), (3, 3, 3), 1, 0),    # F <= C: dx by transposed convolution
    ((1, 3, 9, 9), (5, 3, 3), 2, 1),
])
def test_conv_fast_need_dx_false(rng, x_shape, f_shape, stride, pad):
    # A first layer skips dx; its dw and db must be those of the full backward, on every path.
    x, w, b = random_conv(rng, x_shape, f_shape)
    cp = {"stride": stride, "pad": pad}
    out, cache = conv_forward_fast(x, w, b, cp)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv_backward_fast(dout, cache, need_dx=False)
    full = conv_backward_fast(dout, conv_forward_fast(x, w, b, cp)[1], need_dx=True)
    ref = conv_backward_naive(dout, conv_forward_naive(x, w, b, cp)[1])
    assert dx is None
    assert dw.shape == w.shape and db.shape == b.shape
    assert np.array_equal(dw, full[1]) and np.array_equal(db, full[2])
    assert rel_error(dw, ref[1]) <= 1e-9 and rel_error(db, ref[2]) <= 1e-9


def random_conv(rng, x_shape, f_shape, dtype=np.float64):
    Fn, HH, WW = f_shape
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((Fn, x_shape[1], HH, WW)).astype(dtype)
    b = rng.standard_normal(Fn).astype(dtype)
    return x, w, b


@pytest.mark.parametrize("x_shape, f_shape, stride, pad", CONV_CASES)
def test_conv_fast_matches_naive(rng, x_shape, f_shape, stride, pad):
    x, w, b = random_conv(rng, x_shape, f_shape)
    cp = {"stride": stride, "pad": pad}
    out_n, cache_n = conv_forward_naive(x, w, b, cp)
    out_f, cache_f = conv_forward_fast(x, w, b, cp)
    assert out_f.shape == out_n.shape and out_f.flags.c_contiguous
    assert rel_error(out_f, out_n) <= 1e-9
    dout = rng.standard_normal(out_n.shape)
    grads_n = conv_backward_naive(dout, cache_n)
    grads_f = conv_backward_fast(dout, cache_f)
    for gn, gf in zip(grads_n, grads_f):
        assert gf.shape == gn.shape
        assert rel_error(gf, gn) <= 1e-9
    # The backward recycles the cached columns: a second call must rebuild them.
    for g1, g2 in zip(grads_f, conv_backward_fast(dout, cache_f)):
        assert np.array_equal(g1, g2)


# Pad against the filter size: pad == HH - 1 is the largest pad at which dx is the transposed
# convolution (dout padded by HH - 1 - pad >= 0; F <= C here, so it is otherwise chosen), from
# pad == HH on whole output rows see only padding. Non-square filters put pad between HH and WW.
PAD_VS_KERNEL_CASES = [
    ((HH, WW), stride, pad)
    for (HH, WW), stride, pads in [
        ((3, 3), 1, (2, 3, 4, 5)),
        ((2, 4), 1, (1, 2, 3, 4, 5)),
        ((4, 2), 1, (1, 2, 3, 4, 5)),
        ((1, 1), 1, (0, 1, 2)),
        ((3, 3), 2, (2, 3, 4)),
    ]
    for pad in pads
]


@pytest.mark.parametrize("kernel, stride, pad", PAD_VS_KERNEL_CASES)
def test_conv_fast_with_pad_near_the_filter_size_matches_naive(rng, kernel, stride, pad):
    x, w, b = random_conv(rng, (2, 4, 5, 7), (2,) + kernel)
    cp = {"stride": stride, "pad": pad}
    out_n, cache_n = conv_forward_naive(x, w, b, cp)
    out_f, cache_f = conv_forward_fast(x, w, b, cp)
    assert out_f.shape == out_n.shape
    assert rel_error(out_f, out_n) <= 1e-9
    dout = rng.standard_normal(out_n.shape)
    for gf, gn in zip(conv_backward_fast(dout, cache_f), conv_backward_naive(dout, cache_n)):
        assert gf.shape == gn.shape
        assert rel_error(gf, gn) <= 1e-9


# At stride 1 the pad decides how dx is computed (_dx_geometry); there the gradients are also
# checked against the numerical gradient, independently of the naive backward.
@pytest.mark.parametrize("kernel, stride, pad", [c for c in PAD_VS_KERNEL_CASES if c[1] == 1])
def test_conv_fast_with_pad_near_the_filter_size_passes_gradcheck(rng, kernel, stride, pad):
    x, w, b = random_conv(rng, (2, 4, 5, 7), (2,) + kernel)
    cp = {"stride": stride, "pad": pad}
    rows = gradcheck._layer(lambda x, w, b: conv_forward_fast(x, w, b, cp), conv_backward_fast,
                            [x, w, b], ("dx", "dw", "db"), rng, 1e-6)
    for name, err, tol in rows:
        assert err <= tol, name


@pytest.mark.parametrize("kernel", [(3, 3), (2, 4), (4, 2), (2, 2)])
def test_dx_by_transposed_convolution_up_to_pad_one_less_than_the_filter(kernel):
    # dout is padded by HH - 1 - pad rows and WW - 1 - pad columns, so the transposed path must be
    # taken up to pad == min(HH, WW) - 1 (zero padding) and never beyond, where the pad would be
    # negative. F = 1, C = 8: its column matrix is always the smaller one, so only the pad decides.
    HH, WW = kernel
    x_shape, w_shape = (2, 8, 6, 7), (1, 8, HH, WW)
    for pad in range(max(HH, WW) + 2):
        H_out, W_out = 6 + 2 * pad - HH + 1, 7 + 2 * pad - WW + 1
        Wq = row_length(7, W_out, WW, pad, 1)
        got = _dx_geometry(x_shape, w_shape, 1, pad, H_out, Wq)
        if pad <= min(HH, WW) - 1:
            assert got is not None and got[:2] == (HH - 1 - pad, WW - 1 - pad), pad
        else:
            assert got is None, pad
        # Every other stride uses col2im.
        assert _dx_geometry(x_shape, w_shape, 2, pad, H_out, Wq) is None


@pytest.mark.parametrize("x_shape, f_shape, stride, pad", CONV_CASES[:4])
def test_conv_fast_numerical_and_torch(rng, x_shape, f_shape, stride, pad):
    x, w, b = random_conv(rng, x_shape, f_shape)
    cp = {"stride": stride, "pad": pad}
    out, cache = conv_forward_fast(x, w, b, cp)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv_backward_fast(dout, cache)
    assert rel_error(dw, eval_numerical_gradient_array(lambda v: conv_forward_fast(x, v, b, cp)[0], w, dout)) < 1e-6
    assert rel_error(dx, eval_numerical_gradient_array(lambda v: conv_forward_fast(v, w, b, cp)[0], x, dout)) < 1e-6
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = F.conv2d(tx, tw, tb, stride=stride, padding=pad)
    tout.backward(torch.tensor(dout))
    assert rel_error(out, tout.detach().numpy()) < 1e-10
    for mine, ref in ((dx, tx), (dw, tw), (db, tb)):
        assert rel_error(mine, ref.grad.numpy()) < 1e-10


@pytest.mark.parametrize("x_shape, f_shape, stride, pad", [CONV_CASES[0], CONV_CASES[5], CONV_CASES[7]])
def test_conv_fast_float32_in_float32_out(rng, x_shape, f_shape, stride, pad):
    x, w, b = random_conv(rng, x_shape, f_shape, np.float32)
    cp = {"stride": stride, "pad": pad}
    out, cache = conv_forward_fast(x, w, b, cp)
    assert out.dtype == np.float32
    dout = rng.standard_normal(out.shape).astype(np.float32)
    grads = conv_backward_fast(dout, cache)
    assert all(g.dtype == np.float32 for g in grads)
    # float32 agrees with the float64 reference to float32 precision.
    ref_out, ref_cache = conv_forward_naive(*(a.astype(np.float64) for a in (x, w, b)), cp)
    assert np.allclose(out, ref_out, rtol=1e-4, atol=1e-4)
    for g, r in zip(grads, conv_backward_naive(dout.astype(np.float64), ref_cache)):
        assert np.allclose(g, r, rtol=1e-4, atol=1e-3)


def test_im2col_col2im_are_adjoint(rng):
    # <im2col(x), c> == <x, col2im(c)> for every x and c: col2im is the exact transpose.
    x = rng.standard_normal((2, 3, 7, 6))
    pad, HH, WW, stride = 1, 3, 2, 1
    xp = padded_buffer(x, pad)
    H_out, Wq = 1 + (7 + 2 - HH) // stride, 6 + 2  # row trick: Wq = Wp
    cols = im2col(xp, HH, WW, H_out, Wq, stride)
    c = rng.standard_normal(cols.shape)
    back = col2im(c, xp.shape, HH, WW, H_out, Wq, stride)
    assert np.isclose(np.sum(cols * c), np.sum(xp * back), rtol=1e-12)


@pytest.mark.parametrize("H_out, Wq, stride", [
    (4, 4, 1),  # H_out too large: the correct H' is 4 - 3 + 1 = 2 for 4 rows and a 3-row filter
    (2, 5, 1),  # Wq neither W' = 2 nor Wp = 4
    (2, 2, 2),  # stride 2 reaches row 2 + 3 = 5 of 4
    (0, 2, 1),
])
def test_im2col_and_col2im_refuse_windows_outside_the_buffer(rng, H_out, Wq, stride):
    # as_strided does not check bounds: before, col2im wrote past the buffer (a segfault or a
    # corrupted heap a little later) and im2col returned whatever lay after it.
    xp = padded_buffer(rng.standard_normal((1, 1, 4, 4)), 0)  # (1, 1, 5, 4) with the guard row
    with pytest.raises(ValueError, match="outside the padded input|positive integer"):
        im2col(xp, 3, 3, H_out, Wq, stride)
    cols = np.ones((1, 9, max(H_out, 1) * Wq))
    with pytest.raises(ValueError, match="outside the padded input|positive integer"):
        col2im(cols, xp.shape, 3, 3, H_out, Wq, stride)


def test_pool_windows_refuses_windows_outside_x(rng):
    x = rng.standard_normal((1, 1, 4, 4))
    assert pool_windows(x, 2, 2, 2, 2, 2).shape == (2, 2, 1, 1, 2, 2)
    with pytest.raises(ValueError, match="do not fit"):
        pool_windows(x, 2, 2, 3, 2, 2)


def test_conv_fast_does_not_modify_inputs(rng):
    x, w, b = random_conv(rng, (2, 3, 6, 6), (4, 3, 3))
    copies = [a.copy() for a in (x, w, b)]
    out, cache = conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})
    conv_backward_fast(np.ones_like(out), cache)
    for a, c in zip((x, w, b), copies):
        assert np.array_equal(a, c)


def test_conv_fast_rejects_bad_input(rng):
    x, w, b = random_conv(rng, (2, 3, 6, 6), (4, 3, 3))
    with pytest.raises(ValueError, match="does not divide evenly"):
        conv_forward_fast(x, w, b, {"stride": 2, "pad": 0})
    with pytest.raises(ValueError, match=r"\(2, 3, 6, 6\).*\(4, 2, 3, 3\)"):
        conv_forward_fast(x, w[:, :2], b, {"stride": 1, "pad": 1})
    out, cache = conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match="dout must have shape"):
        conv_backward_fast(out[:, :2], cache)


POOL_CASES = [
    # x shape, (pool_height, pool_width, stride)
    ((2, 3, 8, 8), (2, 2, 2)),     # tiles: reshape path
    ((1, 1, 9, 6), (3, 3, 3)),     # tiles, odd size
    ((2, 2, 6, 8), (3, 2, 1)),     # overlapping, non-square
    ((2, 3, 9, 9), (3, 3, 2)),     # overlapping, odd size
    ((1, 2, 7, 10), (1, 2, 2)),    # tiles, non-square
    ((2, 1, 10, 10), (2, 2, 4)),   # gaps between windows
    ((3, 2, 5, 7), (2, 4, 3)),     # non-square with gaps
]


def distinct_values(rng, shape, dtype=np.float64):
    """Random input with no two equal entries, so each window has one maximum."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) / 7.0 - 3.0).astype(dtype)


@pytest.mark.parametrize("x_shape, pool", POOL_CASES)
def test_max_pool_fast_matches_naive_and_torch(rng, x_shape, pool):
    PH, PW, stride = pool
    pp = {"pool_height": PH, "pool_width": PW, "stride": stride}
    x = distinct_values(rng, x_shape)
    out_n, cache_n = max_pool_forward_naive(x, pp)
    out_f, cache_f = max_pool_forward_fast(x, pp)
    assert np.array_equal(out_f, out_n)
    dout = rng.standard_normal(out_n.shape)
    dx_n = max_pool_backward_naive(dout, cache_n)
    dx_f = max_pool_backward_fast(dout, cache_f)
    assert rel_error(dx_f, dx_n) <= 1e-9
    num = eval_numerical_gradient_array(lambda v: max_pool_forward_fast(v, pp)[0], x, dout)
    assert rel_error(dx_f, num) < 1e-6
    tx = torch.tensor(x, requires_grad=True)
    tout = F.max_pool2d(tx, (PH, PW), stride=stride)
    tout.backward(torch.tensor(dout))
    assert np.array_equal(out_f, tout.detach().numpy())
    assert rel_error(dx_f, tx.grad.numpy()) < 1e-12


@pytest.mark.parametrize("x_shape, pool", POOL_CASES)
def test_max_pool_fast_ties_follow_the_naive_rule(rng, x_shape, pool):
    PH, PW, stride = pool
    pp = {"pool_height": PH, "pool_width": PW, "stride": stride}
    # Few distinct values: most windows hold several maxima (and all-equal windows).
    x = rng.integers(0, 3, size=x_shape).astype(np.float64)
    out_n, cache_n = max_pool_forward_naive(x, pp)
    out_f, cache_f = max_pool_forward_fast(x, pp)
    assert np.array_equal(out_f, out_n)
    # Integer-valued dout: sums are exact, so the two must agree bit for bit.
    dout = rng.integers(1, 100, size=out_n.shape).astype(np.float64)
    dx_f = max_pool_backward_fast(dout, cache_f)
    assert np.array_equal(dx_f, max_pool_backward_naive(dout, cache_n))
    # Each window hands its gradient to exactly one element.
    assert dx_f.sum() == dout.sum()


def test_max_pool_fast_all_equal_window_uses_top_left():
    x = np.zeros((1, 1, 4, 4))
    out, cache = max_pool_forward_fast(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    dx = max_pool_backward_fast(np.ones_like(out), cache)
    expected = np.zeros_like(x)
    expected[0, 0, ::2, ::2] = 1.0
    assert np.array_equal(dx, expected)


@pytest.mark.parametrize("pool", [(2, 2, 2), (3, 3, 2)])
def test_max_pool_fast_float32(rng, pool):
    PH, PW, stride = pool
    pp = {"pool_height": PH, "pool_width": PW, "stride": stride}
    x = distinct_values(rng, (2, 3, 9 if PH == 3 else 8, 9 if PH == 3 else 8), np.float32)
    out, cache = max_pool_forward_fast(x, pp)
    assert out.dtype == np.float32
    dx = max_pool_backward_fast(np.ones_like(out), cache)
    assert dx.dtype == np.float32
    assert np.array_equal(dx, max_pool_backward_naive(np.ones_like(out), max_pool_forward_naive(x, pp)[1]))


def test_max_pool_fast_rejects_bad_geometry(rng):
    with pytest.raises(ValueError, match="does not divide evenly"):
        max_pool_forward_fast(rng.standard_normal((1, 1, 5, 5)), {"pool_height": 2, "pool_width": 2, "stride": 2})


def test_fast_layers_accept_non_contiguous_views(rng):
    # Transposed / reversed views (as a user might pass after slicing) give the same results.
    base = rng.standard_normal((8, 8, 3, 2))
    x = base.transpose(3, 2, 0, 1)[:, :, ::-1]  # (2, 3, 8, 8), not C-contiguous
    w = rng.standard_normal((3, 3, 3, 4)).transpose(3, 2, 0, 1)  # (4, 3, 3, 3), not contiguous
    b = rng.standard_normal(4)
    cp = {"stride": 1, "pad": 1}
    out, cache = conv_forward_fast(x, w, b, cp)
    out_n, cache_n = conv_forward_naive(np.ascontiguousarray(x), np.ascontiguousarray(w), b, cp)
    assert rel_error(out, out_n) <= 1e-9
    dout = rng.standard_normal(out.shape).transpose(0, 1, 3, 2).copy().transpose(0, 1, 3, 2)
    for g, r in zip(conv_backward_fast(dout, cache), conv_backward_naive(dout, cache_n)):
        assert rel_error(g, r) <= 1e-9
    for pool in ((2, 2, 2), (3, 3, 1)):
        pp = dict(zip(("pool_height", "pool_width", "stride"), pool))
        xd = distinct_values(rng, (8, 8, 3, 2)).transpose(3, 2, 0, 1)
        o, c = max_pool_forward_fast(xd, pp)
        on, cn = max_pool_forward_naive(np.ascontiguousarray(xd), pp)
        d = rng.standard_normal(o.shape)
        assert np.array_equal(o, on)
        assert rel_error(max_pool_backward_fast(d, c), max_pool_backward_naive(d, cn)) <= 1e-9


# Windows with NaN: (values of one 2x2 window in row-major order). np.argmax, and so the
# naive backward and torch, treat NaN as the maximum and pick the first NaN.
NAN_WINDOWS = [
    [1.0, np.nan, 3.0, 2.0],        # NaN before the maximum
    [1.0, 5.0, 3.0, np.nan],        # NaN after the maximum
    [np.nan, 5.0, np.nan, 2.0],     # two NaNs: the first one
    [4.0, 4.0, 1.0, np.nan],        # a tie, then NaN
    [np.nan, np.nan, np.nan, np.nan],
    [-np.inf, np.nan, np.inf, 0.0],
]


@pytest.mark.parametrize("window", NAN_WINDOWS)
def test_max_pool_fast_routes_nan_windows_like_naive(window):
    pp = {"pool_height": 2, "pool_width": 2, "stride": 2}
    x = np.array(window).reshape(1, 1, 2, 2)
    dout = np.ones((1, 1, 1, 1))
    out_n, cache_n = max_pool_forward_naive(x, pp)
    out_f, cache_f = max_pool_forward_fast(x, pp)
    assert np.array_equal(out_f, out_n, equal_nan=True)
    assert np.array_equal(max_pool_backward_fast(dout, cache_f), max_pool_backward_naive(dout, cache_n))


@pytest.mark.parametrize("x_shape, pool", POOL_CASES)
def test_max_pool_fast_with_scattered_nans_matches_naive(rng, x_shape, pool):
    # NaNs among ties and ordinary values, on every pool geometry (tiling and overlapping).
    PH, PW, stride = pool
    pp = {"pool_height": PH, "pool_width": PW, "stride": stride}
    x = rng.integers(0, 3, size=x_shape).astype(np.float64)
    x[rng.random(x_shape) < 0.2] = np.nan
    out_n, cache_n = max_pool_forward_naive(x, pp)
    out_f, cache_f = max_pool_forward_fast(x, pp)
    assert np.isnan(out_n).any() and np.array_equal(out_f, out_n, equal_nan=True)
    dout = rng.integers(1, 100, size=out_n.shape).astype(np.float64)
    assert np.array_equal(max_pool_backward_fast(dout, cache_f), max_pool_backward_naive(dout, cache_n))


@pytest.mark.parametrize("x_shape", [(0, 3, 4, 4), (2, 0, 4, 4), (0, 0, 4, 4)])
@pytest.mark.parametrize("pool", [(2, 2, 2), (3, 3, 1)])
def test_max_pool_fast_on_an_empty_batch_or_channel_axis(x_shape, pool):
    pp = dict(zip(("pool_height", "pool_width", "stride"), pool))
    x = np.zeros(x_shape)
    out_n, _ = max_pool_forward_naive(x, pp)
    out_f, cache_f = max_pool_forward_fast(x, pp)
    assert out_f.shape == out_n.shape
    dx = max_pool_backward_fast(np.zeros(out_f.shape), cache_f)
    assert dx.shape == x_shape


def _pool_once(x):
    return max_pool_forward_fast(x, {"pool_height": 2, "pool_width": 2, "stride": 2})[0]


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method")
def test_fast_layers_work_in_a_child_forked_after_the_parent_used_them(rng, monkeypatch):
    # multiprocessing with fork copies the parent's thread pool object but not its threads: a
    # child that handed work to it waited forever. Two threads even on a one-core machine,
    # and a batch big enough to be split over them.
    monkeypatch.setattr(im2col_module, "MAX_THREADS", 2)
    x = rng.standard_normal((64, 8, 32, 32))
    assert x.size > im2col_module.PARALLEL_MIN_SIZE
    expected = _pool_once(x)  # the parent's threads start here
    with multiprocessing.get_context("fork").Pool(1) as pool:
        # A timeout, not a hang, when the child deadlocks.
        out = pool.apply_async(_pool_once, (x,)).get(timeout=30)
    assert np.array_equal(out, expected)


@pytest.mark.parametrize("x_shape, f_shape, stride, pad", [((7, 3, 8, 8), (4, 3, 3), 1, 1),
                                                           ((5, 2, 9, 9), (3, 3, 3), 2, 0)])
def test_conv_fast_over_several_chunks_matches_naive(rng, monkeypatch, x_shape, f_shape, stride, pad):
    # Real batches are cut into chunks of a few images; the cases above fit in one. A tiny chunk
    # size forces several chunks, the last one partial, on forward and backward.
    monkeypatch.setattr(fast_layers, "_CHUNK_SIZE", 64)
    x, w, b = random_conv(rng, x_shape, f_shape)
    cp = {"stride": stride, "pad": pad}
    out_n, cache_n = conv_forward_naive(x, w, b, cp)
    out_f, cache_f = conv_forward_fast(x, w, b, cp)
    assert rel_error(out_f, out_n) <= 1e-9
    dout = rng.standard_normal(out_n.shape)
    for gf, gn in zip(conv_backward_fast(dout, cache_f), conv_backward_naive(dout, cache_n)):
        assert rel_error(gf, gn) <= 1e-9


def test_max_pool_fast_with_more_than_256_positions_per_window(rng):
    # The argmax index no longer fits a uint8 once a window holds more than 256 elements.
    x = rng.permutation(2 * 3 * 18 * 18).reshape(2, 3, 18, 18).astype(np.float64)  # no ties
    pp = {"pool_height": 17, "pool_width": 17, "stride": 1}
    out_n, cache_n = max_pool_forward_naive(x, pp)
    out_f, cache_f = max_pool_forward_fast(x, pp)
    assert np.array_equal(out_f, out_n)
    dout = rng.standard_normal(out_n.shape)
    # Overlapping windows may share a maximum; their gradients add in another order.
    assert rel_error(max_pool_backward_fast(dout, cache_f), max_pool_backward_naive(dout, cache_n)) <= 1e-12


def test_max_pool_backward_fast_refuses_a_dout_of_the_wrong_shape(rng):
    x = rng.standard_normal((2, 3, 8, 8))
    _, cache = max_pool_forward_fast(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    with pytest.raises(ValueError, match="dout"):
        max_pool_backward_fast(np.ones((2, 3, 4, 1)), cache)
