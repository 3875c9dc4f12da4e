"""shmkit: named, self-describing shared memory for many processes, without copies.

The same segments as the shmkit C library and the ``shmkit`` command, as
zero-copy NumPy arrays, bit arrays, values, locks and queues. See
docs/python.md for the whole story; in short::

    a = shmkit.create("matrix", (4096, 4096), "float64")   # owned by this process
    m = numpy.asarray(a)                                     # zero copy
    # in any other process:
    m = numpy.asarray(shmkit.open("matrix"))

Lifetime: everything this module creates is *owned*: its name is removed
once the creating process has died, however it died (``shmkit gc``, or the
sweep the library runs at create time). Objects made without a name are
also unlinked when the creating process drops them. Pass ``owned=False``
with a name for a segment that outlives its creator until unlinked.
"""

import atexit as _atexit
import ctypes as _ctypes
import errno as _errno
import multiprocessing.util as _mputil
import os as _os
import pickle as _pickle
import queue as _queue
import secrets as _secrets
import struct as _struct
import sys as _sys

from . import _shmkit
from ._shmkit import (  # noqa: F401  (re-exported)
    Barrier,
    Bits,
    BoundedSemaphore,
    Condition,
    Error,
    Event,
    Lock,
    OwnerDiedWarning,
    RLock,
    Segment,
    Semaphore,
    SharedRawValue,
    SharedValue,
    ShutDown,
    gc,
    list as list_segments,
    stat,
    unlink,
)

__version__ = _shmkit.library_version

# Objects made without a name are unlinked when dropped. At a normal exit
# (Ctrl-C included) every owned segment this process created goes, and so do
# the generated names of objects it still has; a crash leaves them to the
# next sweep or gc (they are owned). multiprocessing's children end with
# os._exit, past atexit: its own exit hook runs it there.
_atexit.register(_shmkit._atexit)
_os.register_at_fork(after_in_child=_shmkit._forget_created)


class _AtChildExit:
    "The key multiprocessing's after-fork registry holds (weakly) for shmkit."


_at_child_exit = _AtChildExit()
_mputil.register_after_fork(_at_child_exit,
                            lambda _: _mputil.Finalize(None, _shmkit._atexit, exitpriority=-100))
__all__ = [
    "create", "open", "unlink", "stat", "gc", "list_segments", "DTYPES",
    "SharedArray", "Bits", "Segment", "SharedMemory", "ShareableList",
    "Value", "Array", "RawValue", "RawArray", "SharedValue", "SharedRawValue", "SynchronizedArray",
    "SharedRawArray",
    "Lock", "RLock", "Semaphore", "BoundedSemaphore", "Barrier", "Event", "Condition",
    "Queue", "SimpleQueue", "JoinableQueue", "Error", "OwnerDiedWarning", "ShutDown",
    "share", "attach", "Shared", "from_numpy",
]


# ---- dtypes -----------------------------------------------------------------

# Every table below is derived from the library's dtype traits
# (_shmkit.dtypes(): name, size, kind, format, typestr per dtype).
_DTYPE_TRAITS = _shmkit.dtypes()
DTYPES = tuple(t[0] for t in _DTYPE_TRAITS)
_NAMES = frozenset(DTYPES)


def _sized(kind, size):
    "The dtype name of NumPy kind 'i', 'u' or 'f' and this many bytes."
    return next(t[0] for t in _DTYPE_TRAITS if t[2] == kind and t[1] == size)


# multiprocessing / array-module typecodes: the struct format characters of
# the traits, plus those spelt differently ('l', 'L': C long) and 'c' (a
# byte) and 'u' (a wchar_t), stored as uint8 and uint32 and read back as
# bytes and str, as ctypes' c_char and c_wchar are.
_TYPECODES = {t[3]: t[0] for t in _DTYPE_TRAITS}
_TYPECODES.update({"l": _sized("i", _struct.calcsize("l")), "L": _sized("u", _struct.calcsize("L")),
                   "c": "uint8", "u": _sized("u", _ctypes.sizeof(_ctypes.c_wchar))})
_SUPPORTED = "shmkit stores " + ", ".join(DTYPES)


def _char_kind(typecode_or_type):
    "'c', 'u' or None: whether elements read back as bytes or str."
    if typecode_or_type in ("c", _ctypes.c_char):
        return "c"
    if typecode_or_type in ("u", _ctypes.c_wchar):
        return "u"
    return None


