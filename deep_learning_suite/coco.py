"""COCO captions in the course's preprocessed format, and the helpers the captioning notebooks use.

The course's ``get_coco_captioning`` script unpacks into ``cs231n/datasets/coco_captioning``::

    coco2014_captions.h5         train_captions (N, 17) int, train_image_idxs (N,) int,
                                 val_captions, val_image_idxs
    coco2014_vocab.json          {"idx_to_word": [...], "word_to_idx": {...}}
    train2014_vgg16_fc7.h5       features (num_train_images, 4096) from VGG-16's fc7 layer
    train2014_vgg16_fc7_pca.h5   the same reduced to 512 dimensions (the default)
    val2014_vgg16_fc7[_pca].h5
    train2014_urls.txt           one Flickr URL per training image (and val2014_urls.txt)

Caption ``i`` describes image ``train_image_idxs[i]``, the row of ``train_features`` (and line
of the URL file) with that index; several captions share an image. Reading HDF5 needs
``h5py`` (``pip install "cs231n-toolkit[coco]"``); everything else here is NumPy only.
The course publishes no checksum for its archive, so this module does not download it.

Without a checksum, a damaged or foreign file is caught by checks instead: each is reported
as :class:`~deep_learning_suite.data.CorruptDataError` naming the file. Before a dataset is
read, the size its header declares is compared with the bytes actually stored for it (see
``_check_storage``), so a tiny file that declares a huge array is refused without
allocating that array.
"""

import json
import math
import os
from pathlib import Path

import numpy as np

from ._validate import check_indices, check_int
from .data import COURSE_DATASETS_DIR, CorruptDataError, DatasetNotFoundError
from .utils import generator

COCO_DIR_ENV = "COCO_CAPTIONING_DIR"
COURSE_COCO_DIR = os.path.join(COURSE_DATASETS_DIR, "coco_captioning")
COCO_URL = "http://cs231n.stanford.edu/coco_captioning.zip"
_REFETCH = "download the COCO captioning data again"
# Deflate, HDF5's standard compression, cannot shrink data more than about 1032:1; a
# compressed dataset declaring more than this many bytes per stored byte is not real data.
_MAX_COMPRESSION = 1100


def _files(pca_features):
    feat = "vgg16_fc7_pca" if pca_features else "vgg16_fc7"
    return {"captions": "coco2014_captions.h5", "vocab": "coco2014_vocab.json",
            "train_features": f"train2014_{feat}.h5", "val_features": f"val2014_{feat}.h5",
            "train_urls": "train2014_urls.txt", "val_urls": "val2014_urls.txt"}


def _read_h5(path, keys=None):
    try:
        import h5py
    except ImportError as e:
        raise ImportError("reading the COCO captioning files needs h5py: "
                          "pip install 'cs231n-toolkit[coco]' (or pip install h5py)") from e
    try:
        with h5py.File(path, "r") as f:
            names = list(f.keys()) if keys is None else keys
            missing = [k for k in names if k not in f]
            if missing:
                raise CorruptDataError(f"{path} has no dataset {missing[0]!r} (it holds "
                                       f"{sorted(f.keys())}); the file is not the course's")
            for k in names:
                if not isinstance(f[k], h5py.Dataset):
                    raise CorruptDataError(f"{path}: {k!r} is a {type(f[k]).__name__}, not a "
                                           f"dataset; the file is not the course's: {_REFETCH}")
                _check_storage(path, k, f[k])
            return {k: np.asarray(f[k]) for k in names}
    except OSError as e:
        raise CorruptDataError(f"{path} is not a readable HDF5 file ({e}); {_REFETCH}") from e


