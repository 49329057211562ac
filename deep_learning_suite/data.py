"""Datasets: CIFAR-10, Fashion-MNIST, MNIST and the Fashion-MNIST sample shipped in the package.

Where the files are looked for, in order (the first one *given* is the only one used, so an
explicit folder never silently falls back to another copy):

1. an explicit directory (``data_dir=`` / ``cifar10_dir=``, the CLI's ``--data-dir``);
2. an environment variable: ``CIFAR10_DIR``, ``FASHION_MNIST_DIR`` or ``MNIST_DIR``;
3. the per-user cache ``$XDG_CACHE_HOME/cs231n-toolkit/`` (default ``~/.cache/cs231n-toolkit/``);
4. for Fashion-MNIST only, Debian's ``/usr/share/datasets/fashion-mnist`` (package
   ``dataset-fashion-mnist``).

When nothing is found and ``download=True``, the official archive is downloaded to a temporary
file, its published MD5 is checked, and only then is it moved (or safely extracted) into place.

Nothing here unpickles arbitrary objects: the CIFAR-10 batches are Python pickles, so they
are read with an unpickler that only admits the few NumPy names an array needs, and that
checks an array's pickled state (its dtype's flags, its object items) before NumPy trusts
it, as NumPy does not check them itself and a forged state crashes the interpreter. IDX files
(MNIST's format) are parsed by hand with their header checked against the file size.
"""

import gzip
import hashlib
import math
import os
import shutil
import struct
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from ._validate import check_int
from .safe_archive import UnsafeArchiveError, safe_extract  # noqa: F401  (part of this API)
from .safe_unpickle import UNPICKLE_ERRORS, NumpyOnlyUnpickler  # noqa: F401  (part of this API)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")

FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
# Published MD5s of the official gzip files (Fashion-MNIST's README; the MNIST mirror's files).
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MNIST_CLASSES = tuple(str(d) for d in range(10))
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
# Where the course's get_datasets.sh scripts put their files, relative to the notebook's
# folder (the current directory when a notebook runs).
COURSE_DATASETS_DIR = os.path.join("cs231n", "datasets")
SAMPLE_PATH = Path(__file__).resolve().parent / "data" / "fashion_mnist_sample.npz"


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is not on disk and could not be downloaded."""


class ChecksumError(ValueError):
    """A downloaded file does not have its published checksum."""


class CorruptDataError(ValueError):
    """A data file is truncated, corrupt or not in the expected format."""


def cache_dir():
    """The per-user cache folder ``$XDG_CACHE_HOME/cs231n-toolkit`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cs231n-toolkit"


# --------------------------------------------------------------------------- downloads

def file_digest(path, algorithm="md5"):
    """Hex digest of a file's bytes (``algorithm``: any name ``hashlib.new`` takes)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_url(url, dest, md5=None, progress=True, timeout=60):
    """Download ``url`` to the file ``dest``, atomically, verifying ``md5`` when given.

    The bytes go to a temporary file next to ``dest``; only a complete file (as many bytes
    as the server's Content-Length, when it sends one) with the right checksum is renamed
    to ``dest``, so an interrupted or tampered download never looks like a good one.

    Parameters
    ----------
    url : str
        What to fetch (any URL ``urllib.request.urlopen`` opens).
    dest : str or Path
        The file to write; its folder is created if missing, and an existing file is replaced.
    md5 : str or None
        Expected MD5 of the bytes, as hex (either case); None skips the check.
    progress : bool
        Show a tqdm progress bar. Even when True, tqdm shows none where the output is not a
        terminal (logs, pipes); False never shows one.
    timeout : float
        Seconds ``urlopen`` waits for the connection and for each read before giving up
        with an ``OSError``; not a limit on the whole download.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    ChecksumError
        The MD5 differs (the temporary file is removed).
    OSError (urllib.error.URLError)
        The URL cannot be reached, or (``ContentTooShortError``) the connection ended before
        Content-Length bytes arrived; callers turn this into a message saying where to put
        the files by hand. The temporary file is removed.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = resp.headers.get("Content-Length")
            expected = int(total) if total else None
            bar = tqdm(total=expected, unit="B", unit_scale=True,
                       desc=f"downloading {dest.name}", leave=False,
                       disable=None if progress else True)  # None: no bar in logs and pipes
            written = 0
            with bar:
                for chunk in iter(lambda: resp.read(1 << 16), b""):
                    out.write(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
            # http.client ends the read quietly when the server hangs up early, so without a
            # checksum a cut-off file would be kept as if it were whole.
            if expected is not None and written != expected:
                raise urllib.error.ContentTooShortError(
                    f"download of {url} was cut short: got {written} of its {expected} bytes; "
                    f"nothing was kept, try again", None)
            out.flush()
            os.fsync(out.fileno())
        if md5 is not None:
            got = file_digest(tmp)
            if got != md5.lower():
                raise ChecksumError(
                    f"download of {url} has MD5 {got}, expected {md5}: the file is corrupt or "
                    f"not the official one, so it was deleted; try again or fetch it by hand"
                )
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return dest


def download_cifar10(root, url=CIFAR10_URL, md5=CIFAR10_MD5, progress=True, timeout=60):
    """Download, verify and extract CIFAR-10 so that ``root/cifar-10-batches-py`` exists.

    The archive is extracted into a temporary folder inside ``root`` and the finished
    ``cifar-10-batches-py`` folder is then renamed into place, so a crash leaves no half
    dataset behind.

    Parameters
    ----------
    root : str or Path
        The folder to hold ``cifar-10-batches-py`` (created if missing). An existing
        ``cifar-10-batches-py`` in it must be an empty folder, else ``DatasetNotFoundError``
        is raised before anything is downloaded.
    url : str
        Where the ``cifar-10-python.tar.gz`` archive is fetched from.
    md5 : str or None
        Expected MD5 of the archive (hex); None skips the check.
    progress, timeout
        As for ``download_url``.

    Returns
    -------
    Path
        ``root / "cifar-10-batches-py"``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / CIFAR10_FOLDER
    # Before the 163 MB download, which could not be moved into place anyway.
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise DatasetNotFoundError(f"{final} exists but is incomplete; remove it and run again")
    work = Path(tempfile.mkdtemp(prefix=".cifar10-", dir=root))
    try:
        archive = download_url(url, work / "cifar-10-python.tar.gz", md5=md5,
                               progress=progress, timeout=timeout)
        extracted = work / "extracted"
        safe_extract(archive, extracted)
        found = extracted / CIFAR10_FOLDER
        missing = [b for b in CIFAR10_BATCHES if not (found / b).is_file()]
        if missing:
            raise CorruptDataError(f"archive from {url} lacks {CIFAR10_FOLDER}/{missing[0]}")
        if final.exists():
            final.rmdir()       # empty (checked above): os.replace cannot replace a folder
        os.replace(found, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def _offline_message(name, url, reason, where, env, files):
    return (f"{name} was not found and could not be downloaded from {url} ({reason}). "
            f"Put {files} in {where}, or set the environment variable {env} to the folder "
            f"that holds them, or pass its path explicitly (data_dir= / --data-dir).")


# --------------------------------------------------------------------------- CIFAR-10

def load_CIFAR_batch(filename):
    """Load one CIFAR-10 batch file: ``X`` uint8 (N, 32, 32, 3) and ``y`` int64 (N,).

    Raises
    ------
    CorruptDataError
        The file is not a genuine CIFAR-10 batch (wrong contents, or a pickle that asks for
        anything beyond NumPy arrays, lists and strings, which is refused without running it).
    """
    filename = Path(filename)
    try:
        with open(filename, "rb") as f:
            d = NumpyOnlyUnpickler(f, encoding="latin1").load()
    except UNPICKLE_ERRORS as e:
        raise CorruptDataError(f"{filename} is not a genuine CIFAR-10 batch: "
                               f"{type(e).__name__}: {e}") from None
    if not isinstance(d, dict):
        raise CorruptDataError(f"{filename} is not a genuine CIFAR-10 batch: no dict inside")
    d = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in d.items()}
    X, y = d.get("data"), d.get("labels")
    if not isinstance(X, np.ndarray) or X.dtype != np.uint8 or X.ndim != 2 or X.shape[1] != 3072:
        got = getattr(X, "shape", type(X).__name__), getattr(X, "dtype", "")
        raise CorruptDataError(f"{filename} is not a genuine CIFAR-10 batch: 'data' must be a "
                               f"uint8 array of shape (N, 3072), got {got}")
    try:
        y = np.asarray(y)
    except (ValueError, TypeError, OverflowError):
        # Ragged nesting such as [[1], [1, 2], ...] cannot become an array at all.
        y = None
    if y is None or y.ndim != 1 or y.shape[0] != X.shape[0] \
            or not np.issubdtype(y.dtype, np.integer) or (y.size and (y.min() < 0 or y.max() > 9)):
        raise CorruptDataError(f"{filename} is not a genuine CIFAR-10 batch: 'labels' must be "
                               f"a flat list of {X.shape[0]} integers in 0..9, one per row of "
                               f"'data'; delete the file and fetch CIFAR-10 again")
    X = X.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return X, y.astype(np.int64)


def load_CIFAR10(root, dtype=np.float64):
    """Load the whole of CIFAR-10 from the ``cifar-10-batches-py`` folder ``root``.

    Parameters
    ----------
    root : str or Path
        The ``cifar-10-batches-py`` folder itself.
    dtype : numpy dtype
        dtype of the returned images; ``np.uint8`` gives the raw bytes.

    Returns
    -------
    Xtr : (50000, 32, 32, 3);  Ytr : int64 (50000,);  Xte : (10000, 32, 32, 3);  Yte : (10000,)
    """
    Xtr, Ytr = load_CIFAR10_split(root, train=True, dtype=dtype)
    Xte, Yte = load_CIFAR10_split(root, train=False, dtype=dtype)
    return Xtr, Ytr, Xte, Yte


def load_CIFAR10_split(root, train=True, dtype=np.float64):
    """One half of CIFAR-10, reading only its batch files (``data_batch_1..5`` or ``test_batch``).

    Parameters
    ----------
    root : str or Path
        The ``cifar-10-batches-py`` folder itself; it must be complete.
    train : bool
        The 50000 training images, or (False) the 10000 test images.
    dtype : numpy dtype
        dtype of the returned images; ``np.uint8`` gives the raw bytes.

    Returns
    -------
    X : (N, 32, 32, 3);  y : int64 (N,)
    """
    root = Path(root)
    missing = [b for b in CIFAR10_BATCHES if not (root / b).is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"{root} is not a complete {CIFAR10_FOLDER} folder: {missing} missing; it must hold "
            f"data_batch_1..5 and test_batch")
    names = CIFAR10_BATCHES[:5] if train else ("test_batch",)
    xs, ys = zip(*(load_CIFAR_batch(root / b) for b in names))
    X, y = (xs[0], ys[0]) if len(xs) == 1 else (np.concatenate(xs), np.concatenate(ys))
    return X.astype(dtype, copy=False), y


def _is_cifar_dir(p):
    return all((p / b).is_file() for b in CIFAR10_BATCHES)


def find_cifar10_dir(data_dir=None, download=True, url=CIFAR10_URL, md5=CIFAR10_MD5,
                     progress=True):
    """Return the path of the ``cifar-10-batches-py`` folder, downloading it if needed.

    Looks in ``data_dir`` (the folder itself or its parent) if given, else in ``$CIFAR10_DIR``
    if set, else in the cache folder; that one place is also where a download goes.

    Parameters
    ----------
    data_dir : str or Path or None
        The ``cifar-10-batches-py`` folder, or the folder that holds it. When given, it is the
        only place looked in (no fallback to ``$CIFAR10_DIR`` or the cache).
    download : bool
        When the files are not there, download them (about 163 MB, MD5-checked) into that
        place (into the parent when ``data_dir`` names ``cifar-10-batches-py`` itself); False
        raises ``DatasetNotFoundError`` instead, saying where to put them by hand.
    url, md5, progress
        As for ``download_cifar10``; they matter only when a download happens.

    Returns
    -------
    Path
        The ``cifar-10-batches-py`` folder, holding ``data_batch_1..5`` and ``test_batch``.

    Raises
    ------
    DatasetNotFoundError
        Not found and ``download=False``, or the download failed (no network, cut short).
    ChecksumError
        The downloaded archive does not have the MD5 ``md5``.
    """
    # An explicit folder or the env var is authoritative: no silent fallback to another copy.
    candidates = [Path(data_dir or os.environ.get("CIFAR10_DIR") or cache_dir())]
    for c in candidates:
        for p in (c, c / CIFAR10_FOLDER):
            if _is_cifar_dir(p):
                return p
    target = candidates[0]
    if target.name == CIFAR10_FOLDER:
        target = target.parent
    hint = _offline_message("CIFAR-10", url, "download=False", target, "CIFAR10_DIR",
                            f"the extracted folder {CIFAR10_FOLDER} (data_batch_1..5, test_batch, "
                            f"batches.meta)")
    if not download:
        raise DatasetNotFoundError(hint)
    try:
        return download_cifar10(target, url=url, md5=md5, progress=progress)
    except (urllib.error.URLError, OSError) as e:
        if isinstance(e, DatasetNotFoundError):
            raise
        reason = getattr(e, "reason", e)
        raise DatasetNotFoundError(_offline_message(
            "CIFAR-10", url, reason, target, "CIFAR10_DIR",
            f"the extracted folder {CIFAR10_FOLDER} (data_batch_1..5, test_batch, "
            f"batches.meta)")) from e


def get_cifar10_data(num_training=49000, num_validation=1000, num_test=1000, subtract_mean=True,
                     cifar10_dir=None, dtype=np.float32, download=True):
    """CIFAR-10 split and preprocessed the way the course's notebooks do it.

    The validation set is the ``num_validation`` images right after the first
    ``num_training``; the mean image of the training split is subtracted from all three.

    The three sizes are non-negative whole numbers (``49000.0`` passes as 49000);
    ``subtract_mean`` needs ``num_training >= 1``.

    Parameters
    ----------
    num_training : int
        Training images: the first ``num_training`` of the 50000 in ``data_batch_1..5``.
    num_validation : int
        Validation images, taken from the training batches right after the training split;
        ``num_training + num_validation`` must be at most 50000.
    num_test : int
        Test images: the first ``num_test`` of the 10000 in ``test_batch`` (at most 10000).
    subtract_mean : bool
        Subtract the training split's mean image (accumulated in float64, then cast to
        ``dtype``) from the training, validation and test images.
    cifar10_dir : str or Path or None
        The ``cifar-10-batches-py`` folder, or the folder that holds it. None looks in
        ``$CIFAR10_DIR`` if that is set, else in the cache folder (``cache_dir()``); the
        first of these that is given is the only place looked in, and where a download goes
        (see ``find_cifar10_dir``).
    dtype : numpy dtype
        dtype of the returned images; default ``np.float32``. The course's
        ``get_CIFAR10_data``, and ``load_CIFAR10``'s default here, give float64: pass
        ``dtype=np.float64`` to match the course's numbers exactly. float32 takes half the
        memory (about 740 MB for all 60000 images, against 1.5 GB).
    download : bool
        Download CIFAR-10 (about 163 MB, MD5-checked) when it is not found; False raises
        ``DatasetNotFoundError`` instead.

    Returns
    -------
    dict with ``X_train, y_train, X_val, y_val, X_test, y_test``; images ``dtype``
    (N, 3, 32, 32), labels int64 (N,).

    Raises
    ------
    ValueError
        A size out of range, or ``subtract_mean`` with ``num_training == 0``; checked before
        anything is read or downloaded.
    DatasetNotFoundError
        CIFAR-10 is not found and cannot be (or, with ``download=False``, may not be)
        downloaded.
    """
    # Checked before any file is read or downloaded; a float would otherwise fail as a slice.
    num_training = check_int("get_cifar10_data", "num_training", num_training, 0)
    num_validation = check_int("get_cifar10_data", "num_validation", num_validation, 0)
    num_test = check_int("get_cifar10_data", "num_test", num_test, 0)
    if num_training + num_validation > 50000:
        raise ValueError(f"num_training + num_validation must be at most 50000, got "
                         f"{num_training} + {num_validation}")
    if num_test > 10000:
        raise ValueError(f"num_test must be in 0..10000, got {num_test}")
    if subtract_mean and num_training == 0:
        # the mean of no images is NaN, which would turn every image NaN
        raise ValueError("get_cifar10_data: subtract_mean needs training images to take the mean "
                         "of; pass num_training >= 1, or subtract_mean=False")
    root = find_cifar10_dir(cifar10_dir, download=download)
    Xtr, ytr, Xte, yte = load_CIFAR10(root, dtype=np.uint8)
    X_val = Xtr[num_training:num_training + num_validation].astype(dtype)
    y_val = ytr[num_training:num_training + num_validation]
    X_train, y_train = Xtr[:num_training].astype(dtype), ytr[:num_training]
    X_test, y_test = Xte[:num_test].astype(dtype), yte[:num_test]
    if subtract_mean:
        mean_image = X_train.mean(axis=0, dtype=np.float64).astype(dtype)
        X_train -= mean_image
        X_val -= mean_image
        X_test -= mean_image
    return {
        "X_train": X_train.transpose(0, 3, 1, 2).copy(), "y_train": y_train,
        "X_val": X_val.transpose(0, 3, 1, 2).copy(), "y_val": y_val,
        "X_test": X_test.transpose(0, 3, 1, 2).copy(), "y_test": y_test,
    }


get_CIFAR10_data = get_cifar10_data


# --------------------------------------------------------------------------- IDX (MNIST)

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """Read an IDX file (gzip-compressed or raw) into an ndarray.

    The header is ``0x00 0x00 <type> <ndim>`` followed by ``ndim`` big-endian uint32 sizes;
    the payload must hold exactly their product of items.
    """
    path = Path(path)
    with open(path, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
    try:
        if compressed:
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:   # gzip.BadGzipFile is an OSError
        raise CorruptDataError(f"{path}: cannot decompress ({e}); the file is truncated or "
                               f"corrupt, delete it and fetch it again") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise CorruptDataError(f"{path} is not an IDX file: bad magic number {raw[:4].hex()}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CorruptDataError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    # Python ints: np.prod in int64 wraps around for sizes like (2**16,) * 4, which could
    # then "match" an empty payload.
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - header != expected:
        raise CorruptDataError(
            f"{path}: header says {dims} items of {dtype} = {expected} bytes but the file has "
            f"{len(raw) - header}; it is truncated or corrupt, delete it and fetch it again")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _idx_path(folder, stem):
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def _has_idx(folder):
    return all(_idx_path(folder, s) is not None for s in IDX_FILES)


def _find_idx_dir(name, data_dir, env, sub, extra, url, md5s, download, progress):
    # An explicit folder or the env var is authoritative: no silent fallback to another copy.
    given = data_dir or os.environ.get(env)
    candidates = [Path(given)] if given else [cache_dir() / sub] + list(extra)
    for c in candidates:
        if _has_idx(c):
            return c
    target = candidates[0]
    files = ", ".join(s + ".gz" for s in IDX_FILES)
    if not download:
        raise DatasetNotFoundError(_offline_message(name, url, "download=False", target, env, files))
    try:
        for fname, digest in md5s.items():
            if not (target / fname).is_file():
                download_url(url + fname, target / fname, md5=digest, progress=progress)
    except (urllib.error.URLError, OSError) as e:
        raise DatasetNotFoundError(_offline_message(
            name, url, getattr(e, "reason", e), target, env, files)) from e
    return target


def find_fashion_mnist_dir(data_dir=None, download=True, url=FASHION_MNIST_URL,
                           md5s=FASHION_MNIST_MD5, progress=True):
    """Folder holding the four Fashion-MNIST IDX files (see the module docstring for the order).

    Parameters
    ----------
    data_dir : str or Path or None
        The folder holding the files themselves (``train-images-idx3-ubyte.gz`` and the
        rest, gzip-compressed or not). When given, or else when ``$FASHION_MNIST_DIR`` is
        set, that is the only place looked in; otherwise the cache folder
        (``cache_dir() / "fashion-mnist"``), then Debian's ``/usr/share/datasets/fashion-mnist``.
    download : bool
        When the files are not found, download the missing ones into the first place
        above (the given folder, or the cache); False raises ``DatasetNotFoundError``.
    url : str
        Base URL, ending in ``/``, that each file name in ``md5s`` is appended to.
    md5s : dict of str to str
        File name (``.gz``) to its expected MD5 (hex); these are the files downloaded.
    progress : bool
        As for ``download_url``.

    Returns
    -------
    Path
        The folder holding the four files.
    """
    return _find_idx_dir("Fashion-MNIST", data_dir, "FASHION_MNIST_DIR", "fashion-mnist",
                         [DEBIAN_FASHION_MNIST_DIR], url, md5s, download, progress)


def find_mnist_dir(data_dir=None, download=True, url=MNIST_URL, md5s=MNIST_MD5, progress=True):
    """Folder holding the four MNIST IDX files.

    Parameters
    ----------
    data_dir, download, url, md5s, progress
        As for ``find_fashion_mnist_dir``, with ``$MNIST_DIR`` for the environment variable
        and ``cache_dir() / "mnist"`` for the cache; there is no Debian folder to fall back to.

    Returns
    -------
    Path
        The folder holding the four files.
    """
    return _find_idx_dir("MNIST", data_dir, "MNIST_DIR", "mnist", [], url, md5s, download,
                         progress)


def _load_idx_set(folder):
    out = []
    for split in ("train", "t10k"):
        X = read_idx(_idx_path(folder, f"{split}-images-idx3-ubyte"))
        y = read_idx(_idx_path(folder, f"{split}-labels-idx1-ubyte"))
        if X.dtype != np.uint8 or X.ndim != 3 or y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise CorruptDataError(
                f"{folder}: {split} images {X.shape} {X.dtype} and labels {y.shape} do not form "
                f"a dataset (need uint8 (N, H, W) images and N labels)")
        if not np.issubdtype(y.dtype, np.integer):
            raise CorruptDataError(f"{folder}: {split} labels are {y.dtype}, expected integers "
                                   f"in 0..9")
        if y.size and y.max() > 9:
            raise CorruptDataError(f"{folder}: {split} labels go up to {y.max()}, expected 0..9")
        if y.size and y.min() < 0:
            raise CorruptDataError(f"{folder}: {split} labels go down to {y.min()}, expected 0..9")
        out += [X, y.astype(np.int64)]
    return tuple(out)


def load_fashion_mnist(data_dir=None, download=True):
    """Fashion-MNIST: ``Xtr`` uint8 (60000, 28, 28), ``ytr`` int64, ``Xte`` (10000, 28, 28), ``yte``."""
    return _load_idx_set(find_fashion_mnist_dir(data_dir, download=download))


def load_mnist(data_dir=None, download=True):
    """MNIST: ``Xtr`` uint8 (60000, 28, 28), ``ytr`` int64, ``Xte`` (10000, 28, 28), ``yte``."""
    return _load_idx_set(find_mnist_dir(data_dir, download=download))


def load_sample():
    """The Fashion-MNIST subset shipped with the package (see ``data/README.md``).

    Returns
    -------
    dict with ``X_train`` uint8 (N, 28, 28), ``y_train`` int64 (N,), ``X_test``, ``y_test``.
    """
    with np.load(SAMPLE_PATH, allow_pickle=False) as z:
        return {k: (z[k].astype(np.int64) if k.startswith("y") else z[k])
                for k in ("X_train", "y_train", "X_test", "y_test")}
