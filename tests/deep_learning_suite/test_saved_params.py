"""save/load of the course's models (2024+ notebooks) and the pickle-free file behind them."""

import errno
import os
import pickle
import re
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

import deep_learning_suite
from deep_learning_suite import saved_params
from deep_learning_suite.fully_connected_net import FullyConnectedNet, TwoLayerNet
from deep_learning_suite.saved_params import SavedParamsError, load_params, save_params
from linear_classifiers.linear_classifier import LinearSVM, Softmax

D, C = 6, 3


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Every test runs in its own tmp_path, so a bare name's ./saved/ is inside it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, D)), rng.integers(C, size=n)


def _linear(cls):
    def make(trained):
        model = cls()
        if trained:
            X, y = _data(40)
            y[:C] = np.arange(C)  # every class occurs, so W is (D, C)
            model.train(X, y, learning_rate=0.1, num_iters=20, batch_size=10, seed=0)
        return model
    return make


def _net(**kwargs):
    def make(trained):
        # "Untrained" is another seed: different weights that the load must overwrite.
        return FullyConnectedNet([5, 4], input_dim=D, num_classes=C, seed=0 if trained else 1, **kwargs)
    return make


def _two_layer(trained):
    return TwoLayerNet(input_dim=D, hidden_dim=7, num_classes=C, weight_scale=0.5, seed=0 if trained else 1)


def _params(model):
    return {"W": model.W} if isinstance(model, (LinearSVM, Softmax)) else model.params


def _outputs(model, X, y):
    """What the model computes: predictions, or test-mode scores then train-mode loss and grads."""
    if isinstance(model, (LinearSVM, Softmax)):
        return [model.predict(X), X @ model.W]
    out = [model.loss(X)]
    if not model.use_dropout:  # a seeded dropout mask follows the constructor's seed, not the file
        loss, grads = model.loss(X, y)
        out += [np.asarray(loss)] + [grads[k] for k in sorted(grads)]
    return out


MODELS = {
    "LinearSVM": _linear(LinearSVM),
    "Softmax": _linear(Softmax),
    "TwoLayerNet": _two_layer,
    "FullyConnectedNet": _net(dtype=np.float64),
    "FullyConnectedNet-float32": _net(),
    "FullyConnectedNet-batchnorm": _net(normalization="batchnorm", dtype=np.float64),
    "FullyConnectedNet-layernorm-dropout": _net(normalization="layernorm", dropout_keep_ratio=0.5),
}


@pytest.mark.parametrize("make", MODELS.values(), ids=MODELS.keys())
def test_round_trip_into_a_fresh_model_computes_the_same(make, in_tmp, capsys):
    X, y = _data()
    model = make(True)
    expected = _outputs(model, X, y)
    assert model.save("best_model.npy") is None
    assert capsys.readouterr().out == "best_model.npy saved.\n"
    assert os.listdir(in_tmp / "saved") == ["best_model.npy"]  # the name exactly, no temp file

    fresh = make(False)
    params_dict = getattr(fresh, "params", None)
    assert fresh.load("best_model.npy") is True
    assert capsys.readouterr().out == "best_model.npy loaded.\n"
    got = _outputs(fresh, X, y)
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(got, expected))
    if params_dict is not None:
        assert fresh.params is params_dict  # the very dict loss reads, updated in place
        assert all(v.dtype == fresh.dtype and v.flags.writeable for v in fresh.params.values())
    # The file is pickle-free: NumPy reads it with pickle off, by content, despite ".npy".
    with np.load(in_tmp / "saved" / "best_model.npy", allow_pickle=False) as z:
        assert set(z.files) == ({"W"} if params_dict is None else set(params_dict))


@pytest.mark.parametrize("make", MODELS.values(), ids=MODELS.keys())
def test_missing_file_returns_false_and_leaves_the_model_alone(make, capsys):
    model = make(True)
    before = {k: v.copy() for k, v in _params(model).items()}
    assert model.load("no_such_model.npy") is False
    assert capsys.readouterr().out == "no_such_model.npy not available.\n"
    after = _params(model)
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert not Path("saved").exists()  # loading creates nothing


