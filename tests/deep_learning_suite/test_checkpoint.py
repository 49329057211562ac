import json
import os
import pickle
import zipfile

import numpy as np
import pytest

from deep_learning_suite import checkpoint as ck
from deep_learning_suite.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def sample_state(rng):
    return {
        "params": {"W1": rng.standard_normal((4, 3)).astype(np.float32),
                   "b1": rng.standard_normal(3)},
        "optim": {"W1": {"learning_rate": 1e-3, "t": 7, "m": rng.standard_normal((4, 3))}},
        "bn": [{"mode": "train", "running_mean": np.arange(5, dtype=np.float64)}, {"mode": "test"}],
        "labels": np.array([3, 1, 2], dtype=np.int64),
        "history": [2.3, 1.5, float("nan")],
        "rng": np.random.default_rng(0).bit_generator.state,   # holds 128-bit integers
        "name": "adam", "nothing": None, "flag": True, "np_scalar": np.float64(0.25),
    }


def assert_same(a, b):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    elif isinstance(a, dict):
        assert set(a) == set(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b and type(a) is type(b) or (isinstance(a, np.generic) and a.item() == b)


def test_roundtrip_preserves_arrays_dtypes_and_values(tmp_path, rng):
    state = sample_state(rng)
    path = save_checkpoint(tmp_path / "ck", state)
    assert path.name == "ck.npz"
    assert_same(state, load_checkpoint(path))
    # the file is a plain npz that numpy opens without pickle
    with np.load(path, allow_pickle=False) as z:
        assert "state/params/W1" in z.files and "__meta__" in z.files


def test_numpy_scalars_load_as_python_numbers(tmp_path):
    # np.float32 is no float subclass: left as it is, JSON could not hold it at all
    state = {"lr": np.float32(0.5), "t": np.int64(3), "ok": np.bool_(True)}
    loaded = load_checkpoint(save_checkpoint(tmp_path / "c.npz", state))
    assert loaded == {"lr": 0.5, "t": 3, "ok": True}
    assert [type(loaded[k]) for k in ("lr", "t", "ok")] == [float, int, bool]


def test_npz_is_appended_to_a_name_with_a_dot_not_substituted(tmp_path):
    # with_suffix would make both "lr0.npz": the second run would overwrite the first
    a = save_checkpoint(tmp_path / "lr0.001", {"x": 1})
    b = save_checkpoint(tmp_path / "lr0.01", {"x": 2})
    assert (a.name, b.name) == ("lr0.001.npz", "lr0.01.npz")
    assert load_checkpoint(a) == {"x": 1} and load_checkpoint(b) == {"x": 2}


def test_file_gets_the_usual_permissions(tmp_path, rng):
    umask = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "p.npz", sample_state(rng))
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_saving_never_touches_the_process_umask(tmp_path, rng, monkeypatch):
    # Setting the umask to read it would race with other threads creating files: for that
    # moment their files would be created without the user's umask.
    def no_umask(mask):
        raise AssertionError("atomic_write changed the umask")
    monkeypatch.setattr(os, "umask", no_umask)
    path = save_checkpoint(tmp_path / "p.npz", sample_state(rng))
    assert path.stat().st_size > 0 and [p.name for p in tmp_path.iterdir()] == ["p.npz"]


def test_a_key_with_a_slash_that_clashes_with_a_nested_path_is_refused(tmp_path):
    # Array names are the keys joined by "/": saved, both arrays here would go under
    # "state/a/b", one would be lost and the other load in both places, checksum and all.
    state = {"a/b": np.array([1.0]), "a": {"b": np.array([2.0])}}
    with pytest.raises(ValueError, match=r"'state/a/b'.*'/'.*rename"):
        save_checkpoint(tmp_path / "c.npz", state)
    assert not os.listdir(tmp_path)                   # neither the file nor a temporary one