def _check_storage(path, key, dataset):
    """Refuse a dataset whose declared size the file cannot hold, before reading it.

    Reading allocates the declared ``shape * itemsize`` bytes first, so a few-KB file whose
    header declares a (12, 4000000) dataset with no data written would allocate 384 MB of
    fill values. An uncompressed dataset must have all its bytes stored (HDF5's
    ``get_storage_size``) and fit in the file on disk; a compressed one may declare at most
    ``_MAX_COMPRESSION`` times what it stores. The course's files are uncompressed and
    fully written, so they always pass.
    """
    if dataset.shape is None:          # an HDF5 "null" dataspace: no array at all
        raise CorruptDataError(f"{path}: dataset {key!r} is empty (no shape); the file is not "
                               f"the course's: {_REFETCH}")
    # Python ints: np.prod in int64 wraps around for (2**32, 2**32) to 0, which would "fit".
    declared = math.prod(dataset.shape) * dataset.dtype.itemsize
    stored = dataset.id.get_storage_size()
    on_disk = os.path.getsize(path)
    if dataset.id.get_create_plist().get_nfilters() == 0:
        ok, why = stored >= declared and declared <= on_disk, "has"
    else:
        ok, why = declared <= _MAX_COMPRESSION * stored, "compresses to"
    if not ok:
        raise CorruptDataError(
            f"{path}: dataset {key!r} declares shape {dataset.shape} of {dataset.dtype} "
            f"({declared} bytes) but {why} only {stored} bytes of data, in a file of {on_disk} "
            f"bytes; the file is truncated or not the course's: {_REFETCH}")


def _read_vocab(path):
    try:
        vocab = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptDataError(f"{path} is not valid JSON ({e}); {_REFETCH}") from e
    except RecursionError as e:
        # json recurses once per nesting level; the course's file is two levels deep.
        raise CorruptDataError(f"{path} is nested too deeply to be the course's vocabulary "
                               f"(a JSON object with 'idx_to_word' and 'word_to_idx'); "
                               f"{_REFETCH}") from e
    if (not isinstance(vocab, dict) or not isinstance(vocab.get("idx_to_word"), list)
            or not isinstance(vocab.get("word_to_idx"), dict)):
        raise CorruptDataError(f"{path} must hold a JSON object with a list 'idx_to_word' and "
                               f"an object 'word_to_idx'")
    idx_to_word, word_to_idx = vocab["idx_to_word"], vocab["word_to_idx"]
    for word, i in word_to_idx.items():
        # bool is an int in Python, and JSON's true would pass as index 1
        if (isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(idx_to_word)
                or idx_to_word[i] != word):
            raise CorruptDataError(f"{path}: word_to_idx[{word!r}] = {i!r} does not point back to "
                                   f"{word!r} in idx_to_word; the vocabulary file is inconsistent")
    # With every entry pointing back, equal sizes make the two a one-to-one map, so that
    # V = len(word_to_idx), what CaptioningRNN uses, is also the number of words decoded.
    if len(word_to_idx) != len(idx_to_word):
        raise CorruptDataError(f"{path}: word_to_idx has {len(word_to_idx)} words but "
                               f"idx_to_word {len(idx_to_word)}; each word must appear once in "
                               f"both: {_REFETCH}")
    return vocab


def _read_urls(path):
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise CorruptDataError(f"{path} is not UTF-8 text ({e}); it should hold one image URL "
                               f"per line: {_REFETCH}") from e
    return np.asarray([line.strip() for line in lines if line.strip()])


