"""Save and load a model's named parameter arrays without pickle: the course's ``save``/``load``.

Since 2024 the CS231n notebooks keep their best models with ``model.save("best_softmax.npy")``
and bring them back into a fresh model with ``model.load("best_softmax.npy")``. The course
stores ``np.save(path, params_dict)``, a pickle, in a ``saved/`` folder of the assignment.
This module keeps that interface but not the pickle:

* **Where.** The course's ``save`` writes next to its own code, in ``<assignment>/cs231n/saved/``,
  and its ``collectSubmission.sh`` zips ``cs231n/saved``. The notebooks run from the assignment
  folder, so a bare file name is resolved against the current working directory at call time:

  - ``save`` writes to ``./cs231n/saved/<name>`` when ``./cs231n/`` is a folder there (the
    course's layout, which the toolkit's CIFAR-10 and COCO readers also expect, for
    ``cs231n/datasets``), and to ``./saved/<name>`` otherwise; the folder is created when
    missing. The toolkit's own ``cs231n`` shim package (``./cs231n/`` when run from a checkout
    of the toolkit, or from site-packages) does not count: nothing is written into it.
  - ``load`` reads the first that exists of ``./cs231n/saved/<name>`` (course layout only) and
    ``./saved/<name>``, so it finds a file the course's own code wrote, as well as one the
    toolkit wrote before the folder existed; where ``save`` writes is looked at first, so a
    save followed by a load gives back what was saved.

  A name with a directory part (``"out/w.npy"``, ``"./w.npy"``, an absolute path) is used as
  given, and ``folder=`` overrides both.
* **What is written.** An ``.npz`` container, i.e. a zip of one ``.npy`` member per
  parameter, none of them pickled, written to *exactly* the given name: ``best_softmax.npy``
  stays ``best_softmax.npy`` (``np.load`` recognises a zip by its content, not its suffix).
  The write is atomic: a temporary file in the same folder is written, fsync'ed and renamed
  over the target, so a crash or a full disk leaves the previous file as it was.
* **What is read.** That format, parsed here with every header checked against the
  member's size before anything is allocated; and, so that files saved by the course's own
  code still load, an ``.npy`` holding a pickled 0-d object array of a dict of arrays. That
  pickle is read by ``safe_unpickle.NumpyOnlyUnpickler``, which admits only the NumPy
  names an array needs: a pickle that asks for anything else (``os.system``,
  ``builtins.eval``, a class with ``__reduce__``) is refused before it can run.

Whatever the file, what comes back is checked to be a dict of ``str -> numeric ndarray``;
anything else raises ``SavedParamsError`` (a ``ValueError``) naming the file.

``load_models`` is the older course's reader of a folder of pickled ``{'model': ...}`` files,
with the same restricted unpickler.
"""

import errno
import math
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np

from .checkpoint import atomic_write
from .safe_unpickle import UNPICKLE_ERRORS, NumpyOnlyUnpickler

DEFAULT_FOLDER = "saved"
# The course's folder, under the assignment folder: cs231n/saved, as its save() and
# collectSubmission.sh have it.
COURSE_FOLDER = os.path.join("cs231n", "saved")
# The toolkit's own cs231n shim package, a sibling of this package: never taken for an
# assignment's cs231n/ folder (so never written into) when the working directory holds it.
_TOOLKIT_CS231N = Path(__file__).resolve().parent.parent / "cs231n"

# A zip starts with its first member's header; one with no members (the file np.savez and
# save_params write for {}) is only its end record.
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"
# Numeric kinds only: signed/unsigned integers, floats, complex. Not bool, strings, object
# (a pickle) or structured records, none of which is a parameter.
_NUMERIC_KINDS = "iufc"


class SavedParamsError(ValueError):
    """A saved-parameters file is truncated, corrupt, hostile or not a dict of numeric arrays."""


class _ParamsUnpickler(NumpyOnlyUnpickler):
    # The allow-list of safe_unpickle.py is all a dict of arrays needs (checked on NumPy 1.x
    # and 2.x files: _reconstruct, ndarray, dtype); only the name in its refusal changes.
    what = "a saved-parameters file"


def _is_course_layout(cwd):
    """Whether ``cwd`` holds an assignment's ``cs231n/`` folder (not the toolkit's own package)."""
    folder = cwd / "cs231n"
    if not folder.is_dir():
        return False
    try:
        return folder.resolve() != _TOOLKIT_CS231N.resolve()
    except OSError:         # an unresolvable link: not the toolkit's package, whatever it is
        return True


