"""``cs231n.gan_pytorch``: the GAN notebook's networks, losses and training loop (PyTorch)."""

from deep_learning_suite.gan import (
    NOISE_DIM,
    ChunkSampler,
    Flatten,
    Unflatten,
    bce_loss,
    build_dc_classifier,
    build_dc_generator,
    count_params,
    deprocess_img,
    discriminator,
    discriminator_loss,
    generator,
    generator_loss,
    get_optimizer,
    initialize_weights,
    ls_discriminator_loss,
    ls_generator_loss,
    preprocess_img,
    run_a_gan,
    sample_noise,
    show_images,
)
from deep_learning_suite.utils import rel_error

__all__ = [
    "NOISE_DIM", "ChunkSampler", "Flatten", "Unflatten", "bce_loss", "build_dc_classifier",
    "build_dc_generator", "count_params", "deprocess_img", "discriminator", "discriminator_loss",
    "generator", "generator_loss", "get_optimizer", "initialize_weights", "ls_discriminator_loss",
    "ls_generator_loss", "preprocess_img", "rel_error", "run_a_gan", "sample_noise", "show_images",
]