def _check(data, split, vocab_size, files):
    """Require one split's arrays to be what the course's files hold and to fit together."""
    captions, idxs = data[f"{split}_captions"], data[f"{split}_image_idxs"]
    features, urls = data[f"{split}_features"], data[f"{split}_urls"]
    cap_file, feat_file = files["captions"], files[f"{split}_features"]
    if captions.ndim != 2 or idxs.shape != (captions.shape[0],):
        raise CorruptDataError(f"{cap_file}: {split}_captions is {captions.shape} and "
                               f"{split}_image_idxs {idxs.shape}; expected (N, T) and (N,): "
                               f"{_REFETCH}")
    if not (np.issubdtype(captions.dtype, np.integer) and np.issubdtype(idxs.dtype, np.integer)):
        raise CorruptDataError(f"{cap_file}: {split}_captions and {split}_image_idxs must hold "
                               f"integers: {_REFETCH}")
    if captions.size and (captions.min() < 0 or captions.max() >= vocab_size):
        raise CorruptDataError(f"{cap_file}: {split}_captions holds word indices outside the "
                               f"vocabulary of {vocab_size} words: {_REFETCH}")
    # Features are rows of float vectors: a model would otherwise fail later on a 1-D or
    # 3-D array, silently compute in integers, or train on NaN to a NaN loss.
    if features.ndim != 2 or features.dtype.kind != "f":
        raise CorruptDataError(f"{feat_file}: features must be a 2-D float array (images, "
                               f"feature size), got shape {features.shape} of {features.dtype}: "
                               f"{_REFETCH}")
    # One pass with no temporary array (the full fc7 file is 1.3 GB); float64 accumulation
    # cannot overflow for real features. Only a non-finite sum looks for the rows.
    if not np.isfinite(features.sum(dtype=np.float64)):
        bad = np.flatnonzero(~np.isfinite(features).all(axis=1))
        if bad.size:
            raise CorruptDataError(f"{feat_file}: {bad.size} feature row(s) hold NaN or inf, "
                                   f"e.g. rows {bad[:5].tolist()}: {_REFETCH}")
    if idxs.size and (idxs.min() < 0 or idxs.max() >= features.shape[0]):
        raise CorruptDataError(f"{split}_image_idxs points past the {features.shape[0]} rows of "
                               f"{split}_features ({cap_file} and {feat_file}); the features file "
                               f"does not match the captions: {_REFETCH}")
    if len(urls) != features.shape[0]:
        raise CorruptDataError(f"{split}: {len(urls)} URLs in {files[f'{split}_urls']} for "
                               f"{features.shape[0]} feature rows in {feat_file}; they must match "
                               f"one to one: {_REFETCH}")


def load_coco_data(base_dir=None, max_train=None, pca_features=True, seed=None):
    """Load the course's COCO captioning data into one dict.

    Parameters
    ----------
    base_dir : str or Path, optional
        The ``coco_captioning`` folder. Default: ``$COCO_CAPTIONING_DIR``, else the course's
        ``cs231n/datasets/coco_captioning`` under the current directory (the notebooks'
        working directory).
    max_train : int, optional
        Keep this many training captions, drawn at random with replacement (as the course
        does, for the overfitting checks). A positive whole number (``50.0`` passes as 50).
    pca_features : bool
        The 512-dimensional PCA features (default) or the full 4096-dimensional ones.
    seed : int, optional
        Seeds the ``max_train`` draw; None follows ``np.random.seed``.

    Returns
    -------
    data : dict
        ``train_captions (N, T)``, ``train_image_idxs (N,)``, ``train_features (I, D)``,
        ``train_urls (I,)``, the same four for ``val_``, and ``idx_to_word`` (list) and
        ``word_to_idx`` (dict) from the vocabulary.

    Raises
    ------
    DatasetNotFoundError
        A file is missing from the folder.
    CorruptDataError
        A file is unreadable, not in the course's format, or inconsistent with the others
        (the message names the file).
    ValueError
        ``max_train`` is not None or a positive whole number.
    """
    # Checked before any file is read: -1 or 2.5 would otherwise fail only after loading.
    if max_train is not None:
        max_train = check_int("load_coco_data", "max_train", max_train, 1)
    base = Path(base_dir or os.environ.get(COCO_DIR_ENV) or COURSE_COCO_DIR)
    files = {k: base / v for k, v in _files(pca_features).items()}
    missing = [p.name for p in files.values() if not p.is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"COCO captioning data not found in {base}: missing {', '.join(missing)}. Run the "
            f"course's cs231n/datasets/get_datasets.sh (it unpacks {COCO_URL}), then pass "
            f"base_dir= or set {COCO_DIR_ENV} to the coco_captioning folder")
    data = _read_h5(files["captions"], [f"{s}_{k}" for s in ("train", "val")
                                        for k in ("captions", "image_idxs")])
    for split in ("train", "val"):
        data[f"{split}_features"] = _read_h5(files[f"{split}_features"], ["features"])["features"]
        data[f"{split}_urls"] = _read_urls(files[f"{split}_urls"])
    data.update(_read_vocab(files["vocab"]))
    for split in ("train", "val"):
        _check(data, split, len(data["idx_to_word"]), files)
    if max_train is not None:
        mask = generator(seed).integers(data["train_captions"].shape[0], size=max_train)
        data["train_captions"] = data["train_captions"][mask]
        data["train_image_idxs"] = data["train_image_idxs"][mask]
    return data


