"""``cs231n.layers``: the course keeps every layer in one file; here they come from their topic modules."""

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
from deep_learning_suite.conv_layers import (
    conv_backward_naive,
    conv_forward_naive,
    max_pool_backward_naive,
    max_pool_forward_naive,
)
from deep_learning_suite.dropout import dropout_backward, dropout_forward
from deep_learning_suite.layers import (
    affine_backward,
    affine_forward,
    relu_backward,
    relu_forward,
    softmax_loss,
    svm_loss,
)

__all__ = [
    "affine_forward", "affine_backward", "relu_forward", "relu_backward", "softmax_loss", "svm_loss",
    "batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
    "spatial_batchnorm_forward", "spatial_batchnorm_backward",
    "layernorm_forward", "layernorm_backward",
    "spatial_groupnorm_forward", "spatial_groupnorm_backward",
    "dropout_forward", "dropout_backward",
    "conv_forward_naive", "conv_backward_naive", "max_pool_forward_naive", "max_pool_backward_naive",
]