@pytest.mark.parametrize("make", MODELS.values(), ids=MODELS.keys())
def test_reads_a_file_written_the_courses_way(make, in_tmp, capsys):
    """The course's save(): np.save of the dict, i.e. a pickled 0-d object array."""
    X, y = _data()
    model = make(True)
    params = _params(model)
    (in_tmp / "saved").mkdir()
    np.save(in_tmp / "saved" / "course.npy", params, allow_pickle=True)
    fresh = make(False)
    assert fresh.load("course.npy") is True
    assert capsys.readouterr().out == "course.npy loaded.\n"
    assert all(np.array_equal(a, b) for a, b in zip(_outputs(fresh, X, y), _outputs(model, X, y)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.complex128, ">f8"])
def test_load_params_keeps_dtype_shape_and_values(dtype):
    rng = np.random.default_rng(0)
    params = {"W1": (10 * rng.standard_normal((4, 3))).astype(dtype), "b1": np.arange(3).astype(dtype),
              "s": np.array(2.5).astype(dtype), "empty": np.zeros((0, 5), dtype),
              "F": np.asfortranarray((10 * rng.standard_normal((3, 2))).astype(dtype))}
    path = save_params("p.npy", params)
    got = load_params("p.npy")
    assert list(got) == list(params)
    for k, v in params.items():
        assert got[k].dtype == np.dtype(dtype).newbyteorder("=") and got[k].shape == v.shape
        assert np.array_equal(got[k], v) and got[k].flags.writeable
    assert path == Path.cwd() / "saved" / "p.npy"


def test_names_that_are_np_savez_arguments_round_trip():
    params = {"file": np.ones(2), "allow_pickle": np.zeros(3), "a/b": np.arange(4.0)}
    save_params("odd.npy", params)
    got = load_params("odd.npy")
    assert set(got) == set(params) and all(np.array_equal(got[k], params[k]) for k in params)


@pytest.mark.parametrize("fname, folder, where", [
    ("best.npy", None, "saved/best.npy"),            # a bare name: ./saved/, created
    ("model", None, "saved/model"),                  # no suffix is added
    ("out/deep/w.npy", None, "out/deep/w.npy"),      # a directory part: used as given
    ("./w.npy", None, "w.npy"),
    ("w.npy", "elsewhere", "elsewhere/w.npy"),       # folder= overrides
    (Path("p.npz"), Path("f"), "f/p.npz"),
])
def test_where_files_go_and_names_kept_exactly(fname, folder, where, in_tmp):
    path = save_params(fname, {"W": np.eye(2)}, folder=folder)
    assert path.resolve() == (in_tmp / where).resolve()
    assert (in_tmp / where).is_file()
    assert [p for p in in_tmp.rglob("*") if p.is_file()] == [in_tmp / where]
    assert np.array_equal(load_params(fname, folder=folder)["W"], np.eye(2))


def test_absolute_path_is_used_as_given(in_tmp):
    target = in_tmp / "abs" / "w.npy"
    save_params(str(target), {"W": np.eye(2)})
    assert target.is_file() and not (in_tmp / "saved").exists()


def test_a_bare_name_is_resolved_at_call_time_never_next_to_the_package(in_tmp, monkeypatch):
    package_saved = Path(deep_learning_suite.__file__).resolve().parent.parent / "saved"
    existed = package_saved.exists()
    other = in_tmp / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    FullyConnectedNet([3], input_dim=D, num_classes=C, seed=0).save("n.npy")
    assert (other / "saved" / "n.npy").is_file()
    assert package_saved.exists() == existed


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_in_the_course_layout_a_bare_name_goes_to_cs231n_saved(in_tmp, capsys):
    # A notebook run from the assignment folder, which holds cs231n/ (datasets/, saved/...):
    # the course's save() writes <assignment>/cs231n/saved/<name>, and collectSubmission.sh
    # zips "cs231n/saved", so that is where the model goes.
    (in_tmp / "cs231n" / "datasets").mkdir(parents=True)
    model = _linear(Softmax)(True)
    model.save("best_softmax.npy")
    assert _files(in_tmp) == [os.path.join("cs231n", "saved", "best_softmax.npy")]
    fresh = Softmax()
    assert fresh.load("best_softmax.npy") is True
    assert capsys.readouterr().out == "best_softmax.npy saved.\nbest_softmax.npy loaded.\n"
    assert np.array_equal(fresh.W, model.W)