@pytest.mark.parametrize("marker", ["state/x", "state/nowhere"])
def test_a_dict_holding_only_the_array_marker_key_is_refused(tmp_path, marker):
    # {"__array__": name} is how the file marks an array's place: such a user dict would load
    # back as the array it names, or as a "tampered" file when it names none.
    with pytest.raises(ValueError, match=r"state/d: a dict whose only key is '__array__'.*rename"):
        save_checkpoint(tmp_path / "c.npz", {"d": {"__array__": marker}, "x": np.ones(1)})
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("state", [{"a/b": np.array([1.0]), "c": {"b": np.array([2.0])}},
                                   {"a": [np.array([1.0]), {"0": np.array([2.0])}]}],
                         ids=["slash-no-clash", "list-and-dict"])
def test_states_whose_array_names_differ_still_round_trip(tmp_path, state):
    assert_same(state, load_checkpoint(save_checkpoint(tmp_path / "c.npz", state)))


@pytest.mark.parametrize("a", [np.array([{"x": 1}], dtype=object), np.array(["adam"]), np.array([b"x"])],
                         ids=["object", "str", "bytes"])
def test_object_arrays_are_refused(tmp_path, a):
    with pytest.raises(TypeError, match="only numeric arrays"):
        save_checkpoint(tmp_path / "x.npz", {"a": a})
    assert not os.listdir(tmp_path)


def test_bool_arrays_and_dicts_with_an_array_key_round_trip(tmp_path):
    # "__array__" alone marks a saved array; a user's dict that merely holds that key is data
    state = {"mask": np.array([True, False]), "d": {"__array__": "state/mask", "n": 1}}
    assert_same(state, load_checkpoint(save_checkpoint(tmp_path / "c.npz", state)))


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_truncated_checkpoint_is_detected_and_previous_stays_loadable(tmp_path, rng, keep):
    good = save_checkpoint(tmp_path / "run_epoch_1.npz", sample_state(rng))
    bad = save_checkpoint(tmp_path / "run_epoch_2.npz", sample_state(rng))
    data = bad.read_bytes()
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="run_epoch_2.npz"):
        load_checkpoint(bad)
    load_checkpoint(good)


# PK\x01\x02 is a zip's central directory record, not its start: np.load would try it as a pickle.
@pytest.mark.parametrize("content", [b"garbage\n", b"\x80\x04K\x01.", b"\x93NUMPY", b"", b"PK\x01\x02\x14\x00"])
def test_a_file_that_is_not_a_zip_is_refused_without_unpickling_advice(tmp_path, content):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="x.npz is not a cs231n-toolkit checkpoint") as e:
        load_checkpoint(path)
    assert "pickle" not in str(e.value)


def test_flipped_byte_is_detected(tmp_path, rng):
    state = sample_state(rng)
    path = save_checkpoint(tmp_path / "c.npz", state)
    data = bytearray(path.read_bytes())
    # flip a byte inside the W1 array's payload
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("state/params/W1.npy")
    pos = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.file_size - 3
    data[pos] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="c.npz"):
        load_checkpoint(path)


def _rewrite(path, change):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    np.savez(path, **arrays)


def test_edited_array_fails_the_sha256(tmp_path, rng):
    path = save_checkpoint(tmp_path / "c.npz", sample_state(rng))
    _rewrite(path, lambda a: a.__setitem__("state/params/b1", a["state/params/b1"] + 1e-12))
    with pytest.raises(CheckpointError, match="c.npz fails its SHA-256"):
        load_checkpoint(path)


@pytest.mark.parametrize("relabel", [lambda a: a.view(np.int64), lambda a: a.reshape(3, 2)],
                         ids=["dtype", "shape"])
def test_same_bytes_under_another_dtype_or_shape_fail_the_sha256(tmp_path, relabel):
    # the bytes are unchanged, so only the dtype and shape in the digest can tell
    path = save_checkpoint(tmp_path / "c.npz", {"W": np.arange(6.0).reshape(2, 3)})
    _rewrite(path, lambda a: a.__setitem__("state/W", relabel(a["state/W"])))
    with pytest.raises(CheckpointError, match="c.npz fails its SHA-256"):
        load_checkpoint(path)


def test_edited_metadata_fails_the_sha256(tmp_path, rng):
    path = save_checkpoint(tmp_path / "c.npz", sample_state(rng))

    def bump_lr(a):
        meta = a["__meta__"].tobytes().replace(b'"learning_rate": 0.001', b'"learning_rate": 0.1')
        a["__meta__"] = np.frombuffer(meta, dtype=np.uint8)

    _rewrite(path, bump_lr)
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(path)


