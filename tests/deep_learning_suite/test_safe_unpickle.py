"""``NumpyOnlyUnpickler`` on pickles the tests forge: every attack on its admitted names
(forged array and dtype states, raw bytes as pointers, huge sizes, BUILD on the wrong
objects) is refused without a crash, and every form of a genuine array, dtype and NumPy
scalar still loads. The CIFAR-10 loader's use of it is covered in test_data.py."""

import io
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deep_learning_suite import data as D
from deep_learning_suite import safe_unpickle as U

from .test_data import _Reduce


@pytest.mark.parametrize("encoding", ["latin1", "latin-1", "LATIN_1", "Latin1"])
def test_the_latin1_codecs_encode_of_protocol_2_bytes_is_admitted(encoding):
    payload = pickle.dumps(_Reduce(_codecs_encode(), "\xff\x00a", encoding), protocol=2)
    assert U.NumpyOnlyUnpickler(io.BytesIO(payload)).load() == b"\xff\x00a"


@pytest.mark.parametrize("args", [("abc", "utf-8"), ("abc", "rot13"), (b"abc", "latin1")],
                         ids=["utf-8", "rot13", "bytes"])
def test_codecs_encode_is_refused_for_anything_but_latin1_text(args):
    payload = pickle.dumps(_Reduce(_codecs_encode(), *args), protocol=2)
    with pytest.raises(pickle.UnpicklingError):
        U.NumpyOnlyUnpickler(io.BytesIO(payload)).load()


def _codecs_encode():
    import _codecs
    return _codecs.encode


class _ReduceWithState:
    """Pickles to ``func(*args)`` followed by ``__setstate__(state)``."""

    def __init__(self, func, args, state):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return self.func, self.args, self.state


def _load_in_a_child(path):
    """Unpickle ``path`` with NumpyOnlyUnpickler in a new interpreter and touch every item,
    so that a crash fails the test instead of killing it; returns the child's output."""
    code = ("import sys\nfrom deep_learning_suite import safe_unpickle as U\n"
            "try:\n"
            "    with open(sys.argv[1], 'rb') as f:\n"
            "        print('loaded:', repr(U.NumpyOnlyUnpickler(f).load()['data'].tolist()))\n"
            "except U.UNPICKLE_ERRORS as e:\n    print('refused:', e)\n")
    env = dict(os.environ, PYTHONPATH=str(Path(U.__file__).resolve().parents[1]))
    p = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                       timeout=120, env=env)
    assert p.returncode == 0, (p.returncode, p.stdout[-500:], p.stderr[-2000:])
    return p.stdout


def test_an_object_array_with_too_few_items_is_refused_not_a_crash(tmp_path):
    # NumPy's ndarray.__setstate__ reads an object array's items without checking the
    # list's length: 1000 slots from a list of one read pointers past its end, which
    # segfaulted the interpreter.
    reconstruct, args, state = np.array([0], dtype=object).__reduce__()
    bad = _ReduceWithState(reconstruct, args, (state[0], (1000,), state[2], state[3], [1]))
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": bad, b"labels": []}, protocol=2))
    assert "refused: an object array's pickled items do not match its shape" in _load_in_a_child(path)


def test_an_object_array_over_raw_bytes_is_refused_not_a_crash(tmp_path):
    # np.ndarray((2,), object, buffer) takes the bytes for object pointers: these point
    # nowhere, and touching the items segfaulted the interpreter.
    path = tmp_path / "params.pkl"
    path.write_bytes(pickle.dumps({"data": _Reduce(np.ndarray, (2,), "O", b"\x41" * 16)}, protocol=2))
    assert "refused: an object array made over raw bytes is refused" in _load_in_a_child(path)


_NO_OBJECTS = 0      # the flags word of a dtype holding no Python objects


