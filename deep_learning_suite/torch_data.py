"""Data for the PyTorch trainer: the arrays, the on-device dataset and its batch augmentation.

Images are uint8 NCHW (N, 3, 32, 32) from load to batch: CIFAR-10 as it is, Fashion-MNIST
padded to 32x32 and copied to three channels, or a synthetic set for tests and smoke runs.
:class:`DeviceData` puts the splits on the device once; :func:`epoch_batches` shuffles,
flips, translates and shards a whole epoch there. Why the data path looks like this (one
augmentation pass per epoch, alternating flips, randomness keyed by seed and epoch) is
in the docstring of :mod:`deep_learning_suite.pytorch_cifar10`.
"""

import numpy as np
import torch

DATASETS = ("cifar10", "fashion-mnist", "synthetic")


class UsageError(Exception):
    """A problem with the flags or the data that the user has to fix; printed without a trace."""


def make_synthetic(n_train, n_test, seed=0, num_classes=10):
    """Learnable class-dependent images: per-class colour and stripe pattern plus noise.

    Returns uint8 ``x_train`` (n_train, 3, 32, 32), int64 ``y_train``, ``x_test``, ``y_test``.
    """
    rng = np.random.default_rng(seed)
    colours = rng.uniform(70, 190, size=(num_classes, 3))
    yy = np.arange(32)[:, None] * np.ones(32)[None, :]
    protos = np.empty((num_classes, 3, 32, 32))
    for k in range(num_classes):
        # Low-frequency horizontal stripes survive flips and 2-4 pixel shifts, so the
        # augmented images keep their class.
        stripes = 45 * np.sin(2 * np.pi * (1 + k % 4) * yy / 32 + k)
        protos[k] = colours[k][:, None, None] + stripes[None] * (1 if k % 2 else -1)

    def draw(n):
        y = rng.integers(0, num_classes, size=n)
        x = protos[y] + rng.normal(0, 40, size=(n, 3, 32, 32))
        return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64)

    return (*draw(n_train), *draw(n_test))


def pad_to_32x32x3(x):
    """(N, 28, 28) uint8 -> (N, 3, 32, 32): zero border of 2 pixels, grey copied to 3 channels."""
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    return np.repeat(x[:, None], 3, axis=1)


