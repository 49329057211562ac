import gzip
import hashlib
import http.server
import io
import os
import pickle
import re
import socket
import struct
import tarfile
import tempfile
import threading
import time
import urllib.request

import numpy as np
import pytest

from deep_learning_suite import data as D
from deep_learning_suite.data import (ChecksumError, CorruptDataError, DatasetNotFoundError,
                                      UnsafeArchiveError)

from .._idx_files import idx_bytes, write_idx_set

N_PER_BATCH = 12
# The official archive's file names, written out here rather than taken from the module.
OFFICIAL_BATCHES = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                    "test_batch"]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test may see the user's cache or real env vars, or touch the network."""
    for var in ("CIFAR10_DIR", "FASHION_MNIST_DIR", "MNIST_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


# ----------------------------------------------------------------- CIFAR-10 in its official form

def write_cifar(folder, seed=0, n=N_PER_BATCH):
    """Write data_batch_1..5, test_batch and batches.meta exactly as the official files are laid out."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for name in OFFICIAL_BATCHES:
        d = {b"batch_label": f"{name} of 6".encode(),
             b"labels": rng.integers(10, size=n).tolist(),
             b"data": rng.integers(256, size=(n, 3072), dtype=np.uint8),
             b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(d, f, protocol=2)
        batches[name] = d
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in D.CIFAR10_CLASSES],
                     b"num_cases_per_batch": n, b"num_vis": 3072}, f, protocol=2)
    return batches


def test_load_cifar10_layout_and_dtypes(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    batches = write_cifar(root)
    Xtr, ytr, Xte, yte = D.load_CIFAR10(root)
    n = N_PER_BATCH
    assert Xtr.shape == (5 * n, 32, 32, 3) and Xte.shape == (n, 32, 32, 3)
    assert Xtr.dtype == np.float64 and ytr.dtype == np.int64 and yte.dtype == np.int64
    # row = 1024 red, 1024 green, 1024 blue values, each row-major over 32 x 32
    row = batches["data_batch_2"][b"data"][3]
    img = Xtr[n + 3]
    assert img[0, 0, 0] == row[0] and img[0, 1, 0] == row[1] and img[1, 0, 0] == row[32]
    assert img[0, 0, 1] == row[1024] and img[31, 31, 2] == row[3071]
    assert ytr[n:2 * n].tolist() == batches["data_batch_2"][b"labels"]
    # the training half is data_batch_1..5 in order, never the test batch
    assert ytr.tolist() == sum((batches[f"data_batch_{i}"][b"labels"] for i in range(1, 6)), [])
    assert yte.tolist() == batches["test_batch"][b"labels"]
    Xu = D.load_CIFAR10(str(root), dtype=np.uint8)[0]
    assert Xu.dtype == np.uint8 and np.array_equal(Xu, Xtr)
    # load_CIFAR10_split's default is the training half
    assert np.array_equal(D.load_CIFAR10_split(root)[1], ytr)


def test_get_cifar10_data_course_split(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    write_cifar(root)
    raw = D.load_CIFAR10(root)
    d = D.get_CIFAR10_data(num_training=40, num_validation=15, num_test=7, cifar10_dir=root)
    assert d["X_train"].shape == (40, 3, 32, 32) and d["X_val"].shape == (15, 3, 32, 32)
    assert d["X_test"].shape == (7, 3, 32, 32) and d["X_train"].dtype == np.float32
    mean = raw[0][:40].mean(axis=0)
    # validation = the 15 images right after the first 40, mean of the training split removed
    assert np.allclose(d["X_val"], (raw[0][40:55] - mean).transpose(0, 3, 1, 2), atol=1e-4)
    assert np.allclose(d["X_train"], (raw[0][:40] - mean).transpose(0, 3, 1, 2), atol=1e-4)
    assert np.array_equal(d["y_val"], raw[1][40:55])
    assert np.allclose(d["X_train"].mean(axis=0), 0, atol=1e-4)
    assert np.array_equal(d["y_test"], raw[3][:7])
    d64 = D.get_cifar10_data(40, 15, 7, subtract_mean=False, cifar10_dir=root, dtype=np.float64)
    assert d64["X_test"].dtype == np.float64
    assert np.array_equal(d64["X_test"], raw[2][:7].transpose(0, 3, 1, 2))
    assert np.allclose(d["X_test"], (raw[2][:7] - mean).transpose(0, 3, 1, 2), atol=1e-4)
    with pytest.raises(ValueError, match="at most 50000"):
        D.get_cifar10_data(num_training=49999, num_validation=2, cifar10_dir=root)
    with pytest.raises(ValueError, match=r"num_test must be in 0\.\.10000, got 10001"):
        D.get_cifar10_data(num_test=10001, cifar10_dir=root)


@pytest.mark.parametrize("sizes", [dict(num_training=49000, num_validation=1000, num_test=10000),
                                   dict(num_training=50000, num_validation=0, num_test=0, subtract_mean=False),
                                   dict(num_training=1, num_validation=49999, num_test=1)])
def test_get_cifar10_data_takes_sizes_up_to_the_full_dataset(tmp_path, sizes):
    # 50000 training and 10000 test images exist, so the limits themselves are allowed (the
    # small fixture then simply gives all it has).
    root = tmp_path / "cifar-10-batches-py"
    write_cifar(root)
    d = D.get_cifar10_data(cifar10_dir=root, **sizes)
    assert d["X_train"].shape[0] == min(sizes["num_training"], 5 * N_PER_BATCH)


def test_find_cifar10_dir_order(tmp_path, monkeypatch):
    explicit, env, cache = tmp_path / "a", tmp_path / "b", D.cache_dir()
    for p in (explicit, env, cache):
        write_cifar(p / "cifar-10-batches-py")
    monkeypatch.setenv("CIFAR10_DIR", str(env))
    assert D.find_cifar10_dir(explicit) == explicit / "cifar-10-batches-py"
    assert D.find_cifar10_dir(explicit / "cifar-10-batches-py") == explicit / "cifar-10-batches-py"
    assert D.find_cifar10_dir() == env / "cifar-10-batches-py"
    monkeypatch.delenv("CIFAR10_DIR")
    assert D.find_cifar10_dir() == cache / "cifar-10-batches-py"
    # an explicit folder is authoritative: no silent fallback to the cached copy
    with pytest.raises(DatasetNotFoundError, match="empty"):
        D.find_cifar10_dir(tmp_path / "empty", download=False)


class _Reduce:
    """Pickles to a call of ``func(*args)``, what a hostile file does (refused unless the
    unpickler admits ``func``)."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("how", ["os.system", "eval", "nested in labels"])
def test_hostile_pickle_is_refused_without_running(tmp_path, how):
    root = tmp_path / "cifar-10-batches-py"
    write_cifar(root)
    marker = tmp_path / "MARKER"
    if how == "os.system":
        payload = {b"data": _Reduce(os.system, f"touch {marker}"), b"labels": []}
    elif how == "eval":
        payload = {b"data": _Reduce(eval, f"open({str(marker)!r}, 'w').close()"), b"labels": []}
    else:
        payload = {b"data": np.zeros((1, 3072), np.uint8),
                   b"labels": [_Reduce(os.system, f"touch {marker}")]}
    with open(root / "data_batch_3", "wb") as f:
        pickle.dump(payload, f, protocol=2)
    with pytest.raises(CorruptDataError, match="data_batch_3 is not a genuine CIFAR-10 batch"):
        D.load_CIFAR10(root)
    assert not marker.exists()


def test_numpy_functions_other_than_the_array_constructors_are_refused(tmp_path):
    # np.save is in the numpy namespace like np.ndarray, but it writes files.
    root = tmp_path / "cifar-10-batches-py"
    write_cifar(root)
    marker = tmp_path / "MARKER.npy"
    (root / "data_batch_3").write_bytes(pickle.dumps(
        {b"data": _Reduce(np.save, str(marker), np.zeros(1)), b"labels": []}, protocol=2))
    with pytest.raises(CorruptDataError, match="refusing to load numpy.save"):
        D.load_CIFAR10(root)
    assert not marker.exists()


class _Py2Pickler(pickle._Pickler):
    """Writes every str and bytes as a Python 2 ``str``, as the official CIFAR-10 batches hold them."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        b = obj.encode("latin1") if isinstance(obj, str) else obj
        self.write(pickle.BINSTRING + struct.pack("<i", len(b)) + b)
        self.memoize(obj)

    dispatch[str] = dispatch[bytes] = save_py2_str


def test_a_python_2_cifar_batch_naming_numpy_core_loads(tmp_path):
    # The official files were written by Python 2 and NumPy 1.x: str keys and data, and the
    # array's constructor named numpy.core.multiarray._reconstruct.
    rng = np.random.default_rng(5)
    d = {"batch_label": "training batch 1 of 5", "labels": rng.integers(10, size=4).tolist(),
         "data": rng.integers(256, size=(4, 3072), dtype=np.uint8), "filenames": ["a.png"] * 4}
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(d)
    raw = re.sub(rb"cnumpy\._?core\.multiarray\n", b"cnumpy.core.multiarray\n", buf.getvalue())
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in raw
    (tmp_path / "data_batch_1").write_bytes(raw)
    X, y = D.load_CIFAR_batch(tmp_path / "data_batch_1")
    assert y.tolist() == d["labels"]
    assert np.array_equal(X, d["data"].reshape(4, 3, 32, 32).transpose(0, 2, 3, 1))


@pytest.mark.parametrize("payload", [
    b"",                                        # an empty file: EOFError
    b"\x80\x02J\x01",                            # cut off inside a 4-byte int: struct.error
    b"\x80\x020.",                               # POP on an empty stack: IndexError
    pickle.dumps(_Reduce(np.ndarray, "x"), protocol=2),     # bad constructor argument: TypeError
    b"\x80\x02K\x01}K\x01K\x02sb.",                  # state set on an int: AttributeError
    # An admitted constructor asked for 909 TiB of items the file does not hold.
    pickle.dumps({b"data": _Reduce(np.ndarray, (10 ** 15,), "u1"), b"labels": []}, protocol=2),
    # A corrupted length field: 4 EiB of bytes (MemoryError), or more than a size can hold
    # (OverflowError), in a file of a few bytes.
    b"\x80\x02\x96" + struct.pack("<Q", 2 ** 62) + bytes(12),
    b"\x80\x02\x8e" + struct.pack("<Q", 2 ** 64 - 1) + bytes(12),
], ids=["EOFError", "struct.error", "IndexError", "TypeError", "AttributeError",
        "huge ndarray", "huge length", "length past maxsize"])
def test_every_kind_of_corrupt_pickle_is_corrupt_data_naming_the_file(tmp_path, payload):
    root = tmp_path / "cifar-10-batches-py"
    write_cifar(root)
    (root / "data_batch_5").write_bytes(payload)
    with pytest.raises(CorruptDataError, match="data_batch_5 is not a genuine CIFAR-10 batch"):
        D.load_CIFAR10(root)


@pytest.mark.parametrize("data", [
    np.zeros((N_PER_BATCH, 3072), np.float64),
    np.zeros((N_PER_BATCH, 3072, 1), np.uint8),
    np.zeros(3072, np.uint8),
    [[0] * 3072] * N_PER_BATCH,
], ids=["float64", "3-D", "1-D", "list"])
def test_cifar_batch_with_malformed_data_names_the_file(tmp_path, data):
    root = tmp_path / "cifar-10-batches-py"
    write_cifar(root)
    (root / "data_batch_2").write_bytes(pickle.dumps(
        {b"data": data, b"labels": [0] * N_PER_BATCH}, protocol=2))
    with pytest.raises(CorruptDataError, match="data_batch_2 is not a genuine CIFAR-10 batch: 'data' must be"):
        D.load_CIFAR10(root)


@pytest.mark.parametrize("bad", ["shape", "labels", "truncated", "not a dict"])
def test_malformed_cifar_batch(tmp_path, bad):
    root = tmp_path / "cifar-10-batches-py"
    write_cifar(root)
    target = root / "test_batch"
    if bad == "truncated":
        target.write_bytes(target.read_bytes()[:500])
    else:
        obj = {"shape": {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]},
               "labels": {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]},
               "not a dict": [1, 2, 3]}[bad]
        target.write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(CorruptDataError, match="test_batch"):
        D.load_CIFAR10(root)


@pytest.mark.parametrize("labels", [
    [[1], [1, 2]] + [1] * (N_PER_BATCH - 2),      # ragged: np.asarray itself fails
    [[1]] * N_PER_BATCH,                          # 2-D
    None,
    [1.0] * N_PER_BATCH,
    [2 ** 70] * N_PER_BATCH,                      # too big for int64: an object array
    [True] * N_PER_BATCH,
    [1] * (N_PER_BATCH - 1),                      # one label short of the rows of 'data'
    {1: 2},
    [0] * (N_PER_BATCH - 1) + [-1],               # just below 0..9
    [0] * (N_PER_BATCH - 1) + [10],               # just above 0..9
], ids=["ragged", "2-D", "None", "floats", "huge ints", "bools", "short", "dict", "-1", "10"])
def test_cifar_batch_with_malformed_labels_names_the_file(tmp_path, labels):
    root = tmp_path / "cifar-10-batches-py"
    write_cifar(root)
    (root / "data_batch_2").write_bytes(pickle.dumps(
        {b"data": np.zeros((N_PER_BATCH, 3072), np.uint8), b"labels": labels}, protocol=2))
    with pytest.raises(CorruptDataError,
                       match="data_batch_2 is not a genuine CIFAR-10 batch: 'labels' must be"):
        D.load_CIFAR10(root)


@pytest.mark.parametrize("missing", ["data_batch_4", "test_batch"])
def test_incomplete_folder_names_missing_files(tmp_path, missing):
    root = tmp_path / "cifar-10-batches-py"
    write_cifar(root)
    (root / missing).unlink()
    with pytest.raises(DatasetNotFoundError, match=missing):
        D.load_CIFAR10(root)
    # nor is it taken for a CIFAR-10 folder when looking for one
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        D.find_cifar10_dir(root, download=False)


@pytest.mark.parametrize("kwargs, shapes", [
    (dict(num_training=40.0, num_validation=15.0, num_test=7.0), (40, 15, 7)),
    (dict(num_training=np.int64(3), num_validation=np.float32(2), num_test=1), (3, 2, 1)),
])
def test_get_cifar10_data_takes_whole_number_sizes(tmp_path, kwargs, shapes):
    root = tmp_path / "cifar-10-batches-py"
    write_cifar(root)
    d = D.get_cifar10_data(cifar10_dir=root, **kwargs)
    ref = D.get_cifar10_data(*shapes, cifar10_dir=root)
    assert tuple(d[k].shape[0] for k in ("X_train", "X_val", "X_test")) == shapes
    assert all(np.array_equal(d[k], ref[k]) for k in ref)


@pytest.mark.parametrize("name", ["num_training", "num_validation", "num_test"])
@pytest.mark.parametrize("value", [2.5, -1, True, "10", None, float("nan")])
def test_get_cifar10_data_refuses_sizes_that_are_not_whole_numbers_before_reading(
        tmp_path, name, value):
    # Checked before looking for the data: nothing is read or downloaded.
    with pytest.raises(ValueError, match=rf"get_cifar10_data: {name} must be a non-negative integer"):
        D.get_cifar10_data(cifar10_dir=tmp_path / "nowhere", download=False, **{name: value})


def test_get_cifar10_data_refuses_a_mean_of_no_training_images(tmp_path):
    # The mean of an empty split is NaN, and subtracting it would turn every image NaN.
    with pytest.raises(ValueError, match="subtract_mean needs training images"):
        D.get_cifar10_data(num_training=0, cifar10_dir=tmp_path / "nowhere", download=False)


# ----------------------------------------------------------------- download and extraction

def make_archive(path, src_root, extra=()):
    """tar.gz with the official layout (``cifar-10-batches-py/...``) plus optional hostile members."""
    with tarfile.open(path, "w:gz") as tar:
        tar.add(src_root / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        for member, payload in extra:
            tar.addfile(member, io.BytesIO(payload) if payload is not None else None)
    return path, hashlib.md5(path.read_bytes()).hexdigest()


def test_download_from_file_url_verifies_and_extracts(tmp_path):
    write_cifar(tmp_path / "src" / "cifar-10-batches-py", seed=3)
    archive, md5 = make_archive(tmp_path / "cifar.tar.gz", tmp_path / "src")
    dest = tmp_path / "dl"
    got = D.find_cifar10_dir(dest, url=archive.as_uri(), md5=md5, progress=False)
    assert got == dest / "cifar-10-batches-py"
    assert sorted(os.listdir(dest)) == ["cifar-10-batches-py"]    # temp files cleaned up
    a = D.load_CIFAR10(got, dtype=np.uint8)
    b = D.load_CIFAR10(tmp_path / "src" / "cifar-10-batches-py", dtype=np.uint8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_download_over_local_http(tmp_path):
    write_cifar(tmp_path / "src" / "cifar-10-batches-py")
    archive, md5 = make_archive(tmp_path / "cifar-10-python.tar.gz", tmp_path / "src")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(tmp_path), **kw)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/cifar-10-python.tar.gz"
        monkey_cache = D.find_cifar10_dir(url=url, md5=md5, progress=False)
    finally:
        server.shutdown()
        server.server_close()
    assert monkey_cache == D.cache_dir() / "cifar-10-batches-py"
    assert D.load_CIFAR10(monkey_cache)[0].shape == (5 * N_PER_BATCH, 32, 32, 3)


def test_download_url_accepts_an_uppercase_md5_and_leaves_only_the_file(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3000))
    dest = tmp_path / "dl" / "sub" / "file.bin"          # folders created as needed
    got = D.download_url(src.as_uri(), str(dest), md5=hashlib.md5(src.read_bytes()).hexdigest().upper(),
                         progress=False)
    assert got == dest and dest.read_bytes() == src.read_bytes()
    assert os.listdir(dest.parent) == ["file.bin"]            # no .part left behind


def test_downloads_do_not_need_the_system_temp_folder(tmp_path, monkeypatch):
    # The partial files live next to their destination, so a missing or full $TMPDIR (or one
    # on another file system, where the final rename would fail) does not matter.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-tmp"))
    write_cifar(tmp_path / "src" / "cifar-10-batches-py", seed=2)
    archive, md5 = make_archive(tmp_path / "cifar.tar.gz", tmp_path / "src")
    got = D.find_cifar10_dir(tmp_path / "dl", url=archive.as_uri(), md5=md5, progress=False)
    assert got == tmp_path / "dl" / "cifar-10-batches-py"
    assert sorted(os.listdir(tmp_path / "dl")) == ["cifar-10-batches-py"]


def test_an_interrupted_download_leaves_nothing(tmp_path, monkeypatch):
    class Response:
        headers = {}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, n):
            raise KeyboardInterrupt      # Ctrl-C in the middle of the transfer

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Response())
    with pytest.raises(KeyboardInterrupt):
        D.download_url("http://example.invalid/f.gz", tmp_path / "f.gz", progress=False)
    assert os.listdir(tmp_path) == []


def _serve(respond):
    """A local HTTP server that accepts, reads the request, calls ``respond(conn)`` and hangs
    up; returns the server socket (close it to stop) and its URL."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:                      # the socket was closed: the test is over
                return
            with conn:
                conn.recv(65536)
                respond(conn)

    threading.Thread(target=serve, daemon=True).start()
    return server, f"http://127.0.0.1:{server.getsockname()[1]}/"


def serve_silently(hold=3.0):
    """A local HTTP server that says nothing for ``hold`` s and hangs up."""
    return _serve(lambda conn: time.sleep(hold))


def test_download_url_gives_up_after_its_timeout(tmp_path):
    server, url = serve_silently()
    try:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            D.download_url(url + "f.gz", tmp_path / "f.gz", progress=False, timeout=0.3)
        assert time.monotonic() - t0 < 2.5
    finally:
        server.close()
    assert os.listdir(tmp_path) == []


def test_a_server_that_hangs_up_gives_the_offline_message(tmp_path):
    # http.client's RemoteDisconnected is an OSError but not a URLError.
    server, url = serve_silently(hold=0)
    try:
        with pytest.raises(DatasetNotFoundError, match="CIFAR10_DIR"):
            D.find_cifar10_dir(tmp_path / "c", url=url + "cifar-10-python.tar.gz", progress=False)
        with pytest.raises(DatasetNotFoundError, match="MNIST_DIR"):
            D.find_mnist_dir(tmp_path / "m", url=url, progress=False)
    finally:
        server.close()


def test_file_digest_covers_the_whole_file_with_any_algorithm(tmp_path):
    head = bytes(3 << 20)
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(head + b"a")
    b.write_bytes(head + b"b")          # differs only after the first 3 MiB
    assert D.file_digest(a) == hashlib.md5(a.read_bytes()).hexdigest() != D.file_digest(b)
    assert D.file_digest(a, "sha256") == hashlib.sha256(a.read_bytes()).hexdigest()


def test_download_into_the_folder_named_cifar_10_batches_py_itself(tmp_path):
    write_cifar(tmp_path / "src" / "cifar-10-batches-py")
    archive, md5 = make_archive(tmp_path / "cifar.tar.gz", tmp_path / "src")
    folder = tmp_path / "dl" / "cifar-10-batches-py"
    assert D.find_cifar10_dir(folder, url=archive.as_uri(), md5=md5, progress=False) == folder
    assert sorted(os.listdir(folder)) == sorted(OFFICIAL_BATCHES + ["batches.meta"])


def test_download_into_an_empty_cifar_folder_and_a_string_root(tmp_path):
    write_cifar(tmp_path / "src" / "cifar-10-batches-py")
    archive, md5 = make_archive(tmp_path / "cifar.tar.gz", tmp_path / "src")
    (tmp_path / "dl" / "cifar-10-batches-py").mkdir(parents=True)     # empty: allowed
    got = D.download_cifar10(str(tmp_path / "dl"), url=archive.as_uri(), md5=md5, progress=False)
    assert got == tmp_path / "dl" / "cifar-10-batches-py" and D._is_cifar_dir(got)


def test_an_archive_lacking_a_batch_is_corrupt_and_leaves_nothing(tmp_path):
    write_cifar(tmp_path / "src" / "cifar-10-batches-py")
    (tmp_path / "src" / "cifar-10-batches-py" / "data_batch_5").unlink()
    archive, md5 = make_archive(tmp_path / "cifar.tar.gz", tmp_path / "src")
    with pytest.raises(CorruptDataError, match="lacks cifar-10-batches-py/data_batch_5"):
        D.find_cifar10_dir(tmp_path / "dl", url=archive.as_uri(), md5=md5, progress=False)
    assert os.listdir(tmp_path / "dl") == []


def test_wrong_checksum_is_refused_and_removed(tmp_path):
    write_cifar(tmp_path / "src" / "cifar-10-batches-py")
    archive, md5 = make_archive(tmp_path / "cifar.tar.gz", tmp_path / "src")
    dest = tmp_path / "dl"
    with pytest.raises(ChecksumError, match="MD5"):
        D.find_cifar10_dir(dest, url=archive.as_uri(), md5="0" * 32, progress=False)
    assert not dest.exists() or os.listdir(dest) == []


def serve_once_cut_short(body, declared):
    """A local HTTP server that declares ``declared`` bytes, sends ``body`` and hangs up."""
    return _serve(lambda conn: conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % declared + body))