def test_a_file_the_courses_own_code_wrote_loads_and_is_saved_back_in_place(in_tmp):
    # The audit's case: the course's code wrote cs231n/saved/best_softmax.npy (a pickled dict);
    # the toolkit's model must find it, and saving again replaces that file, not a new ./saved/.
    (in_tmp / "cs231n" / "saved").mkdir(parents=True)
    W = np.random.default_rng(0).standard_normal((D, C))
    np.save(in_tmp / "cs231n" / "saved" / "best_softmax.npy", {"W": W}, allow_pickle=True)
    model = Softmax()
    assert model.load("best_softmax.npy") is True and np.array_equal(model.W, W)
    model.W = np.zeros((D, C))
    model.save("best_softmax.npy")
    assert _files(in_tmp) == [os.path.join("cs231n", "saved", "best_softmax.npy")]
    assert np.array_equal(load_params("best_softmax.npy")["W"], np.zeros((D, C)))


def test_load_looks_where_save_writes_first_then_in_the_other_folder(in_tmp):
    # Saved to ./saved/ before a cs231n/ folder existed: still found afterwards.
    save_params("old.npy", {"W": np.ones(2)})
    (in_tmp / "cs231n").mkdir()
    assert np.array_equal(load_params("old.npy")["W"], np.ones(2))
    # With a copy in both, the one save writes now (cs231n/saved/) is read, so a save followed
    # by a load gives back what was just saved.
    path = save_params("old.npy", {"W": np.full(2, 7.0)})
    assert path == in_tmp / "cs231n" / "saved" / "old.npy"
    assert np.array_equal(load_params("old.npy")["W"], np.full(2, 7.0))
    assert np.array_equal(load_params("old.npy", folder="saved")["W"], np.ones(2))


def test_a_missing_bare_name_names_every_folder_looked_in(in_tmp):
    (in_tmp / "cs231n").mkdir()
    with pytest.raises(FileNotFoundError, match=r"nothing\.npy.*cs231n.saved.*\bsaved"):
        load_params("nothing.npy")
    assert _files(in_tmp) == [] and not (in_tmp / "saved").exists()


def test_a_cs231n_file_is_not_the_course_layout(in_tmp):
    (in_tmp / "cs231n").write_text("not a folder")
    assert save_params("w.npy", {"W": np.eye(2)}) == in_tmp / "saved" / "w.npy"


def test_the_toolkits_own_cs231n_package_is_never_written_into(in_tmp, monkeypatch):
    # Run from the toolkit's checkout (or from site-packages), ./cs231n/ is the toolkit's shim
    # package, not an assignment's: files go to ./saved/ as anywhere else. A folder here
    # stands in for the package, so that the real checkout is not written into if this fails.
    import cs231n
    assert saved_params._TOOLKIT_CS231N == Path(cs231n.__file__).resolve().parent
    (in_tmp / "cs231n").mkdir()
    monkeypatch.setattr(saved_params, "_TOOLKIT_CS231N", in_tmp / "cs231n")
    assert save_params("w.npy", {"W": np.eye(2)}) == in_tmp / "saved" / "w.npy"
    assert not (in_tmp / "cs231n" / "saved").exists()


def test_overwrite_is_atomic_and_leaves_no_temp_files(in_tmp, monkeypatch):
    save_params("w.npy", {"W": np.ones(3)})
    save_params("w.npy", {"W": np.full(3, 2.0)})
    assert os.listdir(in_tmp / "saved") == ["w.npy"]
    assert np.array_equal(load_params("w.npy")["W"], np.full(3, 2.0))

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        save_params("w.npy", {"W": np.full(3, 3.0)})
    assert os.listdir(in_tmp / "saved") == ["w.npy"]  # the temp file is gone
    assert np.array_equal(load_params("w.npy")["W"], np.full(3, 2.0))  # the old file intact


def test_a_write_failing_midway_leaves_the_old_file_intact(in_tmp, monkeypatch):
    save_params("w.npy", {"W": np.ones(3)})

    def failing_write(*args, **kwargs):
        raise OSError("I/O error mid-write")

    monkeypatch.setattr(np.lib.format, "write_array", failing_write)
    model = FullyConnectedNet([3], input_dim=D, num_classes=C, seed=0)
    with pytest.raises(OSError, match="mid-write"):
        model.save("w.npy")
    assert os.listdir(in_tmp / "saved") == ["w.npy"]
    assert np.array_equal(load_params("w.npy")["W"], np.ones(3))


@pytest.mark.parametrize("params, err, msg", [
    ([np.ones(2)], TypeError, "dict"),
    ({1: np.ones(2)}, TypeError, "strings"),
    ({"": np.ones(2)}, TypeError, "strings"),
    ({"W": [1.0, 2.0]}, TypeError, "ndarray"),
    ({"W": np.array(["a"])}, ValueError, "numeric"),
    ({"W": np.array([None])}, ValueError, "numeric"),
])
def test_save_params_refuses_what_is_not_a_dict_of_numeric_arrays(params, err, msg, in_tmp):
    with pytest.raises(err, match=msg):
        save_params("bad.npy", params)
    assert not (in_tmp / "saved").exists()


