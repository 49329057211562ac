"""``cs231n.fast_layers``: the toolkit's pure-NumPy fast conv and pool (no Cython extension to build)."""

from deep_learning_suite.fast_layers import (
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)

__all__ = ["conv_forward_fast", "conv_backward_fast", "max_pool_forward_fast", "max_pool_backward_fast"]