def _dtype_name(dtype):
    """The shmkit name of a dtype given as a NumPy dtype or type, a name, a
    typecode of multiprocessing, or a ctypes type."""
    if dtype is _ctypes.c_char:
        return "uint8"
    if dtype is _ctypes.c_wchar:
        return "uint32"
    if isinstance(dtype, type) and issubclass(dtype, _ctypes._SimpleCData):
        code = dtype._type_
        if code in ("z", "Z", "P", "O", "g"):
            raise TypeError("unsupported ctypes type %s" % dtype.__name__)
        size = _ctypes.sizeof(dtype)
        if code == "?":
            return "bool"
        if code in "fd":
            return _sized("f", size)
        return _sized("u" if code.isupper() else "i", size)
    if isinstance(dtype, str) and dtype in _TYPECODES:
        return _TYPECODES[dtype]
    if isinstance(dtype, str) and dtype in _NAMES:
        return dtype
    if dtype is bool:
        return "bool"
    if dtype is int:
        return _sized("i", 8)
    if dtype is float:
        return _sized("f", 8)
    try:
        import numpy
    except ImportError:
        raise TypeError("unsupported dtype %r (without NumPy, use a name such as 'int64')" % (dtype,)) from None
    dt = numpy.dtype(dtype)
    if dt.byteorder not in ("=", "|", "<" if numpy.little_endian else ">"):
        raise TypeError("dtype %s is not in native byte order" % dt)
    if dt.name not in _NAMES:
        raise TypeError("unsupported dtype %s: %s" % (dt, _SUPPORTED))
    return dt.name


def _lock_arg(lock, what):
    """lock= of Value and Array as multiprocessing takes it: True or None (a
    robust lock of its own), False (none), or a lock object to use."""
    if lock is None or lock is True:
        return True, None
    if lock is False:
        return False, None
    if not hasattr(lock, "acquire"):
        raise AttributeError("%r has no method 'acquire'" % (lock,))
    return True, lock


# ---- pickling: references to segments --------------------------------------------

class _Vanished:
    """What unpickling gives in place of a shmkit object whose segment is
    gone (its creator removed it or ended before this process attached it).
    Raising there would lose the task silently in a multiprocessing Pool
    (a worker that cannot unpickle its task exits, and the pool waits for
    its result for ever); this object raises FileNotFoundError, naming the
    segment, as soon as anything uses it, so the task fails with that error
    and the caller sees it."""

    def __init__(self, what, name, error):
        self._what, self._name, self._error = what, name, str(error)

    def _fail(self, *args, **kwargs):
        raise FileNotFoundError(_errno.ENOENT, "the shmkit %s %s was removed before this process attached it "
                                "(its creator removed it, or ended, first): %s"
                                % (self._what, self._name, self._error), self._name)

    def __getattr__(self, attr):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        self._fail()

    __getitem__ = __setitem__ = __iter__ = __len__ = __call__ = __enter__ = __array__ = __bool__ = _fail
    __add__ = __radd__ = __eq__ = __lt__ = __gt__ = __le__ = __ge__ = __contains__ = _fail
    __hash__ = None

    def __repr__(self):
        return "<shmkit: %s %s is gone>" % (self._what, self._name)


def _ref(h):
    """What a pickle carries to attach h's segment elsewhere: a name of its
    own for the receiver (a hard link to the same file, so that this process
    may drop h meanwhile), which the receiver removes when it is done, and
    the name to show."""
    return (h._handoff(), h.name)


def _reduce_data(obj):
    """__reduce__ of Segment, ArrayHandle and Bits: by reference to their
    segment (a bit array inside another segment: that segment and where)."""
    if isinstance(obj, _shmkit.Bits) and obj._owner is not None:
        return (_rebuild_bits_view, (obj._owner, obj._offset, len(obj)))
    kind = "bits" if isinstance(obj, _shmkit.Bits) else "array" if isinstance(obj, _shmkit.ArrayHandle) else "raw"
    if not obj.name:
        raise TypeError("an unnamed segment cannot be pickled: it has no name to attach by")
    return (_rebuild_data, (kind, _ref(obj), obj.readonly))


def _open_ref(kind, ref, readonly):
    token, shown = ref
    if kind == "bits":
        h = _shmkit.Bits.open(token, readonly)
    elif kind == "array":
        h = _shmkit.array_open(token, readonly)
    else:
        h = _shmkit.segment_open(token, readonly)
    h._adopt(shown)
    return h