# ----------------------------------------------------------------- bad and hostile files

class _RunsCode:
    """A pickle payload: unpickling calls ``func(arg)``."""

    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


def _course_npy(path, payload):
    """An .npy laid out as np.save lays out a dict, with ``payload`` as the pickled element."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
        pickle.dump(np.array(payload, dtype=object) if isinstance(payload, dict) else payload, f,
                    protocol=3)


def _hostile(kind, marker):
    if kind == "os.system":
        return _RunsCode(os.system, f"touch {marker}")
    if kind == "builtins.eval":
        return _RunsCode(eval, f"open({str(marker)!r}, 'w').close()")
    # A dict of arrays whose one "array" is the payload: the allow-list must hold inside too.
    return {"W": np.ones(2), "b": _RunsCode(eval, f"open({str(marker)!r}, 'w').close()")}


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval", "nested eval"])
def test_hostile_pickle_is_refused_and_runs_nothing(kind, in_tmp):
    marker = in_tmp / "pwned"
    (in_tmp / "saved").mkdir()
    _course_npy(in_tmp / "saved" / "evil.npy", _hostile(kind, marker))
    with pytest.raises(SavedParamsError, match=r"evil\.npy.*nothing in it was run.*refusing to load"):
        load_params("evil.npy")
    with pytest.raises(ValueError, match="refusing to load"):
        FullyConnectedNet([3], input_dim=D, num_classes=C).load("evil.npy")
    with pytest.raises(ValueError, match="refusing to load"):
        Softmax().load("evil.npy")
    assert not marker.exists()
    # The payload is real: NumPy's own loader with pickle on does run it.
    np.load(in_tmp / "saved" / "evil.npy", allow_pickle=True)
    assert marker.exists()


def test_pickled_member_in_an_npz_is_refused_without_unpickling(in_tmp):
    marker = in_tmp / "pwned"
    (in_tmp / "saved").mkdir()
    evil = np.empty(1, dtype=object)
    evil[0] = _RunsCode(eval, f"open({str(marker)!r}, 'w').close()")
    with open(in_tmp / "saved" / "evil.npy", "wb") as f:
        np.savez(f, W=np.ones(2), b=evil)
    with pytest.raises(SavedParamsError, match=r"evil\.npy.*'b'.*object"):
        load_params("evil.npy")
    assert not marker.exists()


def _ours(path):
    save_params(path, {"W1": np.arange(200.0).reshape(20, 10), "b1": np.ones(10)})


def _courses(path):
    np.save(path, {"W1": np.arange(200.0).reshape(20, 10), "b1": np.ones(10)}, allow_pickle=True)


@pytest.mark.parametrize("writer", [_ours, _courses], ids=["ours", "course"])
@pytest.mark.parametrize("keep", [0, 3, 60, 0.5, 0.9, -1])
def test_truncated_file_is_a_clear_error(writer, keep, in_tmp):
    path = in_tmp / "w.npy"
    writer(path)
    data = path.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else (len(data) + keep if keep < 0 else keep)
    path.write_bytes(data[:n])
    with pytest.raises(SavedParamsError, match=r"w\.npy"):
        load_params(path)
    with pytest.raises(ValueError, match=r"w\.npy"):
        FullyConnectedNet([10], input_dim=20, num_classes=10).load(path)


def test_header_claiming_huge_array_is_refused_before_allocating(in_tmp):
    path = in_tmp / "huge.npy"
    with zipfile.ZipFile(path, "w") as zf:
        with zf.open("W.npy", "w") as m:
            np.lib.format.write_array_header_1_0(
                m, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 6, 10 ** 6, 10 ** 6)})
            m.write(b"\0" * 16)
    with pytest.raises(SavedParamsError, match=r"huge\.npy.*truncated or corrupt"):
        load_params(path)


def _zip_of_members(path, members):
    """A zip laid out as save_params lays one out, each member ``(name, header shape, payload)``."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, shape, payload in members:
            with zf.open(name, "w") as m:
                np.lib.format.write_array_header_1_0(m, {"descr": "<f8", "fortran_order": False,
                                                         "shape": shape})
                m.write(payload)


