"""An unpickler for files that hold NumPy arrays and nothing that runs.

CIFAR-10's batches, the course's saved parameters and its ``imagenet_val_25.npz`` class
names are Python pickles, and unpickling runs whatever a file asks for. ``NumpyOnlyUnpickler``
admits only the few names a pickled array needs, each wrapped. That alone is not enough:
NumPy trusts an array's and a dtype's pickled state (an object array's item count, a
dtype's flags, an offset into a buffer), and a forged state crashes the interpreter or asks
for gigabytes from a few bytes. So each state is checked before NumPy uses it, and
everything that goes wrong is one of ``UNPICKLE_ERRORS``, which the loaders turn into an
error naming the file.
"""

import copy
import math
import operator
import pickle
import struct

import numpy as np


# What a truncated, corrupt or hostile pickle makes the restricted unpickler raise: a cut-off
# stream (EOFError, struct.error), bad opcodes or arguments, and the admitted NumPy
# constructors given impossible sizes (np.ndarray((10**15,)) or a length field of 2**62
# bytes: MemoryError; one past sys.maxsize: OverflowError), or a dtype nested thousands of
# levels deep (RecursionError). Nothing in it can run code.
UNPICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                   IndexError, KeyError, OverflowError, MemoryError, RecursionError, struct.error)


def _latin1_encode(obj, encoding="latin1"):
    # Python 3 pickles bytes at protocol 2 as _codecs.encode(text, 'latin1'); allow only that.
    if not isinstance(obj, str) or encoding.lower().replace("_", "-") not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is only admitted for latin-1 text")
    return obj.encode("latin-1")


def _check_array_state(state):
    # NumPy's ndarray.__setstate__ takes an object array's items from the list without
    # checking its length: a list shorter than the shape makes it read pointers past the
    # list's end (a segfault at best), so such a state is refused before NumPy sees it.
    if not (isinstance(state, tuple) and len(state) in (4, 5)):
        return                      # not an array's state: NumPy raises TypeError itself
    shape, dtype, _, items = state[-4:]
    if not (isinstance(dtype, np.dtype) and dtype.hasobject):
        return                      # raw bytes: NumPy checks their length against the shape
    if isinstance(shape, tuple) and len(shape) > 64:
        # NumPy refuses these itself; math.prod of 100000 huge sizes would take minutes first.
        raise pickle.UnpicklingError(f"an array of {len(shape)} dimensions is refused")
    if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)
            and type(items) is list and len(items) == math.prod(shape)):
        raise pickle.UnpicklingError("an object array's pickled items do not match its shape")


def _check_dtype(dtype):
    # A pickled dtype's state carries its flags and NumPy trusts them: an object dtype whose
    # state says "no objects" passes every hasobject check, and raw bytes then become object
    # pointers. So a built dtype must be the one its type string makes, flags and all; none
    # of the files read here holds a structured dtype, whose fields would need the same care.
    if dtype.fields is not None or dtype.subdtype is not None:
        raise pickle.UnpicklingError(f"a structured dtype ({dtype}) is refused: the files read "
                                     f"here hold arrays of plain numbers or objects only")
    fresh = np.dtype(dtype.str)
    # The byte order too, and before dtype == fresh: an object dtype said to be big-endian
    # (which its type string does not show) segfaulted NumPy's comparison and casts.
    if (dtype.byteorder, dtype.flags, dtype.itemsize, dtype.alignment) != \
            (fresh.byteorder, fresh.flags, fresh.itemsize, fresh.alignment) or dtype != fresh:
        raise pickle.UnpicklingError(f"a pickled dtype ({dtype.str}) whose state does not match "
                                     f"its type is refused")
    return dtype


def _raw_dtype(spec):
    # The dtype of items read from the file's bytes: checked, and never one of objects,
    # whose "items" would be forged pointers.
    dtype = _check_dtype(np.dtype(spec))
    if dtype.hasobject:
        raise pickle.UnpicklingError("an object array made over raw bytes is refused")
    return dtype


