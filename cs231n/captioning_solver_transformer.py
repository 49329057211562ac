"""``cs231n.captioning_solver_transformer``: the ``CaptioningSolverTransformer`` (PyTorch)."""

from deep_learning_suite.captioning_transformer import CaptioningSolverTransformer

__all__ = ["CaptioningSolverTransformer"]