@pytest.mark.parametrize("payload, holds", [(b"\0" * 16, 16), (b"\0" * 32, 32)],
                         ids=["short", "trailing-bytes"])
def test_a_member_whose_size_disagrees_with_its_header_is_refused(payload, holds, in_tmp):
    # Three float64 are 24 bytes: fewer is a cut file, more is not what save_params writes.
    # Checked against the header before anything is allocated or read.
    path = in_tmp / "w.npy"
    _zip_of_members(path, [("W.npy", (3,), payload)])
    with pytest.raises(SavedParamsError, match=rf"w\.npy: parameter 'W' claims shape \(3,\) of float64 "
                                               rf"\(24 bytes\) but holds {holds}"):
        load_params(path)


def test_a_repeated_member_name_is_refused(in_tmp):
    # zipfile keeps both members; taking either would silently drop the other
    path = in_tmp / "w.npy"
    with pytest.warns(UserWarning, match="Duplicate name"):
        _zip_of_members(path, [("W.npy", (1,), b"\0" * 8), ("W.npy", (1,), b"\0" * 8)])
    with pytest.raises(SavedParamsError, match=r"w\.npy: member 'W\.npy' gives an empty or repeated"):
        load_params(path)


@pytest.mark.parametrize("fname", ["", "out/", os.path.join("out", "")])
def test_a_name_that_is_no_file_name_is_refused(fname, in_tmp):
    with pytest.raises(ValueError, match="a file name is needed"):
        save_params(fname, {"W": np.eye(2)})
    assert list(in_tmp.iterdir()) == []


@pytest.mark.parametrize("content, msg", [
    (b"", "empty"),
    (b"hello, world", "not a saved-parameters file"),
    (b"\x80\x03}q\x00.", "not a saved-parameters file"),  # a bare pickle is not accepted either
])
def test_garbage_is_a_clear_error(content, msg, in_tmp):
    (in_tmp / "g.npy").write_bytes(content)
    with pytest.raises(SavedParamsError, match=rf"g\.npy.*{msg}"):
        load_params(in_tmp / "g.npy")


@pytest.mark.parametrize("value, msg", [
    (np.arange(6.0).reshape(2, 3), "not a dict"),           # np.save of one array
    (["W", np.ones(2)], "holds a list, not a dict"),         # a pickled list
    ({"W": "not an array"}, "'W' must be a numeric ndarray, got str"),
    ({"W": np.array([1, "a"], dtype=object)}, "'W' must be a numeric ndarray, got dtype object"),
    ({"W": np.array([True])}, "'W' must be a numeric ndarray, got dtype bool"),
    ({3: np.ones(2)}, "names must be non-empty strings"),
    ({"": np.ones(2)}, "names must be non-empty strings"),  # no attribute could take it
])
def test_wrong_contents_are_a_clear_error(value, msg, in_tmp):
    path = in_tmp / "x.npy"
    if isinstance(value, list):
        boxed = np.empty((), dtype=object)
        boxed[()] = value
        value = boxed
    np.save(path, value, allow_pickle=True)
    with pytest.raises(SavedParamsError, match=rf"x\.npy.*{msg}"):
        load_params(path)


def test_one_array_under_two_names_loads_as_two_arrays(in_tmp):
    shared = np.zeros(3)
    path = in_tmp / "alias.npy"
    _course_npy(path, {"b1": shared, "b2": shared})  # pickle's memo makes them one object
    got = load_params(path)
    got["b1"] += 1
    assert np.array_equal(got["b2"], np.zeros(3))


class _ReadOnlyArray:
    """Pickles as ``np.ndarray(shape, dtype, buffer=bytes)``: an array over the immutable bytes."""

    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float64)

    def __reduce__(self):
        return np.ndarray, (self.values.shape, "<f8", self.values.tobytes())


def test_a_read_only_array_from_a_pickle_loads_writable(in_tmp):
    # Only allowed names (numpy.ndarray), yet unpickled over a bytes object: read-only. Training
    # updates parameters in place, so load_params must hand back a writable copy.
    path = in_tmp / "ro.npy"
    _course_npy(path, {"W": _ReadOnlyArray([1.0, 2.0])})
    got = load_params(path)
    assert got["W"].flags.writeable
    got["W"] += 1
    assert np.array_equal(got["W"], [2.0, 3.0])


