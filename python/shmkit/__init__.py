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
import pickle as _pickle
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
    SharedArray,
    SharedValue,
    ShutDown,
    gc,
    list as list_segments,
    stat,
    unlink,
)

__version__ = _shmkit.library_version

# Objects made without a name are unlinked when dropped; whatever is still
# alive when the interpreter exits is unlinked then (a crash leaves the
# names to gc: they are owned).
_atexit.register(_shmkit._atexit)
__all__ = [
    "create", "open", "unlink", "stat", "gc", "list_segments",
    "SharedArray", "Bits", "Segment", "SharedMemory",
    "Value", "Array", "SharedValue", "SynchronizedArray",
    "Lock", "RLock", "Semaphore", "BoundedSemaphore", "Barrier", "Event", "Condition",
    "Queue", "Error", "OwnerDiedWarning", "ShutDown",
]


# ---- dtypes -----------------------------------------------------------------

# multiprocessing / array-module typecodes, as sized on Linux x86-64 and arm64.
_TYPECODES = {
    "?": "bool", "b": "int8", "B": "uint8", "h": "int16", "H": "uint16",
    "i": "int32", "I": "uint32", "l": "int64", "L": "uint64",
    "q": "int64", "Q": "uint64", "f": "float32", "d": "float64",
}
_NAMES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64"}


def _dtype_name(dtype):
    """The shmkit name of a dtype given as a NumPy dtype or type, a name, a
    typecode of multiprocessing, or a ctypes type."""
    if isinstance(dtype, type) and issubclass(dtype, _ctypes._SimpleCData):
        code = dtype._type_
        if code in ("c", "u", "z", "Z", "P", "O", "g"):
            raise TypeError("unsupported ctypes type %s" % dtype.__name__)
        size = _ctypes.sizeof(dtype)
        if code == "?":
            return "bool"
        if code in "fd":
            return "float%d" % (size * 8)
        return ("uint%d" if code.isupper() else "int%d") % (size * 8)
    if isinstance(dtype, str) and dtype in _TYPECODES:
        return _TYPECODES[dtype]
    if isinstance(dtype, str) and dtype in _NAMES:
        return dtype
    if dtype is bool:
        return "bool"
    if dtype is int:
        return "int64"
    if dtype is float:
        return "float64"
    try:
        import numpy
    except ImportError:
        raise TypeError("unsupported dtype %r (without NumPy, use a name such as 'int64')" % (dtype,)) from None
    dt = numpy.dtype(dtype)
    if dt.byteorder not in ("=", "|", "<" if numpy.little_endian else ">"):
        raise TypeError("dtype %s is not in native byte order" % dt)
    if dt.name not in _NAMES:
        raise TypeError("unsupported dtype %s: shmkit stores bool, int8..int64, uint8..uint64, float32, float64"
                        % dt)
    return dt.name


# ---- arrays ------------------------------------------------------------------

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
    return _shmkit.array_create(name, tuple(shape), _dtype_name(dtype), owned, locked, huge)


def open(name, readonly=False):  # noqa: A001  (shadows the builtin inside this module only)
    """Attach to an existing segment by name alone; what you get depends on
    what it holds: SharedArray, Bits, Segment (raw bytes), SharedValue, Queue,
    Lock, Semaphore, BoundedSemaphore, Barrier or Event. readonly maps the
    data read-only (arrays, bits, raw segments, values without a lock)."""
    kind = _shmkit.open_data(name, readonly)
    if not isinstance(kind, str):
        return kind  # a SharedArray, Bits or Segment: one open, no second look at the header
    if kind == "value":
        return _shmkit.value_open(name, readonly)
    if kind == "queue":
        return Queue.open(name)
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


# ---- multiprocessing.shared_memory.SharedMemory -------------------------------

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
        if not size >= 0:
            raise ValueError("'size' must be a positive integer")
        if name is not None and name.startswith("/"):
            name = name[1:]
        if create:
            if size == 0:
                raise ValueError("'size' must be a positive number different from zero")
            if name is None:
                name = "psm_" + _secrets.token_hex(8)
            self._seg = _shmkit.segment_create(name, size, True)
        else:
            if name is None:
                raise ValueError("'name' can only be None if create=True")
            self._seg = _shmkit.segment_open(name)
        self._name = self._seg.name
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
        """Closes access from this instance. BufferError while something
        still uses .buf (a NumPy array made on it, a slice of it): the
        mapping then stays, where CPython's would be unmapped under the
        array's feet."""
        if self._buf is not None:
            # Who else holds .buf, or the segment itself (numpy.ndarray(buffer=shm.buf) keeps the
            # segment as its base and no buffer export)? Not counted: this object's attributes, the
            # memoryview's own hold on the segment, and getrefcount's argument.
            users = (_sys.getrefcount(self._buf) - 2) + (_sys.getrefcount(self._seg) - 3)
            if users > 0:
                raise BufferError("cannot close %s: %d object(s) (NumPy arrays, ...) still use .buf"
                                  % (self._name, users))
            self._buf.release()
            self._buf = None
        if self._seg is not None:
            self._seg.close()
            self._seg = None

    def unlink(self):
        """Removes the name. Call it once, from any one process."""
        _shmkit.unlink(self._name)


