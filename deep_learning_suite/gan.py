"""Generative adversarial networks on 28x28 images, in PyTorch (CS231n assignment 3).

The pieces of the course's GAN notebook: noise, the fully-connected and DCGAN-style
discriminators and generators, the original (minimax, non-saturating) and least-squares
losses, the Adam settings, and ``run_a_gan``, the alternating training loop.

Images are (N, 1, 28, 28) in [-1, 1] for the networks (``preprocess_img`` maps [0, 1] there);
generators output flattened (N, 784) images through tanh. Needs PyTorch.
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .trainer import check_finite_loss

NOISE_DIM = 96


def sample_noise(batch_size, dim, seed=None):
    """Uniform noise in [-1, 1), a (batch_size, dim) tensor; ``seed`` calls torch.manual_seed."""
    if seed is not None:
        torch.manual_seed(seed)
    return 2 * torch.rand(batch_size, dim) - 1


class Flatten(nn.Module):
    """(N, ...) -> (N, prod(...))."""

    def forward(self, x):
        return x.reshape(x.shape[0], -1)


class Unflatten(nn.Module):
    """(N, C*H*W) -> (N, C, H, W); N = -1 takes it from the input."""

    def __init__(self, N=-1, C=128, H=7, W=7):
        super().__init__()
        self.N, self.C, self.H, self.W = N, C, H, W

    def forward(self, x):
        return x.view(self.N, self.C, self.H, self.W)


class ChunkSampler(torch.utils.data.Sampler):
    """Indices ``start, start + 1, ..., start + num_samples - 1`` in order: a fixed slice of a
    dataset for a ``DataLoader`` (the notebook's train and validation split of MNIST)."""

    def __init__(self, num_samples, start=0):
        self.num_samples, self.start = num_samples, start

    def __iter__(self):
        return iter(range(self.start, self.start + self.num_samples))

    def __len__(self):
        return self.num_samples


def show_images(images):
    """Draw a square grid of (N, 784) images in [0, 1] or [-1, 1] with pyplot (notebooks)."""
    import matplotlib.pyplot as plt

    images = images.reshape(images.shape[0], -1)
    side = int(round(images.shape[1] ** 0.5))
    n = int(np.ceil(np.sqrt(images.shape[0])))
    fig, axes = plt.subplots(n, n, figsize=(n, n), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img in zip(axes.ravel(), images):
        ax.imshow(img.reshape(side, side), cmap="gray")
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


def initialize_weights(m):
    """Xavier-uniform weights for linear and transposed-conv layers (``model.apply``)."""
    if isinstance(m, (nn.Linear, nn.ConvTranspose2d)):
        nn.init.xavier_uniform_(m.weight.data)


def preprocess_img(x):
    """[0, 1] -> [-1, 1], the range of the generator's tanh."""
    return 2 * x - 1.0


def deprocess_img(x):
    return (x + 1.0) / 2.0


def count_params(model):
    """Number of scalars in ``model``'s parameters."""
    return sum(p.numel() for p in model.parameters())


def discriminator(seed=None):
    """784 -> 256 -> 256 -> 1 with LeakyReLU(0.01): one real/fake score per image."""
    if seed is not None:
        torch.manual_seed(seed)
    return nn.Sequential(Flatten(), nn.Linear(784, 256), nn.LeakyReLU(0.01),
                         nn.Linear(256, 256), nn.LeakyReLU(0.01), nn.Linear(256, 1))


def generator(noise_dim=NOISE_DIM, seed=None):
    """noise_dim -> 1024 -> 1024 -> 784 with ReLU, then tanh: flattened images in [-1, 1]."""
    if seed is not None:
        torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(noise_dim, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                         nn.Linear(1024, 784), nn.Tanh())


def bce_loss(input, target):
    """Mean binary cross-entropy of logits ``input`` against 0/1 ``target``, computed stably
    as ``max(s, 0) - s * y + log(1 + exp(-|s|))``.

    Parameters
    ----------
    input : tensor of logits, e.g. a discriminator's (N, 1) scores
    target : float tensor of 0/1 labels, one per score, in any shape: (N,) or (N, 1)

    ``input`` is reshaped to ``target``'s shape, so the course's calls with (N, 1) scores and
    ``torch.ones(N)`` labels work (the course's helper squeezes ``input``, which for N = 1
    would leave a 0-d tensor). Returns a 0-d tensor, the mean over the N terms.
    """
    if input.shape != target.shape:
        if input.numel() != target.numel():
            raise ValueError(
                f"bce_loss: input has {input.numel()} scores (shape {tuple(input.shape)}) but "
                f"target has {target.numel()} labels (shape {tuple(target.shape)}); pass one "
                f"label per score, e.g. torch.ones_like(input)")
        input = input.reshape(target.shape)
    return F.binary_cross_entropy_with_logits(input, target)


def discriminator_loss(logits_real, logits_fake):
    """``-E[log D(x)] - E[log(1 - D(G(z)))]``: real images labelled 1, generated ones 0."""
    return (bce_loss(logits_real, torch.ones_like(logits_real))
            + bce_loss(logits_fake, torch.zeros_like(logits_fake)))


def generator_loss(logits_fake):
    """``-E[log D(G(z))]``, the non-saturating generator loss (strong gradients early on,
    when the discriminator easily rejects the samples)."""
    return bce_loss(logits_fake, torch.ones_like(logits_fake))


def ls_discriminator_loss(scores_real, scores_fake):
    """Least-squares GAN: ``0.5 E[(D(x) - 1)^2] + 0.5 E[D(G(z))^2]``."""
    return 0.5 * ((scores_real - 1) ** 2).mean() + 0.5 * (scores_fake ** 2).mean()


def ls_generator_loss(scores_fake):
    """Least-squares GAN: ``0.5 E[(D(G(z)) - 1)^2]``."""
    return 0.5 * ((scores_fake - 1) ** 2).mean()


def get_optimizer(model):
    """Adam with lr 1e-3 and beta1 0.5 (the lower momentum steadies the adversarial game)."""
    return torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))


