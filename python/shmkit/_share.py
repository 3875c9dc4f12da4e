"""shmkit.share and shmkit.attach: a whole object graph in one segment.

share(obj) pickles obj once with protocol 5. The memory of NumPy arrays
(of any dtype without Python objects) and bitarray objects leaves the
pickle as out-of-band buffers, and shmkit.Bits go to a side table; all of
it is laid out in one raw segment, each buffer on a page boundary, the
pickle beside them. The segment is frozen (read-only for every later
opener) and published under its name only once complete. attach() maps it
read-only, copies the pickle out and unpickles it with the buffers as
zero-copy views: arrays come back as read-only NumPy arrays, bitarrays as
read-only bitarrays, Bits as read-only Bits, everything else as itself.

Segment layout (the data of a raw segment; little-endian; every value is
read once from the mapping into a local copy and checked before use):

    offset  size  field
         0     8  magic b"SKSHARE\\x01"
         8     4  version, 1
        12     4  zero
        16     8  nentries: buffers in the table
        24     8  table offset (128)
        32     8  pickle offset (8-aligned, after the table)
        40     8  pickle length
        48     8  bytes used (the end of the last buffer)
        56    72  zero
       128  24*n  table: per buffer u64 offset (a multiple of 4096), u64 length,
                  u32 kind (0: an out-of-band buffer handed to pickle in order,
                  1: the words of a Bits, found by its index among kind 1),
                  u32 zero
           ...    the pickle, then the buffers at their offsets

The memory of a share lives as long as its segment's name or any process
that attached it holds it (docs/python.md, "Lifetimes").
"""
import io as _io
import pickle as _pickle
import struct as _struct
import threading as _threading

from . import SharedArray, _shmkit

try:
    import numpy as _np
except ImportError:
    _np = None  # type: ignore[assignment]
try:
    from bitarray import bitarray as _bitarray
except ImportError:
    _bitarray = None  # type: ignore[assignment,misc]

MAGIC = b"SKSHARE\x01"
VERSION = 1
PAGE = 4096
_HEADER = _struct.Struct("<8sII5Q72x")  # magic, version, zero, nentries, table, pickle off, len, used, zero
_ENTRY = _struct.Struct("<QQII")
_TABLE = 128
assert _HEADER.size == _TABLE and _ENTRY.size == 24

_OOB, _SIDE = 0, 1


def _round(n, to):
    return (n + to - 1) // to * to


# ---- making one -------------------------------------------------------------------

class _Pickler(_pickle.Pickler):
    """Protocol 5, the memory of arrays out of band, Bits to the side table."""

    def __init__(self, out):
        self.oob = []   # PickleBuffers, in the order pickle hands them out
        self.side = []  # memoryviews of Bits words
        # list.append returns None: out of band. (A bound method of the
        # pickler here would make a cycle: the pickler, its buffers and so the
        # caller's arrays would live until a gc pass.)
        super().__init__(out, protocol=5, buffer_callback=self.oob.append)

    def drop(self):
        """Lets go of every object of the graph (memo, buffers, Bits views)
        at once, whenever the pickler itself goes."""
        self.clear_memo()
        self.oob.clear()
        self.side.clear()

    def reducer_override(self, obj):
        t = type(obj)
        if _np is not None and (t is _np.ndarray or t is _np.memmap or t.__name__ == "SharedArray"
                                and isinstance(obj, _np.ndarray)):
            if obj.dtype.hasobject:
                return NotImplemented  # Python objects: pickled in band, as they are
            a = obj if obj.flags.c_contiguous else _np.ascontiguousarray(obj)
            return _array_from, (_pickle.PickleBuffer(a), a.dtype, a.shape)
        if _bitarray is not None and isinstance(obj, _bitarray):
            return _bitarray_from, (_pickle.PickleBuffer(obj), obj.endian(), len(obj), t)
        if t is _shmkit.Bits:
            self.side.append(memoryview(obj))
            return _bits_from, (len(self.side) - 1, len(obj))
        return NotImplemented


def _copy(dst, offset, src):
    "src (a contiguous buffer) into dst[offset:], with the GIL released for NumPy's copy."
    n = src.nbytes
    if not n:
        return
    if _np is not None:
        _np.frombuffer(dst, _np.uint8, n, offset)[...] = _np.frombuffer(src, _np.uint8, n)
    else:
        dst[offset:offset + n] = src