def test_plain_npz_and_missing_file_are_not_checkpoints(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a cs231n-toolkit checkpoint"):
        load_checkpoint(tmp_path / "plain.npz")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.npz")


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_posing_as_a_checkpoint_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(CheckpointError, match="evil.npz"):
        load_checkpoint(path)
    assert not marker.exists()


def test_a_pickled_array_inside_a_checkpoint_zip_runs_nothing(tmp_path):
    # a real zip, so only allow_pickle=False stands between np.load and the object array
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    np.savez(path, __meta__=np.frombuffer(b"{}", np.uint8), x=np.array([_Evil(marker)], dtype=object))
    with pytest.raises(CheckpointError, match="evil.npz"):
        load_checkpoint(path)
    assert not marker.exists()


def test_failed_write_leaves_previous_file_intact(tmp_path, rng, monkeypatch):
    path = save_checkpoint(tmp_path / "c.npz", sample_state(rng))
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(ck.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, sample_state(rng))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["c.npz"]


def test_interrupted_write_leaves_previous_file_intact(tmp_path, rng, monkeypatch):
    # Ctrl-C is no Exception: the temporary file must still be cleaned up
    path = save_checkpoint(tmp_path / "c.npz", sample_state(rng))
    before = path.read_bytes()

    def interrupted_savez(f, **arrays):
        f.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(ck.np, "savez", interrupted_savez)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, sample_state(rng))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["c.npz"]


def test_temporary_file_is_written_in_the_target_folder(tmp_path, rng, monkeypatch):
    # os.replace is atomic only within one file system, so the temporary file sits beside the target
    sources = []
    real_replace = os.replace
    monkeypatch.setattr(ck.os, "replace", lambda src, dst: (sources.append(src), real_replace(src, dst))[1])
    path = save_checkpoint(tmp_path / "sub" / "c.npz", sample_state(rng))
    assert [os.path.dirname(s) for s in sources] == [str(path.parent)]


def test_bytes_are_fsynced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    # A power cut after an un-fsync'ed rename can leave an empty or partial file under the old
    # name; one after an un-fsync'ed folder can lose the rename itself.
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        st = os.fstat(fd)
        events.append(("fsync", st.st_ino, st.st_size))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.stat(src).st_ino, os.stat(src).st_size))
        real_replace(src, dst)

    monkeypatch.setattr(ck.os, "fsync", fsync)
    monkeypatch.setattr(ck.os, "replace", replace)
    path = ck.atomic_write(tmp_path / "f.bin", lambda f: f.write(b"x" * 1000))
    file_ino, dir_ino = path.stat().st_ino, tmp_path.stat().st_ino
    assert events[:2] == [("fsync", file_ino, 1000), ("replace", file_ino, 1000)]
    assert [e[:2] for e in events[2:]] == [("fsync", dir_ino)]


def small_state():
    return {"params": {"W": np.arange(6, dtype=np.float32).reshape(2, 3)}, "t": 3, "h": [1.5]}


@pytest.mark.parametrize("bit", range(8))
def test_every_bit_flip_fails_with_a_checkpoint_error_or_loads_the_same_state(tmp_path, bit):
    # Each byte of a small real checkpoint, with this bit flipped. A flip in a zip header used
    # to escape as zipfile's NotImplementedError ("compressed patched data", "zip file
    # version") or RuntimeError ("encrypted"). A flip in bookkeeping that nothing loaded
    # reads (a timestamp) is harmless, as the module docstring says: the state must then be
    # exactly the one saved. Never another exception, never different state.
    state = small_state()
    raw = save_checkpoint(tmp_path / "good.npz", state).read_bytes()
    path = tmp_path / "flipped.npz"
    refused = 0
    for pos in range(len(raw)):
        data = bytearray(raw)
        data[pos] ^= 1 << bit
        path.write_bytes(bytes(data))
        try:
            loaded = load_checkpoint(path)
        except CheckpointError as e:
            assert "flipped.npz" in str(e)
            refused += 1
        else:
            assert_same(state, loaded)
    assert refused > len(raw) // 2