def build_dc_classifier(batch_size):
    """DCGAN discriminator: (N, 784) -> conv5-32 -> pool -> conv5-64 -> pool -> FC 1024 -> 1.

    Spatial sizes 28 -> 24 -> 12 -> 8 -> 4 (no padding), so the FC layer sees 4 * 4 * 64.
    """
    return nn.Sequential(
        Unflatten(batch_size, 1, 28, 28),
        nn.Conv2d(1, 32, 5, stride=1), nn.LeakyReLU(0.01), nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 5, stride=1), nn.LeakyReLU(0.01), nn.MaxPool2d(2, 2),
        Flatten(), nn.Linear(4 * 4 * 64, 4 * 4 * 64), nn.LeakyReLU(0.01), nn.Linear(4 * 4 * 64, 1))


def build_dc_generator(noise_dim=NOISE_DIM):
    """DCGAN generator: noise -> FC 1024 -> FC 7*7*128 -> upconv 64 (14x14) -> upconv 1 (28x28).

    Each transposed conv (kernel 4, stride 2, pad 1) doubles H and W:
    ``H' = (H - 1) * 2 - 2 * 1 + 4 = 2H``. Output (N, 784) in [-1, 1].
    """
    return nn.Sequential(
        nn.Linear(noise_dim, 1024), nn.ReLU(), nn.BatchNorm1d(1024),
        nn.Linear(1024, 7 * 7 * 128), nn.ReLU(), nn.BatchNorm1d(7 * 7 * 128),
        Unflatten(-1, 128, 7, 7),
        nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1), nn.ReLU(), nn.BatchNorm2d(64),
        nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1), nn.Tanh(), Flatten())


