"""Checkpoints that run no code when read.

A checkpoint is one ``.npz`` file (``np.load(..., allow_pickle=False)``) holding

* named numeric arrays (parameters, optimizer moments, batchnorm running statistics, RNG keys);
* ``__meta__``: a JSON document stored as a uint8 array (configuration, scalar optimizer
  state, histories, counters, RNG states), in which each array appears as ``{"__array__": key}``;
* ``__sha256__``: the SHA-256 over the JSON and every array's name, dtype, shape and bytes.

A truncated file, a flipped byte or an array edited after saving fails to load with a
``CheckpointError`` naming the file, never with another exception and never as different
state. The one exception is a byte of the zip's own bookkeeping that nothing loaded depends
on (a timestamp, a "version made by" field, a duplicate of a header): the SHA-256 cannot
cover the archive that holds it, and such a file loads exactly the state that was saved.
A file whose SHA-256 was recomputed after editing is only as good as its JSON: if that is
not a checkpoint's (not JSON, not an object, an array reference to nothing), loading fails
with a ``CheckpointError`` too. Files are written atomically: a temporary file in the
same folder is written, fsync'ed and renamed over the target, so a crash mid-write leaves
the previous checkpoint as it was.
"""

import hashlib
import json
import os
import secrets
from pathlib import Path

import numpy as np

FORMAT = "cs231n-toolkit-checkpoint"
VERSION = 1
_META, _HASH = "__meta__", "__sha256__"


class CheckpointError(ValueError):
    """A checkpoint is unreadable, truncated, edited or not a toolkit checkpoint."""


