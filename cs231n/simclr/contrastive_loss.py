"""``cs231n.simclr.contrastive_loss``: cosine similarity and the naive and vectorized NT-Xent loss."""

from deep_learning_suite.simclr import (
    compute_sim_matrix,
    sim,
    sim_positive_pairs,
    simclr_loss_naive,
    simclr_loss_vectorized,
)

__all__ = ["sim", "simclr_loss_naive", "sim_positive_pairs", "compute_sim_matrix",
           "simclr_loss_vectorized"]
