"""shmkit.shared_memory: multiprocessing.shared_memory on shmkit segments.

``SharedMemory`` (the same class as shmkit.SharedMemory) and ``ShareableList``
with the signatures, attributes and errors of CPython's, on owned shmkit
segments: no resource tracker process, and a segment whose creator dies, even
by SIGKILL, is removed (shmkit gc, or the sweep at the next create).

ShareableList layout in its segment (little-endian; shmkit's own, not
CPython's byte layout, so the two do not attach to each other's lists):

    0   u8[4]  magic b"SKSL"
    4   u32    version (1)
    8   u64    n, the number of items (fixed at creation)
    16  u64    data_bytes, the bytes of the item slots
    24  n slot descriptors of 24 bytes:
            u64 offset of the slot from the data start
            u32 capacity of the slot in bytes (8, or the str/bytes length
                given at creation rounded up to 8)
            u32 length of the value stored (str: UTF-8 bytes; bytes: bytes)
            u8  kind: 0 None, 1 bool, 2 int (i64), 3 float (f64), 4 str,
                5 bytes
            u8[7] zero
    24 + 24 n, rounded up to 8: the data, one slot per item

As in CPython, items are neither locked nor atomic: a value that another
process rewrites at the same moment can be read half old, half new. Every
descriptor read from the segment is checked against the segment's size before
it is used: a damaged list raises ValueError, never reads outside it.
"""
import struct as _struct
import types as _types

from . import SharedMemory

__all__ = ["SharedMemory", "ShareableList"]

_MAGIC = b"SKSL"
_HEAD = _struct.Struct("<4sIQQ")
_SLOT = _struct.Struct("<QIIB7x")
_NONE, _BOOL, _INT, _FLOAT, _STR, _BYTES = range(6)
# The `format` attribute of CPython's ShareableList (a documented attribute
# whose value users and tests compare), per kind; str and bytes are "<cap>s".
_FORMATS = {_NONE: "xxxxxx?x", _BOOL: "xxxxxxx?", _INT: "q", _FLOAT: "d"}


def _kind_and_bytes(value):
    """The kind and the stored bytes of a value; TypeError for other types."""
    if value is None:
        return _NONE, b""
    if value is True or value is False:
        return _BOOL, b"\x01" if value else b"\x00"
    if isinstance(value, int) and not isinstance(value, bool):
        return _INT, _struct.pack("<q", value)
    if isinstance(value, float):
        return _FLOAT, _struct.pack("<d", value)
    if isinstance(value, str):
        return _STR, value.encode("utf-8")
    if isinstance(value, bytes):
        return _BYTES, value
    raise TypeError("ShareableList holds None, bool, int, float, str and bytes, not %s" % type(value).__name__)


def _round8(n):
    return (n + 7) & ~7