def _rebuild_data(kind, ref, readonly):
    try:
        return _open_ref(kind, ref, readonly)
    except FileNotFoundError as e:
        return _Vanished(kind, ref[1], e)


def _rebuild_bits_view(owner, offset, nbits):
    if isinstance(owner, _Vanished):
        return owner
    return _shmkit.bits_view(owner, offset, nbits)


# ---- arrays ------------------------------------------------------------------

try:
    import numpy as _np
except ImportError:  # the package works without NumPy; arrays are then their handles
    _np = None


if _np is not None:
    class SharedArray(_np.ndarray):
        """A NumPy array whose memory is a shmkit segment: what shmkit.create,
        shmkit.open and shmkit.from_numpy return. It is an ndarray (indexing,
        slicing, iteration, ufuncs, every method and function), and its views
        (slices, reshapes, .T) are SharedArrays of the same segment.

        Lifetime: the mapping stays as long as any array or memoryview that
        uses it lives, this one included, so nothing can dangle. close() ends
        this process's use (name, info, unlink, get_lock raise ValueError
        from then on; a generated name is removed now); the memory goes when
        the last array over it is gone. Results that are new arrays (a + 1,
        a.copy(), a.sum(axis=0)) are plain ndarrays in private memory.

        Pickled (spawn, Pool, Queue), a SharedArray or a view of it travels
        as a reference to the segment, not as its data: the receiver maps the
        same memory. Attributes besides ndarray's: name, closed, readonly,
        locked; methods close(), unlink(), info(), freeze(), get_lock().
        """

        _h = None  # the ArrayHandle whose memory this is; None for a private copy

        def __new__(cls, shape, dtype="float64", *, name=None, owned=True, locked=False, huge=False):
            """SharedArray(shape, dtype='float64', *, name=None, owned=True,
            locked=False, huge=False): shmkit.create(name, shape, dtype, ...)."""
            return create(name, shape, dtype, owned=owned, locked=locked, huge=huge)

        def __array_finalize__(self, obj):
            h = getattr(obj, "_h", None)
            # A view of the segment keeps its handle; a new array (a copy) has none.
            self._h = h if h is not None and _np.may_share_memory(self, obj) else None

        def __array_wrap__(self, arr, context=None):
            arr = super().__array_wrap__(arr, context)
            if arr is self or type(arr) is not SharedArray or arr._h is not None:
                return arr
            return arr[()] if arr.shape == () else arr.view(_np.ndarray)  # a new result: plain NumPy

        def __getitem__(self, index):
            r = super().__getitem__(index)
            if type(r) is SharedArray and r._h is None:
                return r.view(_np.ndarray)  # fancy indexing copies
            return r

        def copy(self, order="C"):
            "A copy in private memory, as a plain numpy.ndarray."
            return _np.asarray(self).copy(order)

        def _handle(self):
            if self._h is None:
                raise ValueError("this array is a copy in private memory, not a shmkit segment")
            return self._h

        @property
        def name(self):
            "The segment's name (None for a private copy)."
            return None if self._h is None else self._h.name

        @property
        def closed(self):
            "True after close() (and for a private copy)."
            return self._h is None or self._h.closed

        @property
        def readonly(self):
            "True when this array cannot be written (opened read-only, frozen)."
            return not self.flags.writeable

        @property
        def locked(self):
            "True when the segment carries a lock (get_lock())."
            return getattr(self._handle(), "locked", False)

        def close(self):
            """Ends this process's use of the segment: its methods raise
            ValueError from now on, and a generated name is removed now. The
            memory stays mapped while this array or any view of it lives."""
            if self._h is not None:
                self._h.close()

        def unlink(self):
            "Removes the name (processes that have the array keep it)."
            self._handle().unlink()

        def info(self):
            "The segment's header as a dict."
            return self._handle().info()

        def freeze(self):
            """Makes the segment read-only for good: every later open is
            read-only. This array becomes read-only too; views made before
            keep their writable mapping."""
            self._handle().freeze()
            self.flags.writeable = False

        def get_lock(self):
            "The robust lock a locked array carries (an RLock)."
            return self._handle().get_lock()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.close()

        def __reduce_ex__(self, protocol):
            h = self._h
            if h is None or h.closed:
                return _np.asarray(self).__reduce_ex__(protocol)  # a private array travels by value
            offset = self.__array_interface__["data"][0] - h.address
            kind = "array" if isinstance(h, _shmkit.ArrayHandle) else "raw"  # raw: an array inside a share
            return (_rebuild_array, (kind, _ref(h), self.flags.writeable, offset, self.shape, self.strides,
                                     self.dtype.descr if self.dtype.fields else self.dtype.str))

    def _wrap(h):
        "The SharedArray over the whole of an ArrayHandle."
        a = _np.asarray(h).view(SharedArray)  # the base holds a buffer export of h
        a._h = h
        return a

    def _rebuild_array(kind, ref, writable, offset, shape, strides, typestr):
        try:
            h = _open_ref(kind, ref, not writable)
        except FileNotFoundError as e:
            return _Vanished("array", ref[1], e)
        base = _np.asarray(h)
        a = _np.ndarray(shape, _np.dtype(typestr), buffer=base, offset=offset, strides=strides).view(SharedArray)
        a._h = h
        return a