def share(obj, name=None, *, owned=True, huge=False):
    """share(obj, name=None, *, owned=True, huge=False) -> Shared.

    Puts the whole object graph obj (lists, tuples, dicts, NumPy arrays,
    bitarray objects, shmkit.Bits, bytes, str, numbers, any picklable
    object) into one segment: array memory zero-copy for every reader,
    page-aligned, the rest pickled once. Readers get the same structure
    with arrays as read-only views: shmkit.attach(name), the handle's get(),
    or the handle itself passed to another process (it arrives as the
    structure). The segment is read-only for everyone and named only once
    complete. name: None for a generated one. owned (default): the name goes
    when this process ends (at once at a normal exit or Ctrl-C, else at the
    next sweep or gc) or drops the handle; owned=False keeps a given name
    until unlinked. huge: 2 MiB pages where the system allows.
    """
    out = _io.BytesIO()
    p = _Pickler(out)
    p.dump(obj)
    data = out.getbuffer()
    raws = [pb.raw() for pb in p.oob] + [mv.cast("B") for mv in p.side]
    kinds = [_OOB] * len(p.oob) + [_SIDE] * len(p.side)
    pickle_off = _round(_TABLE + _ENTRY.size * len(raws), 8)
    at = _round(pickle_off + len(data), PAGE)
    table = []
    for raw in raws:
        table.append(at)
        at = _round(at + raw.nbytes, PAGE)
    used = table[-1] + raws[-1].nbytes if raws else pickle_off + len(data)
    seg = _shmkit.segment_create(name, max(used, 1), owned or name is None, huge, False)
    try:
        dst = memoryview(seg)
        try:
            dst[:_TABLE] = _HEADER.pack(MAGIC, VERSION, 0, len(raws), _TABLE, pickle_off, len(data), used)
            for k, (off, raw, kind) in enumerate(zip(table, raws, kinds)):
                dst[_TABLE + k * _ENTRY.size:_TABLE + (k + 1) * _ENTRY.size] = _ENTRY.pack(off, raw.nbytes, kind, 0)
            dst[pickle_off:pickle_off + len(data)] = data
            for off, raw in zip(table, raws):
                _copy(dst, off, raw)
        finally:
            dst.release()
            for raw in raws:
                raw.release()
            p.drop()
            del raws, p
        seg._freeze_mapping()  # read-only for this process and every later opener
        seg._publish(name)  # the name appears now, over complete contents
    except BaseException:
        seg.close()
        raise
    return Shared(seg)


# ---- reading one ------------------------------------------------------------------

_ctx = _threading.local()  # the side tables of the loads in progress in this thread


def _array_from(buf, dtype, shape):
    if not memoryview(buf).nbytes:
        a = _np.empty(shape, dtype)
        a.flags.writeable = False
        return a
    # A SharedArray over the share's segment: passed on to another process,
    # it travels as a reference to the segment, not as its data.
    a = _np.frombuffer(buf, dtype).reshape(shape).view(SharedArray)
    a._h = _ctx.stack[-1][0]
    return a


def _bitarray_from(buf, endian, n, cls):
    mv = memoryview(buf)
    if n == mv.nbytes * 8:
        return cls(buffer=mv, endian=endian)  # zero copy, read-only like the mapping
    # A bitarray views whole bytes only: one whose length is not a multiple of 8
    # comes back as a copy (bitarray cannot hide the pad bits of a view).
    b = cls(endian=endian)
    b.frombytes(mv.tobytes())
    del b[n:]
    return b


def _bits_from(index, n):
    seg, side = _ctx.stack[-1]
    if not 0 <= index < len(side):
        raise ValueError("share %s: Bits entry %d of %d" % (seg.name, index, len(side)))
    offset, length = side[index]
    if length < (n + 63) // 64 * 8:
        raise ValueError("share %s: Bits of %d bits in %d bytes" % (seg.name, n, length))
    return _shmkit.bits_view(seg, offset, n)


def _bad(seg, what):
    return _shmkit.Error(-1006, "not a valid shmkit share (%s)" % what, seg.name)