class ShareableList:
    """ShareableList(sequence=None, *, name=None): a fixed-length list of
    None, bool, int (64-bit), float, str and bytes in one shared segment,
    like multiprocessing.shared_memory.ShareableList. A str or bytes item
    keeps the storage it was created with (rounded up to 8 bytes): a longer
    value raises ValueError. ShareableList(name=...) attaches to an existing
    list; pickling passes it by name."""

    def __init__(self, sequence=None, *, name=None):
        if sequence is None and name is not None:
            self.shm = SharedMemory(name)
            self._attach()
            return
        items = [_kind_and_bytes(v) for v in (sequence if sequence is not None else ())]
        n = len(items)
        caps = [8 if k not in (_STR, _BYTES) else max(8, _round8(len(b))) for k, b in items]
        data_start = _round8(_HEAD.size + _SLOT.size * n)
        data_bytes = sum(caps)
        # The segment is named only once filled: nobody attaches to a half-written list.
        self.shm = SharedMemory._create_unpublished(name, data_start + data_bytes)
        buf = self.shm.buf
        off = 0
        for i, ((kind, raw), cap) in enumerate(zip(items, caps)):
            _SLOT.pack_into(buf, _HEAD.size + _SLOT.size * i, off, cap, len(raw), kind)
            buf[data_start + off:data_start + off + len(raw)] = raw
            off += cap
        _HEAD.pack_into(buf, 0, _MAGIC, 1, n, data_bytes)
        del buf
        self.shm._publish()
        self._n, self._data_start, self._data_bytes = n, data_start, data_bytes

    def _attach(self):
        buf = self.shm.buf
        try:
            if len(buf) < _HEAD.size:
                raise ValueError("%s is too small to hold a ShareableList" % self.shm.name)
            magic, version, n, data_bytes = _HEAD.unpack_from(buf, 0)
            if magic != _MAGIC or version != 1:
                raise ValueError("%s does not hold a shmkit ShareableList" % self.shm.name)
            data_start = _round8(_HEAD.size + _SLOT.size * n)
            if data_start + data_bytes > len(buf):
                raise ValueError("%s: a damaged ShareableList (sizes beyond the segment)" % self.shm.name)
        finally:
            del buf
        self._n, self._data_start, self._data_bytes = n, data_start, data_bytes

    def _index(self, position):
        if not isinstance(position, int):
            raise TypeError("ShareableList indices must be integers, not %s" % type(position).__name__)
        if position < 0:
            position += self._n
        if not 0 <= position < self._n:
            raise IndexError("index out of range")
        return position

    def _slot(self, buf, i):
        """The descriptor of item i, read once and checked."""
        off, cap, length, kind = _SLOT.unpack_from(buf, _HEAD.size + _SLOT.size * i)
        if kind > _BYTES or length > cap or off + cap > self._data_bytes or (kind < _STR and cap < 8):
            raise ValueError("%s: item %d is damaged" % (self.shm.name, i))
        return off, cap, length, kind

    def __getitem__(self, position):
        i = self._index(position)
        buf = self.shm.buf
        try:
            off, cap, length, kind = self._slot(buf, i)
            at = self._data_start + off
            if kind == _NONE:
                return None
            if kind == _BOOL:
                return buf[at] != 0
            if kind == _INT:
                return _struct.unpack_from("<q", buf, at)[0]
            if kind == _FLOAT:
                return _struct.unpack_from("<d", buf, at)[0]
            raw = bytes(buf[at:at + length])
            return raw.decode("utf-8") if kind == _STR else raw
        finally:
            del buf

    def __setitem__(self, position, value):
        i = self._index(position)
        kind, raw = _kind_and_bytes(value)
        buf = self.shm.buf
        try:
            off, cap, _, _ = self._slot(buf, i)
            if len(raw) > cap:
                raise ValueError("bytes/str item exceeds available storage (%d bytes, %d available)"
                                 % (len(raw), cap))
            at = self._data_start + off
            buf[at:at + len(raw)] = raw
            _SLOT.pack_into(buf, _HEAD.size + _SLOT.size * i, off, cap, len(raw), kind)
        finally:
            del buf

    def __len__(self):
        return self._n

    def __iter__(self):
        for i in range(self._n):
            yield self[i]

    def __reduce__(self):
        return (_attach, (type(self), self.shm.name))

    def __repr__(self):
        return "%s(%s, name=%r)" % (type(self).__name__, list(self), self.shm.name)

    def _get_packing_format(self, position):
        "The struct format of one item (CPython's name for it)."
        i = self._index(position)
        buf = self.shm.buf
        try:
            _, cap, _, kind = self._slot(buf, i)
        finally:
            del buf
        return "%ds" % cap if kind in (_STR, _BYTES) else _FORMATS[kind]

    @property
    def format(self):
        "The struct format of all items, as CPython's ShareableList spells it."
        return "".join(self._get_packing_format(i) for i in range(self._n))

    def count(self, value):
        "How many items equal value."
        return sum(value == entry for entry in self)

    def index(self, value):
        "The position of the first item equal to value; ValueError if none."
        for position, entry in enumerate(self):
            if value == entry:
                return position
        raise ValueError("%r not in this container" % (value,))

    __class_getitem__ = classmethod(_types.GenericAlias)


def _attach(cls, name):
    return cls(name=name)