def decode_captions(captions, idx_to_word):
    """Word indices to text, as the course prints them.

    ``<NULL>`` padding is dropped and each caption ends at its first ``<END>`` (kept, like
    ``<START>``, so that "<START> a cat <END>" shows where the model stopped).

    Parameters
    ----------
    captions : ndarray of int, (T,) or (N, T)
        Word indices: integers that are indices of ``idx_to_word``.
    idx_to_word : list or dict, index -> word

    Returns
    -------
    str for a 1-D input, else a list of N str

    Raises
    ------
    ValueError
        ``captions`` holds non-integers (1.7 would be truncated to word 1) or indices that
        are not words (-1 would wrap round to the last word of a list).
    """
    captions = np.asarray(captions)
    if captions.size == 0:
        pass                           # nothing to decode: [] (float64 to NumPy) gives ""
    elif not isinstance(idx_to_word, dict):
        captions = check_indices("decode_captions", captions, len(idx_to_word), "captions")
    elif not np.issubdtype(captions.dtype, np.integer):
        raise ValueError(f"decode_captions: captions must hold integer word indices, got dtype "
                         f"{captions.dtype}; convert with captions.astype(np.int64)")
    else:
        unknown = sorted({int(i) for i in np.unique(captions)} - set(idx_to_word))
        if unknown:
            raise ValueError(f"decode_captions: captions holds indices that are not keys of "
                             f"idx_to_word: {unknown[:5]}")
    single = captions.ndim == 1
    decoded = []
    for row in np.atleast_2d(captions):
        words = []
        for idx in row:
            word = idx_to_word[int(idx)]
            if word != "<NULL>":
                words.append(word)
            if word == "<END>":
                break
        decoded.append(" ".join(words))
    return decoded[0] if single else decoded


def sample_coco_minibatch(data, batch_size=100, split="train", rng=None):
    """A random minibatch of captions with their images' features and URLs.

    Parameters
    ----------
    data : dict from ``load_coco_data`` (``{split}_urls`` may be absent)
    batch_size : int
        Captions drawn, with replacement, as in the course; a positive whole number.
    split : 'train' or 'val'
    rng : np.random.Generator, optional
        Defaults to one seeded from NumPy's global stream (``np.random.seed`` repeats it).

    Returns
    -------
    captions : (batch_size, T);  image_features : (batch_size, D);  urls : (batch_size,) or None
    """
    key = f"{split}_captions"
    if key not in data:
        raise ValueError(f"sample_coco_minibatch: data has no {key!r}; split must be 'train' "
                         f"or 'val' and data must come from load_coco_data")
    # -1 or 2.5 would otherwise reach rng.choice and fail with NumPy's own message.
    batch_size = check_int("sample_coco_minibatch", "batch_size", batch_size, 1)
    rng = generator() if rng is None else rng
    mask = rng.choice(data[key].shape[0], batch_size)
    captions = data[key][mask]
    image_idxs = data[f"{split}_image_idxs"][mask]
    urls = data.get(f"{split}_urls")
    return captions, data[f"{split}_features"][image_idxs], None if urls is None else urls[image_idxs]
