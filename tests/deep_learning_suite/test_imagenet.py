import io
import os
import struct
import zipfile
import zlib

import numpy as np
import pytest

from deep_learning_suite import imagenet
from deep_learning_suite.data import CorruptDataError, DatasetNotFoundError, NumpyOnlyUnpickler

from .test_data import serve_once_cut_short

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
    monkeypatch.chdir(tmp_path)                  # no course folder cs231n/datasets/ here
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path / "cache")):
        imagenet.load_imagenet_val()
    target = tmp_path / "cache" / "cs231n-toolkit" / imagenet.IMAGENET_VAL_FILE
    target.parent.mkdir(parents=True)
    target.write_bytes(val_file[0].read_bytes())
    assert imagenet.load_imagenet_val()[2] == val_file[3]


def test_load_imagenet_val_finds_the_course_file_under_the_current_folder(tmp_path, monkeypatch, val_file):
    # The notebooks run from the assignment folder, where get_datasets.sh leaves the file.
    path, X, y, names = val_file
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    work = tmp_path / "assignment3"
    monkeypatch.chdir(work.parent)
    with pytest.raises(DatasetNotFoundError, match=r"cs231n/datasets/imagenet_val_25\.npz"):
        imagenet.load_imagenet_val(num=5)
    (work / "cs231n" / "datasets").mkdir(parents=True)
    (work / "cs231n" / "datasets" / imagenet.IMAGENET_VAL_FILE).write_bytes(path.read_bytes())
    monkeypatch.chdir(work)
    X2, y2, class_names = imagenet.load_imagenet_val(num=5)
    np.testing.assert_array_equal(X2, X)
    assert class_names == names


@pytest.mark.parametrize("num, expected", [(2.0, 2), (np.int64(3), 3), (np.float32(0), 0), (None, 5)])
def test_load_imagenet_val_takes_a_whole_number_num(val_file, num, expected):
    path, X, y, _ = val_file
    X2, y2, _ = imagenet.load_imagenet_val(num=num, path=path)
    np.testing.assert_array_equal(X2, X[:expected])
    np.testing.assert_array_equal(y2, y[:expected])


@pytest.mark.parametrize("num", [2.5, -1, True, "2", float("inf")])
def test_load_imagenet_val_refuses_a_num_that_is_not_a_whole_number_before_reading(tmp_path, num):
    with pytest.raises(ValueError, match="load_imagenet_val: num must be a non-negative integer"):
        imagenet.load_imagenet_val(num=num, path=tmp_path / "nowhere.npz")


def _damage(raw, how):
    """The course's .npz ``raw`` damaged in one place of its zip structure."""
    def patch(offset, new):
        return raw[:offset] + new + raw[offset + len(new):]

    info = zipfile.ZipFile(io.BytesIO(raw)).getinfo("X.npy")
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    data = info.header_offset + 30 + name_len + extra_len       # X.npy's compressed bytes
    directory, end = raw.index(b"PK\x01\x02"), raw.rindex(b"PK\x05\x06")
    if how == "bit flip":                   # zlib.error or a bad CRC, by where it lands
        return patch(data + 40, bytes([raw[data + 40] ^ 0xFF]))
    if how == "invalid deflate block":      # block type 3 is reserved: zlib.error
        return patch(data, b"\xff")
    if how == "unknown compression":        # method 99 (AES) in the directory: NotImplementedError
        return patch(directory + 10, struct.pack("<H", 99))
    if how == "bad directory offset":       # a seek before the file's start: OSError (EINVAL)
        (offset,) = struct.unpack("<I", raw[end + 16:end + 20])
        return patch(end + 16, struct.pack("<I", offset + 100))
    assert how == "member past the end"     # the last member claims 1 MB: EOFError
    return patch(raw.rindex(b"PK\x01\x02") + 20, struct.pack("<II", 10 ** 6, 10 ** 6))


@pytest.mark.parametrize("how", ["bit flip", "invalid deflate block", "unknown compression",
                                 "bad directory offset", "member past the end"])
def test_damaged_npz_is_corrupt_data_and_says_to_delete_it(tmp_path, rng, how):
    # These used to escape as zlib.error, NotImplementedError, OSError or EOFError.
    path = tmp_path / "imagenet_val_25.npz"
    save = np.savez if how == "member past the end" else np.savez_compressed   # stored: read to EOF
    save(path, X=rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8), y=np.array([0, 1, 2]),
         label_map=np.array({0: "a", 1: "b", 2: "c"}, dtype=object))
    path.write_bytes(_damage(path.read_bytes(), how))
    with pytest.raises(CorruptDataError, match=rf"imagenet_val_25\.npz is not an \.npz archive.*"
                                               rf"delete {path} and get"):
        imagenet.load_imagenet_val(path=path)