def _bare_name_folders():
    """The folders a bare name may be in, where ``save_params`` writes first."""
    # Resolved at call time, not import time: a notebook that changes directory saves where it is.
    cwd = Path.cwd()
    if _is_course_layout(cwd):
        return [cwd / COURSE_FOLDER, cwd / DEFAULT_FOLDER]
    return [cwd / DEFAULT_FOLDER]


def _candidates(fname, folder):
    """The paths ``fname`` may mean, the one to write first (see ``resolve_path``)."""
    name = os.fspath(fname)
    if not isinstance(name, str):
        name = os.fsdecode(name)
    if name == "" or name.endswith(("/", os.sep)):
        raise ValueError(f"a file name is needed, got {fname!r}")
    if folder is not None:
        return [Path(folder) / name]
    if os.path.dirname(name):
        return [Path(name)]
    return [d / name for d in _bare_name_folders()]


def resolve_path(fname, folder=None):
    """The file that ``save_params`` writes for ``fname``, and the first ``load_params`` tries.

    Parameters
    ----------
    fname : str or os.PathLike
        A bare name (``"best_net.npy"``) or a path with a directory part.
    folder : str or os.PathLike or None
        When given, ``fname`` is taken relative to it.

    Returns
    -------
    path : Path
        ``folder / fname`` if ``folder`` is given; else ``fname`` itself if it has a directory
        part; else, under the current working directory, ``cs231n/saved/fname`` when
        ``./cs231n/`` is an assignment's folder (the course's layout) and ``saved/fname``
        otherwise. For a bare name, ``load_params`` falls back on ``./saved/fname``.
    """
    return _candidates(fname, folder)[0]


def _check_params(params):
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of name -> ndarray, got {type(params).__name__}")
    for k, v in params.items():
        if not isinstance(k, str) or not k:
            raise TypeError(f"parameter names must be non-empty strings, got {k!r}")
        if "\x00" in k:        # zipfile cuts member names at a NUL: it would not load back
            raise ValueError(f"parameter name {k!r} holds a NUL character; rename it")
        if not isinstance(v, np.ndarray):
            raise TypeError(f"parameter {k!r} must be an ndarray, got {type(v).__name__}")
        if v.dtype.kind not in _NUMERIC_KINDS:
            raise ValueError(f"parameter {k!r} must be a numeric array, got dtype {v.dtype}")


def save_params(fname, params, folder=None):
    """Write ``params`` to ``fname`` atomically, as a pickle-free ``.npz`` container.

    Parameters
    ----------
    fname : str or os.PathLike
        Where to write (see ``resolve_path``); the name is kept exactly, no suffix is added.
    params : dict of str -> ndarray
        Numeric arrays of any shape, e.g. ``{"W": (D, C)}`` or ``{"W1": (D, H), "b1": (H,), ...}``.
    folder : str or os.PathLike or None
        Overrides the folder (see ``resolve_path``).

    Returns
    -------
    path : Path
        The file written. Its parent folder is created when missing.

    Raises
    ------
    TypeError, ValueError
        ``params`` is not a dict of non-empty str -> numeric ndarray (nothing is written).
    """
    _check_params(params)
    path = resolve_path(fname, folder)

    def write(f):
        # zipfile by hand rather than np.savez(f, **params): a parameter called "file" or
        # "allow_pickle" would collide with np.savez's own arguments. Stored, not deflated,
        # as np.savez does; the members are what np.load expects of an .npz.
        with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, arr in params.items():
                with zf.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(arr), allow_pickle=False)

    return atomic_write(path, write)


def _read_npy_header(fp, path, where):
    """(shape, fortran_order, dtype) of the ``.npy`` stream ``fp``, positioned at its start."""
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(fp)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(fp)
    except Exception as e:
        # read_array_header parses the header with ast.literal_eval, so nothing in it can run
        # and any failure (ValueError, EOFError, a zip's BadZipFile or zlib.error) is the file's.
        raise SavedParamsError(f"{path}: {where} has a bad .npy header ({e}); the file is "
                               f"truncated or corrupt") from None
    # 3.0 is only written for non-latin-1 field names of structured dtypes: never parameters.
    raise SavedParamsError(f"{path}: {where} is .npy format version {version[0]}.{version[1]}, "
                           f"which saved parameters never use")