else:
    SharedArray = _shmkit.ArrayHandle

    def _wrap(h):
        return h


def create(name, shape, dtype="float64", *, owned=True, locked=False, huge=False):
    """Create a zero-filled N-d array segment and return it (a SharedArray).

    name: 1..200 characters of [A-Za-z0-9._-], or None for a generated name.
    shape: an int or a tuple of ints. dtype: bool, int8..int64, uint8..uint64,
    float32, float64 (NumPy dtypes, names and typecodes are accepted).
    owned: the name goes once this process has died (default); owned=False
    keeps it until unlinked. locked: the segment carries a robust lock
    (a.get_lock()). huge: back it with 2 MiB pages where the system allows.
    Raises FileExistsError if the name is taken, OSError(ENOSPC) if /dev/shm
    cannot hold it (nothing is left behind), ValueError for a bad name.
    """
    if isinstance(shape, int):
        shape = (shape,)
    return _wrap(_shmkit.array_create(name, tuple(shape), _dtype_name(dtype), owned, locked, huge))


def from_numpy(a, name=None, *, owned=True, locked=False, huge=False, readonly=False):
    """from_numpy(a, name=None, *, owned=True, locked=False, huge=False, readonly=False).

    A new SharedArray holding a copy of a (a NumPy array, or anything
    numpy.asarray takes) in one call: same shape and values, in one of
    shmkit's dtypes (byte order converted to native). The segment gets its
    name only once the copy is complete, so nobody ever attaches to a
    half-filled array. readonly: also freeze it (every later open, and this
    array, read-only). Other arguments as create(); shmkit.share() takes any
    object graph, arrays of any dtype included.
    """
    src = _np.asarray(a)
    dt = src.dtype
    if dt.byteorder not in ("=", "|"):
        dt = dt.newbyteorder("=")
    h = _shmkit.array_create(name, src.shape, _dtype_name(dt), owned, locked, huge, False)
    try:
        view = _np.asarray(h)
        _np.copyto(view, src, casting="equiv")  # NumPy copies with the GIL released
        del view
        if readonly:
            h._freeze_mapping()
        h._publish(name)
    except BaseException:
        h.close()
        raise
    return _wrap(h)


def open(name, readonly=False, *, any_owner=False):  # noqa: A001  (shadows the builtin inside this module only)
    """Attach to an existing segment by name alone; what you get depends on
    what it holds: SharedArray, Bits, Segment (raw bytes), SharedValue, Queue,
    Lock, Semaphore, BoundedSemaphore, Barrier or Event. readonly maps the
    data read-only (arrays, bits, raw segments, values without a lock).
    A segment of another user (neither you nor root) raises PermissionError
    unless any_owner=True (data, values and queues; a queue of another user
    then does not unpickle its messages: Queue.open(name, unpickle=True))."""
    kind = _shmkit.open_data(name, readonly, any_owner)
    if isinstance(kind, _shmkit.ArrayHandle):
        return _wrap(kind)
    if not isinstance(kind, str):
        return kind  # Bits or Segment: one open, no second look at the header
    if kind == "value":
        return _shmkit.value_open(name, readonly, any_owner=any_owner)
    if kind == "queue":
        return Queue.open(name, any_owner=any_owner)
    if kind == "mutex":
        return Lock.open(name)
    if kind == "sem":
        return Semaphore.open(name)
    if kind == "barrier":
        return Barrier.open(name)
    if kind == "event":
        return Event.open(name)
    if kind == "cond":
        raise TypeError("%s is a condition variable: attach with Condition.open(name, lock)" % name)
    raise TypeError("%s holds a %s segment, which the Python module does not open" % (name, kind))


