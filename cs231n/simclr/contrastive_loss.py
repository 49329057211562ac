"""``cs231n.simclr.contrastive_loss``: cosine similarity and the naive and vectorized NT-Xent loss.

Also ``rel_error``, which the course's file defines at its end: the Self_Supervised_Learning
notebook never defines it, and its check cells get it from ``from cs231n.simclr.contrastive_loss
import *``.
"""

from deep_learning_suite.simclr import (
    compute_sim_matrix,
    sim,
    sim_positive_pairs,
    simclr_loss_naive,
    simclr_loss_vectorized,
)
from deep_learning_suite.utils import rel_error

__all__ = ["sim", "simclr_loss_naive", "sim_positive_pairs", "compute_sim_matrix",
           "simclr_loss_vectorized", "rel_error"]