def _forge(path, meta_bytes, arrays=None):
    """An npz holding ``meta_bytes`` as its JSON, with a SHA-256 recomputed to match."""
    arrays = dict(arrays or {})
    payload = dict(arrays)
    payload["__meta__"] = np.frombuffer(meta_bytes, dtype=np.uint8)
    payload["__sha256__"] = np.frombuffer(ck._digest(meta_bytes, arrays).encode(), dtype=np.uint8)
    np.savez(path, **payload)
    return path


def _meta(state):
    return json.dumps({"format": ck.FORMAT, "version": ck.VERSION, "state": state}).encode()


@pytest.mark.parametrize("meta, match", [
    pytest.param(b"{not json", "is not valid JSON", id="bad-json"),      # was JSONDecodeError
    pytest.param(b"\xff\xfe", "is not valid JSON", id="not-utf8"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "is not valid JSON",
                 id="nested-too-deep"),                                  # RecursionError
    pytest.param(b"[1, 2]", "is an array, where a checkpoint's is an object",
                 id="list"),                                             # was AttributeError
    pytest.param(b'"state"', "is a string", id="string"),
    pytest.param(b"null", "is null", id="null"),
    pytest.param(json.dumps({"format": ck.FORMAT, "version": ck.VERSION}).encode(),
                 "has no 'state'", id="no-state"),                       # was KeyError
    pytest.param(_meta({"__array__": "nope"}), "refers to an array 'nope'",
                 id="dangling-array"),                                   # was KeyError
    pytest.param(_meta({"w": {"__array__": 5}}), "refers to an array 5", id="number-key"),
    pytest.param(_meta([{"__array__": ["a"]}]), r"refers to an array \['a'\]",
                 id="list-key"),                                         # was TypeError
])
def test_valid_checksum_over_bad_metadata_is_a_checkpoint_error(tmp_path, meta, match):
    path = _forge(tmp_path / "forged.npz", meta)
    with pytest.raises(CheckpointError, match=match) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert "forged.npz" in msg
    assert "passes its SHA-256 check" in msg and "use another one" in msg


def test_a_checksum_that_is_not_ascii_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "c.npz"
    np.savez(path, __meta__=np.frombuffer(_meta({}), np.uint8), __sha256__=np.frombuffer(b"\xff" * 64, np.uint8))
    with pytest.raises(CheckpointError, match="c.npz fails its SHA-256"):
        load_checkpoint(path)


def test_forged_file_with_good_metadata_loads_and_other_versions_are_refused(tmp_path):
    w = np.ones(3, np.float32)
    path = _forge(tmp_path / "ok.npz", _meta({"w": {"__array__": "state/w"}}), {"state/w": w})
    assert_same({"w": w}, load_checkpoint(path))
    meta = json.dumps({"format": ck.FORMAT, "version": 99, "state": {}}).encode()
    with pytest.raises(CheckpointError, match="unsupported checkpoint format.*version 99"):
        load_checkpoint(_forge(tmp_path / "v99.npz", meta))


def test_a_file_of_another_format_with_the_right_version_is_refused(tmp_path):
    meta = json.dumps({"format": "someone-elses-checkpoint", "version": ck.VERSION, "state": {}}).encode()
    with pytest.raises(CheckpointError, match="unsupported checkpoint format 'someone-elses-checkpoint'"):
        load_checkpoint(_forge(tmp_path / "other.npz", meta))


@pytest.mark.parametrize("error", [PermissionError(13, "Permission denied"),
                                   OSError(5, "Input/output error")])
def test_a_checkpoint_that_cannot_be_opened_is_a_checkpoint_error(tmp_path, rng, monkeypatch, error):
    # The tests run as root, which reads any file whatever its mode: the failing open is faked.
    path = save_checkpoint(tmp_path / "c.npz", sample_state(rng))

    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr(ck, "open", refuse, raising=False)
    with pytest.raises(CheckpointError, match=f"checkpoint {path} cannot be read .*{error.strerror}"):
        load_checkpoint(path)


def test_a_folder_is_not_a_checkpoint(tmp_path):
    # it used to be "does not exist", which sends the user looking for a typo
    with pytest.raises(CheckpointError, match=f"{tmp_path} is a folder, not a checkpoint file"):
        load_checkpoint(tmp_path)
