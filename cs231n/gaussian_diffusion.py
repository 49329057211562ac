"""``cs231n.gaussian_diffusion``: the DDPM notebook's forward process, loss and sampler."""

from deep_learning_suite.diffusion import (
    GaussianDiffusion,
    cosine_beta_schedule,
    extract,
    get_beta_schedule,
    linear_beta_schedule,
    sigmoid_beta_schedule,
)

__all__ = [
    "GaussianDiffusion", "cosine_beta_schedule", "extract", "get_beta_schedule", "linear_beta_schedule",
    "sigmoid_beta_schedule",
]
