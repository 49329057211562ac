"""``cs231n.solver``: the Solver."""

from deep_learning_suite.trainer import Solver

__all__ = ["Solver"]
