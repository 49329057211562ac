import json
import sys

import numpy as np
import pytest

from deep_learning_suite.coco import decode_captions, load_coco_data, sample_coco_minibatch
from deep_learning_suite.data import CorruptDataError, DatasetNotFoundError
from tests._coco_files import WORD_TO_IDX, WORDS, coco_arrays, write_coco_dir


@pytest.fixture
def h5py():
    """Writing and reading the course's files needs h5py (in the test extra)."""
    return pytest.importorskip("h5py")


@pytest.mark.parametrize("pca_features", [True, False])
def test_load_reads_every_file_of_the_course_format(h5py, tmp_path, pca_features):
    written = write_coco_dir(tmp_path, pca_features=pca_features)
    data = load_coco_data(tmp_path, pca_features=pca_features)
    assert set(data) == set(written)
    for key, value in written.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(data[key], value)
            assert data[key].dtype == value.dtype or key.endswith("_urls")
        else:
            assert data[key] == value


def test_load_finds_the_folder_through_the_environment(h5py, tmp_path, monkeypatch):
    write_coco_dir(tmp_path / "coco")
    monkeypatch.setenv("COCO_CAPTIONING_DIR", str(tmp_path / "coco"))
    assert load_coco_data()["train_captions"].shape == (24, 17)


def test_max_train_draws_captions_with_their_images(h5py, tmp_path):
    written = write_coco_dir(tmp_path)
    a = load_coco_data(tmp_path, max_train=50, seed=3)
    b = load_coco_data(tmp_path, max_train=50, seed=3)
    assert a["train_captions"].shape == (50, 17)
    np.testing.assert_array_equal(a["train_captions"], b["train_captions"])
    # Each kept caption still describes the image its index points to.
    for caption, idx in zip(a["train_captions"], a["train_image_idxs"]):
        rows = written["train_captions"][written["train_image_idxs"] == idx]
        assert any(np.array_equal(caption, r) for r in rows)
    np.random.seed(0)
    c = load_coco_data(tmp_path, max_train=50)
    np.random.seed(0)
    d = load_coco_data(tmp_path, max_train=50)
    np.testing.assert_array_equal(c["train_image_idxs"], d["train_image_idxs"])