@pytest.mark.parametrize("how", ["ndarray call", "_reconstruct state"])
@pytest.mark.parametrize("forged", [
    ("O8", (3, "|", None, None, None, -1, -1, _NO_OBJECTS)),
    ("V8", (3, "|", None, ("a",), {"a": (np.dtype("O"), 0)}, 8, 1, _NO_OBJECTS)),
], ids=["object", "struct of one object"])
def test_a_dtype_whose_pickled_flags_hide_its_objects_is_refused_not_a_crash(tmp_path, forged, how):
    # A pickled dtype's state carries its flags, and NumPy trusts them: an object dtype
    # saying "no objects" passed every hasobject check, so raw bytes became object pointers
    # and touching them segfaulted the interpreter.
    dtype = _ReduceWithState(np.dtype, (forged[0], False, True), forged[1])
    if how == "ndarray call":
        data = _Reduce(np.ndarray, (1,), dtype, b"\x41" * 8)
    else:
        reconstruct, args, state = np.zeros(1).__reduce__()
        data = _ReduceWithState(reconstruct, args, (state[0], (1,), dtype, False, b"\x41" * 8))
    path = tmp_path / "params.pkl"
    path.write_bytes(pickle.dumps({"data": data}, protocol=2))
    out = _load_in_a_child(path)
    assert out.startswith("refused:") and "dtype" in out, out


@pytest.mark.parametrize("dtype,state", [
    ("S8", (3, "|", None, None, None, 1 << 30, 1, 0)),
    ("V8", (3, "|", None, ("a",), {"a": (np.dtype("O"), 0)}, 8, 1, 63)),
], ids=["items 1 GiB long", "an object field"])
def test_a_dtype_rebuilt_under_an_array_using_it_is_refused_not_a_crash(tmp_path, dtype, state):
    # The memo hands the array's dtype to np.dtype(dtype, False, True), which returns that
    # very dtype, and a BUILD then changed it in place under the array: its 8 bytes were
    # read as 1 GiB items, or freed as an object pointer, and the interpreter segfaulted.
    a = np.frombuffer(b"\x41" * 8, dtype).copy()
    path = tmp_path / "params.pkl"
    path.write_bytes(pickle.dumps({"data": a, "again": _ReduceWithState(np.dtype, (a.dtype, False, True), state)},
                                  protocol=2))
    out = _load_in_a_child(path)
    assert out.startswith("refused:") and "dtype" in out, out


@pytest.mark.parametrize("forged", [
    ("M8", (3, "<", None, None, None, -1, -1, 0)),
    ("O8", (3, ">", None, None, None, -1, -1, 63)),
], ids=["datetime without its unit", "big-endian objects"])
def test_a_dtype_state_numpy_cannot_take_is_refused_not_a_crash(tmp_path, forged):
    # A datetime's state without the unit item segfaulted in NumPy's __setstate__ itself;
    # an object dtype said to be big-endian segfaulted the first comparison or cast of it.
    dtype = _ReduceWithState(np.dtype, (forged[0], False, True), forged[1])
    reconstruct, args, state = np.zeros(1).__reduce__()
    items = [1] if forged[0] == "O8" else b"\x00" * 8
    data = _ReduceWithState(reconstruct, args, (state[0], (1,), dtype, False, items))
    path = tmp_path / "params.pkl"
    path.write_bytes(pickle.dumps({"data": data}, protocol=2))
    out = _load_in_a_child(path)
    assert out.startswith("refused:") and "dtype" in out, out


def test_an_array_starting_before_its_buffer_is_refused_not_a_crash(tmp_path):
    # NumPy takes np.ndarray's offset as given: a negative one reads before the buffer,
    # and 2**40 bytes before it segfaulted the interpreter.
    path = tmp_path / "params.pkl"
    path.write_bytes(pickle.dumps({"data": _Reduce(np.ndarray, (1,), "f8", b"\x41" * 16, -(1 << 40))},
                                  protocol=2))
    assert "refused: an array starting before its buffer is refused" in _load_in_a_child(path)


class _BuildAgain:
    """Pickles to a BUILD of ``state`` on ``target``, an object pickled earlier (from the memo)."""

    def __init__(self, target, state):
        self.target, self.state = target, state


