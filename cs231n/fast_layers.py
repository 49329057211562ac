"""``cs231n.fast_layers``: the toolkit's pure-NumPy fast conv and pool (no Cython extension to build).

All the course's names are here: the strides and im2col convolutions are the one fast
convolution, and the reshape and im2col max pools the one fast pool (the reshape one
keeps the course's precondition that the windows tile the input).
"""

from deep_learning_suite.fast_layers import (
    conv_backward_fast,
    conv_backward_im2col,
    conv_backward_strides,
    conv_forward_fast,
    conv_forward_im2col,
    conv_forward_strides,
    max_pool_backward_fast,
    max_pool_backward_im2col,
    max_pool_backward_reshape,
    max_pool_forward_fast,
    max_pool_forward_im2col,
    max_pool_forward_reshape,
)

__all__ = [
    "conv_forward_fast", "conv_backward_fast", "max_pool_forward_fast", "max_pool_backward_fast",
    "conv_forward_strides", "conv_backward_strides", "conv_forward_im2col", "conv_backward_im2col",
    "max_pool_forward_reshape", "max_pool_backward_reshape", "max_pool_forward_im2col", "max_pool_backward_im2col",
]