def _check_dtype_state(dtype, state):
    # The memo can hand a dtype to arrays before its BUILD, and NumPy's __setstate__ changes
    # it in place under them: a state making "S8" items 1 GiB long had an 8-byte array read
    # far past its memory, and one adding object fields had its raw bytes freed as pointers
    # (segfaults both). So the state is tried on a copy first, and it may change how items
    # are read (byte order, a datetime's unit) but not their size, alignment or flags.
    if dtype.kind in "mM" and not (isinstance(state, tuple) and len(state) == 9):
        # Without the ninth item, the unit, NumPy's __setstate__ leaves a datetime dtype
        # with no unit at all, and it segfaults there and then.
        raise pickle.UnpicklingError(f"a pickled {dtype.str} dtype without its unit is refused")
    probe = copy.copy(dtype)        # np.dtype(dtype, copy=True) hands back dtype itself
    probe.__setstate__(state)
    _check_dtype(probe)
    if (probe.itemsize, probe.alignment, probe.flags) != (dtype.itemsize, dtype.alignment, dtype.flags):
        raise pickle.UnpicklingError(f"a pickled dtype state that would make {dtype.str} into "
                                     f"{probe.str} is refused")


def _dtype_for_pickles(spec, align=False, copy=False):
    # NumPy pickles a dtype by its type string ("<f8", "O8", "U5") and BUILD fills in the
    # rest. Any other spec (a list, a dict, "U1,i4") makes a record dtype, whose items NumPy
    # trusts as it does a plain one's (invalid text in a record raised SystemError when read),
    # and no file read here holds one: refused, like a dtype rebuilt into one.
    if not isinstance(spec, str):
        raise pickle.UnpicklingError(f"a dtype made from a {type(spec).__name__} is refused: "
                                     f"a pickled dtype is named by its type string")
    return _check_dtype(np.dtype(spec, align, copy))


def _check_text(array):
    # NumPy keeps "U" items as UCS-4 code units and trusts them: one past U+10FFFF raised
    # SystemError when read (repr, tolist), an error no caller expects from a corrupt file.
    if array.dtype.kind == "U" and array.dtype.itemsize and array.size:
        codes = np.ascontiguousarray(array).reshape(-1).view(np.dtype("u4").newbyteorder(array.dtype.byteorder))
        if codes.max() > 0x10FFFF:
            raise pickle.UnpicklingError(f"a {array.dtype.str} array holding no valid text is refused")
    return array


def _size_of_shape(shape):
    # The number of items an array of this shape holds, found without allocating any.
    return np.broadcast_to(np.uint8(0), shape).size


def _empty_bytes(*args):
    # Python 3 pickles b"" at protocol 2 as bytes() (an empty array's data); nothing else.
    if args:
        raise pickle.UnpicklingError("bytes is only admitted with no arguments (b'')")
    return b""


def _frombuffer_for_pickles(buffer, dtype, shape, order):
    # Protocol 5's form of an array: its bytes, then NumPy's frombuffer(...).reshape(...).
    # The bytes are the file's own (never an object array's), and their count must match.
    if not isinstance(buffer, (bytes, bytearray)):
        raise pickle.UnpicklingError(f"an array over a {type(buffer).__name__} is refused")
    return _check_text(np.frombuffer(buffer, _raw_dtype(dtype)).reshape(shape, order=order))


def _scalar_for_pickles(dtype, data):
    # A NumPy scalar (np.float64(0.5), a course model's hyperparameter) is its dtype and its
    # item's bytes: exactly one item's worth, never an object's.
    dtype = _raw_dtype(dtype)
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError(f"a {dtype.str} scalar needs {dtype.itemsize} bytes")
    return _check_text(np.frombuffer(data, dtype))[0]