def test_missing_files_are_named_with_how_to_get_them(h5py, tmp_path):
    write_coco_dir(tmp_path)
    (tmp_path / "val2014_urls.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"missing val2014_urls\.txt.*get_datasets\.sh"):
        load_coco_data(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="train2014_vgg16_fc7.h5"):
        load_coco_data(tmp_path, pca_features=False)


def test_a_file_that_is_not_hdf5_is_reported(h5py, tmp_path):
    write_coco_dir(tmp_path)
    (tmp_path / "coco2014_captions.h5").write_bytes(b"\x80\x04not an hdf5 file" * 10)
    with pytest.raises(CorruptDataError, match="not a readable HDF5 file"):
        load_coco_data(tmp_path)


def test_a_caption_file_without_a_dataset_is_reported(h5py, tmp_path):
    write_coco_dir(tmp_path)
    with h5py.File(tmp_path / "coco2014_captions.h5", "a") as f:
        del f["val_image_idxs"]
    with pytest.raises(CorruptDataError, match="no dataset 'val_image_idxs'"):
        load_coco_data(tmp_path)


def _rewrite_captions(h5py, folder, key, change):
    """Replace dataset ``key`` of the caption file by ``change`` of its values."""
    with h5py.File(folder / "coco2014_captions.h5", "a") as f:
        value = change(f[key][...])
        del f[key]
        f[key] = value


@pytest.mark.parametrize("split, bad, rows", [
    ("train", 99, 12),
    # just outside either end: -1 would silently pair the caption with the last image
    ("train", 12, 12),
    ("val", -1, 4),
])
def test_captions_pointing_past_the_features_are_reported(h5py, tmp_path, split, bad, rows):
    write_coco_dir(tmp_path)
    _rewrite_captions(h5py, tmp_path, f"{split}_image_idxs", lambda idxs: np.r_[bad, idxs[1:]])
    with pytest.raises(CorruptDataError, match=f"points past the {rows} rows of {split}_features"):
        load_coco_data(tmp_path)


def test_features_with_fewer_columns_than_images_load(h5py, tmp_path):
    # The image indices are checked against the features' rows, not their width.
    write_coco_dir(tmp_path, D=4)
    assert load_coco_data(tmp_path)["train_features"].shape == (12, 4)


@pytest.mark.parametrize("bad", [-1, len(WORDS)])
def test_a_caption_word_outside_the_vocabulary_is_reported(h5py, tmp_path, bad):
    write_coco_dir(tmp_path)

    def one_bad_word(captions):
        captions[3, 5] = bad
        return captions
    _rewrite_captions(h5py, tmp_path, "train_captions", one_bad_word)
    with pytest.raises(CorruptDataError, match=r"coco2014_captions\.h5: train_captions holds word indices "
                                               r"outside the vocabulary of 18 words"):
        load_coco_data(tmp_path)


@pytest.mark.parametrize("key, change, message", [
    ("train_image_idxs", lambda a: a[:-1], r"train_image_idxs \(23,\); expected \(N, T\) and \(N,\)"),
    ("train_image_idxs", lambda a: a.astype(np.float64), "must hold integers"),
    ("train_captions", lambda a: a.astype(np.float64), "must hold integers"),
], ids=["short-image_idxs", "float-image_idxs", "float-captions"])
def test_caption_arrays_of_the_wrong_shape_or_kind_are_reported(h5py, tmp_path, key, change, message):
    write_coco_dir(tmp_path)
    _rewrite_captions(h5py, tmp_path, key, change)
    with pytest.raises(CorruptDataError, match=r"coco2014_captions\.h5: train_captions .*" + message):
        load_coco_data(tmp_path)


def test_url_lines_must_match_the_images_and_blank_ones_are_ignored(h5py, tmp_path):
    write_coco_dir(tmp_path)
    path = tmp_path / "train2014_urls.txt"
    urls = path.read_text().split()
    path.write_text("\n".join(urls) + "\n\n  \n")
    assert load_coco_data(tmp_path)["train_urls"].tolist() == urls
    path.write_text("\n".join(urls[:-1]) + "\n")
    with pytest.raises(CorruptDataError, match=r"train: 11 URLs in .*train2014_urls\.txt for 12 feature rows"):
        load_coco_data(tmp_path)


def test_missing_h5py_gets_install_advice(h5py, tmp_path, monkeypatch):
    write_coco_dir(tmp_path)
    monkeypatch.setitem(sys.modules, "h5py", None)     # makes "import h5py" fail
    with pytest.raises(ImportError, match=r"needs h5py: pip install"):
        load_coco_data(tmp_path)


def test_a_dataset_with_no_shape_is_reported(h5py, tmp_path):
    write_coco_dir(tmp_path)
    with h5py.File(tmp_path / "train2014_vgg16_fc7_pca.h5", "w") as f:
        f["features"] = h5py.Empty("f4")
    with pytest.raises(CorruptDataError, match=r"fc7_pca\.h5: dataset 'features' is empty \(no shape\)"):
        load_coco_data(tmp_path)


def test_an_inconsistent_vocabulary_is_reported(h5py, tmp_path):
    write_coco_dir(tmp_path)
    words = dict(WORD_TO_IDX, cat=WORD_TO_IDX["dog"])
    (tmp_path / "coco2014_vocab.json").write_text(json.dumps({"idx_to_word": WORDS, "word_to_idx": words}))
    with pytest.raises(CorruptDataError, match=r"word_to_idx\['cat'\]"):
        load_coco_data(tmp_path)
    (tmp_path / "coco2014_vocab.json").write_text("{not json")
    with pytest.raises(CorruptDataError, match="not valid JSON"):
        load_coco_data(tmp_path)


def test_decode_drops_padding_and_stops_at_end():
    i = WORD_TO_IDX
    caption = [i["<START>"], i["a"], i["cat"], i["<END>"], i["dog"], i["<NULL>"]]
    assert decode_captions(np.array(caption), WORDS) == "<START> a cat <END>"
    two = np.array([caption, [i["a"], i["<NULL>"], i["dog"], i["<NULL>"], i["<NULL>"], i["<NULL>"]]])
    assert decode_captions(two, WORDS) == ["<START> a cat <END>", "a dog"]
    assert decode_captions(two, dict(enumerate(WORDS))) == ["<START> a cat <END>", "a dog"]


def test_minibatch_pairs_captions_with_their_images():
    data = coco_arrays()
    captions, features, urls = sample_coco_minibatch(data, batch_size=40, split="val",
                                                     rng=np.random.default_rng(0))
    assert captions.shape == (40, 17) and features.shape == (40, 16) and urls.shape == (40,)
    for caption, feature, url in zip(captions, features, urls):
        image = int(url.rsplit("/", 1)[1].split(".")[0])
        np.testing.assert_array_equal(feature, data["val_features"][image])
        rows = data["val_captions"][data["val_image_idxs"] == image]
        assert any(np.array_equal(caption, r) for r in rows)
    with pytest.raises(ValueError, match="split must be 'train' or 'val'"):
        sample_coco_minibatch(data, split="test")


def _rewrite_features(h5py, folder, **datasets):
    with h5py.File(folder / "train2014_vgg16_fc7_pca.h5", "w") as f:
        for name, value in datasets.items():
            f[name] = value


@pytest.mark.parametrize("features, message", [
    # a scalar used to raise IndexError; the others loaded silently
    (np.float32(1), r"got shape \(\) of float32"),
    (np.ones(12, np.float32), r"got shape \(12,\) of float32"),
    (np.ones((12, 2, 8), np.float32), r"got shape \(12, 2, 8\) of float32"),
    (np.array([b"x"] * 12), r"got shape \(12,\) of \|S1"),
    (np.ones((12, 16), np.int64), r"got shape \(12, 16\) of int64"),
])
def test_features_must_be_a_2d_float_array(h5py, tmp_path, features, message):
    write_coco_dir(tmp_path)
    _rewrite_features(h5py, tmp_path, features=features)
    expected = r"train2014_vgg16_fc7_pca\.h5: features must be a 2-D float array .*"
    with pytest.raises(CorruptDataError, match=expected + message + ".*download the COCO"):
        load_coco_data(tmp_path)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_features_are_reported_with_their_rows(h5py, tmp_path, bad):
    written = write_coco_dir(tmp_path)
    features = written["train_features"].copy()
    features[[3, 7], 5] = bad
    _rewrite_features(h5py, tmp_path, features=features)
    with pytest.raises(CorruptDataError, match=r"fc7_pca\.h5: 2 feature row\(s\) hold NaN or inf, "
                                               r"e.g. rows \[3, 7\]"):
        load_coco_data(tmp_path)


def test_large_finite_features_still_load(h5py, tmp_path):
    # The NaN check sums in float64, so float32 values whose float32 sum would overflow pass.
    written = write_coco_dir(tmp_path)
    features = np.full_like(written["train_features"], 3e38)
    _rewrite_features(h5py, tmp_path, features=features)
    np.testing.assert_array_equal(load_coco_data(tmp_path)["train_features"], features)


@pytest.mark.parametrize("make", [
    # chunked with no chunk written: a 1.4 KB file whose read allocated 384 MB of zeros
    lambda f: f.create_dataset("features", shape=(12, 4_000_000), dtype="f8", chunks=(1, 1000)),
    # contiguous, never written
    lambda f: f.create_dataset("features", shape=(12, 1_000_000), dtype="f4"),
    # contiguous, never written and smaller than the file: it would read as zeros
    lambda f: f.create_dataset("features", shape=(12, 16), dtype="f4"),
])
def test_a_dataset_declaring_more_than_the_file_holds_is_refused(h5py, tmp_path, make):
    write_coco_dir(tmp_path)
    with h5py.File(tmp_path / "train2014_vgg16_fc7_pca.h5", "w") as f:
        make(f)
    with pytest.raises(CorruptDataError, match=r"fc7_pca\.h5: dataset 'features' declares shape "
                                               r"\(12, \d+\).*but has only 0 bytes"):
        load_coco_data(tmp_path)


@pytest.mark.parametrize("shape", [(2 ** 32, 2 ** 32), (2 ** 16,) * 4])
def test_a_declared_size_that_wraps_around_in_int64_is_refused(h5py, tmp_path, shape):
    # 2**64 elements: np.prod in int64 wrapped to 0, which "fitted" the file, and the read then
    # failed with NumPy's ValueError "array is too big".
    write_coco_dir(tmp_path)
    with h5py.File(tmp_path / "train2014_vgg16_fc7_pca.h5", "w") as f:
        f.create_dataset("features", shape=shape, dtype="u1", chunks=(1,) * (len(shape) - 1) + (1024,))
    with pytest.raises(CorruptDataError, match=rf"fc7_pca\.h5: dataset 'features' declares shape .* "
                                               rf"\({2 ** 64} bytes\) but has only 0 bytes"):
        load_coco_data(tmp_path)


def test_compressed_features_still_load(h5py, tmp_path):
    written = write_coco_dir(tmp_path)
    with h5py.File(tmp_path / "train2014_vgg16_fc7_pca.h5", "w") as f:
        f.create_dataset("features", data=written["train_features"], compression="gzip")
    np.testing.assert_array_equal(load_coco_data(tmp_path)["train_features"],
                                  written["train_features"])


def test_a_group_in_place_of_a_dataset_is_reported(h5py, tmp_path):
    write_coco_dir(tmp_path)
    with h5py.File(tmp_path / "train2014_vgg16_fc7_pca.h5", "w") as f:
        f.create_group("features")
    with pytest.raises(CorruptDataError, match="'features' is a Group, not a dataset"):
        load_coco_data(tmp_path)


def test_a_url_file_that_is_not_utf8_is_reported(h5py, tmp_path):
    # used to raise a bare UnicodeDecodeError
    write_coco_dir(tmp_path)
    (tmp_path / "train2014_urls.txt").write_bytes(b"\xff\xfe\x00bad\n" * 12)
    with pytest.raises(CorruptDataError, match=r"train2014_urls\.txt is not UTF-8 text.*download"):
        load_coco_data(tmp_path)


@pytest.mark.parametrize("text, message", [
    # used to raise RecursionError from the json module
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    (json.dumps({"idx_to_word": WORDS, "word_to_idx": {"<NULL>": 0}}),
     "word_to_idx has 1 words but idx_to_word 18"),
    (json.dumps({"idx_to_word": ["<NULL>", "<START>"], "word_to_idx": {"<NULL>": False,
                                                                       "<START>": True}}),
     r"word_to_idx\['<NULL>'\] = False"),
    (json.dumps(["<NULL>"]), "must hold a JSON object with a list 'idx_to_word'"),
    (json.dumps({"word_to_idx": {"<NULL>": 0}}), "must hold a JSON object"),
    (json.dumps({"idx_to_word": ["<NULL>"], "word_to_idx": ["<NULL>"]}), "must hold a JSON object"),
    # -1 would find "a" at idx_to_word[-1]; 2 is one past the end
    (json.dumps({"idx_to_word": ["<NULL>", "a"], "word_to_idx": {"<NULL>": 0, "a": -1}}),
     r"word_to_idx\['a'\] = -1 does not point back"),
    (json.dumps({"idx_to_word": ["<NULL>", "a"], "word_to_idx": {"<NULL>": 0, "a": 2}}),
     r"word_to_idx\['a'\] = 2 does not point back"),
    (json.dumps({"idx_to_word": ["<NULL>", "a"], "word_to_idx": {"<NULL>": 0, "a": 1.0}}),
     r"word_to_idx\['a'\] = 1.0 does not point back"),
], ids=["deeply-nested", "partial-word_to_idx", "bool-indices", "a-list", "no-idx_to_word",
        "word_to_idx-a-list", "index-minus-1", "index-past-end", "float-index"])
def test_a_malformed_vocabulary_is_reported(h5py, tmp_path, text, message):
    write_coco_dir(tmp_path)
    (tmp_path / "coco2014_vocab.json").write_text(text)
    with pytest.raises(CorruptDataError, match=r"coco2014_vocab\.json.*" + message):
        load_coco_data(tmp_path)


@pytest.mark.parametrize("max_train", [-1, 0, 2.5, True, "5"])
def test_max_train_must_be_a_positive_whole_number(tmp_path, max_train):
    # checked before any file is read, so no files are needed here
    with pytest.raises(ValueError, match=f"max_train must be a positive integer, "
                                         f"got {max_train!r}"):
        load_coco_data(tmp_path, max_train=max_train)


def test_a_whole_number_float_max_train_is_used_as_an_int(h5py, tmp_path):
    write_coco_dir(tmp_path)
    assert load_coco_data(tmp_path, max_train=2.0, seed=0)["train_captions"].shape == (2, 17)


@pytest.mark.parametrize("captions, message", [
    # -1 used to decode as the last word; 1.7 as word 1
    (np.array([1, -1]), r"holds indices out of range: \[-1\]"),
    (np.array([1, 18]), r"holds indices out of range: \[18\]"),
    (np.array([1.7, 4.2]), "must hold integer word indices, got dtype float64"),
    (np.array([[1, 4], [2, 99]]), r"holds indices out of range: \[99\]"),
])
def test_decode_refuses_indices_that_are_not_words(captions, message):
    with pytest.raises(ValueError, match="decode_captions: captions " + message):
        decode_captions(captions, WORDS)


def test_decode_with_a_dict_refuses_indices_it_lacks():
    with pytest.raises(ValueError, match=r"not keys of idx_to_word: \[1\]"):
        decode_captions(np.array([0, 1, 2]), {0: "<NULL>", 2: "cat"})
    with pytest.raises(ValueError, match="must hold integer word indices"):
        decode_captions(np.array([0.0, 2.0]), {0: "<NULL>", 2: "cat"})
    assert decode_captions(np.array([2, 0]), {0: "<NULL>", 2: "cat"}) == "cat"
    assert decode_captions([], WORDS) == ""


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, "3"])
def test_minibatch_size_must_be_a_positive_whole_number(batch_size):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        sample_coco_minibatch(coco_arrays(), batch_size=batch_size)


def test_minibatch_size_defaults_to_100():
    captions, features, urls = sample_coco_minibatch(coco_arrays(), rng=np.random.default_rng(0))
    assert captions.shape == (100, 17) and features.shape == (100, 16) and urls.shape == (100,)