class _BuildAgainPickler(pickle._Pickler):
    dispatch = dict(pickle._Pickler.dispatch)

    def save_build_again(self, x):
        # With obj already in the memo, save_reduce drops what np.dtype("u1") made and
        # fetches obj back for the BUILD.
        self.save_reduce(np.dtype, ("u1",), x.state, obj=x.target)

    dispatch[_BuildAgain] = save_build_again


def _build_again_pickle(payload):
    buf = io.BytesIO()
    _BuildAgainPickler(buf, protocol=2).dump(payload)
    return buf.getvalue()


def test_an_array_rebuilt_under_a_view_of_it_is_refused_not_a_crash(tmp_path):
    # ndarray.__setstate__ frees the array's memory without looking for views of it: a
    # view made first then read freed memory (a segfault once that memory was unmapped).
    a = np.arange(200000, dtype=">u2")      # byte-swapped, so BUILD copies it to memory of its own
    view = _Reduce(np.ndarray, (a.nbytes,), "u1", a)
    path = tmp_path / "params.pkl"
    path.write_bytes(_build_again_pickle({"data": view,
                                          "again": _BuildAgain(a, np.zeros(1, ">u2").__reduce__()[2])}))
    assert "refused: BUILD on an array that already holds items is refused" in _load_in_a_child(path)


@pytest.mark.parametrize("name", ["numpy.ndarray", "_codecs.encode", "_reconstruct"])
def test_build_on_an_admitted_name_is_refused_and_changes_nothing(name):
    # BUILD on anything but an array or dtype only sets attributes: on the admitted
    # functions themselves that changed them for every later load in the process.
    from numpy._core.multiarray import _reconstruct
    obj = {"numpy.ndarray": np.ndarray, "_codecs.encode": _codecs_encode(),
           "_reconstruct": _reconstruct}[name]
    raw = _build_again_pickle({"data": [obj, _BuildAgain(obj, {"set_by_a_pickle": 1})]})
    with pytest.raises(pickle.UnpicklingError, match="BUILD on"):
        U.NumpyOnlyUnpickler(io.BytesIO(raw)).load()
    assert not any(hasattr(f, "set_by_a_pickle") for f in
                   (U._NDARRAY_FOR_PICKLES, U._latin1_encode, U._reconstruct_for_pickles))


@pytest.mark.parametrize("how", ["_reconstruct", "ndarray of objects", "ndarray of floats"])
def test_an_array_whose_items_are_not_in_the_file_is_refused(how):
    # A few bytes of pickle asked NumPy to allocate (and for objects, write) any number of
    # items: (10**9,) objects is 7.45 GiB. A million is enough to show the refusal here.
    from numpy._core.multiarray import _reconstruct
    data = {"_reconstruct": _Reduce(_reconstruct, np.ndarray, (10**6,), "O"),
            "ndarray of objects": _Reduce(np.ndarray, (10**6,), "O"),
            "ndarray of floats": _Reduce(np.ndarray, (10**6,), "f8")}[how]
    raw = pickle.dumps({"data": data}, protocol=2)
    with pytest.raises(pickle.UnpicklingError):
        U.NumpyOnlyUnpickler(io.BytesIO(raw)).load()


def test_an_array_over_an_object_arrays_pointers_is_refused():
    # np.ndarray(shape, "<i8", object_array) read the object pointers as numbers, handing
    # the process's memory addresses to whoever wrote the file.
    raw = pickle.dumps({"data": _Reduce(np.ndarray, (1,), "<i8", np.array([None], dtype=object))}, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="object array"):
        U.NumpyOnlyUnpickler(io.BytesIO(raw)).load()


def test_an_object_array_of_thousands_of_huge_dimensions_is_refused_at_once():
    # Multiplying 100000 sizes of 2**62 to compare with the item list took some 20 s; NumPy
    # allows 64 dimensions at most, so more are refused before any arithmetic.
    reconstruct, args, state = np.array([0], dtype=object).__reduce__()
    bad = _ReduceWithState(reconstruct, args, (state[0], (2**62,) * 20000, state[2], state[3], [1]))
    raw = pickle.dumps({"data": bad}, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="20000 dimensions"):
        U.NumpyOnlyUnpickler(io.BytesIO(raw)).load()