def _read_into(member, arr, chunk=1 << 24):
    """Fill ``arr``'s bytes from ``member`` a chunk at a time; returns the bytes read.

    Into the array itself (writable, as training updates parameters in place), in 16 MB
    pieces: a single ``read`` would hold a second, temporary copy of the whole parameter.
    """
    if arr.size == 0:
        return 0
    buf = memoryview(arr.reshape(-1, order="A").view(np.uint8))
    got = 0
    while got < len(buf):
        piece = member.read(min(chunk, len(buf) - got))
        if not piece:
            break
        buf[got:got + len(piece)] = piece
        got += len(piece)
    return got


def _read_zip(path):
    """Our format: every member ``<name>.npy``, a numeric array whose size its header states."""
    params = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy") or info.is_dir():
                    raise SavedParamsError(f"{path}: member {info.filename!r} is not an .npy "
                                           f"array, so this is not a saved-parameters file")
                name = info.filename[:-len(".npy")]
                if not name or name in params:
                    raise SavedParamsError(f"{path}: member {info.filename!r} gives an empty or "
                                           f"repeated parameter name")
                where = f"parameter {name!r}"
                with zf.open(info) as member:
                    shape, fortran, dtype = _read_npy_header(member, path, where)
                    if dtype.kind not in _NUMERIC_KINDS:
                        raise SavedParamsError(f"{path}: {where} has dtype {dtype}, not a number "
                                               f"type (an object dtype would be a pickle)")
                    # Python ints: a hostile header's shape must not wrap around in int64.
                    nbytes = math.prod(shape) * dtype.itemsize
                    # Checked before reading, so a header claiming terabytes allocates nothing.
                    if info.file_size - member.tell() != nbytes:
                        raise SavedParamsError(
                            f"{path}: {where} claims shape {shape} of {dtype} ({nbytes} bytes) but "
                            f"holds {info.file_size - member.tell()}; the file is truncated or corrupt")
                    arr = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
                    got = _read_into(member, arr)
                if got != nbytes:
                    raise SavedParamsError(f"{path}: {where} is truncated")
                params[name] = arr.astype(dtype.newbyteorder("="), copy=False)
    except SavedParamsError:
        raise
    except Exception as e:
        # Nothing in a zip of plain .npy members can run, so any failure here is the file's:
        # a damaged zip makes zipfile raise BadZipFile, zlib.error, EOFError, and even
        # NotImplementedError or RuntimeError for a garbled compression or encryption flag.
        raise SavedParamsError(f"{path} is truncated or corrupt ({type(e).__name__}: {e}); "
                               f"save it again") from None
    return params


def _refused(path, error):
    """The error for a pickle that asked the restricted unpickler for a name it refuses."""
    return SavedParamsError(f"{path} was not loaded, and nothing in it was run: {error}. "
                            f"Only a file of NumPy arrays is accepted")


def _read_course_npy(path, f):
    """The course's format: an .npy whose one element, a dict of arrays, is pickled."""
    shape, _, dtype = _read_npy_header(f, path, "the array")
    if not dtype.hasobject:
        raise SavedParamsError(f"{path} holds one {dtype} array of shape {shape}, not a dict of "
                               f"named parameters")
    if shape != ():
        raise SavedParamsError(f"{path} holds an object array of shape {shape}; the course's "
                               f"save() writes a single dict (shape ())")
    try:
        obj = _ParamsUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as e:
        if "refusing to load" in str(e):
            raise _refused(path, e) from None
        raise SavedParamsError(f"{path}: its pickle is truncated or corrupt ({e})") from None
    except UNPICKLE_ERRORS as e:
        # What the admitted NumPy constructors or a cut-off stream raise on bad input.
        raise SavedParamsError(f"{path}: its pickle is truncated or corrupt "
                               f"({type(e).__name__}: {e})") from None
    if not (isinstance(obj, np.ndarray) and obj.dtype.hasobject and obj.shape == ()):
        raise SavedParamsError(f"{path}: the pickle holds {type(obj).__name__}, not the 0-d object "
                               f"array np.save writes for a dict")
    return obj.item()