# ---- multiprocessing.shared_memory.SharedMemory (shmkit.shared_memory has it too) ---

class SharedMemory:
    """A drop-in for multiprocessing.shared_memory.SharedMemory.

    SharedMemory(name=None, create=False, size=0). Differences that matter:
    the segment is owned by the process that created it (its name goes when
    that process dies, even by SIGKILL: no resource tracker involved), a
    process that only attached never removes it, ``size`` is exactly the size
    asked for, and only shmkit segments can be attached (a leading '/' in the
    name is accepted and dropped).
    """

    _seg = None
    _buf = None

    def __init__(self, name=None, create=False, size=0):
        self._init(name, create, size, True)

    @classmethod
    def _create_unpublished(cls, name, size):
        """A new segment that gets its name only at _publish(), once filled."""
        self = cls.__new__(cls)
        self._init(name, True, size, False)
        return self

    def _publish(self):
        self._seg._publish(self._name)

    def _init(self, name, create, size, publish):
        if not size >= 0:
            raise ValueError("'size' must be a positive integer")
        if name is not None and name.startswith("/"):
            name = name[1:]
        if create:
            if size == 0:
                raise ValueError("'size' must be a positive number different from zero")
            if name is None:
                name = "psm_" + _secrets.token_hex(8)
            self._seg = _shmkit.segment_create(name, size, True, False, publish)
        else:
            if name is None:
                raise ValueError("'name' can only be None if create=True")
            self._seg = _shmkit.segment_open(name)
        self._name = self._seg.name or name
        self._size = self._seg.size
        self._buf = memoryview(self._seg)

    def __del__(self):
        try:
            self.close()
        except (OSError, BufferError, ValueError):
            pass

    def __reduce__(self):
        return (self.__class__, (self.name, False, self.size))

    def __repr__(self):
        return "%s(%r, size=%d)" % (self.__class__.__name__, self.name, self.size)

    @property
    def buf(self):
        "A memoryview of the contents."
        return self._buf

    @property
    def name(self):
        "Unique name that identifies the segment."
        return self._name

    @property
    def size(self):
        "Size in bytes."
        return self._size

    def close(self):
        """Closes access from this instance, as CPython does: .buf is released
        (an object that kept a reference to it, ``b = shm.buf``, raises
        ValueError on use from now on) and the memory unmapped. BufferError,
        and nothing is unmapped, while something still uses the memory
        itself: NumPy arrays made on .buf (numpy.frombuffer,
        numpy.ndarray(buffer=shm.buf)) or slices of it. CPython unmaps under
        those and the next access crashes."""
        if self._seg is not None:
            # numpy.ndarray(buffer=shm.buf) keeps the segment itself as its base, with no buffer export.
            # Not counted: this object's attribute, .buf's hold on it, and getrefcount's argument.
            users = _sys.getrefcount(self._seg) - 2 - (self._buf is not None)
            if users > 0:
                raise BufferError("cannot close %s: %d NumPy array(s) made on .buf still use it" % (self._name, users))
        if self._buf is not None:
            self._buf.release()  # BufferError while exports of it (numpy.frombuffer, ...) are alive
            self._buf = None
        if self._seg is not None:
            if self._seg._exports:  # slices of .buf keep the memory
                raise BufferError("cannot close %s: %d slice(s) of .buf still use it" % (self._name,
                                                                                        self._seg._exports))
            self._seg.close()
            self._seg = None

    def unlink(self):
        """Removes the name. Call it once, from any one process."""
        _shmkit.unlink(self._name)


# ---- multiprocessing.Value and multiprocessing.Array ----------------------------