@pytest.mark.parametrize("version", [(1, 0), (2, 0)], ids=["1.0", "2.0"])
@pytest.mark.parametrize("fmt", ["ours", "course"])
def test_npy_format_versions_1_and_2_both_load(version, fmt, in_tmp):
    # np.save writes 2.0 whenever a header outgrows 1.0's 64 KiB (a dict of very many arrays),
    # so both versions occur in files a user has.
    W = np.arange(6.0).reshape(2, 3)
    path = in_tmp / "v.npy"
    if fmt == "ours":
        with zipfile.ZipFile(path, "w") as zf, zf.open("W.npy", "w") as m:
            np.lib.format.write_array(m, W, version=version, allow_pickle=False)
    else:
        with open(path, "wb") as f:
            np.lib.format.write_array(f, np.array({"W": W}, dtype=object), version=version, allow_pickle=True)
    assert np.array_equal(load_params(path)["W"], W)


@pytest.mark.parametrize("fmt", ["ours", "course"])
def test_npy_format_version_3_is_a_clear_error(fmt, in_tmp):
    path = in_tmp / "v3.npy"
    if fmt == "ours":
        with zipfile.ZipFile(path, "w") as zf, zf.open("W.npy", "w") as m:
            np.lib.format.write_array(m, np.ones(2), version=(3, 0), allow_pickle=False)
    else:
        with open(path, "wb") as f:
            np.lib.format.write_array(f, np.array({"W": np.ones(2)}, dtype=object), version=(3, 0),
                                      allow_pickle=True)
    with pytest.raises(SavedParamsError, match=r"v3\.npy: .* is \.npy format version 3\.0"):
        load_params(path)


def test_a_member_that_is_not_an_npy_is_refused_and_not_called_corrupt(in_tmp):
    # An .npz with a notes.txt beside W.npy is no file save_params wrote; its array bytes must not
    # load as a parameter "notes". The message is the one raised, not a "truncated or corrupt,
    # save it again" wrapping of it: the file is intact, it just is not ours.
    path = in_tmp / "w.npy"
    with zipfile.ZipFile(path, "w") as zf:
        with zf.open("W.npy", "w") as m:
            np.lib.format.write_array(m, np.ones(2))
        with zf.open("notes.txt", "w") as m:
            np.lib.format.write_array(m, np.ones(2))
    with pytest.raises(SavedParamsError) as e:
        load_params(path)
    assert re.match(rf"{re.escape(str(path))}: member 'notes\.txt' is not an \.npy array", str(e.value))
    assert "corrupt" not in str(e.value)


def test_a_course_file_of_several_objects_is_named_as_such(in_tmp):
    # np.save of a list of dicts (or any object array but a 0-d one) is not a model's save().
    path = in_tmp / "many.npy"
    np.save(path, np.array([{"W": np.ones(2)}, {"W": np.zeros(2)}], dtype=object), allow_pickle=True)
    with pytest.raises(SavedParamsError, match=r"many\.npy holds an object array of shape \(2,\)"):
        load_params(path)


@pytest.mark.parametrize("payload", [["W", np.ones(2)], np.array([{"W": np.ones(2)}, {}], dtype=object)],
                         ids=["list", "1-d object array"])
def test_a_pickle_that_disagrees_with_its_0d_header_is_a_clear_error(payload, in_tmp):
    # The header says one object (shape ()), the pickle holds something else: refused by name,
    # not an AttributeError or ValueError from taking its .item().
    path = in_tmp / "odd.npy"
    _course_npy(path, payload)
    with pytest.raises(SavedParamsError, match=r"odd\.npy: the pickle holds .*not the 0-d object array"):
        load_params(path)


class _Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2's ``str`` (BINSTRING), as the course's Python 2 era pickles hold them."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj):
        self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def test_a_course_file_pickled_by_python_2_loads(in_tmp):
    # Python 2 stored an array's raw bytes as a str; Python 3 reads such a str back only with
    # encoding="latin1" (NumPy's documented choice), and float bytes are seldom all ASCII.
    W = np.array([[1.5, -2.25], [3e-8, 1e300]])
    assert max(W.tobytes()) > 127
    path = in_tmp / "py2.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
        _Py2Pickler(f, protocol=2).dump(np.array({"W": W}, dtype=object))
    assert pickle.BINSTRING in path.read_bytes()  # the array data really is a Python 2 str
    got = load_params(path)
    assert got.keys() == {"W"} and got["W"].dtype == np.float64 and np.array_equal(got["W"], W)