def test_a_corrupt_file_says_to_delete_it_and_fetch_it_again(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cached = tmp_path / "cache" / "cs231n-toolkit" / imagenet.IMAGENET_VAL_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"PK\x03\x04" + b"x" * 1000)      # what a cut-off download used to leave
    with pytest.raises(CorruptDataError, match=rf"not an \.npz archive.*delete {cached} and get "
                                               rf"{imagenet.IMAGENET_VAL_URL} again"):
        imagenet.load_imagenet_val(download=True)


def test_a_download_cut_short_leaves_nothing_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    server, url = serve_once_cut_short(b"PK\x03\x04" + b"x" * 1000, declared=100_000)
    monkeypatch.setattr(imagenet, "IMAGENET_VAL_URL", url + imagenet.IMAGENET_VAL_FILE)
    try:
        for _ in range(2):          # and so the next call tries again instead of failing for good
            with pytest.raises(DatasetNotFoundError, match="could not download.*got 1004 of its "
                                                           "100000 bytes"):
                imagenet.load_imagenet_val(download=True, progress=False)
            assert os.listdir(tmp_path / "cache" / "cs231n-toolkit") == []
    finally:
        server.close()


def test_pickled_label_map_is_plain_data_not_objects(val_file, monkeypatch):
    # What makes the restricted unpickler enough: the course's label map, a dict of int -> str
    # in a 0-d object array, asks the project's unpickler only for NumPy's own names.
    assert issubclass(imagenet._ImagenetValUnpickler, NumpyOnlyUnpickler)
    asked = []
    real = NumpyOnlyUnpickler.find_class

    def spy(self, module, name):
        asked.append((type(self), module, name))
        return real(self, module, name)

    monkeypatch.setattr(NumpyOnlyUnpickler, "find_class", spy)
    assert imagenet.load_imagenet_val(path=val_file[0])[2] == val_file[3]
    assert asked and {cls for cls, _, _ in asked} == {imagenet._ImagenetValUnpickler}
    assert {module.split(".")[0] for _, module, _ in asked} <= {"numpy", "_codecs"}


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.mark.parametrize("kind", [b"\xc4\xce\xf1\xf8", b"ID T"])
def test_a_damaged_image_file_is_corrupt_data(tmp_path, rng, kind):
    # The image data split over two chunks, the second with a garbled type: Pillow opens the
    # file, then raises SyntaxError while decoding it.
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(buf, "PNG")
    png = buf.getvalue()
    idat = png.index(b"IDAT")
    (size,) = struct.unpack(">I", png[idat - 4:idat])
    data = png[idat + 4:idat + 4 + size]
    path = tmp_path / "photo.png"
    path.write_bytes(png[:idat - 4] + _png_chunk(b"IDAT", data[:100]) + _png_chunk(kind, data[100:])
                     + png[idat + 8 + size:])
    with pytest.raises(CorruptDataError, match="photo.png is not an image Pillow can read"):
        imagenet.load_image(path)


# ----------------------------------------------------------------- Tiny ImageNet

TINY_WNIDS = ["n01443537", "n01629819", "n01641577"]
TINY_WORDS = {"n01443537": "goldfish, Carassius auratus", "n01629819": "European fire salamander",
              "n01641577": "bullfrog, Rana catesbeiana", "n00001740": "entity"}


def _tiny_image(rng, path, grey=False):
    pixels = rng.integers(0, 256, (64, 64) if grey else (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, "JPEG")
    # What the file decodes to (JPEG is lossy), as RGB: a grey image in all three channels.
    with Image.open(path) as f:
        return np.asarray(f.convert("RGB")).transpose(2, 0, 1)


def write_tiny_imagenet(root, rng, test_labels=False):
    """A Tiny ImageNet folder, laid out as the course's download: returns the images and labels."""
    root.mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(TINY_WNIDS) + "\n")
    (root / "words.txt").write_text("".join(f"{w}\t{names}\n" for w, names in TINY_WORDS.items()))
    X_train, y_train = [], []
    for label, wnid in enumerate(TINY_WNIDS):
        (root / "train" / wnid / "images").mkdir(parents=True)
        names = [f"{wnid}_{i}.JPEG" for i in range(2)]
        for i, name in enumerate(names):
            X_train.append(_tiny_image(rng, root / "train" / wnid / "images" / name, grey=label == 1 and i == 0))
            y_train.append(label)
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text(
            "".join(f"{name}\t0\t3\t60\t62\n" for name in names))
    (root / "val" / "images").mkdir(parents=True)
    val_labels = [2, 0, 1, 0]
    X_val = [_tiny_image(rng, root / "val" / "images" / f"val_{i}.JPEG") for i in range(len(val_labels))]
    (root / "val" / "val_annotations.txt").write_text(
        "".join(f"val_{i}.JPEG\t{TINY_WNIDS[y]}\t0\t3\t60\t62\n" for i, y in enumerate(val_labels)))
    (root / "test" / "images").mkdir(parents=True)
    X_test = [_tiny_image(rng, root / "test" / "images" / f"test_{i}.JPEG", grey=i == 2) for i in range(3)]
    if test_labels:
        (root / "test" / "test_annotations.txt").write_text(
            "".join(f"test_{i}.JPEG\t{TINY_WNIDS[y]}\t0\t0\t63\t63\n" for i, y in enumerate([1, 1, 0])))
    return {"X_train": np.array(X_train), "y_train": np.array(y_train), "X_val": np.array(X_val),
            "y_val": np.array(val_labels), "X_test": np.array(X_test)}


