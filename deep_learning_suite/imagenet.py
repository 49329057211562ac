"""ImageNet-style images for the pretrained-network notebooks (CS231n assignment 3).

The normalisation SqueezeNet (and every torchvision ImageNet model) was trained with, the
matching ``preprocess_image`` / ``deprocess_image`` pair, ``load_image`` to read a photo from
disk, and ``load_imagenet_val``, the course's 25 ImageNet validation images with their class
names (``imagenet_val_25.npz``).

Images here are NumPy arrays in (H, W, 3) layout: uint8 in [0, 255] on disk and on screen,
float32 normalised per channel for the network. NumPy only, plus Pillow to decode files.
"""

import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np

from .data import CorruptDataError, DatasetNotFoundError, NumpyOnlyUnpickler, cache_dir, download_url

SQUEEZENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
SQUEEZENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

IMAGENET_VAL_URL = "http://cs231n.stanford.edu/imagenet_val_25.npz"
IMAGENET_VAL_FILE = "imagenet_val_25.npz"


def preprocess_image(img):
    """uint8 (H, W, 3) image in [0, 255] -> float32 (H, W, 3), normalised per channel:
    ``(img / 255 - SQUEEZENET_MEAN) / SQUEEZENET_STD``."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"preprocess_image expects an (H, W, 3) RGB image, got shape {img.shape}")
    return (img.astype(np.float32) / 255.0 - SQUEEZENET_MEAN) / SQUEEZENET_STD


def deprocess_image(img, rescale=False):
    """Undo ``preprocess_image``: float (H, W, 3) -> uint8 (H, W, 3), clipped to [0, 255].

    ``rescale=True`` stretches the un-normalised image to fill [0, 1] first (for saliency and
    class visualisations, whose values are far outside an image's range).
    """
    img = np.asarray(img, dtype=np.float32)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"deprocess_image expects an (H, W, 3) image, got shape {img.shape}")
    img = img * SQUEEZENET_STD + SQUEEZENET_MEAN
    if rescale:
        lo, hi = img.min(), img.max()
        img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    # Rounding (the course truncates) makes deprocess_image(preprocess_image(x)) == x exactly.
    return np.rint(np.clip(255 * img, 0.0, 255.0)).astype(np.uint8)


def _pil():
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("reading images needs Pillow: pip install 'cs231n-toolkit[plot]'") from e
    return Image


def to_pil_rgb(img):
    """A PIL image, a path, or an (H, W, 3) / (H, W) uint8 array -> an RGB PIL image."""
    Image = _pil()
    if isinstance(img, (str, os.PathLike)):
        path = Path(img)
        if not path.is_file():
            raise FileNotFoundError(f"no image file at {path}")
        try:
            with Image.open(path) as f:
                return f.convert("RGB")
        except (OSError, Image.DecompressionBombError) as e:
            raise CorruptDataError(f"{path} is not an image Pillow can read: {e}") from None
    if isinstance(img, Image.Image):
        return img.convert("RGB")
    if not isinstance(img, np.ndarray):
        raise TypeError(f"expected a path, a PIL image or a uint8 (H, W, 3) array, got {type(img).__name__}")
    arr = img
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] != 3):
        raise ValueError(f"expected a path, a PIL image or a uint8 (H, W, 3) array, got "
                         f"{arr.dtype} array of shape {arr.shape}")
    return Image.fromarray(arr).convert("RGB")


def resize_shorter_side(img, size):
    """Resize an RGB PIL image so that its shorter side is ``size`` pixels (aspect kept)."""
    if int(size) != size or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    w, h = img.size
    # torchvision's Resize(int) rule: the longer side is truncated, not rounded.
    new = (size, max(1, int(size * h / w))) if w <= h else (max(1, int(size * w / h)), size)
    return img.resize(new, _pil().Resampling.BILINEAR) if new != (w, h) else img


def load_image(filename, size=None):
    """Read an image file as uint8 (H, W, 3) RGB; ``size`` resizes its shorter side to ``size``.

    Grey and RGBA files are converted to RGB, as the networks take three channels.
    """
    img = to_pil_rgb(filename)
    if size is not None:
        img = resize_shorter_side(img, size)
    return np.asarray(img, dtype=np.uint8)


class _ImagenetValUnpickler(NumpyOnlyUnpickler):
    what = "the course's imagenet_val_25.npz"


def _read_object_npy(raw, where):
    # np.load(allow_pickle=True) would run whatever the pickle asks for; parse the .npy
    # header ourselves and hand the payload to an unpickler that admits only NumPy's names.
    f = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        if not dtype.hasobject:
            return np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
        return _ImagenetValUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError) as e:
        raise CorruptDataError(f"{where} is not the course's imagenet_val_25.npz: {e}") from None


def _read_npz(path):
    try:
        with zipfile.ZipFile(path) as z:
            members = {Path(n).stem: n for n in z.namelist() if n.endswith(".npy")}
            missing = {"X", "y", "label_map"} - set(members)
            if missing:
                raise CorruptDataError(f"{path} is not the course's imagenet_val_25.npz: it lacks "
                                       f"{sorted(missing)}")
            return {k: _read_object_npy(z.read(members[k]), f"{path}:{k}")
                    for k in ("X", "y", "label_map")}
    except zipfile.BadZipFile as e:
        raise CorruptDataError(f"{path} is not an .npz archive: {e}") from None


def load_imagenet_val(num=None, path=None, download=False, progress=True):
    """The course's 25 ImageNet validation images and the 1000 class names.

    Parameters
    ----------
    num : int or None
        Keep only the first ``num`` images.
    path : str or Path or None
        The ``imagenet_val_25.npz`` file (the course keeps it at
        ``cs231n/datasets/imagenet_val_25.npz``); default: the per-user cache.
    download : bool
        Fetch the file from the course's site into the cache when it is not there.

    Returns
    -------
    X : ndarray of uint8, (num, 224, 224, 3)
    y : ndarray of int64, (num,)
        ImageNet class indices, in 0..999.
    class_names : dict of int -> str
        ImageNet class index -> human-readable name.

    Raises
    ------
    DatasetNotFoundError
        No file at ``path`` (and no download asked for, or it failed).
    CorruptDataError
        The file is not such an archive, or its pickled class names ask for anything but
        NumPy arrays, dicts and strings (refused without running it).
    """
    path = Path(path) if path is not None else cache_dir() / IMAGENET_VAL_FILE
    if not path.is_file():
        if not download:
            raise DatasetNotFoundError(
                f"{path} does not exist. Get {IMAGENET_VAL_URL} (the course's "
                f"datasets/get_datasets.sh does) and pass its path, or call "
                f"load_imagenet_val(download=True)")
        try:
            download_url(IMAGENET_VAL_URL, path, progress=progress)
        except OSError as e:
            raise DatasetNotFoundError(f"could not download {IMAGENET_VAL_URL} ({e}); fetch it by "
                                       f"hand and pass path=") from None
    d = _read_npz(path)
    X, y, label_map = d["X"], d["y"], d["label_map"]
    if isinstance(label_map, np.ndarray) and label_map.dtype == object and label_map.shape == ():
        label_map = label_map.item()
    if not isinstance(X, np.ndarray) or X.dtype != np.uint8 or X.ndim != 4 or X.shape[-1] != 3:
        raise CorruptDataError(f"{path}: X must be a uint8 (N, H, W, 3) image array, got "
                               f"{getattr(X, 'dtype', type(X).__name__)} {getattr(X, 'shape', '')}")
    y = np.asarray(y)
    if y.shape != (X.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise CorruptDataError(f"{path}: y must be {X.shape[0]} integer labels, got {y.dtype} {y.shape}")
    if not isinstance(label_map, dict) or not all(isinstance(v, str) for v in label_map.values()):
        raise CorruptDataError(f"{path}: label_map must be a dict of class index -> name")
    class_names = {int(k): v for k, v in label_map.items()}
    unknown = sorted(set(y.tolist()) - set(class_names))
    if unknown:
        raise CorruptDataError(f"{path}: labels {unknown[:5]} have no class name in label_map")
    if num is not None:
        if int(num) != num or num < 0:
            raise ValueError(f"num must be a non-negative integer or None, got {num!r}")
        X, y = X[:num], y[:num]
    return np.ascontiguousarray(X), y.astype(np.int64), class_names
