"""ImageNet-style images for the pretrained-network notebooks (CS231n assignment 3).

The normalisation SqueezeNet (and every torchvision ImageNet model) was trained with, the
matching ``preprocess_image`` / ``deprocess_image`` pair, ``load_image`` to read a photo from
disk, ``load_imagenet_val``, the course's 25 ImageNet validation images with their class
names (``imagenet_val_25.npz``), and ``load_tiny_imagenet``, the course's reader of the
Tiny ImageNet folders (64 x 64 images of 100 or 200 classes).

Images here are NumPy arrays in (H, W, 3) layout: uint8 in [0, 255] on disk and on screen,
float32 normalised per channel for the network. NumPy only, plus Pillow to decode files.
"""

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from ._validate import check_int
from .data import COURSE_DATASETS_DIR, CorruptDataError, DatasetNotFoundError, cache_dir, download_url
from .safe_unpickle import UNPICKLE_ERRORS, NumpyOnlyUnpickler

SQUEEZENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
SQUEEZENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

IMAGENET_VAL_URL = "http://cs231n.stanford.edu/imagenet_val_25.npz"
IMAGENET_VAL_FILE = "imagenet_val_25.npz"
TINY_IMAGENET_SIZE = 64


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
        except Exception as e:
            # Decoding runs no code from the file, so any failure is the file's: OSError for
            # most, but also SyntaxError (a PNG's garbled chunk), ValueError, EOFError and
            # DecompressionBombError.
            raise CorruptDataError(f"{path} is not an image Pillow can read "
                                   f"({type(e).__name__}: {e})") from None
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
    except UNPICKLE_ERRORS as e:
        raise CorruptDataError(f"{where} is not the course's imagenet_val_25.npz: "
                               f"{type(e).__name__}: {e}") from None


def _read_npz(path):
    with open(path, "rb") as f:        # outside the try: a permission error is not corruption
        try:
            with zipfile.ZipFile(f) as z:
                members = {Path(n).stem: n for n in z.namelist() if n.endswith(".npy")}
                missing = {"X", "y", "label_map"} - set(members)
                if missing:
                    raise CorruptDataError(f"{path} is not the course's imagenet_val_25.npz: it "
                                           f"lacks {sorted(missing)}")
                return {k: _read_object_npy(z.read(members[k]), f"{path}:{k}")
                        for k in ("X", "y", "label_map")}
        except CorruptDataError:
            raise
        except Exception as e:
            # Nothing in a zip runs code (its pickle goes to the restricted unpickler), so any
            # failure is the file's: BadZipFile, zlib.error, EOFError, and NotImplementedError
            # or OSError (EINVAL) for a garbled compression method or offset.
            raise CorruptDataError(f"{path} is not an .npz archive, or a damaged one "
                                   f"({type(e).__name__}: {e})") from None


def _check_imagenet_val(path, d):
    """(X, y, class_names) from the arrays of ``_read_npz``, checked to fit together."""
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
    return X, y, class_names


def load_imagenet_val(num=None, path=None, download=False, progress=True):
    """The course's 25 ImageNet validation images and the 1000 class names.

    Parameters
    ----------
    num : int or None
        Keep only the first ``num`` images; a non-negative whole number (``2.0`` passes as 2).
    path : str or Path or None
        The ``imagenet_val_25.npz`` file. Default: the course's
        ``cs231n/datasets/imagenet_val_25.npz`` under the current folder (where the notebooks
        run), else the per-user cache.
    download : bool
        Fetch the file from the course's site (into ``path``, or the cache) when it is not
        there.

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
        NumPy arrays, dicts and strings (refused without running it). The message says to
        delete the file and fetch it again.
    ValueError
        ``num`` is not None or a non-negative whole number.
    """
    # Checked before any file is read: 2.5 or -1 would otherwise fail only after loading.
    if num is not None:
        num = check_int("load_imagenet_val", "num", num, 0)
    candidates = ([Path(path)] if path is not None else
                  [Path(COURSE_DATASETS_DIR) / IMAGENET_VAL_FILE, cache_dir() / IMAGENET_VAL_FILE])
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        found = candidates[-1]          # a download goes to the given path, or the cache
        if not download:
            raise DatasetNotFoundError(
                f"no file at {' or '.join(str(p.absolute()) for p in candidates)}. Get "
                f"{IMAGENET_VAL_URL} (the course's datasets/get_datasets.sh does) and pass its "
                f"path, or call load_imagenet_val(download=True)")
        try:
            download_url(IMAGENET_VAL_URL, found, progress=progress)
        except OSError as e:
            raise DatasetNotFoundError(f"could not download {IMAGENET_VAL_URL} "
                                       f"({getattr(e, 'reason', e)}); fetch it by hand and pass "
                                       f"path=") from None
    try:
        X, y, class_names = _check_imagenet_val(found, _read_npz(found))
    except CorruptDataError as e:
        # A file is read where it was found, so a damaged one stays in the way until deleted.
        raise CorruptDataError(f"{e}; delete {found} and get {IMAGENET_VAL_URL} again "
                               f"(load_imagenet_val(download=True) fetches it)") from None
    if num is not None:
        X, y = X[:num], y[:num]
    return np.ascontiguousarray(X), y.astype(np.int64), class_names


