"""``cs231n.captioning_solver``: the ``CaptioningSolver`` of assignment 3."""

from deep_learning_suite.captioning_solver import CaptioningSolver

__all__ = ["CaptioningSolver"]
