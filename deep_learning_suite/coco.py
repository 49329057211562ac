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
"""

import json
import os
from pathlib import Path

import numpy as np

from .data import CorruptDataError, DatasetNotFoundError
from .utils import generator

COCO_DIR_ENV = "COCO_CAPTIONING_DIR"
COURSE_COCO_DIR = os.path.join("cs231n", "datasets", "coco_captioning")
COCO_URL = "http://cs231n.stanford.edu/coco_captioning.zip"


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
            return {k: np.asarray(f[k]) for k in names}
    except OSError as e:
        raise CorruptDataError(f"{path} is not a readable HDF5 file ({e}); download the COCO "
                               f"captioning data again") from e


def _read_vocab(path):
    try:
        vocab = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptDataError(f"{path} is not valid JSON ({e})") from e
    if (not isinstance(vocab, dict) or not isinstance(vocab.get("idx_to_word"), list)
            or not isinstance(vocab.get("word_to_idx"), dict)):
        raise CorruptDataError(f"{path} must hold a JSON object with a list 'idx_to_word' and "
                               f"an object 'word_to_idx'")
    idx_to_word, word_to_idx = vocab["idx_to_word"], vocab["word_to_idx"]
    for word, i in word_to_idx.items():
        if not isinstance(i, int) or not 0 <= i < len(idx_to_word) or idx_to_word[i] != word:
            raise CorruptDataError(f"{path}: word_to_idx[{word!r}] = {i!r} does not point back to "
                                   f"{word!r} in idx_to_word; the vocabulary file is inconsistent")
    return vocab


def _check(data, split, vocab_size):
    captions, idxs = data[f"{split}_captions"], data[f"{split}_image_idxs"]
    features, urls = data[f"{split}_features"], data[f"{split}_urls"]
    if captions.ndim != 2 or idxs.shape != (captions.shape[0],):
        raise CorruptDataError(f"{split}_captions is {captions.shape} and {split}_image_idxs "
                               f"{idxs.shape}; expected (N, T) and (N,)")
    if not (np.issubdtype(captions.dtype, np.integer) and np.issubdtype(idxs.dtype, np.integer)):
        raise CorruptDataError(f"{split}_captions and {split}_image_idxs must hold integers")
    if captions.size and (captions.min() < 0 or captions.max() >= vocab_size):
        raise CorruptDataError(f"{split}_captions holds word indices outside the vocabulary "
                               f"of {vocab_size} words")
    if idxs.size and (idxs.min() < 0 or idxs.max() >= features.shape[0]):
        raise CorruptDataError(f"{split}_image_idxs points past the {features.shape[0]} rows of "
                               f"{split}_features; the features file does not match the captions")
    if len(urls) != features.shape[0]:
        raise CorruptDataError(f"{split}: {len(urls)} URLs for {features.shape[0]} feature rows; "
                               f"they must match one to one")


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
        does, for the overfitting checks).
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
    """
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
        lines = files[f"{split}_urls"].read_text(encoding="utf-8").splitlines()
        data[f"{split}_urls"] = np.asarray([line.strip() for line in lines if line.strip()])
    data.update(_read_vocab(files["vocab"]))
    for split in ("train", "val"):
        _check(data, split, len(data["idx_to_word"]))
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
    idx_to_word : list or dict, index -> word

    Returns
    -------
    str for a 1-D input, else a list of N str
    """
    captions = np.asarray(captions)
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
        Captions drawn, with replacement, as in the course.
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
    rng = generator() if rng is None else rng
    mask = rng.choice(data[key].shape[0], batch_size)
    captions = data[key][mask]
    image_idxs = data[f"{split}_image_idxs"][mask]
    urls = data.get(f"{split}_urls")
    return captions, data[f"{split}_features"][image_idxs], None if urls is None else urls[image_idxs]
