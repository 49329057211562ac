"""``cs231n.classification_solver_vit``: the ``ClassificationSolverViT`` of assignment 3 (PyTorch)."""

from deep_learning_suite.classification_solver_vit import ClassificationSolverViT

__all__ = ["ClassificationSolverViT"]