def Value(typecode_or_type, *args, lock=True, name=None, owned=True):
    """Value(typecode_or_type, *args, lock=True, name=None, owned=True).

    A shared scalar, like multiprocessing.Value. lock=True or None: .value
    reads and writes it under its own robust lock, an RLock carried in the
    segment (``with v.get_lock(): v.value += 1`` works); lock=False: a
    SharedRawValue without get_lock/get_obj whose every operation is a
    lock-free atomic; a lock object (shmkit's or any with acquire/release):
    .value takes that lock. Also .add() and .compare_and_swap(), atomic
    either way. Typecodes 'c' and 'u' hold one byte (bytes) and one character
    (str). Works across fork, and by name (shmkit.open(name)) or pickling for
    spawned processes.
    """
    locked, lock_object = _lock_arg(lock, "Value")
    if len(args) > 1:
        raise TypeError("Value() takes the typecode and at most one initial value (%d given); lock, name and "
                        "owned are keyword-only" % len(args))
    kind = _char_kind(typecode_or_type)
    v = _shmkit.value_create(name, _dtype_name(typecode_or_type), locked, owned, kind, lock_object)
    if args and args[0] not in (0, b"\0", "\0"):
        v.value = args[0]
    return v


def RawValue(typecode_or_type, *args, name=None, owned=True):
    """RawValue(typecode_or_type, *args, name=None, owned=True): a shared
    scalar without a lock (a SharedRawValue: every operation atomic), like
    multiprocessing.RawValue."""
    return Value(typecode_or_type, *args, lock=False, name=name, owned=owned)


class _SharedSequence:
    """What SynchronizedArray and SharedRawArray share: a 1-d SharedArray seen
    as multiprocessing's Array: len, indexing and slicing, iteration,
    numpy.asarray(arr) (zero copy, unlocked), and for typecode 'c' / 'u'
    elements that read as bytes / str and the .value (.raw) of ctypes' char
    arrays."""

    _lock = None

    def __init__(self, arr, kind=None, lock=None):
        self._arr = arr
        self._mv = memoryview(arr)
        self._kind = kind
        if lock is not None:
            self._lock = lock

    @classmethod
    def open(cls, name, typecode=None):
        """Attach to the named array (typecode 'c' or 'u': read elements as
        bytes or str)."""
        arr = _shmkit.array_open(name)
        if arr.ndim != 1:
            arr.close()
            raise TypeError("%s is a %d-d array, not a 1-d one" % (name, arr.ndim))
        return cls(arr, _char_kind(typecode))

    def __len__(self):
        return len(self._mv)

    def __getitem__(self, i):
        if self._lock is None:
            return self._get(i)
        with self._lock:
            return self._get(i)

    def _get(self, i):
        if isinstance(i, slice):
            items = self._mv[i].tolist()
            if self._kind == "c":
                return bytes(items)
            if self._kind == "u":
                return "".join(map(chr, items))
            return items
        x = self._mv[i]
        if self._kind == "c":
            return bytes((x,))
        if self._kind == "u":
            return chr(x)
        return x

    def _conv(self, v):
        if self._kind == "c":
            if isinstance(v, (bytes, bytearray)):
                if len(v) != 1:
                    raise TypeError("one character bytes, bytearray or integer expected")
                return v[0]
            return v
        if self._kind == "u":
            if not isinstance(v, str) or len(v) != 1:
                raise TypeError("unicode string of length 1 expected")
            return ord(v)
        return v

    def __setitem__(self, i, value):
        if self._lock is None:
            return self._set(i, value)
        with self._lock:
            return self._set(i, value)

    def _set(self, i, value):
        if isinstance(i, slice):
            idx = range(*i.indices(len(self._mv)))
            value = list(value)
            if len(value) != len(idx):
                raise ValueError("can only assign a sequence of the same size (%d, not %d)" % (len(idx), len(value)))
            conv = [self._conv(v) for v in value]
            for j, v in zip(idx, conv):
                self._mv[j] = v
        else:
            self._mv[i] = self._conv(value)

    def __iter__(self):
        return iter(self[:])

    def __array__(self, dtype=None):
        import numpy
        return numpy.asarray(self._arr, dtype=dtype)

    # ctypes' char and wchar arrays: .value up to the first NUL, .raw all bytes.
    @property
    def value(self):
        if self._kind is None:
            raise AttributeError("only arrays of typecode 'c' or 'u' have .value")
        whole = self[:]
        nul = whole.find(b"\0" if self._kind == "c" else "\0")
        return whole if nul < 0 else whole[:nul]

    @value.setter
    def value(self, v):
        if self._kind is None:
            raise AttributeError("only arrays of typecode 'c' or 'u' have .value")
        n = len(self)
        if len(v) > n:
            raise ValueError("byte string too long" if self._kind == "c" else "string too long")
        pad = b"\0" if self._kind == "c" else "\0"
        tail = pad if len(v) < n else v[:0]
        self[:len(v) + len(tail)] = v + tail

    @property
    def raw(self):
        if self._kind != "c":
            raise AttributeError("only arrays of typecode 'c' have .raw")
        return self[:]

    @raw.setter
    def raw(self, v):
        if self._kind != "c":
            raise AttributeError("only arrays of typecode 'c' have .raw")
        if len(v) > len(self):
            raise ValueError("byte string too long")
        self[:len(v)] = v

    @property
    def name(self):
        return self._arr.name

    @property
    def closed(self):
        return self._arr.closed

    def close(self):
        """Ends this object's use of the array (RuntimeError while a thread
        holds its lock or works in it); the memory stays mapped while NumPy
        arrays made from it are alive."""
        self._mv.release()
        try:
            self._arr.close()
        except BaseException:
            self._mv = memoryview(self._arr)  # refused: still usable
            raise

    def unlink(self):
        "Remove the name (processes that have the array keep it)."
        self._arr.unlink()

    def __reduce__(self):
        return (_reopen_array, (type(self), self._arr.name, self._kind, self._lock if self._external else None))

    _external = False

    def __repr__(self):
        if self.closed:
            return "<shmkit.%s %s (closed)>" % (type(self).__name__, self.name)
        return "<shmkit.%s %s %r>" % (type(self).__name__, self._arr.name, self[:])


