import json

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


def test_captions_pointing_past_the_features_are_reported(h5py, tmp_path):
    write_coco_dir(tmp_path)
    with h5py.File(tmp_path / "coco2014_captions.h5", "a") as f:
        idxs = f["train_image_idxs"][...]
        idxs[0] = 99
        f["train_image_idxs"][...] = idxs
    with pytest.raises(CorruptDataError, match="points past the 12 rows of train_features"):
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