@pytest.mark.parametrize("md5", [None, "0" * 32])
def test_download_cut_short_is_refused_and_leaves_nothing(tmp_path, md5):
    server, url = serve_once_cut_short(b"PK\x03\x04" + b"x" * 1000, declared=100_000)
    try:
        with pytest.raises(OSError, match="got 1004 of its 100000 bytes"):
            D.download_url(url + "imagenet_val_25.npz", tmp_path / "imagenet_val_25.npz",
                           md5=md5, progress=False)
    finally:
        server.close()
    assert os.listdir(tmp_path) == []                  # neither the file nor a .part


def test_download_cut_short_gives_the_offline_message(tmp_path):
    write_cifar(tmp_path / "src" / "cifar-10-batches-py")
    archive, md5 = make_archive(tmp_path / "cifar.tar.gz", tmp_path / "src")
    data = archive.read_bytes()
    server, url = serve_once_cut_short(data[:len(data) // 2], declared=len(data))
    try:
        with pytest.raises(DatasetNotFoundError, match=rf"could not be downloaded.*cut short: got "
                                                       rf"{len(data) // 2} of its {len(data)} bytes"):
            D.find_cifar10_dir(tmp_path / "dl", url=url + "cifar-10-python.tar.gz", md5=None,
                               progress=False)
    finally:
        server.close()
    assert os.listdir(tmp_path / "dl") == []


@pytest.mark.parametrize("what", ["a partial folder", "a file"])
def test_incomplete_folder_is_refused_before_downloading(tmp_path, monkeypatch, what):
    dest = tmp_path / "dl"
    if what == "a file":
        dest.mkdir()
        (dest / "cifar-10-batches-py").write_bytes(b"partial")
    else:
        (dest / "cifar-10-batches-py").mkdir(parents=True)
        (dest / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"partial")

    def no_download(*args, **kwargs):
        raise AssertionError("the 163 MB archive was downloaded only to be thrown away")

    monkeypatch.setattr(D, "download_url", no_download)
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py exists but is incomplete; "
                                                   "remove it and run again") as err:
        D.find_cifar10_dir(dest, progress=False)
    # said as it is, not wrapped in the advice for a failed download
    assert "could not be downloaded" not in str(err.value)
    assert sorted(os.listdir(dest)) == ["cifar-10-batches-py"]      # no temporary folder left
    partial = dest / "cifar-10-batches-py"
    assert (partial if what == "a file" else partial / "data_batch_1").read_bytes() == b"partial"


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_offline_gives_a_message_saying_where_to_put_files(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/cifar-10-python.tar.gz"
    with pytest.raises(DatasetNotFoundError) as err:
        D.find_cifar10_dir(url=url, progress=False)
    msg = str(err.value)
    assert "CIFAR10_DIR" in msg and str(D.cache_dir()) in msg and "cifar-10-batches-py" in msg
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        D.find_cifar10_dir(tmp_path / "empty", download=False)


def _member(name, kind=tarfile.REGTYPE, linkname="", payload=b"evil"):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    info.size = len(payload) if kind == tarfile.REGTYPE else 0
    return info, payload if kind == tarfile.REGTYPE else None


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink out", "hardlink out", "symlink inside", "device"])
def test_path_escaping_archive_is_refused_and_writes_nothing(tmp_path, kind):
    write_cifar(tmp_path / "src" / "cifar-10-batches-py")
    outside = tmp_path / "outside"
    outside.mkdir()
    member = {
        "dotdot": _member("cifar-10-batches-py/../../outside/evil"),
        "absolute": _member(str(outside / "evil")),
        "symlink out": _member("cifar-10-batches-py/link", tarfile.SYMTYPE, str(outside)),
        "hardlink out": _member("cifar-10-batches-py/hl", tarfile.LNKTYPE, "../../outside/x"),
        # Dataset archives hold no links, so even a harmless one is refused.
        "symlink inside": _member("cifar-10-batches-py/link", tarfile.SYMTYPE, "data_batch_1"),
        "device": _member("cifar-10-batches-py/dev", tarfile.CHRTYPE),
    }[kind]
    archive, md5 = make_archive(tmp_path / "cifar.tar.gz", tmp_path / "src", [member])
    dest = tmp_path / "dl"
    with pytest.raises(UnsafeArchiveError, match="refusing|outside"):
        D.find_cifar10_dir(dest, url=archive.as_uri(), md5=md5, progress=False)
    assert os.listdir(outside) == []
    assert not (dest / "cifar-10-batches-py").exists()
    assert os.listdir(dest) == []


S, L = tarfile.SYMTYPE, tarfile.LNKTYPE


def _add(tar, member):
    info, payload = member
    tar.addfile(info, io.BytesIO(payload) if payload is not None else None)


# Links that each pass a check made on its own, but escape once the earlier ones exist.
CHAINED_LINKS = {
    # c -> . makes c/.. the target's parent; the stdlib filter caught this only after
    # writing c.
    "chain": [("c", S, "."), ("a", S, "c/.."), ("a/evil", None, "")],
    # the same with the links in the other order: a is harmless until c appears
    "chain, late": [("a", S, "c/.."), ("c", S, "."), ("a/evil", None, "")],
    "file written through a link": [("c", S, "."), ("up", S, "c/.."), ("up", None, "")],
    "hard link through a link": [("d", tarfile.DIRTYPE, ""), ("d/c", S, "."),
                                 ("d/up", S, "c/.."), ("h", L, "d/up/../outside/x")],
    "nested": [("d", tarfile.DIRTYPE, ""), ("d/p", S, ".."), ("d/p/q", S, ".."),
               ("d/p/q/evil", None, "")],
    "loop": [("x", S, "y"), ("y", S, "x"), ("x/evil", None, "")],
}


@pytest.mark.parametrize("case", sorted(CHAINED_LINKS))
def test_chained_symlinks_are_refused_before_anything_is_written(tmp_path, case):
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        for name, kind, link in CHAINED_LINKS[case]:
            _add(tar, _member(name, kind or tarfile.REGTYPE, link))
    (tmp_path / "outside").mkdir()
    target = tmp_path / "target"
    with pytest.raises(UnsafeArchiveError, match="refusing to extract"):
        D.safe_extract(archive, target)
    assert os.listdir(target) == [] and os.listdir(tmp_path / "outside") == []
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("name", [".", "./"])
@pytest.mark.parametrize("kind, link", [(S, "/"), (S, ".."), (S, "/etc"), (L, "first"),
                                        (tarfile.REGTYPE, "")],
                         ids=["symlink to /", "symlink to ..", "symlink to /etc", "hard link",
                              "file"])
def test_a_member_replacing_the_target_itself_is_refused_before_anything_is_written(
        tmp_path, name, kind, link):
    # "." is the target folder: only a directory may have that name. A link there used to
    # skip every link check and reach tarfile's own filter after "first" was written.
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        _add(tar, _member("first", payload=b"written first"))
        _add(tar, _member(name, kind, link))
    target = tmp_path / "target"
    with pytest.raises(UnsafeArchiveError, match=rf"{re.escape(repr(name))} .*target folder itself; "
                                                 r"refusing to extract"):
        D.safe_extract(archive, target)
    assert os.listdir(target) == []


def test_a_directory_member_named_dot_is_extracted(tmp_path):
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        _add(tar, _member(".", tarfile.DIRTYPE))
        _add(tar, _member("./f", payload=b"data"))
    D.safe_extract(archive, tmp_path / "t")
    assert (tmp_path / "t" / "f").read_bytes() == b"data"


def test_chained_symlinks_in_a_cifar_download_write_nothing(tmp_path):
    write_cifar(tmp_path / "src" / "cifar-10-batches-py")
    # Each link climbs one level more than a check on the bare disk can see.
    top = "cifar-10-batches-py"
    links = [_member(f"{top}/c", S, "."), _member(f"{top}/l0", S, "c/..")]
    links += [_member(f"{top}/l{i}", S, f"l{i - 1}/..") for i in range(1, 6)]
    archive, md5 = make_archive(tmp_path / "cifar.tar.gz", tmp_path / "src",
                                links + [_member(f"{top}/l5/evil")])
    dest = tmp_path / "dl"
    with pytest.raises(UnsafeArchiveError, match="refusing"):
        D.find_cifar10_dir(dest, url=archive.as_uri(), md5=md5, progress=False)
    assert os.listdir(dest) == []
    assert not any("evil" in f for _, _, files in os.walk(tmp_path) for f in files)


# ----------------------------------------------------------------- IDX files (MNIST format)

@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("dtype, shape", [(np.uint8, (4, 5, 3)), (">i4", (7,)), (">f4", (2, 3))])
def test_read_idx_roundtrip(tmp_path, gz, dtype, shape):
    a = (np.arange(np.prod(shape)) % 250).astype(dtype).reshape(shape)
    raw = idx_bytes(a)
    path = tmp_path / "x.idx"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    got = D.read_idx(str(path))
    assert got.shape == shape and np.array_equal(got, a) and got.dtype.isnative


# The type codes of the IDX format (from its description on the MNIST page), each with
# values that only that type holds exactly.
IDX_TYPES = [(0x08, ">u1", [0, 200, 255]), (0x09, ">i1", [-128, -1, 127]),
             (0x0B, ">i2", [-30000, -1, 300]), (0x0C, ">i4", [-2 ** 31, -1, 70000]),
             (0x0D, ">f4", [-1.5, 0.25, 3e38]), (0x0E, ">f8", [-1e300, 1 / 3, 2.0 ** -1000])]


@pytest.mark.parametrize("code, dtype, values", IDX_TYPES, ids=[t[1] for t in IDX_TYPES])
def test_read_idx_decodes_every_type_code(tmp_path, code, dtype, values):
    a = np.array(values, dtype=dtype)
    path = tmp_path / "x.idx"
    path.write_bytes(bytes([0, 0, code, 1]) + struct.pack(">I", a.size) + a.tobytes())
    got = D.read_idx(path)
    assert got.dtype == a.dtype.newbyteorder("=") and got.tolist() == a.tolist()


@pytest.mark.parametrize("damage, match", [
    (lambda r: b"\x01" + r[1:], "bad magic"),
    (lambda r: r[:1] + b"\x01" + r[2:], "bad magic"),
    (lambda r: r[:2] + b"\x07" + r[3:], "bad magic"),
    (lambda r: r[:3] + b"\x00" + r[4:], "bad magic"),        # no dimensions at all
    (lambda r: r[:3], "bad magic"),                          # shorter than the magic number
    (lambda r: b"", "bad magic"),
    (lambda r: r[:-5], "truncated"),
    (lambda r: r + b"\x00", "truncated or corrupt"),
    (lambda r: r[:6], "truncated"),
])
def test_corrupt_idx_is_refused(tmp_path, damage, match):
    raw = idx_bytes(np.zeros((3, 4, 4), np.uint8))
    path = tmp_path / "bad"
    path.write_bytes(damage(raw))
    with pytest.raises(CorruptDataError, match=match):
        D.read_idx(path)


def test_truncated_gzip_is_refused(tmp_path):
    comp = gzip.compress(idx_bytes(np.arange(2000, dtype=np.uint8).reshape(20, 10, 10)))
    path = tmp_path / "x.gz"
    path.write_bytes(comp[: len(comp) // 2])
    with pytest.raises(CorruptDataError, match="truncated or corrupt"):
        D.read_idx(path)


# A gzip header, then a deflate "stored" block whose length check (NLEN = ~LEN) fails.
GZIP_HEADER = bytes.fromhex("1f8b0800000000000003")
BAD_STORED_BLOCK = GZIP_HEADER + bytes([1, 5, 0, 0, 0]) + b"hello" + bytes(8)


@pytest.mark.parametrize("payload", [
    BAD_STORED_BLOCK,                                  # zlib.error, not an OSError
    GZIP_HEADER[:2] + b"\x09" + GZIP_HEADER[3:] + bytes(8),   # bad method: BadGzipFile
    GZIP_HEADER,                                       # header only: EOFError
], ids=["zlib.error", "BadGzipFile", "EOFError"])
def test_corrupt_gzip_stream_is_refused(tmp_path, payload):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(payload)
    with pytest.raises(CorruptDataError, match=r"train-images-idx3-ubyte\.gz: cannot decompress .*"
                                               r"delete it and fetch it again"):
        D.read_idx(path)


@pytest.mark.parametrize("dims, payload", [
    ((2 ** 16,) * 4, b""),           # 2**64 items: int64's product wraps to 0, "matching"
    ((2 ** 32 - 1,) * 3, b""),       # int64 wraps to a wrong size in the message
    ((2 ** 16,) * 4, b"\x00" * 8),
])
def test_idx_header_with_huge_dims_is_refused(tmp_path, dims, payload):
    path = tmp_path / "huge.idx"
    path.write_bytes(bytes([0, 0, 0x08, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload)
    size = 1
    for d in dims:
        size *= d
    with pytest.raises(CorruptDataError, match=rf"= {size} bytes but the file has {len(payload)};"
                                               r" it is truncated or corrupt, delete it"):
        D.read_idx(path)


@pytest.mark.parametrize("gz", [True, False])
def test_load_fashion_mnist_and_mnist_from_env_dirs(tmp_path, monkeypatch, gz):
    arrays = write_idx_set(tmp_path / "fm", gz=gz)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "fm"))
    Xtr, ytr, Xte, yte = D.load_fashion_mnist()
    assert Xtr.dtype == np.uint8 and Xtr.shape == (30, 28, 28) and ytr.dtype == np.int64
    assert np.array_equal(Xte, arrays["t10k-images-idx3-ubyte"])
    assert np.array_equal(ytr, arrays["train-labels-idx1-ubyte"])
    write_idx_set(tmp_path / "mn", seed=1, gz=gz)
    assert D.load_mnist(tmp_path / "mn")[0].shape == (30, 28, 28)


def test_idx_files_named_with_dots_are_found(tmp_path):
    # Some mirrors (Kaggle's MNIST, for one) name them train-images.idx3-ubyte and so on.
    arrays = write_idx_set(tmp_path / "mn", gz=False)
    for f in list((tmp_path / "mn").iterdir()):
        f.rename(f.with_name(f.name.replace("-idx", ".idx")))
    assert np.array_equal(D.load_mnist(tmp_path / "mn", download=False)[2], arrays["t10k-images-idx3-ubyte"])


def test_fashion_mnist_looks_in_the_cache_then_debians_folder_only_without_a_given_one(tmp_path, monkeypatch):
    debian = tmp_path / "debian"
    write_idx_set(debian, seed=1)
    monkeypatch.setattr(D, "DEBIAN_FASHION_MNIST_DIR", debian)
    assert D.find_fashion_mnist_dir(download=False) == debian
    write_idx_set(D.cache_dir() / "fashion-mnist", seed=2)
    assert D.find_fashion_mnist_dir(download=False) == D.cache_dir() / "fashion-mnist"
    # a given folder is authoritative: no fallback to the cache or to Debian's copy
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        D.find_fashion_mnist_dir(tmp_path / "empty", download=False)


def test_fashion_mnist_downloads_into_the_cache_not_debians_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "debian")      # not installed
    src = tmp_path / "mirror"
    write_idx_set(src)
    md5s = {f: hashlib.md5((src / f).read_bytes()).hexdigest() for f in D.FASHION_MNIST_MD5}
    got = D.find_fashion_mnist_dir(url=src.as_uri() + "/", md5s=md5s, progress=False)
    assert got == D.cache_dir() / "fashion-mnist" and not (tmp_path / "debian").exists()


def test_idx_download_fetches_only_the_missing_files(tmp_path):
    src = tmp_path / "mirror"
    write_idx_set(src)
    md5s = {f: hashlib.md5((src / f).read_bytes()).hexdigest() for f in D.MNIST_MD5}
    target = tmp_path / "mn"
    kept = write_idx_set(target, seed=7)                    # all four already there, other data
    (target / "t10k-labels-idx1-ubyte.gz").unlink()        # ... but one
    before = (target / "train-images-idx3-ubyte.gz").read_bytes()
    D.find_mnist_dir(target, url=src.as_uri() + "/", md5s=md5s, progress=False)
    assert (target / "train-images-idx3-ubyte.gz").read_bytes() == before
    assert (target / "t10k-labels-idx1-ubyte.gz").read_bytes() == (src / "t10k-labels-idx1-ubyte.gz").read_bytes()
    assert np.array_equal(D.load_mnist(target)[0], kept["train-images-idx3-ubyte"])


def test_idx_images_that_are_not_uint8_do_not_form_a_dataset(tmp_path):
    folder = tmp_path / "mn"
    write_idx_set(folder)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros((30, 28, 28), ">i4"))))
    with pytest.raises(CorruptDataError, match="train images .* do not form a dataset"):
        D.load_mnist(folder)