def test_a_dtype_nested_too_deep_is_a_corrupt_batch(tmp_path):
    # np.dtype([("a", [("a", ... "f8")])]) 10000 levels deep raised RecursionError, which
    # escaped load_CIFAR_batch instead of becoming a CorruptDataError.
    def text(s):
        return pickle.BINUNICODE + struct.pack("<I", len(s)) + s.encode()
    depth = 10000
    spec = (pickle.MARK + pickle.MARK + text("a")) * depth + text("f8") + (pickle.TUPLE + pickle.LIST) * depth
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.PROTO + b"\x02" + pickle.GLOBAL + b"numpy\ndtype\n" + pickle.MARK + spec
                     + pickle.TUPLE + pickle.REDUCE + pickle.STOP)
    with pytest.raises(D.CorruptDataError, match="data_batch_1 is not a genuine CIFAR-10 batch"):
        D.load_CIFAR_batch(path)


@pytest.mark.parametrize("how", ["dtype from a list", "dtype from a comma string", "ndarray call"])
def test_record_dtypes_are_refused_however_they_are_made(how):
    # Records are not in the files read here, and NumPy trusts their items: invalid text in
    # a "U1" field raised SystemError when read (repr, tolist) instead of a refusal.
    if how == "ndarray call":
        data = _Reduce(np.ndarray, (1,), "U1,U1", b"\x41" * 8)
    else:
        spec = [("a", "U1")] if how == "dtype from a list" else "U1,U1"
        data = _Reduce(np.ndarray, (1,), _Reduce(np.dtype, spec), b"\x41" * 8)
    raw = pickle.dumps({"data": data}, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        U.NumpyOnlyUnpickler(io.BytesIO(raw)).load()


@pytest.mark.parametrize("how", ["ndarray call", "_reconstruct state"])
def test_text_past_the_last_unicode_code_point_is_refused(how):
    # "U" items are UCS-4 code units that NumPy trusts: 0x41414141 raised SystemError on
    # tolist() or repr, an error type no caller turns into CorruptDataError.
    if how == "ndarray call":
        data = _Reduce(np.ndarray, (1,), "<U1", b"\x41" * 4)
    else:
        reconstruct, args, state = np.zeros(1).__reduce__()
        data = _ReduceWithState(reconstruct, args, (state[0], (1,), np.dtype("<U1"), False, b"\x41" * 4))
    raw = pickle.dumps({"data": data}, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="no valid text"):
        U.NumpyOnlyUnpickler(io.BytesIO(raw)).load()


@pytest.mark.parametrize("spec,item", [([("a", "M8[s]"), ("b", "O")], "x"), (("O", (2,)), ())],
                         ids=["record", "subarray"])
def test_an_array_of_structured_objects_is_refused(spec, item):
    # Filling a record or subarray of objects from an item that does not fit it made
    # NumPy's __setstate__ return with an exception set: a SystemError.
    reconstruct, args, state = np.zeros(1).__reduce__()
    dtype = _Reduce(np.dtype, spec)
    data = _ReduceWithState(reconstruct, args, (state[0], (1,), dtype, False, [item]))
    raw = pickle.dumps({"data": data}, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        U.NumpyOnlyUnpickler(io.BytesIO(raw)).load()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_empty_arrays_load_at_every_protocol(protocol):
    # Python 3 pickles b"" at protocol 2 as a call of __builtin__.bytes with no arguments
    # (an empty array's data), and protocol 5 every array as numpy's _frombuffer.
    a = {"w": np.zeros((2, 0), np.float32), "b": np.zeros(0), "x": np.arange(3)}
    b = U.NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(a, protocol=protocol))).load()
    assert {k: (v.dtype, v.shape, v.tolist()) for k, v in b.items()} == \
        {k: (v.dtype, v.shape, v.tolist()) for k, v in a.items()}


@pytest.mark.parametrize("args", [(b"x",), ("os",), ([1, 2],), (10 ** 12,)],
                         ids=["bytes", "str", "list", "a size"])
def test_bytes_is_admitted_only_for_the_empty_string(args):
    payload = pickle.dumps(_Reduce(bytes, *args), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="bytes"):
        U.NumpyOnlyUnpickler(io.BytesIO(payload)).load()


