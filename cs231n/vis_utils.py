"""``cs231n.vis_utils``: ``visualize_grid`` for the notebooks' filter pictures, and the
course's ``vis_grid`` and ``vis_nn`` (grids scaled as a whole to [0, 1])."""

from deep_learning_suite.plots import vis_grid, vis_nn, visualize_grid

__all__ = ["visualize_grid", "vis_grid", "vis_nn"]
