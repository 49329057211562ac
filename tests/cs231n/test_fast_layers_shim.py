"""``cs231n.fast_layers`` offers every name of the course's file, each pair agreeing with the naive layers."""

import numpy as np
import pytest

import cs231n.fast_layers as course_fast
from cs231n.layers import conv_backward_naive, conv_forward_naive, max_pool_backward_naive, max_pool_forward_naive
from deep_learning_suite.utils import rel_error

CONV_PAIRS = [("conv_forward_fast", "conv_backward_fast"), ("conv_forward_strides", "conv_backward_strides"),
              ("conv_forward_im2col", "conv_backward_im2col")]
POOL_PAIRS = [("max_pool_forward_fast", "max_pool_backward_fast"),
              ("max_pool_forward_reshape", "max_pool_backward_reshape"),
              ("max_pool_forward_im2col", "max_pool_backward_im2col")]


def test_star_import_gives_all_the_course_names():
    namespace = {}
    exec("from cs231n.fast_layers import *", namespace)
    missing = [n for pair in CONV_PAIRS + POOL_PAIRS for n in pair if n not in namespace]
    assert not missing


@pytest.mark.parametrize("forward, backward", CONV_PAIRS)
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", [
    ((2, 3, 8, 8), (4, 3, 3, 3), 1, 1),   # the notebook's fast-conv cell, smaller
    ((2, 3, 9, 7), (2, 3, 3, 1), 2, 1),
    ((1, 2, 5, 5), (3, 2, 1, 1), 1, 0),
])
def test_conv_pairs_match_naive(rng, forward, backward, x_shape, w_shape, stride, pad):
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    cp = {"stride": stride, "pad": pad}
    out_n, cache_n = conv_forward_naive(x, w, b, cp)
    out, cache = getattr(course_fast, forward)(x, w, b, cp)
    assert rel_error(out, out_n) < 1e-9
    dout = rng.standard_normal(out.shape)
    for g, g_n in zip(getattr(course_fast, backward)(dout, cache), conv_backward_naive(dout, cache_n)):
        assert g.shape == g_n.shape and rel_error(g, g_n) < 1e-9


def _pool_check(rng, forward, backward, x_shape, pool):
    pp = dict(zip(("pool_height", "pool_width", "stride"), pool))
    # Distinct values: one maximum per window.
    x = rng.permutation(int(np.prod(x_shape))).reshape(x_shape) / 7.0
    out_n, cache_n = max_pool_forward_naive(x, pp)
    out, cache = getattr(course_fast, forward)(x, pp)
    assert np.array_equal(out, out_n)
    dout = rng.standard_normal(out.shape)
    # Overlapping windows add their gradients in another order: equal up to rounding.
    assert rel_error(getattr(course_fast, backward)(dout, cache), max_pool_backward_naive(dout, cache_n)) < 1e-12


@pytest.mark.parametrize("forward, backward", POOL_PAIRS)
@pytest.mark.parametrize("x_shape, pool", [((2, 3, 8, 8), (2, 2, 2)), ((1, 2, 9, 6), (3, 3, 3))])
def test_pool_pairs_match_naive_on_tiling_windows(rng, forward, backward, x_shape, pool):
    _pool_check(rng, forward, backward, x_shape, pool)


@pytest.mark.parametrize("forward, backward", [POOL_PAIRS[0], POOL_PAIRS[2]])
@pytest.mark.parametrize("x_shape, pool", [((2, 3, 9, 9), (3, 3, 2)), ((2, 2, 6, 8), (3, 2, 1)),
                                           ((2, 1, 10, 10), (2, 2, 4))])
def test_general_pool_pairs_match_naive_on_any_windows(rng, forward, backward, x_shape, pool):
    _pool_check(rng, forward, backward, x_shape, pool)


@pytest.mark.parametrize("x_shape, pool", [((1, 1, 9, 9), (3, 3, 2)), ((1, 1, 6, 8), (3, 2, 1)),
                                           ((1, 1, 6, 7), (2, 3, 2)), ((1, 1, 10, 10), (2, 2, 4))])
def test_reshape_pool_refuses_windows_that_do_not_tile(x_shape, pool):
    # The course asserts pool_height == pool_width == stride ("Invalid pool params").
    pp = dict(zip(("pool_height", "pool_width", "stride"), pool))
    with pytest.raises(ValueError, match=r"max_pool_forward_reshape: .*pool_height == pool_width == stride.*"
                                         r"max_pool_forward_fast"):
        course_fast.max_pool_forward_reshape(np.zeros(x_shape), pp)


def test_reshape_pool_refuses_sizes_the_windows_do_not_divide():
    # H = 5 is no multiple of the 2x2 tiles: the geometry check says so.
    pp = {"pool_height": 2, "pool_width": 2, "stride": 2}
    with pytest.raises(ValueError, match="does not divide evenly along H"):
        course_fast.max_pool_forward_reshape(np.zeros((1, 1, 5, 4)), pp)
