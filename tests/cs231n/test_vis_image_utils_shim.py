"""``cs231n.vis_utils`` and ``cs231n.image_utils`` offer the course files' grid and blur helpers:
``vis_grid`` and ``vis_nn`` (the toolkit's own, from ``plots``), and the course's NumPy
``blur_image``, which must not displace the PyTorch one of ``cs231n.net_visualization_pytorch``."""

import importlib

import numpy as np
import pytest

import cs231n.image_utils as image_utils
from deep_learning_suite import plots

KERNEL = np.array([[1, 2, 1], [2, 188, 2], [1, 2, 1]]) / 200


def test_vis_utils_gives_the_toolkits_grids():
    import cs231n.vis_utils as vis_utils

    namespace = {}
    exec("from cs231n.vis_utils import *", namespace)
    for name in ("visualize_grid", "vis_grid", "vis_nn"):
        assert getattr(vis_utils, name) is getattr(plots, name)
        assert namespace[name] is getattr(plots, name)


def _blur_by_hand(X):
    """Each channel on its own: zero-pad by one, then the 3x3 weighted sum of its neighbours."""
    N, C, H, W = X.shape
    P = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros_like(X)
    for dy in range(3):
        for dx in range(3):
            out += KERNEL[dy, dx] * P[:, :, dy:dy + H, dx:dx + W]
    return out


@pytest.mark.parametrize("shape, dtype", [((2, 3, 5, 6), np.float64), ((1, 3, 1, 1), np.float64),
                                          ((3, 3, 4, 4), np.float32), ((2, 1, 3, 5), np.float64)])
def test_blur_image_is_the_per_channel_3x3_kernel(rng, shape, dtype):
    X = rng.standard_normal(shape).astype(dtype)
    out = image_utils.blur_image(X)
    assert out.shape == X.shape and out.dtype == dtype
    np.testing.assert_allclose(out, _blur_by_hand(X.astype(np.float64)), rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-12)


def test_blur_image_by_hand_keeps_channels_apart():
    X = np.zeros((1, 3, 3, 3))
    X[0, 1, 1, 1] = 200.0                      # one bright pixel in the green channel
    out = image_utils.blur_image(X)
    np.testing.assert_allclose(out[0, 1], [[1, 2, 1], [2, 188, 2], [1, 2, 1]], rtol=0, atol=1e-12)
    assert not out[0, [0, 2]].any()            # red and blue untouched
    # a constant image keeps its value inside; the zero padding darkens the border
    flat = image_utils.blur_image(np.ones((1, 3, 3, 3)))[0, 0]
    np.testing.assert_allclose(flat, [[.965, .98, .965], [.98, 1, .98], [.965, .98, .965]], rtol=0, atol=1e-12)


def test_blur_image_takes_integer_images_and_refuses_bad_ones():
    X = np.arange(2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    np.testing.assert_allclose(image_utils.blur_image(X), _blur_by_hand(X.astype(np.float64)), rtol=1e-12)
    with pytest.raises(ValueError, match=r"blur_image: X must be 4-D \(N, C, H, W\).*got shape \(4, 4, 3\)"):
        image_utils.blur_image(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="floating point"):
        image_utils.blur_image(np.zeros((1, 3, 2, 2), dtype=complex))


@pytest.mark.parametrize("order", [("image_utils", "net_visualization_pytorch"),
                                   ("net_visualization_pytorch", "image_utils")])
def test_star_imports_leave_net_visualizations_blur_image(order):
    # The course's notebooks take the PyTorch blur_image from net_visualization_pytorch; a star
    # import of image_utils, before or after, must not swap in the NumPy one.
    pytest.importorskip("torch")
    from deep_learning_suite import net_visualization

    namespace = {}
    for module in order:
        exec(f"from cs231n.{module} import *", namespace)
    assert namespace["blur_image"] is net_visualization.blur_image
    # The module as imported now: other tests re-import the cs231n package.
    current = importlib.import_module("cs231n.image_utils")
    assert current.blur_image is not net_visualization.blur_image
    from cs231n.image_utils import blur_image        # by name it is there
    assert blur_image is current.blur_image