def test_a_dangling_link_where_save_writes_is_not_skipped_for_an_older_file(in_tmp):
    # cs231n/saved/w.npy is where save writes and load looks first; a broken link there is that
    # file, missing, not a reason to load a stale saved/w.npy silently.
    (in_tmp / "cs231n" / "saved").mkdir(parents=True)
    save_params("w.npy", {"W": np.ones(2)}, folder="saved")
    os.symlink(in_tmp / "gone.npy", in_tmp / "cs231n" / "saved" / "w.npy")
    with pytest.raises(FileNotFoundError):
        load_params("w.npy")


class _Unresolvable:
    """A path whose ``resolve`` fails, as a symlink loop's does."""

    def resolve(self):
        raise OSError(errno.ELOOP, "Too many levels of symbolic links")


def test_a_cs231n_folder_whose_path_cannot_be_resolved_is_still_the_course_layout(in_tmp, monkeypatch):
    # If the comparison with the toolkit's own package cannot be made, ./cs231n/ is an
    # assignment's folder: the course's place for saved models wins.
    (in_tmp / "cs231n").mkdir()
    monkeypatch.setattr(saved_params, "_TOOLKIT_CS231N", _Unresolvable())
    assert save_params("w.npy", {"W": np.eye(2)}) == in_tmp / "cs231n" / "saved" / "w.npy"


@pytest.mark.parametrize("source, target, msg", [
    (dict(hidden_dims=[5]), dict(hidden_dims=[5, 4]), r"missing W3, b3; W2 is \(5, 3\) in the file but \(5, 4\)"),
    (dict(hidden_dims=[5, 4]), dict(hidden_dims=[5]), r"unexpected W3, b3; W2 is \(5, 4\) in the file but \(5, 3\)"),
    (dict(hidden_dims=[5]), dict(hidden_dims=[6]), r"W1 is \(6, 5\) in the file but \(6, 6\) here; b1"),
    (dict(hidden_dims=[5], normalization="batchnorm"), dict(hidden_dims=[5]), "unexpected gamma1, beta1"),
    (dict(hidden_dims=[5]), dict(hidden_dims=[5], normalization="layernorm"), "missing gamma1, beta1"),
])
def test_params_that_do_not_fit_the_model_are_refused_and_change_nothing(source, target, msg):
    FullyConnectedNet(input_dim=D, num_classes=C, seed=0, **source).save("net.npy")
    model = FullyConnectedNet(input_dim=D, num_classes=C, seed=1, **target)
    before = dict(model.params)
    with pytest.raises(ValueError, match=rf"FullyConnectedNet.load\('net.npy'\).*do not fit.*{msg}"):
        model.load("net.npy")
    assert model.params.keys() == before.keys() and all(model.params[k] is before[k] for k in before)


def test_two_layer_net_file_into_a_three_layer_net_lists_the_mismatch():
    TwoLayerNet(input_dim=D, hidden_dim=7, num_classes=C, seed=0).save("best_two_layer_net.npy")
    with pytest.raises(ValueError, match=r"missing W3, b3; W2 is \(7, 3\) in the file but \(7, 4\)"):
        FullyConnectedNet([7, 4], input_dim=D, num_classes=C).load("best_two_layer_net.npy")


def test_loaded_arrays_are_cast_to_the_models_dtype():
    FullyConnectedNet([4], input_dim=D, num_classes=C, dtype=np.float64, seed=0).save("n.npy")
    src = load_params("n.npy")
    model = FullyConnectedNet([4], input_dim=D, num_classes=C, dtype=np.float32, seed=1)
    assert model.load("n.npy")
    assert all(v.dtype == np.float32 for v in model.params.values())
    assert all(np.array_equal(model.params[k], src[k].astype(np.float32)) for k in src)


def test_load_into_a_solver_keeps_the_solver_and_model_on_one_dict():
    from deep_learning_suite.trainer import Solver

    X, y = _data(20)
    data = {"X_train": X, "y_train": y, "X_val": X, "y_val": y}
    trained = FullyConnectedNet([4], input_dim=D, num_classes=C, dtype=np.float64, seed=0)
    trained.save("n.npy")
    model = FullyConnectedNet([4], input_dim=D, num_classes=C, dtype=np.float64, seed=1)
    solver = Solver(model, data, num_epochs=1, batch_size=10, verbose=False)
    held = model.params
    model.load("n.npy")
    assert solver.model.params is held
    assert np.array_equal(solver.model.loss(X), trained.loss(X))


def test_the_module_reuses_the_data_modules_restricted_unpickler():
    from deep_learning_suite.data import NumpyOnlyUnpickler

    assert issubclass(saved_params._ParamsUnpickler, NumpyOnlyUnpickler)