def flatten(obj, arrays, prefix):
    """JSON-able copy of ``obj`` with every ndarray moved into ``arrays`` under a key from ``prefix``.

    Handles nested dicts (string keys), lists, tuples, numbers, strings, bools and None.
    NumPy scalars become Python numbers. Two arrays whose names would coincide (a key holding
    "/" that spells a nested dict's path), and a dict whose only key is ``"__array__"`` (the
    format's array marker), are a ``ValueError``.
    """
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject or obj.dtype.kind not in "biufc":
            raise TypeError(f"{prefix}: only numeric arrays can be checkpointed, got {obj.dtype}")
        if prefix in arrays:
            # Names join the keys with "/", so {"a/b": x, "a": {"b": y}} names both "state/a/b":
            # saved, one array would be lost and the other load in both places, checksum and all.
            raise ValueError(f"two arrays would be saved under the one name {prefix!r}: a key "
                             f"containing '/' collides with the path of a nested dict's (or list's) "
                             f"array; rename the key so it holds no '/'")
        arrays[prefix] = obj
        return {"__array__": prefix}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError(f"{prefix}: dict keys must be strings to be checkpointed")
        if list(obj) == ["__array__"]:
            # that is how the file marks an array's place: it would load back as the array
            raise ValueError(f"{prefix}: a dict whose only key is '__array__' cannot be checkpointed "
                             f"(the format uses it to mark an array); rename the key")
        return {k: flatten(v, arrays, f"{prefix}/{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [flatten(v, arrays, f"{prefix}/{i}") for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"{prefix}: cannot checkpoint a {type(obj).__name__}")


def unflatten(obj, arrays):
    """Inverse of ``flatten``: put the arrays back in place (lists stay lists).

    Raises
    ------
    KeyError
        A ``{"__array__": key}`` reference names no array in ``arrays``.
    """
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            key = obj["__array__"]
            # a non-string key (a number, a list) can name no array either; say so the same way
            if not isinstance(key, str) or key not in arrays:
                raise KeyError(key)
            return arrays[key]
        return {k: unflatten(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unflatten(v, arrays) for v in obj]
    return obj


def _digest(meta_bytes, arrays):
    h = hashlib.sha256()
    h.update(meta_bytes)
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"\0{key}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_checkpoint(path, state):
    """Write the nested ``state`` (dicts/lists of arrays and JSON values) to ``path`` atomically.

    Parameters
    ----------
    path : str or Path
        Target file; ``.npz`` is appended when missing (as ``np.savez`` would).
    state : dict
        Anything ``flatten`` accepts.

    Returns
    -------
    path : Path actually written
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays = {}
    tree = flatten(state, arrays, "state")
    meta = {"format": FORMAT, "version": VERSION, "state": tree}
    meta_bytes = json.dumps(meta, sort_keys=True).encode()
    digest = _digest(meta_bytes, arrays)
    payload = dict(arrays)
    payload[_META] = np.frombuffer(meta_bytes, dtype=np.uint8)
    payload[_HASH] = np.frombuffer(digest.encode(), dtype=np.uint8)

    return atomic_write(path, lambda f: np.savez(f, **payload))


def atomic_write(path, write):
    """Write a file so that a crash or a full disk never leaves half of it at ``path``.

    ``write(f)`` fills a temporary file in the same folder, opened ``"wb"``; it is then
    fsync'ed and renamed over ``path`` (atomic on POSIX and Windows), and the folder is
    fsync'ed so the rename itself survives a power cut. On any error the temporary file is
    removed and ``path`` keeps its previous contents. The folder is created when missing.

    Returns
    -------
    path : Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created as open() would create it (0o666 less the umask), where mkstemp's file is
    # owner-only; reading the umask would mean setting it, which races with other threads.
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    try:  # make the rename itself durable; not every platform lets a folder be opened
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def load_checkpoint(path):
    """Read and verify a checkpoint written by ``save_checkpoint``; return its ``state``.

    Raises
    ------
    CheckpointError
        The file is missing, a folder, unreadable (permissions, I/O error), truncated,
        corrupt, edited (SHA-256 mismatch) or not a toolkit checkpoint. The message names
        the file.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file; pass one of the "
                              f".npz files in it")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise CheckpointError(f"checkpoint {path} cannot be read ({e.strerror or e}); check "
                              f"its permissions, or use another checkpoint") from e
    if magic != b"PK\x03\x04":
        # Anything but a zip, np.load treats as a possible pickle, and its error then advises
        # enabling unpickling: the wrong advice for a file of unknown origin.
        raise CheckpointError(f"{path} is not a cs231n-toolkit checkpoint: a checkpoint is an "
                              f".npz (zip) archive and this file starts with {magic!r}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:
        # With pickle off nothing in the file can run, so any failure here is the file's:
        # a damaged zip header alone makes zipfile raise NotImplementedError ("compressed
        # patched data", "zip file version"), RuntimeError ("encrypted"), BadZipFile,
        # zlib.error, ... and np.load adds ValueError and EOFError. All mean the same thing.
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt "
                              f"({type(e).__name__}: {e}); use an earlier checkpoint") from None
    if _META not in arrays or _HASH not in arrays:
        raise CheckpointError(f"{path} is not a cs231n-toolkit checkpoint (no {_META}/{_HASH})")
    meta_bytes = arrays.pop(_META).tobytes()
    stored = arrays.pop(_HASH).tobytes().decode("ascii", "replace")
    if _digest(meta_bytes, arrays) != stored:
        raise CheckpointError(f"checkpoint {path} fails its SHA-256 check: it was edited or "
                              f"damaged after it was written; use an earlier checkpoint")
    # The checksum matched, so what follows was written with it: by another program, or by
    # someone who edited the file and recomputed the SHA-256. Refuse it as clearly.
    tampered = ("passes its SHA-256 check but was not written by save_checkpoint (it was "
                "edited and its checksum recomputed, or made by another program); save the "
                "checkpoint again or use another one")
    try:
        meta = json.loads(meta_bytes)
    except (ValueError, RecursionError) as e:      # JSONDecodeError, UnicodeDecodeError
        raise CheckpointError(f"checkpoint {path}: its {_META} is not valid JSON "
                              f"({type(e).__name__}: {e}); it {tampered}") from None
    if not isinstance(meta, dict):
        kinds = {list: "an array", str: "a string", int: "a number", float: "a number",
                 bool: "a boolean", type(None): "null"}
        raise CheckpointError(f"checkpoint {path}: its {_META} is {kinds[type(meta)]}, where a "
                              f"checkpoint's is an object with 'format', 'version' and 'state'; "
                              f"it {tampered}")
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CheckpointError(f"{path}: unsupported checkpoint format {meta.get('format')!r} "
                              f"version {meta.get('version')!r}")
    if "state" not in meta:
        raise CheckpointError(f"checkpoint {path}: its {_META} has no 'state'; it {tampered}")
    try:
        return unflatten(meta["state"], arrays)
    except KeyError as e:
        raise CheckpointError(f"checkpoint {path}: its {_META} refers to an array "
                              f"{e.args[0]!r} that the file does not hold; it {tampered}") from None
    except RecursionError:
        raise CheckpointError(f"checkpoint {path}: its {_META} is nested too deeply to be a "
                              f"checkpoint's; it {tampered}") from None