def test_load_tiny_imagenet_reads_the_course_layout(tmp_path, rng):
    raw = write_tiny_imagenet(tmp_path / "tiny-imagenet-100-A", rng)
    d = imagenet.load_tiny_imagenet(tmp_path / "tiny-imagenet-100-A", subtract_mean=False)
    assert set(d) == {"class_names", "X_train", "y_train", "X_val", "y_val", "X_test", "y_test",
                      "mean_image"}
    assert d["class_names"] == [["goldfish", "Carassius auratus"], ["European fire salamander"],
                                ["bullfrog", "Rana catesbeiana"]]
    for split in ("train", "val", "test"):
        X = d[f"X_{split}"]
        assert X.dtype == np.float32 and X.shape == (len(raw[f"X_{split}"]), 3, 64, 64)
        np.testing.assert_array_equal(X, raw[f"X_{split}"])
    for split in ("train", "val"):
        assert d[f"y_{split}"].dtype == np.int64
        np.testing.assert_array_equal(d[f"y_{split}"], raw[f"y_{split}"])
    assert d["y_test"] is None                       # students have no test labels
    np.testing.assert_allclose(d["mean_image"], raw["X_train"].mean(axis=0), rtol=1e-6)
    assert d["mean_image"].shape == (3, 64, 64) and d["mean_image"].dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_load_tiny_imagenet_subtracts_the_training_mean(tmp_path, rng, dtype):
    raw = write_tiny_imagenet(tmp_path / "tiny", rng, test_labels=True)
    d = imagenet.load_tiny_imagenet(tmp_path / "tiny", dtype=dtype)
    mean = raw["X_train"].mean(axis=0)
    for split in ("train", "val", "test"):
        assert d[f"X_{split}"].dtype == dtype
        np.testing.assert_allclose(d[f"X_{split}"], raw[f"X_{split}"] - mean, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(d["y_test"], [1, 1, 0])   # from test_annotations.txt


def test_load_tiny_imagenet_keeps_uint8_without_mean_subtraction(tmp_path, rng):
    raw = write_tiny_imagenet(tmp_path / "tiny", rng)
    d = imagenet.load_tiny_imagenet(tmp_path / "tiny", dtype=np.uint8, subtract_mean=False)
    assert d["X_train"].dtype == np.uint8
    np.testing.assert_array_equal(d["X_train"], raw["X_train"])
    with pytest.raises(ValueError, match="subtract_mean=True needs a floating dtype"):
        imagenet.load_tiny_imagenet(tmp_path / "tiny", dtype=np.uint8)


def _break(root, how):
    if how == "no folder":
        return root / "nowhere", DatasetNotFoundError, r"nowhere.*wnids\.txt"
    if how == "unknown val class":
        (root / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99999999\t0\t0\t1\t1\n")
        return root, CorruptDataError, r"val_annotations\.txt line 1: class n99999999 is not in .*wnids\.txt"
    if how == "no class name":
        (root / "words.txt").write_text("n01443537\tgoldfish\n")
        return root, CorruptDataError, r"words\.txt has no name for n01629819"
    if how == "missing image":
        (root / "train" / TINY_WNIDS[2] / "images" / f"{TINY_WNIDS[2]}_1.JPEG").unlink()
        return root, DatasetNotFoundError, rf"{TINY_WNIDS[2]}_1\.JPEG.*listed in .*{TINY_WNIDS[2]}_boxes\.txt"
    if how == "wrong size":
        Image.fromarray(np.zeros((32, 64, 3), np.uint8)).save(root / "val" / "images" / "val_1.JPEG", "JPEG")
        return root, CorruptDataError, r"val_1\.JPEG is 64 x 32 pixels; Tiny ImageNet's images are 64 x 64"
    if how == "damaged image":
        (root / "test" / "images" / "test_1.JPEG").write_bytes(b"\xff\xd8 not really a JPEG")
        return root, CorruptDataError, r"test_1\.JPEG is not an image Pillow can read"
    assert how == "no classes"
    (root / "wnids.txt").write_text("\n")
    return root, CorruptDataError, r"wnids\.txt lists no classes"


@pytest.mark.parametrize("how", ["no folder", "unknown val class", "no class name", "missing image",
                                 "wrong size", "damaged image", "no classes"])
def test_load_tiny_imagenet_says_which_file_is_wrong(tmp_path, rng, how):
    write_tiny_imagenet(tmp_path / "tiny", rng)
    path, error, match = _break(tmp_path / "tiny", how)
    with pytest.raises(error, match=match):
        imagenet.load_tiny_imagenet(path)