class SynchronizedArray(_SharedSequence):
    """A 1-d shared array with a lock and the interface of
    multiprocessing.Array: each access takes the lock (the array's own robust
    RLock, or the lock object it was made with), get_lock(), get_obj() (the
    SharedArray underneath). SynchronizedArray.open(name) attaches by name."""

    def __init__(self, arr, kind=None, lock=None):
        if lock is None and not arr.locked:
            raise TypeError("%s carries no lock: attach it as a SharedRawArray" % arr.name)
        super().__init__(arr, kind, lock if lock is not None else arr.get_lock())
        self._external = lock is not None

    def get_lock(self):
        return self._lock

    def get_obj(self):
        "The SharedArray underneath."
        return _wrap(self._arr)


class SharedRawArray(_SharedSequence):
    """A 1-d shared array without a lock (multiprocessing.RawArray); made by
    RawArray() and Array(lock=False). SharedRawArray.open(name) attaches."""

    def __init__(self, arr, kind=None, lock=None):
        super().__init__(arr, kind)


def _reopen_array(cls, name, kind, lock):
    arr = _shmkit.array_open(name)
    return cls(arr, kind, lock) if cls is SynchronizedArray else cls(arr, kind)


def Array(typecode_or_type, size_or_initializer, *, lock=True, name=None, owned=True):
    """Array(typecode_or_type, size_or_initializer, *, lock=True, name=None, owned=True).

    A 1-d shared array like multiprocessing.Array. lock=True or None: a
    SynchronizedArray whose lock is a robust RLock carried in the segment
    itself; lock=False: a SharedRawArray (no get_lock/get_obj); a lock object:
    a SynchronizedArray that takes that lock.
    """
    locked, lock_object = _lock_arg(lock, "Array")
    kind = _char_kind(typecode_or_type)
    if isinstance(size_or_initializer, int):
        init, n = None, size_or_initializer
    else:
        init = list(size_or_initializer) if not isinstance(size_or_initializer, (bytes, str)) else size_or_initializer
        n = len(init)
    # Named only once filled: nobody attaches to a half-written array.
    arr = _shmkit.array_create(name, (n,), _dtype_name(typecode_or_type), owned, locked and lock_object is None,
                               False, not init)
    if not locked:
        sa = SharedRawArray(arr, kind)
    else:
        sa = SynchronizedArray(arr, kind, lock_object)
    if init:
        sa[:] = init
        arr._publish(name)
    return sa


def RawArray(typecode_or_type, size_or_initializer, *, name=None, owned=True):
    """RawArray(typecode_or_type, size_or_initializer, *, name=None, owned=True):
    a 1-d shared array without a lock, like multiprocessing.RawArray."""
    return Array(typecode_or_type, size_or_initializer, lock=False, name=name, owned=owned)


# ---- Queue ------------------------------------------------------------------------

_HEAD = _struct.Struct("<IQ")