class _NdarrayForPickles:
    """What a pickle gets for ``numpy.ndarray``: ``_reconstruct``'s argument, or a call that
    makes an empty array, or one over the file's own bytes (never objects, never before the
    buffer's start, never over an object array's pointers)."""

    def __call__(self, shape, dtype=float, buffer=None, offset=0, strides=None, order=None):
        if buffer is None:
            # NumPy would allocate the items itself: a few bytes of pickle would ask for
            # gigabytes (and an object array's are all written).
            if _size_of_shape(shape):
                raise pickle.UnpicklingError("an array whose items are not in the file is refused")
            dtype = _check_dtype(np.dtype(dtype))      # "U1,i4" would make a record dtype
        else:
            dtype = _raw_dtype(dtype)
            # NumPy takes a negative offset as given and reads before the buffer (a segfault).
            if operator.index(offset) < 0:
                raise pickle.UnpicklingError("an array starting before its buffer is refused")
            if isinstance(buffer, np.ndarray) and buffer.dtype.hasobject:
                raise pickle.UnpicklingError("an array over an object array's pointers is refused")
        return _check_text(np.ndarray(shape, dtype, buffer, offset, strides, order))


_NDARRAY_FOR_PICKLES = _NdarrayForPickles()


def _reconstruct_for_pickles(cls, shape, *args):
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # NumPy 1.x
        from numpy.core.multiarray import _reconstruct
    # NumPy pickles an array as an empty one that BUILD then fills from the file; a larger
    # one here would be allocated (gigabytes from a few bytes) and overwritten by BUILD.
    if _size_of_shape(shape):
        raise pickle.UnpicklingError("_reconstruct is only admitted for an empty array")
    return _reconstruct(np.ndarray if cls is _NDARRAY_FOR_PICKLES else cls, shape, *args)


class NumpyOnlyUnpickler(pickle._Unpickler):
    """Unpickler that admits only the names a pickled NumPy array needs.

    Those are ``_reconstruct``, ``ndarray`` and ``dtype`` (type strings only), latin-1
    ``_codecs.encode`` and an empty ``bytes()`` (protocol 2), ``_frombuffer`` (protocol 5)
    and ``scalar`` (NumPy scalars), each wrapped to check what it is given. Dicts, lists,
    strings and numbers need no names at all; anything else a pickle asks for
    (``os.system``, a class with ``__reduce__``) is refused before it can run. ``what``
    names the file in the refusal.

    It is the pure-Python unpickler (``pickle._Unpickler``), because the C one gives no way
    to look at an array's state before ``ndarray.__setstate__`` trusts it (see
    ``_check_array_state``).
    """

    what = "a genuine CIFAR-10 batch"
    dispatch = dict(pickle._Unpickler.dispatch)

    def load_build(self):
        target, state = self.stack[-2], self.stack[-1]
        if isinstance(target, np.ndarray):
            # ndarray.__setstate__ frees the array's memory under any view made of it (a
            # use-after-free, segfaulting), so only the empty array _reconstruct made is filled.
            if target.size or target.base is not None:
                raise pickle.UnpicklingError("BUILD on an array that already holds items is refused")
            _check_array_state(state)
            super().load_build()
            _check_text(target)
        elif isinstance(target, np.dtype):
            _check_dtype_state(target, state)       # tried on a copy: the same state, checked
            super().load_build()
        else:
            # BUILD fills in what _reconstruct or np.dtype made; on anything else (the admitted
            # functions themselves, a list) it would only set attributes, which genuine files
            # never do.
            raise pickle.UnpicklingError(f"BUILD on a {type(target).__name__} is refused")

    dispatch[pickle.BUILD[0]] = load_build

    def find_class(self, module, name):
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _reconstruct_for_pickles
        if module == "numpy" and name == "ndarray":
            return _NDARRAY_FOR_PICKLES
        if module == "numpy" and name == "dtype":
            return _dtype_for_pickles
        if module == "_codecs" and name == "encode":
            return _latin1_encode
        if name == "scalar" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _scalar_for_pickles
        if module in ("__builtin__", "builtins") and name == "bytes":
            return _empty_bytes
        if name == "_frombuffer" and module in ("numpy.core.numeric", "numpy._core.numeric"):
            return _frombuffer_for_pickles
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: {self.what} holds only NumPy arrays, "
            f"lists, dicts and strings")
