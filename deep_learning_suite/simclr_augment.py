"""SimCLR's image augmentations, written in PyTorch without torchvision.

The train pipeline is the course's ``compute_train_transform``: random resized crop to 32x32,
horizontal flip (p 0.5), colour jitter (brightness, contrast, saturation 0.4, hue 0.1; applied
with p 0.8), grayscale (p 0.2), to tensor, normalise with the CIFAR-10 channel statistics.
The test pipeline is to tensor and normalise only.

Every piece works on (3, H, W) float tensors in [0, 1]; :class:`ToTensor` comes first and
accepts a PIL image or an (H, W, 3) uint8 array. (torchvision applies the random steps to the
PIL image and converts at the end, so it rounds to uint8 after each step; here nothing is
rounded. The random choices are made in the same order and from the same distributions.)

Randomness comes from a ``torch.Generator`` owned by :class:`Compose`, so two pipelines built
with the same seed give the same views for the same sequence of calls, and nothing touches
the global RNGs. A DataLoader with worker processes copies the pipeline into each worker in
the parent's state, afresh each epoch; so that workers and epochs do not replay one another's
views, a pipeline running in a worker reseeds itself from the worker's seed (see
:class:`Compose`).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
# ITU-R 601 luma, the weights of PIL's "L" mode and torchvision's rgb_to_grayscale.
GRAY_WEIGHTS = (0.299, 0.587, 0.114)


def _uniform(low, high, generator):
    return low + (high - low) * torch.rand((), generator=generator).item()


def _check_image(x):
    if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[0] != 3:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected a (3, H, W) image tensor, got {got}")


def to_tensor(img):
    """PIL image or (H, W, 3) uint8 array -> (3, H, W) float32 tensor in [0, 1]."""
    if not isinstance(img, (np.ndarray, torch.Tensor)) and hasattr(img, "convert"):
        img = np.asarray(img.convert("RGB"))  # PIL, imported only by whoever made the image
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected a PIL image or an (H, W, 3) uint8 array, got shape "
                         f"{arr.shape} dtype {arr.dtype}")
    return torch.tensor(arr).permute(2, 0, 1).float().div(255)  # copies: PIL arrays are read-only


def normalize(x, mean=CIFAR10_MEAN, std=CIFAR10_STD):
    """``(x - mean) / std`` per channel of a (3, H, W) tensor."""
    _check_image(x)
    mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device)[:, None, None]
    std = torch.as_tensor(std, dtype=x.dtype, device=x.device)[:, None, None]
    return (x - mean) / std


def rgb_to_grayscale(x):
    """Luma of a (3, H, W) image, repeated to 3 channels (the views stay 3-channel)."""
    _check_image(x)
    w = torch.tensor(GRAY_WEIGHTS, dtype=x.dtype, device=x.device)
    return (x * w[:, None, None]).sum(0, keepdim=True).expand(3, -1, -1).clone()


def rgb_to_hsv(x):
    """(3, H, W) RGB in [0, 1] -> (3, H, W) HSV, all three in [0, 1] (hue in turns)."""
    r, g, b = x.unbind(0)
    v, _ = x.max(0)
    c = v - x.min(0)[0]
    gray = c == 0
    c_safe = torch.where(gray, torch.ones_like(c), c)  # hue and saturation are 0 on greys
    s = torch.where(v > 0, c / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(v))
    h = torch.where(v == r, ((g - b) / c_safe) % 6,
                    torch.where(v == g, (b - r) / c_safe + 2, (r - g) / c_safe + 4))
    h = torch.where(gray, torch.zeros_like(h), h / 6)
    return torch.stack([h, s, v])


def hsv_to_rgb(x):
    """Inverse of :func:`rgb_to_hsv`."""
    h, s, v = x.unbind(0)
    # Channel n (5 = red, 3 = green, 1 = blue) is v minus the chroma scaled by a trapezoid
    # in hue; this avoids branching on the hue sextant.
    out = []
    for n in (5, 3, 1):
        k = (n + 6 * h) % 6
        out.append(v - v * s * torch.minimum(k, 4 - k).clamp(0, 1))
    return torch.stack(out)


def adjust_brightness(x, factor):
    return (x * factor).clamp(0, 1)


def adjust_contrast(x, factor):
    """Blend with the image's mean luma (a single grey level)."""
    mean = rgb_to_grayscale(x)[0].mean()
    return (factor * x + (1 - factor) * mean).clamp(0, 1)


def adjust_saturation(x, factor):
    """Blend with the image's own grayscale version: 0 gives grey, 1 the image."""
    return (factor * x + (1 - factor) * rgb_to_grayscale(x)).clamp(0, 1)


def adjust_hue(x, shift):
    """Rotate the hue by ``shift`` turns, ``shift`` in [-0.5, 0.5]."""
    if not -0.5 <= shift <= 0.5:
        raise ValueError(f"hue shift must be in [-0.5, 0.5], got {shift}")
    hsv = rgb_to_hsv(x)
    hsv[0] = (hsv[0] + shift) % 1.0
    return hsv_to_rgb(hsv)


def hflip(x):
    return x.flip(-1)


