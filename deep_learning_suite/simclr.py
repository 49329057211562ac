"""SimCLR, self-supervised contrastive learning on CIFAR-10, in PyTorch (CS231n assignment 3).

The pieces of the course's SimCLR notebook: the NT-Xent contrastive loss (a naive loop and a
vectorized version), the dataset of augmented pairs, the model (re-exported from
:mod:`deep_learning_suite.simclr_model`: the course's CIFAR ResNet-50 encoder ``f``, written
without torchvision, and projection head ``g``), the contrastive training loop, the supervised linear-evaluation loop
and the weighted k-nearest-neighbour monitor. The augmentations, written without
torchvision, are in :mod:`deep_learning_suite.simclr_augment`.

For a batch of N images, each is augmented twice: ``out_left[k]`` and ``out_right[k]`` are the
projections of the two views of image k. Stacked as ``out = cat([out_left, out_right])``
(2N, D), row k's positive is row ``k + N`` (and vice versa), and the other 2N - 2 rows are its
negatives. With cosine similarities ``s`` and temperature ``tau``, the loss of row i is
``-log(exp(s[i, pos(i)] / tau) / sum_{j != i} exp(s[i, j] / tau))``, averaged over the 2N rows.
Needs PyTorch.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from deep_learning_suite.data import CIFAR10_CLASSES, find_cifar10_dir, load_CIFAR10_split
from deep_learning_suite.simclr_model import (ARCHS, RESNET50_LAYERS, RESNET50_WIDTHS,  # noqa: F401
                                              Bottleneck, Model, resnet50_encoder)
from deep_learning_suite.trainer import check_finite_loss

_EPS = 1e-12  # norm floor, as in F.normalize: a zero vector gets similarity 0, not NaN


# --------------------------------------------------------------------------- loss

def _unit_rows(x):
    return x / x.norm(dim=-1, keepdim=True).clamp_min(_EPS)


def _check_pair(out_left, out_right, tau=None):
    if not (isinstance(out_left, torch.Tensor) and isinstance(out_right, torch.Tensor)):
        raise ValueError("out_left and out_right must be torch tensors")
    if out_left.ndim != 2 or out_left.shape != out_right.shape or out_left.shape[0] == 0:
        raise ValueError(f"out_left and out_right must both be (N, D) with N >= 1, got "
                         f"{tuple(out_left.shape)} and {tuple(out_right.shape)}")
    if tau is not None and not (math.isfinite(float(tau)) and float(tau) > 0):
        raise ValueError(f"temperature tau must be a positive number, got {tau}")


def sim(z_i, z_j):
    """Cosine similarity ``z_i . z_j / (|z_i| |z_j|)`` of two (D,) tensors; a 0-dim tensor."""
    if not (isinstance(z_i, torch.Tensor) and isinstance(z_j, torch.Tensor)) \
            or z_i.ndim != 1 or z_i.shape != z_j.shape:
        raise ValueError(f"sim needs two 1-D tensors of the same length, got "
                         f"{getattr(z_i, 'shape', type(z_i))} and {getattr(z_j, 'shape', type(z_j))}")
    return torch.dot(z_i, z_j) / (z_i.norm().clamp_min(_EPS) * z_j.norm().clamp_min(_EPS))


def simclr_loss_naive(out_left, out_right, tau):
    """NT-Xent loss with explicit loops over the N positive pairs (the reference).

    Parameters
    ----------
    out_left, out_right : (N, D) tensors, projections of the first and second views
    tau : float > 0, the temperature

    Returns
    -------
    0-dim tensor: the sum of ``l(k, k + N) + l(k + N, k)`` over k, divided by 2N.
    """
    _check_pair(out_left, out_right, tau)
    N = out_left.shape[0]
    out = torch.cat([out_left, out_right], dim=0)
    total_loss = 0
    for k in range(N):
        z_k, z_k_N = out[k], out[k + N]
        for anchor, a, positive in ((z_k, k, z_k_N), (z_k_N, k + N, z_k)):
            denom = sum(torch.exp(sim(anchor, out[i]) / tau) for i in range(2 * N) if i != a)
            total_loss = total_loss - torch.log(torch.exp(sim(anchor, positive) / tau) / denom)
    return total_loss / (2 * N)


def sim_positive_pairs(out_left, out_right):
    """(N, 1) cosine similarities of matching rows of two (N, D) tensors."""
    _check_pair(out_left, out_right)
    return (_unit_rows(out_left) * _unit_rows(out_right)).sum(dim=1, keepdim=True)


def compute_sim_matrix(out):
    """(M, M) cosine similarities between all rows of an (M, D) tensor."""
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise ValueError(f"out must be an (M, D) tensor, got {getattr(out, 'shape', type(out))}")
    unit = _unit_rows(out)
    return unit @ unit.T


def simclr_loss_vectorized(out_left, out_right, tau, device='cuda'):
    """NT-Xent loss, as :func:`simclr_loss_naive` without Python loops.

    Each row's term is computed as ``logsumexp_{j != i}(s[i, j] / tau) - s[i, pos(i)] / tau``,
    which equals the ratio form but cannot overflow however small ``tau`` is.

    Parameters
    ----------
    out_left, out_right : (N, D) tensors
    tau : float > 0
    device : ignored
        Kept for the course's signature; the computation runs where ``out_left`` lives.

    Returns
    -------
    0-dim tensor of out_left's dtype.
    """
    _check_pair(out_left, out_right, tau)
    N = out_left.shape[0]
    out = torch.cat([out_left, out_right], dim=0)
    logits = compute_sim_matrix(out) / tau
    self_mask = torch.eye(2 * N, dtype=torch.bool, device=out.device)
    # masked_fill, not masked_select: -inf drops out of the logsumexp and its gradient is 0.
    denom = torch.logsumexp(logits.masked_fill(self_mask, float("-inf")), dim=1)
    positives = sim_positive_pairs(out_left, out_right)[:, 0] / tau
    return (denom - torch.cat([positives, positives])).mean()


# --------------------------------------------------------------------------- data

class CIFAR10Pair(torch.utils.data.Dataset):
    """Items ``(x_i, x_j, target)``: two independent draws of ``transform`` on one image.

    Built the course's way, from the CIFAR-10 files with torchvision's ``CIFAR10`` signature::

        CIFAR10Pair(root='data', train=True, transform=compute_train_transform(), download=True)

    or from arrays, ``CIFAR10Pair(data, targets, transform)``, or from a dataset of
    ``(img, target)`` items, ``CIFAR10Pair(dataset, transform=...)``. The first positional
    argument decides: a ``str`` or path-like is a ``root`` (then the second positional one is
    ``train``, as in torchvision), anything else is data.

    Parameters
    ----------
    data : (N, H, W, 3) uint8 array, a dataset whose items are ``(img, target)``, or a root
        folder (as ``root``)
    targets : (N,) integer labels; must be None when ``data`` is a dataset. With a root
        folder given positionally, this place holds ``train``.
    transform : callable on one image, e.g. :func:`compute_train_transform`'s result. It is
        given the (H, W, 3) uint8 array (or the dataset's ``img``) as is, not a PIL image;
        ``None`` returns the image unchanged, twice.
    target_transform : callable on the label, or None (as torchvision's)
    download : bool, with a root: fetch the archive into ``root`` if it is missing
    root : str or path-like, keyword only
        The ``cifar-10-batches-py`` folder or its parent (the course's ``root='data'``),
        found and read as :meth:`from_cifar10` does (``find_cifar10_dir``, then
        ``load_CIFAR10`` as uint8).
    train : bool, keyword only; the 50000 training images (True, the default) or the 10000
        test images. Only with a root.

    Attributes
    ----------
    data : the images; (N, 32, 32, 3) uint8 when read from the CIFAR-10 files
    targets : list of N ints (None for a dataset without ``targets``)
    classes : the ten CIFAR-10 class names, when read from the files (as torchvision's, so
        the notebook's ``c = len(memory_data.classes)`` works)
    """

    def __init__(self, data=None, targets=None, transform=None, target_transform=None,
                 download=False, *, root=None, train=None):
        self.transform, self.target_transform = transform, target_transform
        if isinstance(data, (str, os.PathLike)):
            if root is not None:
                raise ValueError("give the CIFAR-10 folder once, as root= or first argument")
            if targets is not None and train is not None:
                raise ValueError("train given twice: positionally and as train=")
            data, root, train = None, data, targets if targets is not None else train
            targets = None
        if root is not None:
            if data is not None or targets is not None:
                raise ValueError("give either root (the CIFAR-10 files) or data and targets")
            train = True if train is None else train
            if not isinstance(train, (bool, np.bool_)):
                raise ValueError(f"train must be True or False, got {train!r}")
            images, labels = self._read_cifar10(root, bool(train), download)
            self._set_arrays(images, labels)
            self.root, self.train, self.classes = root, bool(train), list(CIFAR10_CLASSES)
            return
        if train is not None or download:
            raise ValueError("train= and download= need root=, the CIFAR-10 folder")
        if data is None:
            raise ValueError("need root= (the CIFAR-10 folder) or data")
        if targets is None:
            if isinstance(data, np.ndarray) or not hasattr(data, "__getitem__"):
                raise ValueError("targets are needed with an image array; pass a dataset of "
                                 "(img, target) items to go without")
            self.data, self.targets, self._pairs = data, getattr(data, "targets", None), True
            return
        self._set_arrays(data, targets)

    def _set_arrays(self, data, targets):
        data, targets = np.asarray(data), np.asarray(targets)
        if data.ndim != 4 or data.shape[3] != 3 or data.dtype != np.uint8:
            raise ValueError(f"data must be an (N, H, W, 3) uint8 array, got shape {data.shape} "
                             f"dtype {data.dtype}")
        if targets.shape != (data.shape[0],) or not np.issubdtype(targets.dtype, np.integer):
            raise ValueError(f"targets must be {data.shape[0]} integers, got shape "
                             f"{targets.shape} dtype {targets.dtype}")
        self.data, self.targets, self._pairs = data, targets.tolist(), False

    @staticmethod
    def _read_cifar10(root, train, download):
        # Only the half asked for: the notebook builds three of these datasets.
        return load_CIFAR10_split(find_cifar10_dir(root, download=download), train=train,
                                  dtype=np.uint8)

    @classmethod
    def from_cifar10(cls, root=None, train=True, transform=None, download=False,
                     target_transform=None):
        """The CIFAR-10 training (50000) or test (10000) images.

        ``root`` is the ``cifar-10-batches-py`` folder or its parent (the course's
        ``root='data'``); None looks where :func:`deep_learning_suite.data.find_cifar10_dir`
        does, and ``download=True`` fetches the archive there if it is missing.
        """
        if root is not None:
            return cls(root=root, train=train, transform=transform,
                       target_transform=target_transform, download=download)
        images, labels = cls._read_cifar10(None, train, download)
        ds = cls(images, labels, transform, target_transform)
        ds.train, ds.classes = bool(train), list(CIFAR10_CLASSES)
        return ds

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        if self._pairs:
            img, target = self.data[index]
        else:
            img, target = self.data[index], self.targets[index]
        if self.target_transform is not None:
            target = self.target_transform(target)
        if self.transform is None:
            return img, img, target
        return self.transform(img), self.transform(img), target


# --------------------------------------------------------------------------- loops

def _first_and_target(batch):
    # Loaders give (x, target) or CIFAR10Pair's (x_i, x_j, target): keep the first view.
    return batch[0], batch[-1]


def train(model, data_loader, train_optimizer, epoch, epochs, batch_size=32, temperature=0.5,
          device='cuda', progress=True):
    """One epoch of contrastive training on batches ``(x_i, x_j, target)``.

    ``batch_size`` is kept for the course's signature; the mean is weighted by the true size
    of each batch, so a short last batch counts for what it holds. Returns the mean loss.

    Raises
    ------
    TrainingDivergedError
        The loss of a batch is NaN or infinite; raised before that step is taken.
    """
    model.train()
    total_loss, total_num = 0.0, 0
    bar = tqdm(data_loader, disable=not progress)
    for x_i, x_j, _ in bar:
        x_i, x_j = x_i.to(device), x_j.to(device)
        _, out_left = model(x_i)
        _, out_right = model(x_j)
        loss = simclr_loss_vectorized(out_left, out_right, temperature, device=device)
        check_finite_loss(loss, "contrastive loss",
                          f"in epoch {epoch} of {epochs} after {total_num} images",
                          f"lower the learning rate or raise the temperature (now {temperature})")
        train_optimizer.zero_grad()
        loss.backward()
        train_optimizer.step()
        n = x_i.shape[0]
        total_num += n
        total_loss += loss.item() * n
        bar.set_description(f"Train Epoch: [{epoch}/{epochs}] Loss: {total_loss / total_num:.4f}")
    if total_num == 0:
        raise ValueError("data_loader yielded no batches")
    return total_loss / total_num


def _hits(scores, target, k):
    top = scores.topk(min(k, scores.shape[1]), dim=-1).indices
    return (top == target[:, None]).any(dim=-1).sum().item()


def train_val(model, data_loader, train_optimizer, epoch, epochs, device='cuda', progress=True):
    """One epoch of supervised training (``train_optimizer`` given) or evaluation (None) of a
    classifier on batches ``(data, target)``.

    Returns
    -------
    (mean cross-entropy, top-1 accuracy %, top-5 accuracy %); with fewer than 5 classes the
    "top-5" is top-C, i.e. 100.

    Raises
    ------
    TrainingDivergedError
        The loss of a batch is NaN or infinite. In training it is raised before that step
        is taken; in evaluation too, since a mean of NaN (and accuracies from NaN scores)
        would say nothing about the model, only that its outputs are not finite.
    """
    is_train = train_optimizer is not None
    model.train(is_train)
    criterion = nn.CrossEntropyLoss()
    total_loss, correct_1, correct_5, total_num = 0.0, 0, 0, 0
    bar = tqdm(data_loader, disable=not progress)
    with torch.set_grad_enabled(is_train):
        for i, batch in enumerate(bar):
            data, target = _first_and_target(batch)
            data, target = data.to(device), target.to(device)
            out = model(data)
            loss = criterion(out, target)
            where = (f"in {'training' if is_train else 'evaluation'} epoch {epoch} of {epochs} "
                     f"at batch {i + 1} (after {total_num} images)")
            if is_train:
                check_finite_loss(loss, "cross-entropy loss", where,
                                  "the step was not taken; lower the learning rate, and check "
                                  "the batch's images are finite")
            else:
                check_finite_loss(loss, "cross-entropy loss", where,
                                  "the model's scores are not finite: check its weights "
                                  "(from a diverged run?) and the batch's images")
            if is_train:
                train_optimizer.zero_grad()
                loss.backward()
                train_optimizer.step()
            n = data.shape[0]
            total_num += n
            total_loss += loss.item() * n
            correct_1 += _hits(out, target, 1)
            correct_5 += _hits(out, target, 5)
            bar.set_description(
                f"{'Train' if is_train else 'Test'} Epoch: [{epoch}/{epochs}] "
                f"Loss: {total_loss / total_num:.4f} ACC@1: {correct_1 / total_num * 100:.2f}% "
                f"ACC@5: {correct_5 / total_num * 100:.2f}%")
    if total_num == 0:
        raise ValueError("data_loader yielded no batches")
    return total_loss / total_num, correct_1 / total_num * 100, correct_5 / total_num * 100


def test(net, memory_data_loader, test_data_loader, epoch, epochs, c, temperature=0.5, k=200,
         device='cuda', progress=True):
    """Weighted kNN accuracy of ``net``'s features, the course's training monitor.

    The features of ``memory_data_loader``'s images form the bank. Each test image votes for
    the labels of its ``k`` most cosine-similar bank images (``k`` is clipped to the bank
    size), each vote weighted by ``exp(similarity / temperature)``.

    Parameters
    ----------
    net : module returning ``(feature, out)`` with L2-normalised (N, d) features
    memory_data_loader, test_data_loader : batches ``(x, target)`` or ``(x_i, x_j, target)``
        (the first view is used). Bank labels are taken from the batches, so the memory
        loader may shuffle.
    c : int, the number of classes

    Returns
    -------
    (top-1 accuracy %, top-5 accuracy %)

    Raises
    ------
    ValueError
        A memory or test label is outside ``0..c-1``.
    """
    if k < 1 or temperature <= 0:
        raise ValueError(f"need k >= 1 and temperature > 0, got k={k}, temperature={temperature}")
    net.eval()
    total_top1, total_top5, total_num, bank, labels = 0, 0, 0, [], []
    with torch.no_grad():
        for batch in tqdm(memory_data_loader, desc="Feature extracting", disable=not progress):
            data, target = _first_and_target(batch)
            bank.append(net(data.to(device))[0])
            labels.append(torch.as_tensor(target).to(device))
        if not bank:
            raise ValueError("memory_data_loader yielded no batches")
        bank, labels = torch.cat(bank).T.contiguous(), torch.cat(labels)  # (d, M), (M,)
        if labels.min() < 0 or labels.max() >= c:
            raise ValueError(f"memory labels must be in 0..{c - 1}, got {labels.min().item()}"
                             f"..{labels.max().item()}; pass c, the number of classes "
                             f"(len(memory_data.classes))")
        k = min(k, bank.shape[1])
        bar = tqdm(test_data_loader, disable=not progress)
        for i, batch in enumerate(bar):
            data, target = _first_and_target(batch)
            data, target = data.to(device), torch.as_tensor(target).to(device)
            # As for the bank: a label >= c would score as a miss (or, negative, index from
            # the end), silently lowering the accuracy instead of pointing at the wrong c.
            if target.numel() and (target.min() < 0 or target.max() >= c):
                raise ValueError(f"test labels must be in 0..{c - 1}, got "
                                 f"{target.min().item()}..{target.max().item()} in batch "
                                 f"{i + 1} of test_data_loader; pass c, the number of classes "
                                 f"(len(memory_data.classes))")
            feature = net(data)[0]
            n = data.shape[0]
            total_num += n
            sim_weight, sim_indices = (feature @ bank).topk(k=k, dim=-1)
            sim_labels = labels[sim_indices]                          # (n, k)
            weight = (sim_weight / temperature).exp()
            scores = torch.zeros(n, c, dtype=weight.dtype, device=weight.device)
            scores.scatter_add_(1, sim_labels, weight)                # sum of votes per class
            total_top1 += _hits(scores, target, 1)
            total_top5 += _hits(scores, target, 5)
            bar.set_description(f"Test Epoch: [{epoch}/{epochs}] Acc@1:"
                                f"{total_top1 / total_num * 100:.2f}% "
                                f"Acc@5:{total_top5 / total_num * 100:.2f}%")
    if total_num == 0:
        raise ValueError("test_data_loader yielded no batches")
    return total_top1 / total_num * 100, total_top5 / total_num * 100