@pytest.mark.parametrize("buffer, dtype, shape, order", [
    (b"\x41" * 16, "O", (2,), "C"),                  # raw bytes as object pointers
    (b"\x41" * 16, "<f8", (3,), "C"),                # more items than bytes
    (b"\x41" * 16, "<f8", (10 ** 12,), "C"),         # a huge shape over a few bytes
    (b"\x41" * 8, "<U2", (1,), "C"),                 # text past U+10FFFF
    (b"\x41" * 16, "<f8", (2,), "K"),                # not an order a pickle gives
    ([1.0, 2.0], "<f8", (2,), "C"),                  # not bytes at all
], ids=["objects", "short", "huge", "bad text", "order", "list"])
def test_protocol_5_arrays_are_checked_like_the_others(buffer, dtype, shape, order):
    frombuffer = U.NumpyOnlyUnpickler(io.BytesIO(b"")).find_class("numpy._core.numeric", "_frombuffer")
    payload = pickle.dumps(_Reduce(frombuffer, buffer, _Reduce(np.dtype, dtype), shape, order),
                           protocol=2)
    payload = payload.replace(b"cdeep_learning_suite.safe_unpickle\n_frombuffer_for_pickles\n",
                              b"cnumpy._core.numeric\n_frombuffer\n")
    assert b"deep_learning_suite" not in payload
    with pytest.raises(U.UNPICKLE_ERRORS):
        U.NumpyOnlyUnpickler(io.BytesIO(payload)).load()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_scalars_load(protocol):
    # A course model's hyperparameters are often NumPy scalars (reg = np.float64(...)).
    values = [np.float64(0.5), np.float32(-2.25), np.int64(-7), np.bool_(True), np.str_("ab"),
              np.complex128(1 - 2j), np.datetime64("2025-01-02", "D")]
    loaded = U.NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(values, protocol=protocol))).load()
    assert [(type(v), v) for v in loaded] == [(type(v), v) for v in values]


@pytest.mark.parametrize("dtype, data", [
    ("O", b"\x41" * 8),                     # bytes as an object pointer
    ("<f8", b"\x41" * 4),                   # fewer bytes than the item
    ("<f8", b"\x41" * 16),                  # more
    ("<U1", b"\x41" * 4),                   # text past U+10FFFF
    ("<f8", [1.0]),                         # not bytes
], ids=["object", "short", "long", "bad text", "list"])
def test_numpy_scalars_are_checked_like_arrays(dtype, data):
    payload = pickle.dumps(_Reduce(np.float64(0).__reduce__()[0], _Reduce(np.dtype, dtype), data), protocol=2)
    assert b"multiarray\nscalar\n" in payload
    with pytest.raises(pickle.UnpicklingError):
        U.NumpyOnlyUnpickler(io.BytesIO(payload)).load()


@pytest.mark.parametrize("dtype", ["<U5", "<M8[s]", "<m8[ms]", "|S3", "<c16", "?", "O"])
def test_arrays_of_every_plain_dtype_still_load(tmp_path, dtype):
    a = np.zeros(3, dtype)
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps({"data": a}, protocol=2))
    with open(path, "rb") as f:
        b = U.NumpyOnlyUnpickler(f).load()["data"]
    assert b.dtype == a.dtype and b.dtype.flags == a.dtype.flags and b.tolist() == a.tolist()


def test_object_arrays_with_matching_items_and_plain_arrays_over_bytes_still_load(tmp_path):
    # The 0-d object arrays of the course's .npy files, and np.ndarray(shape, dtype, buffer)
    # for numbers, are what genuine files hold.
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps({"data": np.array([{"a": 1}, [2]], dtype=object),
                                   "raw": _Reduce(np.ndarray, (2,), "<f8", np.arange(2.0).tobytes())},
                                  protocol=2))
    with open(path, "rb") as f:
        d = U.NumpyOnlyUnpickler(f).load()
    assert d["data"].tolist() == [{"a": 1}, [2]] and d["raw"].tolist() == [0.0, 1.0]
