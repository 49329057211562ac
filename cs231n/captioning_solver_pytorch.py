"""``cs231n.captioning_solver_pytorch``: the ``CaptioningSolverPytorch`` of assignment 2."""

from deep_learning_suite.captioning_solver_pytorch import CaptioningSolverPytorch

__all__ = ["CaptioningSolverPytorch"]