def test_a_name_with_a_nul_is_refused_before_anything_is_written(tmp_path):
    # zipfile cuts member names at a NUL, so such a file saved fine and failed to load.
    with pytest.raises(ValueError, match="NUL character"):
        save_params("p.npy", {"a\x00b": np.ones(2)}, folder=tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("order", ["C", "F"])
def test_parameters_read_in_many_chunks_come_back_exactly(tmp_path, monkeypatch, order):
    # Read a chunk at a time into the array, so loading needs one copy of the data, not two.
    real = saved_params._read_into
    monkeypatch.setattr(saved_params, "_read_into", lambda m, a: real(m, a, chunk=7))
    W = np.asarray(np.random.default_rng(0).standard_normal((13, 11)), order=order)
    save_params("p.npy", {"W": W, "b": np.arange(5.0)}, folder=tmp_path)
    loaded = load_params("p.npy", folder=tmp_path)
    assert np.array_equal(loaded["W"], W) and np.array_equal(loaded["b"], np.arange(5.0))
    assert loaded["W"].flags.writeable


def _np_savez_nothing(path):
    with open(path, "wb") as f:        # a file object: np.savez would add ".npz" to a name
        np.savez(f)                    # NumPy's own empty .npz: the same empty zip


@pytest.mark.parametrize("write", [lambda path: save_params(path, {}), _np_savez_nothing],
                         ids=["save_params", "np.savez"])
def test_an_empty_dict_round_trips(write, in_tmp):
    # An empty zip starts with the end record PK\x05\x06, not a member's PK\x03\x04; it used to
    # save fine and then be refused as "not a saved-parameters file".
    path = in_tmp / "empty.npy"
    write(path)
    assert load_params(path) == {}


# ----------------------------------------------------------------- the course's load_models

def _model_files(folder, protocol=2):
    """A folder as the course's load_models reads it: pickled {'model': ...} dicts, and a README."""
    rng = np.random.default_rng(0)
    models = {"net_a.pkl": {"W1": rng.standard_normal((4, 3)), "b1": np.zeros(3)},
              "net_b": {"W": np.arange(6.0).reshape(2, 3), "name": "softmax", "reg": 1e-3}}
    folder.mkdir(parents=True, exist_ok=True)
    for name, model in models.items():
        with open(folder / name, "wb") as f:
            pickle.dump({"model": model, "val_acc": 0.5}, f, protocol=protocol)
    (folder / "README.txt").write_text("These are the pretrained models.\n")
    (folder / "subfolder").mkdir()
    return models


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_load_models_reads_each_pickled_model_and_skips_other_files(tmp_path, protocol):
    models = _model_files(tmp_path / "models", protocol)
    got = saved_params.load_models(tmp_path / "models")
    assert sorted(got) == sorted(models)            # README.txt and the folder skipped
    for name, model in models.items():
        assert got[name].keys() == model.keys()
        assert all(np.array_equal(got[name][k], v) for k, v in model.items())


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval", "nested eval"])
def test_load_models_refuses_a_pickle_that_runs_code(tmp_path, kind):
    folder = tmp_path / "models"
    _model_files(folder)
    marker = tmp_path / "pwned"
    with open(folder / "evil.pkl", "wb") as f:
        pickle.dump({"model": _hostile(kind, marker)}, f, protocol=2)
    with pytest.raises(SavedParamsError, match=r"evil\.pkl was not loaded, and nothing in it was run.*"
                                               r"refusing to load"):
        saved_params.load_models(folder)
    assert not marker.exists()


@pytest.mark.parametrize("content", [["W", np.ones(2)], {"params": np.ones(2)}])
def test_load_models_names_a_pickle_that_is_not_a_model(tmp_path, content):
    folder = tmp_path / "models"
    folder.mkdir()
    with open(folder / "odd.pkl", "wb") as f:
        pickle.dump(content, f, protocol=2)
    with pytest.raises(SavedParamsError, match=r"odd\.pkl holds .*not the course's dict with a "
                                               r"'model' entry"):
        saved_params.load_models(folder)


def test_load_models_needs_an_existing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        saved_params.load_models(tmp_path / "nowhere")


def test_load_models_of_a_file_is_the_documented_error(tmp_path):
    (tmp_path / "model.pkl").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"model\.pkl is not a folder of model files"):
        saved_params.load_models(tmp_path / "model.pkl")