def load_arrays(args):
    """The dataset of ``args`` as NumPy arrays: uint8 (N, 3, 32, 32) images, int64 labels."""
    if args.dataset == "synthetic":
        return make_synthetic(args.synthetic_size, max(args.synthetic_size // 4, 1), seed=1234)
    from deep_learning_suite.data import find_cifar10_dir, load_CIFAR10, load_fashion_mnist
    try:
        if args.dataset == "cifar10":
            root = find_cifar10_dir(args.data_dir, download=args.download)
            xtr, ytr, xte, yte = load_CIFAR10(root, dtype=np.uint8)
            xtr, xte = xtr.transpose(0, 3, 1, 2), xte.transpose(0, 3, 1, 2)
        else:
            xtr, ytr, xte, yte = load_fashion_mnist(args.data_dir, download=args.download)
            xtr, xte = pad_to_32x32x3(xtr), pad_to_32x32x3(xte)
    except (OSError, ValueError) as e:
        raise UsageError(f"could not load {args.dataset}: {e}") from e
    return (np.ascontiguousarray(xtr), ytr.astype(np.int64),
            np.ascontiguousarray(xte), yte.astype(np.int64))


class DeviceData:
    """The train/val/test splits as uint8 NCHW tensors on ``device`` plus normalisation stats.

    The last ``val_size`` images of a fixed (seed 0) permutation of the training set form the
    validation split, so it is the same for every ``--seed``. The per-image flip bits depend on
    the seed (:meth:`flip_bits`); one DeviceData serves runs of any seed (the benchmark reuses
    one).
    """

    def __init__(self, arrays, val_size, device):
        xtr, ytr, xte, yte = arrays
        if not 0 <= val_size < len(xtr):
            raise UsageError(f"--val-size must be in [0, {len(xtr)}) for this training set of "
                             f"{len(xtr)} images, got {val_size}")
        order = np.random.default_rng(0).permutation(len(xtr))
        train, val = order[:len(xtr) - val_size], order[len(xtr) - val_size:]

        def put(a):
            return torch.from_numpy(np.ascontiguousarray(a)).to(device)

        self.x_train, self.y_train = put(xtr[train]), put(ytr[train])
        self.x_val, self.y_val = put(xtr[val]), put(ytr[val])
        self.x_test, self.y_test = put(xte), put(yte)
        self.num_classes = int(max(ytr.max(), yte.max())) + 1
        xf = self.x_train.float()
        self.mean = xf.mean(dim=(0, 2, 3), keepdim=True)
        self.std = xf.std(dim=(0, 2, 3), keepdim=True).clamp_min(1.0)
        del xf
        self._flip_bits = {}

    def flip_bits(self, seed):
        """The per-image flip bits of the alternating flips (see pytorch_cifar10's docstring)
        for ``--seed`` ``seed``: bool (N_train,) on the device, drawn once per seed on the CPU,
        so every rank and every device type gets the same bits."""
        if seed not in self._flip_bits:
            g = epoch_generator(torch.device("cpu"), seed, 0, 0, FLIP_STREAM)
            bits = torch.randint(0, 2, (len(self.x_train),), generator=g).bool()
            self._flip_bits[seed] = bits.to(self.x_train.device)
        return self._flip_bits[seed]

    def normalise(self, x_uint8):
        return (x_uint8.float() - self.mean) / self.std


def _reflect(i, n):
    """Map indices in [-(n-1), 2(n-1)] into [0, n) by mirroring at the borders."""
    i = i.abs()
    return torch.where(i > n - 1, 2 * (n - 1) - i, i)


def translate(x, dy, dx):
    """Shift each image ``x[k]`` by ``(dy[k], dx[k])`` pixels, filling in by reflection.

    Parameters
    ----------
    x : tensor, (N, C, H, W)
    dy, dx : integer tensors, (N,), with ``|shift| < H`` (resp. W)

    Returns
    -------
    tensor (N, C, H, W), ``out[k, :, i, j] = x[k, :, reflect(i + dy[k]), reflect(j + dx[k])]``
    """
    n, c, h, w = x.shape
    rows = _reflect(torch.arange(h, device=x.device) + dy[:, None], h)
    cols = _reflect(torch.arange(w, device=x.device) + dx[:, None], w)
    x = x.gather(2, rows[:, None, :, None].expand(n, c, h, w))
    return x.gather(3, cols[:, None, None, :].expand(n, c, h, w))


# The streams of epoch_generator, all drawn with rank 0 (every rank draws the same numbers
# and takes its slice): the shuffle, the translations, and the flip bits (once per run, with
# epoch 0).
ORDER_STREAM, SHIFT_STREAM, FLIP_STREAM = 0, 1, 2


def epoch_generator(device, seed, epoch, rank, stream):
    """A generator for one purpose (``stream``) of one epoch on one rank."""
    g = torch.Generator(device=device)
    g.manual_seed((seed * 1_000_003 + epoch * 10_007 + rank * 101 + stream) % (2**63))
    return g


def epoch_batches(data, epoch, args, rank, world):
    """This rank's augmented uint8 images and labels for one epoch, in batch order.

    The permutation, the flips and the translations are drawn for the whole epoch from
    generators shared by all ranks, and rank ``r`` takes slice ``r`` of every global batch:
    the ranks together see exactly the batches one process would (on the same device type).
    Returns ``(x, y, per_rank_batch)`` with ``len(x) = steps * per_rank_batch``.
    """
    device = data.x_train.device
    n, b = len(data.x_train), args.batch_size // world
    steps = n // args.batch_size

    def mine(t):  # this rank's slice of every global batch of an epoch-long tensor
        return t.view(steps, world, b)[:, rank].reshape(-1)

    perm = torch.randperm(n, device=device,
                          generator=epoch_generator(device, args.seed, epoch, 0, ORDER_STREAM))
    idx = mine(perm[:steps * args.batch_size])
    x, y = data.x_train[idx], data.y_train[idx]
    flip = data.flip_bits(args.seed)[idx] ^ bool(epoch % 2)
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if args.translate > 0:
        # The whole epoch's shifts (two small integer tensors), of which each rank keeps its
        # slice: with one process that is every shift, drawn as before.
        g = epoch_generator(device, args.seed, epoch, 0, SHIFT_STREAM)
        s, total = args.translate, steps * args.batch_size
        dy = mine(torch.randint(-s, s + 1, (total,), device=device, generator=g))
        dx = mine(torch.randint(-s, s + 1, (total,), device=device, generator=g))
        x = translate(x, dy, dx)
    return x, y, b
