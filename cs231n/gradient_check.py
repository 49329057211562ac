"""``cs231n.gradient_check``: centred numerical gradients."""

from deep_learning_suite.utils import eval_numerical_gradient, eval_numerical_gradient_array, grad_check_sparse

__all__ = ["eval_numerical_gradient", "eval_numerical_gradient_array", "grad_check_sparse"]
