"""``cs231n.vis_utils``: ``visualize_grid`` for the notebooks' filter pictures."""

from deep_learning_suite.plots import visualize_grid

__all__ = ["visualize_grid"]
