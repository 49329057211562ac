"""A three-layer convolutional network, the CS231n ``ThreeLayerConvNet``.

Architecture::

    conv (stride 1, pad (filter_size - 1) // 2) - relu - 2x2 max pool (stride 2)
        - affine - relu - affine - softmax

Odd sizes: the pool floors like PyTorch's ``max_pool2d``. When the conv output
has an odd height or width its last row or column belongs to no 2x2 window
and is dropped (and gets zero gradient), so ``input_dim=(1, 28, 28)``,
``(3, 31, 31)`` and even filter sizes all work.
"""

import numpy as np

from ._validate import check_real, check_reg
from .fast_layers import conv_backward_fast, conv_forward_fast, max_pool_backward_fast, max_pool_forward_fast
from .layer_utils import affine_relu_backward, affine_relu_forward
from .layers import affine_backward, affine_forward, relu_backward, relu_forward, softmax_loss


class ThreeLayerConvNet:
    """conv - relu - 2x2 max pool - affine - relu - affine - softmax, on NCHW input.

    Parameters
    ----------
    input_dim : (C, H, W)
        Shape of one input image.
    num_filters : int
        F, the number of conv filters.
    filter_size : int
        Filters are ``filter_size x filter_size``; the conv keeps H and W for odd sizes.
    hidden_dim : int
        Width of the hidden affine layer.
    num_classes : int
        Number of scores per input.
    weight_scale : float >= 0
        Weights start as ``weight_scale * N(0, 1)``, biases at 0.
    reg : float
        L2 strength: the loss gains ``0.5 * reg * sum(W**2)`` over W1, W2, W3.
        Read at every ``loss`` call.
    dtype : numpy dtype
        Parameters, inputs and gradients use this dtype (float64 for gradient checks).
    seed : int or None
        Seeds the initialisation; None draws from NumPy's global generator (as in CS231n).

    Attributes
    ----------
    params : dict
        ``W1`` (F, C, filter_size, filter_size), ``b1`` (F,),
        ``W2`` (F * H_pool * W_pool, hidden_dim), ``b2`` (hidden_dim,),
        ``W3`` (hidden_dim, num_classes), ``b3`` (num_classes,), where
        ``H_pool = H_conv // 2`` and ``H_conv = H + 2 * pad - filter_size + 1``.
    """

    def __init__(
        self,
        input_dim=(3, 32, 32),
        num_filters=32,
        filter_size=7,
        hidden_dim=100,
        num_classes=10,
        weight_scale=1e-3,
        reg=0.0,
        dtype=np.float32,
        seed=None,
    ):
        if len(tuple(input_dim)) != 3:
            raise ValueError(f"input_dim must be (C, H, W), got {input_dim!r}")
        sizes = dict(num_filters=num_filters, filter_size=filter_size, hidden_dim=hidden_dim,
                     num_classes=num_classes)
        for name, v in list(sizes.items()) + [("input_dim", d) for d in input_dim]:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"{name} must hold positive integers, got {v!r}")
        weight_scale = check_real("ThreeLayerConvNet", "weight_scale", weight_scale, 0.0)
        C, H, W = (int(d) for d in input_dim)
        self.input_dim = (C, H, W)
        self.pad = (filter_size - 1) // 2
        self.conv_param = {"stride": 1, "pad": self.pad}
        self.pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
        self.conv_hw = (H + 2 * self.pad - filter_size + 1, W + 2 * self.pad - filter_size + 1)
        H_pool, W_pool = self.conv_hw[0] // 2, self.conv_hw[1] // 2
        if H_pool < 1 or W_pool < 1:
            raise ValueError(
                f"input_dim {input_dim} is too small for filter_size {filter_size} and a 2x2 pool: "
                f"the conv output is {self.conv_hw[0]}x{self.conv_hw[1]}, the pool needs at least 2x2"
            )
        self.reg = reg
        self.dtype = dtype

        rng = np.random.default_rng(seed) if seed is not None else None

        def draw(*shape):
            return rng.standard_normal(shape) if rng is not None else np.random.randn(*shape)

        flat = num_filters * H_pool * W_pool
        self.params = {
            "W1": (weight_scale * draw(num_filters, C, filter_size, filter_size)).astype(dtype),
            "b1": np.zeros(num_filters, dtype=dtype),
            "W2": (weight_scale * draw(flat, hidden_dim)).astype(dtype),
            "b2": np.zeros(hidden_dim, dtype=dtype),
            "W3": (weight_scale * draw(hidden_dim, num_classes)).astype(dtype),
            "b3": np.zeros(num_classes, dtype=dtype),
        }

    def loss(self, X, y=None):
        """Scores, or loss and gradients.

        Parameters
        ----------
        X : ndarray, (N, C, H, W) matching ``input_dim``
        y : ndarray of int, (N,), or None

        Returns
        -------
        scores : (N, num_classes) when y is None; otherwise ``(loss, grads)``: ``loss`` a
        NumPy scalar of the model's dtype (as ``FullyConnectedNet`` returns with a Python
        float reg), ``grads[k]`` shaped like ``params[k]`` and of its dtype.
        """
        reg = check_reg("ThreeLayerConvNet", self.reg)
        X = np.asarray(X)
        if X.ndim != 4 or X.shape[1:] != self.input_dim:
            raise ValueError(
                f"ThreeLayerConvNet expects X of shape (N, {', '.join(map(str, self.input_dim))}) "
                f"(N, C, H, W as in input_dim), got {X.shape}; NHWC images need "
                f"X.transpose(0, 3, 1, 2)"
            )
        X = X.astype(self.dtype, copy=False)
        p = self.params
        Hc, Wc = self.conv_hw
        Hk, Wk = 2 * (Hc // 2), 2 * (Wc // 2)  # the rows/columns the pool covers

        # relu and max commute (relu is monotonic), so the pool runs on the conv output
        # and the relu on the 4x smaller pooled array: max(relu(c)) == relu(max(c)). The
        # gradients are the same too: where the window maximum is > 0 both route to its
        # first occurrence; where it is <= 0, relu(c)'s gradient there is 0 either way.
        c, conv_cache = conv_forward_fast(X, p["W1"], p["b1"], self.conv_param)
        cropped = c if (Hk, Wk) == (Hc, Wc) else c[:, :, :Hk, :Wk]
        pooled_c, pool_cache = max_pool_forward_fast(cropped, self.pool_param)
        pooled, relu_cache = relu_forward(pooled_c)
        h, hidden_cache = affine_relu_forward(pooled, p["W2"], p["b2"])
        scores, out_cache = affine_forward(h, p["W3"], p["b3"])
        if y is None:
            return scores

        loss, dscores = softmax_loss(scores, y)
        grads = {}
        dh, grads["W3"], grads["b3"] = affine_backward(dscores, out_cache)
        dpooled, grads["W2"], grads["b2"] = affine_relu_backward(dh, hidden_cache)
        dkept = max_pool_backward_fast(relu_backward(dpooled, relu_cache), pool_cache)
        if (Hk, Wk) == (Hc, Wc):
            dc = dkept
        else:
            dc = np.zeros(c.shape, dtype=dkept.dtype)
            dc[:, :, :Hk, :Wk] = dkept
        # X is data, not a parameter: skip its gradient (one GEMM and the col2im).
        _, grads["W1"], grads["b1"] = conv_backward_fast(dc, conv_cache, need_dx=False)

        for k in ("W1", "W2", "W3"):
            W = p[k]
            loss += 0.5 * reg * np.sum(W * W)
            grads[k] += reg * W
        return loss, grads