def _load(seg):
    """The structure in a share segment: every header value read once, checked
    against the segment's size, the pickle copied out, the buffers viewed."""
    kind = seg.info()["kind"]
    if kind != "raw":
        raise TypeError("%s holds a %s segment, not a shmkit share" % (seg.name, kind))
    size = seg.size
    mv = memoryview(seg)
    if size < _TABLE:
        raise TypeError("%s is a raw segment of %d bytes, not a shmkit share" % (seg.name, size))
    magic, version, zero, n, table_off, pickle_off, pickle_len, used = _HEADER.unpack(bytes(mv[:_TABLE]))
    if magic != MAGIC:
        raise TypeError("%s is a raw segment, not a shmkit share" % seg.name)
    if version != VERSION:
        raise _shmkit.Error(-1004, "share layout version %d is not %d" % (version, VERSION), seg.name)
    if zero or table_off != _TABLE or used > size or n > (size - _TABLE) // _ENTRY.size:
        raise _bad(seg, "header")
    if pickle_off < _TABLE + n * _ENTRY.size or pickle_off > used or pickle_len > used - pickle_off:
        raise _bad(seg, "pickle bounds")
    table = bytes(mv[_TABLE:_TABLE + n * _ENTRY.size])
    oob, side = [], []
    for k in range(n):
        off, length, kind, z = _ENTRY.unpack_from(table, k * _ENTRY.size)
        if off % PAGE or off > used or length > used - off or kind not in (_OOB, _SIDE) or z:
            raise _bad(seg, "buffer %d" % k)
        if kind == _OOB:
            oob.append(mv[off:off + length])
        else:
            side.append((off, length))
    data = bytes(mv[pickle_off:pickle_off + pickle_len])  # a private copy: nobody can change it under pickle
    stack = getattr(_ctx, "stack", None)
    if stack is None:
        stack = _ctx.stack = []
    stack.append((seg, side))
    try:
        return _pickle.loads(data, buffers=oob)
    finally:
        stack.pop()


_MISSING = object()


class Shared:
    """The handle of a shared object graph (what shmkit.share returns).

    get() gives the structure (zero-copy, read-only arrays; the same object
    each time); so does passing the handle to another process (pickled by
    spawn, forkserver, Pool, ProcessPoolExecutor or a Queue it arrives as
    the structure). h[i], iteration and len() go to the structure too, so
    a worker written for the structure takes the handle itself under fork.
    close() lets go of it in this process; unlink() removes the name.
    """

    def __init__(self, seg):
        self._seg = seg
        self._value = _MISSING

    @property
    def name(self):
        "The segment's name: shmkit.attach(name) in any process gives the structure."
        return self._seg.name

    @property
    def nbytes(self):
        "Bytes of the segment (buffers page-aligned, the pickle beside them)."
        return self._seg.size

    @property
    def closed(self):
        return self._seg.closed

    def get(self):
        "The structure, with arrays as read-only views of the segment."
        if self._value is _MISSING:
            self._value = _load(self._seg)
        return self._value

    def close(self):
        """Lets go of the structure in this process; the memory stays while
        views of it live. The creator's close() of a generated name (or an
        owned one) removes the name: processes that attached keep theirs."""
        self._value = None
        self._seg.close()

    def unlink(self):
        "Removes the name (processes that attached keep the data)."
        self._seg.unlink()

    def info(self):
        "The segment's header as a dict."
        return self._seg.info()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getitem__(self, key):
        return self.get()[key]

    def __iter__(self):
        return iter(self.get())

    def __len__(self):
        return len(self.get())

    def __reduce__(self):
        return (_attach_segment, (self._seg,))

    def __repr__(self):
        if self._seg.closed:
            return "<shmkit.Shared %s (closed)>" % self._seg.name
        return "<shmkit.Shared %s %d bytes>" % (self._seg.name, self._seg.size)


def _attach_segment(seg):
    "Unpickling a Shared: its segment arrives (by reference), the structure is what the receiver gets."
    if not isinstance(seg, _shmkit.Segment):
        return seg  # a placeholder that explains why the segment could not be attached
    return _load(seg)


def attach(name, *, any_owner=False):
    """attach(name, *, any_owner=False): the structure a share() put in the
    segment name, with arrays as read-only zero-copy views (a Shared handle
    is taken too: its get()). The segment stays mapped while anything of
    the structure that views it lives. any_owner: attach a segment that
    another user made (unpickling it runs that user's code; by default such
    a segment is refused with PermissionError)."""
    if isinstance(name, Shared):
        return name.get()
    seg = _shmkit.segment_open(name, True, any_owner)
    return _load(seg)