# --------------------------------------------------------------------------- Tiny ImageNet

def _tsv_lines(path):
    """(line number, tab-separated fields) of each non-blank line of the text file ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{path} is missing: not a complete Tiny ImageNet folder") from None
    except UnicodeDecodeError as e:
        raise CorruptDataError(f"{path} is not UTF-8 text ({e})") from None
    return [(n, [f.strip() for f in line.split("\t")])
            for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _read_tiny_images(files, dtype):
    """(N, 3, 64, 64) ``dtype`` array of the images ``files``: (path, file that lists it) pairs."""
    X = np.empty((len(files), 3, TINY_IMAGENET_SIZE, TINY_IMAGENET_SIZE), dtype=dtype)
    for i, (path, listing) in enumerate(files):
        if not path.is_file():
            raise DatasetNotFoundError(f"{path}, listed in {listing}, is missing")
        img = load_image(path)      # RGB: a grey image in all three channels, as in the course
        if img.shape[:2] != (TINY_IMAGENET_SIZE,) * 2:
            raise CorruptDataError(f"{path} is {img.shape[1]} x {img.shape[0]} pixels; Tiny "
                                   f"ImageNet's images are {TINY_IMAGENET_SIZE} x {TINY_IMAGENET_SIZE}")
        X[i] = img.transpose(2, 0, 1)
    return X


def load_tiny_imagenet(path, dtype=np.float32, subtract_mean=True):
    """The course's ``load_tiny_imagenet``: a Tiny ImageNet folder (100-A, 100-B or 200).

    The folder holds ``wnids.txt`` (one WordNet id per class, in label order), ``words.txt``
    (``wnid<TAB>name, name, ...``), ``train/<wnid>/images/*.JPEG`` listed in
    ``train/<wnid>/<wnid>_boxes.txt``, ``val/images/*.JPEG`` with ``val/val_annotations.txt``
    (``file<TAB>wnid<TAB>box``) and ``test/images/*.JPEG`` (labelled only if
    ``test/test_annotations.txt`` exists). Images are read with Pillow; grey ones are
    repeated into three channels.

    Parameters
    ----------
    path : str or Path
        The folder that holds ``wnids.txt``.
    dtype : numpy dtype
        dtype of the images; an integer dtype (``np.uint8``) needs ``subtract_mean=False``.
    subtract_mean : bool
        Subtract the mean training image from all three splits.

    Returns
    -------
    dict with
        ``class_names`` : list, ``class_names[i]`` the list of names of class ``i``;
        ``X_train`` (N_tr, 3, 64, 64), ``y_train`` int64 (N_tr,);
        ``X_val`` (N_val, 3, 64, 64), ``y_val`` int64 (N_val,);
        ``X_test`` (N_test, 3, 64, 64) in file-name order, ``y_test`` int64 (N_test,) or None;
        ``mean_image`` (3, 64, 64), the mean training image (in ``dtype`` if floating, else
        float64).

    Raises
    ------
    DatasetNotFoundError
        The folder, one of its listings or a listed image is missing.
    CorruptDataError
        A listing names a class that ``wnids.txt`` lacks, or an image is unreadable or not
        64 x 64 (the message names the file).
    ValueError
        ``subtract_mean=True`` with an integer ``dtype``.
    """
    root, dtype = Path(path), np.dtype(dtype)
    if subtract_mean and not np.issubdtype(dtype, np.floating):
        # The mean would be cast to, and subtracted in, integers that wrap around.
        raise ValueError(f"load_tiny_imagenet: subtract_mean=True needs a floating dtype, got "
                         f"{dtype}; pass dtype=np.float32 or subtract_mean=False")
    wnids_file = root / "wnids.txt"
    if not wnids_file.is_file():
        raise DatasetNotFoundError(
            f"{root} is not a Tiny ImageNet folder: no {wnids_file.name} in it. Pass the folder "
            f"(such as cs231n/datasets/tiny-imagenet-100-A) that holds wnids.txt, words.txt, "
            f"train/, val/ and test/")
    wnids = [fields[0] for _, fields in _tsv_lines(wnids_file)]
    if not wnids:
        raise CorruptDataError(f"{wnids_file} lists no classes")
    label = {wnid: i for i, wnid in enumerate(wnids)}
    words_file = root / "words.txt"
    words = {fields[0]: fields[1] for _, fields in _tsv_lines(words_file) if len(fields) > 1}
    unnamed = [w for w in wnids if w not in words]
    if unnamed:
        raise CorruptDataError(f"{words_file} has no name for {unnamed[0]} (of {wnids_file})")
    class_names = [[name.strip() for name in words[w].split(",")] for w in wnids]

    train = []
    for wnid in wnids:
        boxes = root / "train" / wnid / f"{wnid}_boxes.txt"
        train += [(root / "train" / wnid / "images" / fields[0], boxes, label[wnid])
                  for _, fields in _tsv_lines(boxes)]
    if not train:
        raise CorruptDataError(f"{root / 'train'}: the _boxes.txt files list no training images")
    val_file = root / "val" / "val_annotations.txt"
    val = []
    for n, fields in _tsv_lines(val_file):
        wnid = fields[1] if len(fields) > 1 else ""
        if wnid not in label:
            raise CorruptDataError(f"{val_file} line {n}: class {wnid} is not in {wnids_file}")
        val.append((root / "val" / "images" / fields[0], val_file, label[wnid]))
    test_dir = root / "test" / "images"
    if not test_dir.is_dir():
        raise DatasetNotFoundError(f"{test_dir} is missing: not a complete Tiny ImageNet folder")
    # Sorted, so that the order (and y_test's) does not depend on the file system.
    test = [(p, test_dir) for p in sorted(test_dir.iterdir()) if p.is_file()]

    X_train = _read_tiny_images([f[:2] for f in train], dtype)
    X_val = _read_tiny_images([f[:2] for f in val], dtype)
    X_test = _read_tiny_images(test, dtype)
    y_train = np.array([f[2] for f in train], dtype=np.int64)
    y_val = np.array([f[2] for f in val], dtype=np.int64)
    y_test = None
    test_file = root / "test" / "test_annotations.txt"
    if test_file.is_file():
        wnid_of = {fields[0]: fields[1] for _, fields in _tsv_lines(test_file) if len(fields) > 1}
        unlabelled = [p.name for p, _ in test if wnid_of.get(p.name) not in label]
        if unlabelled:
            raise CorruptDataError(f"{test_file} gives no class of {wnids_file} for {unlabelled[0]}")
        y_test = np.array([label[wnid_of[p.name]] for p, _ in test], dtype=np.int64)

    mean_image = X_train.mean(axis=0, dtype=np.float64)
    if np.issubdtype(dtype, np.floating):
        mean_image = mean_image.astype(dtype)
    if subtract_mean:
        for X in (X_train, X_val, X_test):
            X -= mean_image
    return {"class_names": class_names, "X_train": X_train, "y_train": y_train, "X_val": X_val,
            "y_val": y_val, "X_test": X_test, "y_test": y_test, "mean_image": mean_image}