def _align8(n):
    return (n + 7) & ~7


def _decode(msg):
    if msg[:1] != b"\x00":
        return _pickle.loads(msg)
    mv = memoryview(msg)
    nbuf, plen = _HEAD.unpack_from(mv, 4)
    lens = _struct.unpack_from("<%dQ" % nbuf, mv, 16)
    off = _align8(16 + 8 * nbuf)
    data = mv[off:off + plen]
    off = _align8(off + plen)
    bufs = []
    for n in lens:
        bufs.append(mv[off:off + n])
        off = _align8(off + n)
    return _pickle.loads(data, buffers=bufs)


class Queue(_shmkit.Queue):
    """Queue(maxsize=0, *, name=None, capacity=32 MiB, max_msg=capacity/2, owned=True).

    A multiprocessing.Queue in one shared segment. put/get move common
    objects (None, bool, int, float, str, bytes, tuples and lists of them)
    in a compact format and pickle the rest (protocol 5; buffers such as
    NumPy arrays travel out of band: copied once straight into the ring, and
    they come out writable); put_bytes/get_bytes move raw bytes. maxsize
    bounds the messages held, in the queue itself (0: as many as the ring of
    capacity bytes holds). block/timeout as in multiprocessing: timeout=None waits forever;
    queue.Empty and queue.Full. put() returns once the message is in shared
    memory: there is no feeder thread, and a process killed in the middle of
    a put loses that message only. Attach with Queue.open(name), by pickling
    (spawn), or inherit it across fork.
    """

    def put_nowait(self, obj):
        return self.put(obj, False)

    def get_nowait(self):
        return self.get(False)

    def put_many(self, objs, block=True, timeout=None):
        """Put every object in order, batching many per lock. Returns how
        many were put: all of them, or fewer when the time ran out (then at
        least one, else queue.Full)."""
        return self.put_many_bytes([_shmkit._encode(o) for o in objs], block, timeout)

    def get_many(self, max=64, block=True, timeout=None):  # noqa: A002
        """Between 1 and max objects, oldest first; waits only for the first."""
        if not self.unpickle:  # one by one, so that a pickle is refused before it is taken
            got = [self.get(block, timeout)]
            while len(got) < max:
                try:
                    got.append(self.get(False))
                except (_queue.Empty, PermissionError):
                    break
            return got
        return [_shmkit._decode_msg(m) for m in self.get_many_bytes(max, block, timeout, bytearray=True)]

    def __repr__(self):
        if self.closed:
            return "<shmkit.%s %s (closed)>" % (type(self).__name__, self.name)
        return "<shmkit.%s %s messages=%d>" % (type(self).__name__, self.name, self.qsize())


def _reopen_queue(cls, token, name, any_owner, unpickle):
    """Unpickling a Queue: attached by the name its sender made for this
    process, with the owner and unpickle choices the sender made."""
    try:
        q = cls.open(token, any_owner=any_owner, unpickle=unpickle)
    except FileNotFoundError as e:
        return _Vanished("queue", name, e)
    q._adopt(name)
    return q


class JoinableQueue(Queue):
    """JoinableQueue(maxsize=0, *, name=None, capacity=32 MiB, max_msg=capacity/2, owned=True).

    multiprocessing.JoinableQueue on shmkit: a Queue whose every message is
    a task until some process calls task_done() for it; join() waits until
    none is left. The count lives in the queue's segment, shared by every
    process that has the queue."""

    def task_done(self):
        """Marks one message taken with get() as handled. ValueError when
        called more times than messages were put."""
        self._task_done()

    def join(self, timeout=None):
        """Waits until every message put was marked handled (Ctrl-C
        interrupts it). True, or False when timeout (seconds) ran out."""
        return self._join(timeout)


class SimpleQueue(Queue):
    """SimpleQueue(*, name=None, capacity=32 MiB, max_msg=capacity/2, owned=True).

    multiprocessing.SimpleQueue on shmkit: get(), put(obj), empty() and
    close(), with no limit but the ring's capacity (the other methods of
    Queue work too)."""

    def __new__(cls, *, name=None, capacity=32 << 20, max_msg=None, owned=True):
        return super().__new__(cls, 0, name=name, capacity=capacity, max_msg=max_msg, owned=owned)


from .shared_memory import ShareableList  # noqa: E402  (needs SharedMemory above)
from ._share import Shared, attach, share  # noqa: E402
