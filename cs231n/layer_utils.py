"""``cs231n.layer_utils``: the sandwich layers; like the course's file, it also exports the layers."""

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

from . import fast_layers, layers
from .fast_layers import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403

__all__ = [
    "affine_relu_forward", "affine_relu_backward", "conv_relu_forward", "conv_relu_backward",
    "conv_relu_pool_forward", "conv_relu_pool_backward", "conv_bn_relu_forward", "conv_bn_relu_backward",
] + layers.__all__ + fast_layers.__all__
