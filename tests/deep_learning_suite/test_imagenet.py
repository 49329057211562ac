import os
import pickle

import numpy as np
import pytest

from deep_learning_suite import imagenet
from deep_learning_suite.data import CorruptDataError, DatasetNotFoundError

Image = pytest.importorskip("PIL.Image")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("shape", [(4, 5, 3), (224, 224, 3), (1, 1, 3)])
def test_preprocess_image_normalises_each_channel(rng, shape):
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    out = imagenet.preprocess_image(img)
    assert out.dtype == np.float32 and out.shape == shape
    for c in range(3):
        want = (img[..., c] / 255.0 - imagenet.SQUEEZENET_MEAN[c]) / imagenet.SQUEEZENET_STD[c]
        np.testing.assert_allclose(out[..., c], want, rtol=1e-5, atol=1e-6)


def test_deprocess_image_inverts_preprocess_exactly(rng):
    img = rng.integers(0, 256, (16, 9, 3), dtype=np.uint8)
    np.testing.assert_array_equal(imagenet.deprocess_image(imagenet.preprocess_image(img)), img)


def test_deprocess_image_clips_and_rescales(rng):
    x = rng.normal(scale=10.0, size=(6, 6, 3)).astype(np.float32)
    out = imagenet.deprocess_image(x)
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255  # far out of range: clipped
    stretched = imagenet.deprocess_image(x, rescale=True)
    assert stretched.min() == 0 and stretched.max() == 255
    raw = x * imagenet.SQUEEZENET_STD + imagenet.SQUEEZENET_MEAN
    want = np.rint(255 * (raw - raw.min()) / (raw.max() - raw.min()))
    np.testing.assert_allclose(stretched, want, atol=1)
    grey = np.broadcast_to((0.5 - imagenet.SQUEEZENET_MEAN) / imagenet.SQUEEZENET_STD, (2, 2, 3))
    assert (imagenet.deprocess_image(grey, rescale=True) == 0).all()  # nothing to stretch


@pytest.mark.parametrize("bad", [np.zeros((4, 4)), np.zeros((4, 4, 4)), np.zeros((1, 4, 4, 3))])
def test_pre_and_deprocess_reject_non_rgb_shapes(bad):
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        imagenet.preprocess_image(bad)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        imagenet.deprocess_image(bad)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_load_image_reads_files_as_rgb_uint8(tmp_path, rng, mode):
    arr = rng.integers(0, 256, (10, 14, 3), dtype=np.uint8)
    img = Image.fromarray(arr).convert(mode)
    path = tmp_path / "photo.png"
    img.save(path)
    out = imagenet.load_image(path)
    assert out.dtype == np.uint8 and out.shape == (10, 14, 3)
    np.testing.assert_array_equal(out, np.asarray(img.convert("RGB")))


@pytest.mark.parametrize("hw,size,want", [((10, 14), 5, (5, 7)), ((14, 10), 5, (7, 5)),
                                          ((30, 30), 12, (12, 12)), ((3, 7), 224, (224, 522))])
def test_load_image_resizes_the_shorter_side_as_torchvision_does(tmp_path, rng, hw, size, want):
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, hw + (3,), dtype=np.uint8)).save(path)
    assert imagenet.load_image(path, size=size).shape == want + (3,)


def test_load_image_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="no image file"):
        imagenet.load_image(tmp_path / "missing.jpg")
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(CorruptDataError, match="not an image Pillow can read"):
        imagenet.load_image(junk)
    with pytest.raises(TypeError, match="a path, a PIL image"):
        imagenet.load_image(3.5)
    good = tmp_path / "ok.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(good)
    with pytest.raises(ValueError, match="positive integer"):
        imagenet.load_image(good, size=0)


def write_imagenet_val(path, X, y, label_map):
    # The course's file: np.savez of two plain arrays and a 0-d object array holding a dict.
    np.savez(path, X=X, y=y, label_map=np.array(label_map, dtype=object))
    return path


@pytest.fixture
def val_file(tmp_path, rng):
    X = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    y = np.array([3, 1, 4, 1, 0])
    names = {i: f"class {i}" for i in range(6)}
    return write_imagenet_val(tmp_path / "imagenet_val_25.npz", X, y, names), X, y, names


def test_load_imagenet_val_reads_the_course_file(val_file):
    path, X, y, names = val_file
    X2, y2, class_names = imagenet.load_imagenet_val(path=path)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)
    assert y2.dtype == np.int64 and class_names == names
    X3, y3, _ = imagenet.load_imagenet_val(num=2, path=path)
    np.testing.assert_array_equal(X3, X[:2])
    np.testing.assert_array_equal(y3, y[:2])


class _Hostile:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_load_imagenet_val_refuses_a_pickle_that_runs_code(tmp_path, rng):
    marker = tmp_path / "pwned"
    _Hostile.marker = marker
    path = write_imagenet_val(tmp_path / "evil.npz", rng.integers(0, 256, (1, 4, 4, 3), dtype=np.uint8),
                              np.array([0]), {0: _Hostile()})
    with pytest.raises(CorruptDataError, match=r"refusing to load (posix|os|nt)\.system"):
        imagenet.load_imagenet_val(path=path)
    assert not marker.exists()


def test_load_imagenet_val_reports_missing_and_corrupt_files(tmp_path, rng):
    with pytest.raises(DatasetNotFoundError, match="download=True"):
        imagenet.load_imagenet_val(path=tmp_path / "nowhere.npz")
    not_zip = tmp_path / "junk.npz"
    not_zip.write_bytes(b"garbage")
    with pytest.raises(CorruptDataError, match="not an .npz archive"):
        imagenet.load_imagenet_val(path=not_zip)
    X = rng.integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    np.savez(tmp_path / "nolabels.npz", X=X, y=np.array([0, 1]))
    with pytest.raises(CorruptDataError, match=r"lacks \['label_map'\]"):
        imagenet.load_imagenet_val(path=tmp_path / "nolabels.npz")
    write_imagenet_val(tmp_path / "unnamed.npz", X, np.array([0, 7]), {0: "a"})
    with pytest.raises(CorruptDataError, match=r"labels \[7\] have no class name"):
        imagenet.load_imagenet_val(path=tmp_path / "unnamed.npz")
    write_imagenet_val(tmp_path / "float.npz", X.astype(np.float32), np.array([0, 0]), {0: "a"})
    with pytest.raises(CorruptDataError, match="uint8"):
        imagenet.load_imagenet_val(path=tmp_path / "float.npz")
    write_imagenet_val(tmp_path / "short.npz", X, np.array([0]), {0: "a"})
    with pytest.raises(CorruptDataError, match="2 integer labels"):
        imagenet.load_imagenet_val(path=tmp_path / "short.npz")


def test_load_imagenet_val_defaults_to_the_cache_and_never_downloads_unasked(tmp_path, monkeypatch, val_file):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path / "cache")):
        imagenet.load_imagenet_val()
    target = tmp_path / "cache" / "cs231n-toolkit" / imagenet.IMAGENET_VAL_FILE
    target.parent.mkdir(parents=True)
    target.write_bytes(val_file[0].read_bytes())
    assert imagenet.load_imagenet_val()[2] == val_file[3]


def test_pickled_label_map_is_plain_data_not_objects(val_file):
    # What makes the restricted unpickler enough: the dict itself needs no find_class at all.
    raw = pickle.dumps({0: "tench", 1: "goldfish"}, protocol=2)
    assert b"c__builtin__" not in raw and b"cbuiltins" not in raw