def load_params(fname, folder=None):
    """Read parameters written by ``save_params``, or by the course's own ``save``.

    Parameters
    ----------
    fname : str or os.PathLike
        As given to ``save_params`` (see ``resolve_path``). A bare name is looked for in
        ``./cs231n/saved/`` (course layout only) and then ``./saved/``.
    folder : str or os.PathLike or None
        Overrides the folder.

    Returns
    -------
    params : dict of str -> ndarray
        Each array in its saved dtype (native byte order) and shape, writable, and no two
        sharing memory.

    Raises
    ------
    FileNotFoundError
        No such file (the models' ``load`` turns this into the course's ``False``).
    SavedParamsError
        The file is empty, truncated or corrupt, neither format, a pickle asking for anything
        beyond NumPy arrays (refused without running it), or not a dict of str -> numeric
        ndarray. The message names the file.
    """
    candidates = _candidates(fname, folder)
    path = next((p for p in candidates if os.path.lexists(p)), candidates[0])
    if len(candidates) > 1 and not os.path.lexists(path):
        places = " or ".join(str(p.parent) for p in candidates)
        raise FileNotFoundError(errno.ENOENT, f"no saved parameters {path.name!r} in {places}", str(path))
    with open(path, "rb") as f:
        magic = f.read(len(_NPY_MAGIC))
        f.seek(0)
        if magic.startswith(_ZIP_MAGIC):
            params = None
        elif magic == _NPY_MAGIC:
            params = _read_course_npy(path, f)
        elif not magic:
            raise SavedParamsError(f"{path} is empty (an interrupted write?); save it again")
        else:
            raise SavedParamsError(f"{path} is not a saved-parameters file: it starts with "
                                   f"{magic!r}, neither a zip (.npz) nor an .npy")
    if params is None:
        params = _read_zip(path)

    if not isinstance(params, dict):
        raise SavedParamsError(f"{path} holds a {type(params).__name__}, not a dict of parameters")
    seen = set()
    for k, v in params.items():
        if not isinstance(k, str) or not k:
            raise SavedParamsError(f"{path}: parameter names must be non-empty strings, got {k!r}")
        if not isinstance(v, np.ndarray) or v.dtype.kind not in _NUMERIC_KINDS:
            got = f"dtype {v.dtype}" if isinstance(v, np.ndarray) else type(v).__name__
            raise SavedParamsError(f"{path}: parameter {k!r} must be a numeric ndarray, got {got}")
        # A pickle may make two names one array (its memo); a model updating one in place
        # would silently change the other.
        # And a read-only array would break the in-place updates of training.
        base = v.base if v.base is not None else v
        if id(base) in seen or not v.flags.writeable:
            params[k] = v = v.copy()
        seen.add(id(v.base if v.base is not None else v))
    return params


class _ModelsUnpickler(NumpyOnlyUnpickler):
    what = "a saved model file"


def load_models(models_dir):
    """The course's ``load_models``: the model in each pickled file of a folder.

    Each model file is a pickled dict with a ``'model'`` entry, as the course's older
    assignments wrote them. They are read with ``safe_unpickle.NumpyOnlyUnpickler``, so a
    model must be made of NumPy arrays, dicts, lists, strings and numbers: a pickle that
    asks for anything else (a class, ``os.system``) is refused before it can run.

    Parameters
    ----------
    models_dir : str or os.PathLike
        The folder; files that are not pickles at all (a README.txt) and sub-folders are
        skipped, as the course skips them.

    Returns
    -------
    models : dict of str -> object
        File name -> that file's ``'model'`` entry, in file-name order.

    Raises
    ------
    FileNotFoundError
        ``models_dir`` is not a folder.
    SavedParamsError
        A pickle asks for more than NumPy arrays (nothing in it is run), or holds something
        other than a dict with a ``'model'`` entry. The message names the file.
    """
    folder = Path(models_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"load_models: {folder} is not a folder of model files")
    models = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        with open(path, "rb") as f:
            try:
                obj = _ModelsUnpickler(f, encoding="latin1").load()
            except UNPICKLE_ERRORS as e:
                if isinstance(e, pickle.UnpicklingError) and "refusing to load" in str(e):
                    raise _refused(path, e) from None
                continue        # not a pickle (a README): the course skips such files
        if not isinstance(obj, dict) or "model" not in obj:
            raise SavedParamsError(f"{path} holds {type(obj).__name__}, not the course's dict with a "
                                   f"'model' entry")
        models[path.name] = obj["model"]
    return models