def resized_crop(x, top, left, height, width, size):
    """Crop rows ``top:top+height`` and columns ``left:left+width``, resize bilinearly to
    ``size`` (int or (h, w))."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    crop = x[:, top:top + height, left:left + width]
    if crop.shape[1:] == size:
        return crop.clone()
    return F.interpolate(crop[None], size=size, mode="bilinear", align_corners=False)[0]


class ToTensor:
    """See :func:`to_tensor`."""

    def __call__(self, img, generator=None):
        return to_tensor(img)


class Normalize:
    def __init__(self, mean=CIFAR10_MEAN, std=CIFAR10_STD):
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"need 3 means and 3 positive stds, got {mean}, {std}")
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, x, generator=None):
        return normalize(x, self.mean, self.std)


class RandomResizedCrop:
    """A crop of random area (``scale`` of the image's) and aspect ratio, resized to ``size``.

    The aspect ratio is drawn log-uniformly so that r and 1/r are equally likely. After 10
    draws that do not fit in the image, falls back to the largest centred crop whose aspect
    ratio is within ``ratio``.
    """

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
        if not 0 < scale[0] <= scale[1] or not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"scale and ratio must be positive (low, high) pairs, got "
                             f"{scale}, {ratio}")
        self.size, self.scale, self.ratio = size, tuple(scale), tuple(ratio)

    def get_params(self, height, width, generator=None):
        """(top, left, crop height, crop width) for an image of ``height`` x ``width``."""
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * _uniform(*self.scale, generator)
            aspect = math.exp(_uniform(*log_ratio, generator))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, (), generator=generator))
                left = int(torch.randint(0, width - w + 1, (), generator=generator))
                return top, left, h, w
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            h, w = height, int(round(height * self.ratio[1]))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, x, generator=None):
        _check_image(x)
        return resized_crop(x, *self.get_params(x.shape[1], x.shape[2], generator), self.size)


class RandomHorizontalFlip:
    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, x, generator=None):
        return hflip(x) if torch.rand((), generator=generator).item() < self.p else x


class ColorJitter:
    """Brightness, contrast and saturation factors uniform in ``[max(0, 1 - a), 1 + a]`` and a
    hue shift uniform in ``[-hue, hue]``, applied in a random order (as torchvision does)."""

    def __init__(self, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0):
        if min(brightness, contrast, saturation) < 0 or not 0 <= hue <= 0.5:
            raise ValueError(f"jitter strengths must be >= 0 and hue in [0, 0.5], got "
                             f"{brightness}, {contrast}, {saturation}, {hue}")
        self.brightness, self.contrast, self.saturation, self.hue = (
            brightness, contrast, saturation, hue)

    def __call__(self, x, generator=None):
        _check_image(x)
        strengths = (self.brightness, self.contrast, self.saturation)
        ranges = [(max(0.0, 1 - a), 1 + a) for a in strengths]
        ops = [adjust_brightness, adjust_contrast, adjust_saturation]
        for i in torch.randperm(4, generator=generator).tolist():
            if i < 3:
                x = ops[i](x, _uniform(*ranges[i], generator))
            else:
                x = adjust_hue(x, _uniform(-self.hue, self.hue, generator))
        return x


class RandomApply:
    """Apply ``transforms`` in turn with probability ``p``, else return the input."""

    def __init__(self, transforms, p=0.5):
        self.transforms, self.p = list(transforms), p

    def __call__(self, x, generator=None):
        if torch.rand((), generator=generator).item() >= self.p:
            return x
        for t in self.transforms:
            x = t(x, generator)
        return x


class RandomGrayscale:
    def __init__(self, p=0.1):
        self.p = p

    def __call__(self, x, generator=None):
        return rgb_to_grayscale(x) if torch.rand((), generator=generator).item() < self.p else x


class Compose:
    """Apply ``transforms`` in order, passing each this pipeline's generator.

    ``seed=None`` seeds the generator from fresh OS entropy.

    In a DataLoader worker process, the first call (and the first after the worker's seed
    changes) reseeds the generator from the worker's seed mixed with this pipeline's seed.
    The worker's seed differs per worker and per epoch (DataLoader draws a base seed each
    epoch, from its ``generator`` or torch's global RNG), so workers and epochs get fresh
    views, reproducible when both that and the pipeline's seed are fixed. With
    ``num_workers=0`` nothing is reseeded: the one generator runs on across epochs.
    """

    def __init__(self, transforms, seed=None):
        self.transforms = list(transforms)
        self.generator = torch.Generator()
        self._worker_seed = None     # the worker seed last mixed in; None in the main process
        self.reseed(seed)

    def reseed(self, seed=None):
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed))
        self._seed = self.generator.initial_seed()

    def _reseed_for_worker(self):
        # Each worker unpickles the parent's pipeline, generator state included, so without
        # this every worker, every epoch, would draw the parent's next views.
        info = torch.utils.data.get_worker_info()
        if info is not None and info.seed != self._worker_seed:
            self._worker_seed = info.seed
            mixed = np.random.SeedSequence([info.seed, self._seed]).generate_state(1, np.uint64)[0]
            self.generator.manual_seed(int(mixed))

    def __call__(self, img):
        self._reseed_for_worker()
        x = img
        for t in self.transforms:
            x = t(x, self.generator)
        return x


def compute_train_transform(seed=123456):
    """The SimCLR training augmentation: PIL image or (32, 32, 3) uint8 array -> (3, 32, 32)
    normalised float32 tensor, a different random view on each call.

    Unlike the course's version, which seeds Python's and torch's global RNGs, the seed goes
    to a generator the returned pipeline owns.
    """
    return Compose([
        ToTensor(),
        RandomResizedCrop(32),
        RandomHorizontalFlip(p=0.5),
        RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        RandomGrayscale(p=0.2),
        Normalize(CIFAR10_MEAN, CIFAR10_STD),
    ], seed=seed)


def compute_test_transform():
    """To tensor and normalise: the deterministic view used for evaluation."""
    return Compose([ToTensor(), Normalize(CIFAR10_MEAN, CIFAR10_STD)], seed=0)