def test_idx_set_with_mismatched_labels_or_bad_labels(tmp_path):
    folder = tmp_path / "fm"
    write_idx_set(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros(9, np.uint8))))
    with pytest.raises(CorruptDataError, match="do not form a dataset"):
        D.load_fashion_mnist(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.full(10, 11, np.uint8))))
    with pytest.raises(CorruptDataError, match="labels go up to 11"):
        D.load_fashion_mnist(folder)


@pytest.mark.parametrize("labels, match", [
    (np.array([0, 3, -1, 9, 2, 1, 0, 0, 5, 4], ">i4"), r"t10k labels go down to -1, expected 0\.\.9"),
    (np.array([0, 3, 10, 9, 2, 1, 0, 0, 5, 4], np.uint8), r"t10k labels go up to 10, expected 0\.\.9"),
    (np.array([0.7, 2.9, 8.5] + [1.0] * 7, ">f4"), r"t10k labels are float32, expected integers in 0\.\.9"),
    (np.arange(10, dtype=">f4"), r"t10k labels are float32, expected integers in 0\.\.9"),
], ids=["negative", "10", "fractional", "whole-number floats"])
def test_idx_labels_must_be_integers_in_0_to_9(tmp_path, labels, match):
    folder = tmp_path / "mn"
    write_idx_set(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(CorruptDataError, match=match):
        D.load_mnist(folder)


def test_idx_download_with_checksums_and_offline_message(tmp_path):
    src = tmp_path / "mirror"
    arrays = write_idx_set(src)
    md5s = {f: hashlib.md5((src / f).read_bytes()).hexdigest() for f in D.MNIST_MD5}
    got = D.find_mnist_dir(url=src.as_uri() + "/", md5s=md5s, progress=False)
    assert got == D.cache_dir() / "mnist"
    assert np.array_equal(D.load_mnist()[0], arrays["train-images-idx3-ubyte"])
    bad = dict(md5s, **{"t10k-labels-idx1-ubyte.gz": "f" * 32})
    with pytest.raises(ChecksumError):
        D.find_mnist_dir(tmp_path / "other", url=src.as_uri() + "/", md5s=bad, progress=False)
    assert not (tmp_path / "other" / "t10k-labels-idx1-ubyte.gz").exists()
    url = f"http://127.0.0.1:{_closed_port()}/"
    with pytest.raises(DatasetNotFoundError, match="MNIST_DIR"):
        D.find_mnist_dir(tmp_path / "x", url=url, progress=False)


# ----------------------------------------------------------------- the shipped sample

def test_shipped_sample_is_balanced_real_fashion_mnist():
    s = D.load_sample()
    assert s["X_train"].shape == (9000, 28, 28) and s["X_test"].shape == (2000, 28, 28)
    assert s["X_train"].dtype == np.uint8 and s["y_train"].dtype == np.int64
    assert np.bincount(s["y_train"]).tolist() == [900] * 10
    assert np.bincount(s["y_test"]).tolist() == [200] * 10
    assert len(D.FASHION_MNIST_CLASSES) == 10
    # real garments, not noise: mostly black background, and classes differ in how much
    # of the frame they fill (sandals little, pullovers and coats a lot)
    means = [s["X_train"][s["y_train"] == c].mean() for c in range(10)]
    assert np.mean(s["X_train"] == 0) > 0.3
    assert means[5] < 60 < means[2] and means[4] > 60


@pytest.mark.skipif(not D._has_idx(D.DEBIAN_FASHION_MNIST_DIR),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_shipped_sample_matches_its_source_rows():
    s = D.load_sample()
    with np.load(D.SAMPLE_PATH, allow_pickle=False) as z:
        tr, te = z["train_index"], z["test_index"]
    Xtr, ytr, Xte, yte = D.load_fashion_mnist(D.DEBIAN_FASHION_MNIST_DIR, download=False)
    assert np.array_equal(s["X_train"], Xtr[tr]) and np.array_equal(s["y_test"], yte[te])


def test_utils_reexports_course_names():
    from deep_learning_suite import utils
    assert utils.load_CIFAR10 is D.load_CIFAR10
    assert utils.get_CIFAR10_data is utils.get_cifar10_data is D.get_cifar10_data