def run_a_gan(D, G, D_solver, G_solver, discriminator_loss, generator_loss, loader_train,
              show_every=250, batch_size=128, noise_size=NOISE_DIM, num_epochs=10, device=None,
              verbose=True, history=None):
    """Train ``D`` and ``G`` in turn, one discriminator step then one generator step per batch.

    Parameters
    ----------
    D, G : nn.Module;  D_solver, G_solver : their optimisers
    discriminator_loss, generator_loss : callables on logits (the plain or least-squares pair)
    loader_train : iterable of ``(x, label)`` with x (N, 1, 28, 28) in [0, 1]; batches of
        another size than ``batch_size`` are skipped, as in the course (the DCGAN
        discriminator's ``Unflatten(batch_size, ...)`` needs exactly that many)
    show_every : int
        Every this many iterations, starting at iteration 0, keep 16 generated images and
        (when ``verbose``) print the losses.
    batch_size : int
        Images per step: the size of the loader's batches that are used, and of the noise
        batch drawn for each discriminator and generator step.
    noise_size : int
        Length of each noise vector, uniform in [-1, 1) (``sample_noise``); it must be
        ``G``'s input size (``NOISE_DIM``, 96, for the course's generators).
    num_epochs : int
        Passes over ``loader_train``.
    device : torch.device, optional
        Where to compute (default: where D's parameters are). The images and the noise are
        cast to the dtype of D's parameters (float32 unless the models were converted).
    verbose : bool
        Print ``Iter: ..., D: ..., G: ...`` every ``show_every`` iterations; False trains
        silently (the images are kept either way).
    history : list, optional
        When given, ``(iteration, d_loss, g_loss)`` is appended to it at every iteration.

    Returns
    -------
    images : list of ndarray (16, 784) in [-1, 1], one per ``show_every`` iterations
        The course's return value: its notebook loops ``for img in images: show_images(img)``.

    Raises
    ------
    TrainingDivergedError
        A discriminator or generator loss is NaN or infinite; raised before that step.
    ValueError
        An epoch skipped every batch: the loader's batches are not of ``batch_size`` images
        (or the loader is empty), so nothing would be trained.
    """
    device = device or next(D.parameters()).device
    dtype = next(D.parameters()).dtype
    images, it = [], 0
    if history is None:
        history = []
    advice = ("lower the optimisers' learning rates, check that loader_train's images are finite, "
              "or try the least-squares losses")
    for epoch in range(num_epochs):
        used, sizes = 0, set()
        for x, _ in loader_train:
            if len(x) != batch_size:
                sizes.add(len(x))
                continue
            used += 1
            where = f"at iteration {it} (epoch {epoch + 1} of {num_epochs})"
            D_solver.zero_grad()
            real = preprocess_img(x.to(device, dtype))
            fake = G(sample_noise(batch_size, noise_size).to(device, dtype)).detach()
            d_error = discriminator_loss(D(real), D(fake.view(batch_size, 1, 28, 28)))
            check_finite_loss(d_error, "the discriminator loss", where, advice)
            d_error.backward()
            D_solver.step()

            G_solver.zero_grad()
            fake = G(sample_noise(batch_size, noise_size).to(device, dtype))
            g_error = generator_loss(D(fake.view(batch_size, 1, 28, 28)))
            check_finite_loss(g_error, "the generator loss", where, advice)
            g_error.backward()
            G_solver.step()

            history.append((it, d_error.item(), g_error.item()))
            if it % show_every == 0:
                if verbose:
                    print(f"Iter: {it}, D: {d_error.item():.4}, G:{g_error.item():.4}")
                images.append(fake.detach().cpu().numpy()[:16])
            it += 1
        # The course skips odd-sized batches silently; when that is all of them, the run
        # would "finish" having trained nothing, so say why instead.
        if used == 0:
            if not sizes:
                raise ValueError("run_a_gan: loader_train yielded no batches")
            raise ValueError(
                f"run_a_gan: every batch of epoch {epoch + 1} was skipped: loader_train gives "
                f"batches of {sorted(sizes)} images but batch_size is {batch_size}; pass "
                f"run_a_gan(..., batch_size={max(sizes)}) to match the loader, or build it with "
                f"DataLoader(..., batch_size={batch_size}, drop_last=True) (drop_last leaves out "
                f"a short last batch)")
    return images