# ---- multiprocessing.Value and multiprocessing.Array ----------------------------

def Value(typecode_or_type, *args, lock=True, name=None, owned=True):
    """Value(typecode_or_type, value=0, lock=True, *, name=None, owned=True).

    A shared scalar, like multiprocessing.Value: .value reads and writes it
    under its robust lock (lock=True, an RLock: ``with v.get_lock():
    v.value += 1`` works) or as lock-free atomics (lock=False). Also .add()
    and .compare_and_swap(), atomic either way. Works across fork, and by
    name (shmkit.open(name)) or pickling for spawned processes.
    """
    if lock not in (True, False):
        raise TypeError("lock must be True or False (shmkit values carry their own robust lock)")
    if len(args) > 1:
        raise TypeError("Value() takes one initial value")
    v = _shmkit.value_create(name, _dtype_name(typecode_or_type), lock, owned)
    if args and args[0] != 0:
        v.value = args[0]
    return v


class SynchronizedArray:
    """A 1-d shared array with the interface of multiprocessing.Array: len,
    indexing and slicing (each under the lock when there is one), get_lock(),
    get_obj(). numpy.asarray(arr) gives a zero-copy view (unlocked)."""

    def __init__(self, arr):
        self._arr = arr
        self._mv = memoryview(arr)
        self._lock = arr.get_lock() if arr.locked else None

    def __len__(self):
        return len(self._mv)

    def __getitem__(self, i):
        if self._lock is None:
            return self._get(i)
        with self._lock:
            return self._get(i)

    def _get(self, i):
        if isinstance(i, slice):
            return self._mv[i].tolist()
        return self._mv[i]

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
            for j, v in zip(idx, value):
                self._mv[j] = v
        else:
            self._mv[i] = value

    def __iter__(self):
        return iter(self[:])

    def __array__(self, dtype=None):
        import numpy
        return numpy.asarray(self._arr, dtype=dtype)

    def get_lock(self):
        if self._lock is None:
            raise AttributeError("this array was made with lock=False: it has no lock")
        return self._lock

    def get_obj(self):
        "The SharedArray underneath."
        return self._arr

    @property
    def name(self):
        return self._arr.name

    def close(self):
        self._mv.release()
        try:
            self._arr.close()
        except BaseException:
            self._mv = memoryview(self._arr)  # refused (a thread holds the lock): still usable
            raise

    def __reduce__(self):
        return (_reopen_array, (self._arr.name,))

    def __repr__(self):
        return "<shmkit.SynchronizedArray %s %r>" % (self._arr.name, self[:])


def _reopen_array(name):
    return SynchronizedArray(_shmkit.array_open(name))


def Array(typecode_or_type, size_or_initializer, *, lock=True, name=None, owned=True):
    """Array(typecode_or_type, size_or_initializer, lock=True, *, name=None, owned=True).

    A 1-d shared array like multiprocessing.Array; the lock (lock=True) is a
    robust RLock carried in the segment itself.
    """
    if lock not in (True, False):
        raise TypeError("lock must be True or False (shmkit arrays carry their own robust lock)")
    if isinstance(size_or_initializer, int):
        init, n = None, size_or_initializer
    else:
        init = list(size_or_initializer)
        n = len(init)
    arr = _shmkit.array_create(name, (n,), _dtype_name(typecode_or_type), owned, lock, False)
    sa = SynchronizedArray(arr)
    if init:
        sa[:] = init
    return sa


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
    """Queue(name=None, capacity=32 MiB, max_msg=capacity/2, *, owned=True).

    A multiprocessing.Queue in one shared segment: put/get pickle objects
    (protocol 5; buffers such as NumPy arrays travel out of band: copied once
    straight into the ring, and they come out writable), put_bytes/get_bytes
    move raw bytes. block/timeout as in multiprocessing: timeout=None waits
    forever; queue.Empty and queue.Full. put() returns once the message is in
    shared memory: there is no feeder thread, and a process killed in the
    middle of a put loses that message only. Attach with Queue.open(name),
    by pickling (spawn), or inherit it across fork.
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
        return [_shmkit._decode_msg(m) for m in self.get_many_bytes(max, block, timeout, bytearray=True)]

    def __repr__(self):
        if self.closed:
            return "<shmkit.Queue %s (closed)>" % self.name
        return "<shmkit.Queue %s messages=%d>" % (self.name, self.qsize())
