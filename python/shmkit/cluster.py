"""shmkit.cluster: the same arrays across machines, one copy per node, on MPI.

Pure Python on mpi4py and shmkit's public Python API; the C library's
counterpart is libshmkit_mpi (include/shmkit/cluster.h). docs/cluster.md
tells the whole story; in short::

    from mpi4py import MPI
    import numpy as np
    import shmkit.cluster

    cl = shmkit.cluster.Cluster(MPI.COMM_WORLD)          # collective
    table = cl.replicate(big_array if cl.rank == 0 else None)   # one copy per node
    table.local                                           # read-only NumPy view, zero-copy
    counts = cl.partition((1 << 20,), "int64")             # rows spread over the nodes
    counts.add(indices, np.ones(len(indices), "int64"))    # anywhere, atomically
    cl.fence()                                             # every rank sees every update
    counts.local                                           # this node's rows, zero-copy

Model. The ranks of the communicator are grouped into nodes (the ranks that
share memory, or pseudo-nodes of k ranks); the lowest rank of a node is its
leader. A replicated object is one shmkit segment per node, made by the
leader, filled by broadcast among the leaders and frozen; the node's other
ranks attach it by name. A partitioned object spreads rows (or 2-D blocks, or
64-bit words of bits) over the nodes; each node's part is one segment that
all its ranks map. Remote elements are read and updated in batches through a
two-sided service: the leader of the owning node answers (a thread when MPI
gives MPI_THREAD_MULTIPLE, mpi4py's default; otherwise only while the leader
is inside a call of this module). Every wait has a deadline: a dead or stuck
peer raises ClusterTimeout, never hangs, and the handle fails for good.

Updates. This module has no atomic memory operations (shmkit's Python API has
none for arrays), so every add and every bit set or clear, even to the
caller's own node, is applied by the owning node's leader, one request at a
time: that is what makes them atomic. Reads of the own node, and scatters to
it, go straight to memory. The wire format is the C library's, so both serve
the same requests.
"""

import hashlib as _hashlib
import os as _os
import secrets as _secrets
import struct as _struct
import threading as _threading
import time as _time

import numpy as _np
from mpi4py import MPI as _MPI

import shmkit as _shmkit

__all__ = ["Cluster", "ReplicatedArray", "PartitionedArray", "ReplicatedBits", "PartitionedBits",
           "ClusterError", "ClusterTimeout", "ClusterFailed", "ClusterMismatch"]

# ---- errors ------------------------------------------------------------------

SK_ECLUSTER_TIMEOUT = -1101
SK_ECLUSTER_MPI = -1102
SK_ECLUSTER_FAILED = -1103
SK_ECLUSTER_PROTO = -1104
SK_ECLUSTER_MISMATCH = -1105

# shmkit's own codes that a collective step may report from another rank.
_SK_CODES = {-1003: "not a shmkit segment or not a .npy file", -1004: "format version not supported",
             -1006: "corrupt header", -1007: "file holds less than its header says",
             -1008: "segment of another kind", -1009: "dtype, shape or length not as expected",
             -1011: "write to a read-only object", -1018: "the segment is frozen"}


class ClusterError(RuntimeError):
    """A cluster call failed; .code is the shmkit code (as in the C library)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class ClusterTimeout(ClusterError, TimeoutError):
    """A peer did not answer within the deadline (dead, stuck or unreachable).
    The handle has failed: close it (close is then local) and end the job."""


class ClusterFailed(ClusterError):
    """The handle failed earlier (.cause is that error)."""


class ClusterMismatch(ClusterError, ValueError):
    """Ranks passed different arguments to a collective call."""


def _raise_code(code, what):
    """Raises the exception of a (negative) shmkit or errno code that every
    rank agreed on."""
    if code == SK_ECLUSTER_TIMEOUT:
        raise ClusterTimeout(code, "%s: a peer did not answer within the cluster deadline" % what)
    if code == SK_ECLUSTER_MISMATCH:
        raise ClusterMismatch(code, "%s: ranks passed different arguments" % what)
    if code == SK_ECLUSTER_FAILED:
        raise ClusterFailed(code, "%s: the cluster handle failed earlier" % what)
    if code == SK_ECLUSTER_MPI:
        raise ClusterError(code, "%s: an MPI call failed" % what)
    if code == SK_ECLUSTER_PROTO:
        raise ClusterError(code, "%s: a peer sent a malformed message or refused a request" % what)
    if code == -1011:
        raise PermissionError("%s: the object is read-only" % what)
    if code == -1009:
        raise TypeError("%s: %s" % (what, _SK_CODES[code]))
    if -1000 < code < 0:
        if -code == 34:  # ERANGE
            raise IndexError("%s: index out of range" % what)
        if -code == 22:  # EINVAL
            raise ValueError("%s: invalid argument (on some rank)" % what)
        raise OSError(-code, "%s: %s" % (what, _os.strerror(-code)))
    raise ClusterError(code, "%s: %s" % (what, _SK_CODES.get(code, "error %d" % code)))


def _code_of(exc):
    """The shmkit code of an exception raised by shmkit or by this module."""
    if isinstance(exc, ClusterError):
        return exc.code
    if isinstance(exc, _shmkit.Error) and exc.args and isinstance(exc.args[0], int):
        return exc.args[0] if exc.args[0] < 0 else -exc.args[0]
    if isinstance(exc, OSError) and exc.errno:
        return -exc.errno
    if isinstance(exc, TypeError):
        return -1009  # SK_ETYPE
    if isinstance(exc, ValueError):
        return -22  # EINVAL
    if isinstance(exc, MemoryError):
        return -12
    return SK_ECLUSTER_PROTO


# ---- the wire format (cluster/internal.h, docs/cluster.md) -------------------

_REQ = _struct.Struct("<IHHIIIIQ16x")  # magic version op obj itemsize flags resv count resv[2]
_REP = _struct.Struct("<IHHiIQ8x")  # magic version op status resv count resv
_REQ_MAGIC, _REP_MAGIC, _VERSION = 0x51434B53, 0x52434B53, 1
_GATHER, _SCATTER, _ADD, _BTEST, _BSET, _BCLEAR = 1, 2, 3, 4, 5, 6
_WANT_OLD = 1
_PIECE = 1 << 18
_TAG_PROGRESS = 7
_DESC = _struct.Struct("<qqq32QQQQ")  # rc dtype ndim shape[32] nbits nbytes data_offset

_DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32",
           "float64"]
_DTYPE_CODE = {name: i + 1 for i, name in enumerate(_DTYPES)}  # shmkit's sk_dtype numbers


def _dtype(dtype):
    dt = _np.dtype(dtype)
    if dt.name not in _DTYPE_CODE or dt.byteorder not in ("=", "|", "<" if _np.little_endian else ">"):
        raise TypeError("unsupported dtype %s: shmkit stores bool, int8..int64, uint8..uint64, float32, "
                        "float64 in native byte order" % dt)
    return dt


def _digest(args):
    """A hash of arguments that is the same in every process (hash() is not)."""
    return int.from_bytes(_hashlib.blake2b(repr(args).encode(), digest_size=7).digest(), "little")


def _split(total, parts, k):
    return total * k // parts


def _bounds(total, parts):
    return _np.array([_split(total, parts, k) for k in range(parts + 1)], dtype=_np.uint64)


class _Obj:
    """What the service knows of a node's part."""

    def __init__(self, oid, is_bits, writable, dtype, flat):
        self.id, self.is_bits, self.writable, self.dtype, self.flat = oid, is_bits, writable, dtype, flat
        self.itemsize = 1 if is_bits else dtype.itemsize
        self.count = len(flat) * 64 if is_bits else len(flat)  # bits: words * 64 (refined by nbits)


class Cluster:
    """Cluster(comm=MPI.COMM_WORLD, ranks_per_node=0, deadline=None, serve="auto", poll=1e-4)

    Collective over comm. ranks_per_node: 0 for the MPI shared-memory nodes,
    k for pseudo-nodes of k ranks within them (tests). deadline: seconds every
    wait for a peer may take (None: SHMKIT_CLUSTER_DEADLINE_MS, else 30).
    serve: "auto" (a service thread when MPI gives MPI_THREAD_MULTIPLE),
    "thread" or "inline". poll: the idle service thread's longest sleep.

    Attributes: rank, size, node, nodes, node_rank, node_size, job_id (an int
    all ranks share), comm (the handle's duplicate), node_comm, leader_comm
    (MPI.COMM_NULL off the leaders), serve ("thread" or "inline").
    """

    def __init__(self, comm=None, ranks_per_node=0, deadline=None, serve="auto", poll=1e-4):
        comm = _MPI.COMM_WORLD if comm is None else comm
        if deadline is None:
            ms = _os.environ.get("SHMKIT_CLUSTER_DEADLINE_MS", "")
            deadline = int(ms) / 1000 if ms.isdigit() and int(ms) > 0 else 30.0
        self._failed = None
        self._deadline = float(deadline)
        self._poll = float(poll)
        self._stop = False
        self._thread = None
        self._lock = _threading.Lock()  # guards _objs and every update the service applies
        self._objs = {}
        self._next_id = 0
        self._tag = 0
        self._open = 0
        self.serving = False
        self.stats = dict(requests_sent=0, elements_sent=0, elements_local=0, requests_served=0, elements_served=0)
        threaded = _MPI.Query_thread() >= _MPI.THREAD_MULTIPLE
        mode = {"auto": "thread" if threaded else "inline", "thread": "thread", "inline": "inline"}.get(serve)
        bad = mode is None or (mode == "thread" and not threaded) or not (
            isinstance(ranks_per_node, int) and ranks_per_node >= 0) or not self._deadline > 0
        self.serve = mode
        self.comm = comm.Dup()
        self._req = comm.Dup()
        self._rep = comm.Dup()
        self.node_comm = self.leader_comm = _MPI.COMM_NULL
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        mine = [-22 if bad else 0, ranks_per_node if not bad else 0, {"thread": 1, "inline": 2}.get(mode, 0),
                int(self._deadline * 1e9)]
        lo = self._allmin(list(mine))
        hi = [-x for x in self._allmin([-x for x in mine])]
        if lo[0] < 0:
            self._free_comms()
            raise ValueError("Cluster: bad arguments on some rank (serve=%r, ranks_per_node=%r, deadline=%r)"
                             % (serve, ranks_per_node, deadline))
        if lo != hi:
            self._free_comms()
            raise ClusterMismatch(SK_ECLUSTER_MISMATCH, "Cluster: ranks passed different arguments")
        shared = self.comm.Split_type(_MPI.COMM_TYPE_SHARED, key=self.rank)
        if ranks_per_node:
            sr = shared.Get_rank()
            self.node_comm = shared.Split(sr // ranks_per_node, sr)
            shared.Free()
        else:
            self.node_comm = shared
        self.node_rank, self.node_size = self.node_comm.Get_rank(), self.node_comm.Get_size()
        self.leader_comm = self.comm.Split(0 if self.node_rank == 0 else _MPI.UNDEFINED, self.rank)
        ids = _np.zeros(2, dtype=_np.int64)
        if self.node_rank == 0:
            ids[:] = (self.leader_comm.Get_rank(), self.leader_comm.Get_size())
        self._bcast(ids, 0, self.node_comm)
        self.node, self.nodes = int(ids[0]), int(ids[1])
        pairs = _np.zeros(2 * self.size, dtype=_np.int64)
        self._wait([self.comm.Iallgather(_np.array([self.node, self.node_rank], dtype=_np.int64), pairs)])
        self._node_of = [int(x) for x in pairs[0::2]]
        self._leader_of = [0] * self.nodes
        for r in range(self.size):
            if pairs[2 * r + 1] == 0:
                self._leader_of[self._node_of[r]] = r
        job = _np.zeros(1, dtype=_np.uint64)
        if self.rank == 0:
            job[0] = _secrets.randbits(64) or 1
        self._bcast(job, 0, self.comm)
        self.job_id = int(job[0])
        if self.node_rank == 0:
            self.serving = True
            if self.serve == "thread":
                self._thread = _threading.Thread(target=self._service, name="shmkit-cluster-service", daemon=True)
                self._thread.start()
        self._agree(0, "Cluster")

    # -- where am I --

    def node_of(self, rank):
        """The node of a rank."""
        return self._node_of[rank]

    def leader_of(self, node):
        """The rank that leads and serves a node."""
        return self._leader_of[node]

    @property
    def deadline(self):
        return self._deadline

    @deadline.setter
    def deadline(self, seconds):
        if not seconds > 0:
            raise ValueError("the deadline must be positive")
        self._deadline = float(seconds)

    @property
    def failed(self):
        """None while the handle is usable, else the exception that failed it."""
        return self._failed

    # -- waiting with a deadline --

    def _fail(self, exc):
        if self._failed is None:
            self._failed = exc
        return exc

    def _check(self):
        if self._failed is not None:
            raise ClusterFailed(SK_ECLUSTER_FAILED, "the cluster handle failed earlier: %s" % self._failed) \
                from self._failed

    def _wait(self, reqs, on_done=None, what="cluster"):
        """Waits for MPI requests with the deadline; serves inline meanwhile.
        on_done(i, status) runs as request i completes."""
        deadline = _time.monotonic() + self._deadline
        pending = [i for i, r in enumerate(reqs) if r != _MPI.REQUEST_NULL]
        quiet, nap = _time.monotonic(), 1e-6
        while pending:
            progressed = False
            for i in list(pending):
                st = _MPI.Status()
                try:
                    done = reqs[i].Test(st)
                except _MPI.Exception as e:
                    raise self._fail(ClusterError(SK_ECLUSTER_MPI, "%s: %s" % (what, e.Get_error_string())))
                if done:
                    pending.remove(i)
                    progressed = True
                    if on_done:
                        on_done(i, st)
            now = _time.monotonic()
            if progressed:
                quiet, nap = now, 1e-6
                continue
            if self.serving and self.serve == "inline" and self._serve() > 0:
                quiet = now
                continue
            if now >= deadline:
                raise self._fail(ClusterTimeout(SK_ECLUSTER_TIMEOUT, "%s: a peer did not answer within the "
                                                                     "cluster deadline (%g s)" % (what,
                                                                                                 self._deadline)))
            if now - quiet > 1e-3:
                _time.sleep(nap)
                nap = min(nap * 2, 5e-5)

    def _bcast(self, buf, root, comm):
        self._wait([comm.Ibcast(buf, root=root)], what="broadcast")

    def _allmin(self, values):
        v = _np.array(values, dtype=_np.int64)
        self._wait([self.comm.Iallreduce(_MPI.IN_PLACE, v, op=_MPI.MIN)], what="agreement")
        return [int(x) for x in v]

    def _agree(self, rc, what):
        """Every rank's code; raises the lowest everywhere."""
        code = self._allmin([rc])[0]
        if code < 0:
            _raise_code(code, what)

    def _barrier(self, comm):
        self._wait([comm.Ibarrier()], what="barrier")

    # -- the service --

    def _service(self):
        # Never a busy loop: a thread spinning in MPI calls takes MPI's locks
        # from the process's other threads. Naps grow with the quiet.
        last = _time.monotonic()
        while not self._stop:
            n = 0 if self._failed else self._serve()
            now = _time.monotonic()
            if n:
                last = now
            else:
                _time.sleep(min(max((now - last) / 16, 2e-6), self._poll))

    def _serve(self, limit=64):
        served = 0
        while served < limit:
            st = _MPI.Status()
            try:
                msg = self._req.Improbe(_MPI.ANY_SOURCE, _MPI.ANY_TAG, st)
                if msg is None:
                    break
                size = st.Get_count(_MPI.BYTE)
                buf = bytearray(size)
                msg.Recv([buf, _MPI.BYTE])
                reply = self._handle(buf)
                served += 1
                self.stats["requests_served"] += 1
                req = self._rep.Isend([reply, _MPI.BYTE], st.Get_source(), st.Get_tag())
                deadline = _time.monotonic() + self._deadline
                while not req.Test():
                    if _time.monotonic() > deadline or self._stop:
                        self._fail(ClusterTimeout(SK_ECLUSTER_TIMEOUT, "a reply was not taken within the deadline"))
                        return served
                    _time.sleep(0)
            except _MPI.Exception as e:
                self._fail(ClusterError(SK_ECLUSTER_MPI, "service: %s" % e.Get_error_string()))
                return served
        return served

    def _handle(self, buf):
        """Checks and applies one request; returns the reply."""
        if len(buf) < _REQ.size:
            return _REP.pack(_REP_MAGIC, _VERSION, 0, SK_ECLUSTER_PROTO, 0, 0)
        magic, version, op, oid, itemsize, flags, _, count = _REQ.unpack_from(buf)
        if magic != _REQ_MAGIC or version != _VERSION or count > _PIECE:
            return _REP.pack(_REP_MAGIC, _VERSION, op, SK_ECLUSTER_PROTO, 0, 0)
        with self._lock:
            o = self._objs.get(oid)
            status = SK_ECLUSTER_PROTO if o is None or itemsize != o.itemsize else self._allowed(o, op)
            if status == 0:
                vsize = o.itemsize if op in (_SCATTER, _ADD) else 0
                if len(buf) != _REQ.size + count * (8 + vsize):
                    status = SK_ECLUSTER_PROTO
            if status:
                return _REP.pack(_REP_MAGIC, _VERSION, op, status, 0, 0)
            loc = _np.frombuffer(buf, dtype=_np.uint64, count=count, offset=_REQ.size)
            vals = None
            if vsize:
                vals = _np.frombuffer(buf, dtype=o.dtype, count=count, offset=_REQ.size + 8 * count)
            try:
                out = self._apply(o, op, flags, loc, vals)
            except IndexError:
                return _REP.pack(_REP_MAGIC, _VERSION, op, -34, 0, 0)
            self.stats["elements_served"] += int(count)
        payload = b"" if out is None else out.tobytes()
        return _REP.pack(_REP_MAGIC, _VERSION, op, 0, 0, count) + payload

    @staticmethod
    def _allowed(o, op):
        if op == _GATHER:
            return -1008 if o.is_bits else 0
        if op in (_SCATTER, _ADD):
            if o.is_bits:
                return -1008
            if op == _ADD and o.dtype == _np.bool_:
                return -1009
            return 0 if o.writable else -1011
        if op == _BTEST:
            return 0 if o.is_bits else -1008
        if op in (_BSET, _BCLEAR):
            return (0 if o.writable else -1011) if o.is_bits else -1008
        return SK_ECLUSTER_PROTO

    @staticmethod
    def _apply(o, op, flags, loc, vals):
        """Applies an operation to a part in this process's mapping (under
        self._lock for updates). Returns the reply's values or None."""
        if len(loc) and int(loc.max()) >= o.count:
            raise IndexError("index out of range")
        idx = loc.astype(_np.intp)
        if op == _GATHER:
            return o.flat[idx]
        if op == _SCATTER:
            o.flat[idx] = vals
            return None
        if op == _ADD:
            if not flags & _WANT_OLD:
                _np.add.at(o.flat, idx, vals)
                return None
            return _fetch_add(o.flat, idx, vals)
        words = o.flat
        w, m = idx >> 6, _np.left_shift(_np.uint64(1), (loc & _np.uint64(63)))
        was = (words[w] & m) != 0
        if op == _BTEST:
            return was.astype(_np.uint8)
        # Later duplicates of an index see the earlier ones' effect.
        if len(idx):
            first = _np.zeros(len(idx), dtype=bool)
            first[_np.unique(idx, return_index=True)[1]] = True
            was = _np.where(first, was, op == _BSET)
        if op == _BSET:
            _np.bitwise_or.at(words, w, m)
        else:
            _np.bitwise_and.at(words, w, ~m)
        return was.astype(_np.uint8) if flags & _WANT_OLD else None

    def _register(self, o):
        if self.serving:
            with self._lock:
                self._objs[o.id] = o

    def _unregister(self, oid):
        if self.serving:
            with self._lock:
                self._objs.pop(oid, None)

    # -- batched calls --

    def _call(self, obj, op, flags, index, values=None):
        """One batched operation on obj (a partitioned or replicated object)."""
        self._check()
        idx = _np.asarray(index)
        if idx.dtype.kind not in "iu":
            if idx.size == 0:
                idx = idx.astype(_np.int64)
            else:
                raise TypeError("indices must be integers")
        idx = idx.ravel()
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= obj._total):
            raise IndexError("index out of range (0..%d)" % (obj._total - 1))
        idx = idx.astype(_np.uint64)
        o = obj._obj
        n = len(idx)
        vsize = o.itemsize if op in (_SCATTER, _ADD) else 0
        if vsize:
            vals = _np.ascontiguousarray(_np.broadcast_to(_np.asarray(values, dtype=o.dtype), (n,)))
        osize = {_GATHER: o.itemsize, _ADD: o.itemsize if flags & _WANT_OLD else 0, _BTEST: 1,
                 _BSET: 1 if flags & _WANT_OLD else 0, _BCLEAR: 1 if flags & _WANT_OLD else 0}.get(op, 0)
        odtype = o.dtype if op in (_GATHER, _ADD) else _np.uint8
        out = _np.empty(n, dtype=odtype) if osize else None
        status = self._allowed(o, op)
        if status:
            _raise_code(status, "cluster")
        if n == 0:
            return out
        owner, loc = obj._locate(idx)
        order = _np.argsort(owner, kind="stable")
        counts = _np.bincount(owner, minlength=self.nodes)
        starts = _np.concatenate(([0], _np.cumsum(counts)))
        loc_s = loc[order]
        vals_s = vals[order] if vsize else None
        me = self.node
        # Reads and plain stores of this node go straight to memory; updates
        # that must be atomic go through this node's leader.
        local_direct = op in (_GATHER, _SCATTER, _BTEST) or obj._replicated
        pieces = []
        for k in range(self.nodes):
            a, b = int(starts[k]), int(starts[k + 1])
            if a == b:
                continue
            if k == me and (local_direct or self.serving):
                sel = slice(a, b)
                if local_direct:
                    res = self._apply(o, op, flags, loc_s[sel], vals_s[sel] if vsize else None)
                else:
                    with self._lock:
                        res = self._apply(o, op, flags, loc_s[sel], vals_s[sel] if vsize else None)
                if osize:
                    out[order[sel]] = res
                self.stats["elements_local"] += b - a
                continue
            for f in range(a, b, _PIECE):
                g = min(f + _PIECE, b)
                head = _REQ.pack(_REQ_MAGIC, _VERSION, op, o.id, o.itemsize, flags, 0, g - f)
                body = head + loc_s[f:g].tobytes() + (vals_s[f:g].tobytes() if vsize else b"")
                pieces.append((k, f, g, body, bytearray(_REP.size + (g - f) * osize)))
        if not pieces:
            return out
        reqs = []
        for k, f, g, body, rep in pieces:
            self._tag = self._tag % 32767 + 1
            dest = self._leader_of[k]
            try:
                reqs.append(self._rep.Irecv([rep, _MPI.BYTE], dest, self._tag))
                reqs.append(self._req.Isend([body, _MPI.BYTE], dest, self._tag))
            except _MPI.Exception as e:
                raise self._fail(ClusterError(SK_ECLUSTER_MPI, "cluster: %s" % e.Get_error_string()))
            self.stats["requests_sent"] += 1
            self.stats["elements_sent"] += g - f
        errors = []

        def on_done(i, st):
            if i % 2:
                return
            k, f, g, body, rep = pieces[i // 2]
            got = st.Get_count(_MPI.BYTE)
            magic, version, rop, status, _, count = _REP.unpack_from(rep) if got >= _REP.size else (0,) * 6
            if magic != _REP_MAGIC or version != _VERSION or rop != op:
                errors.append(SK_ECLUSTER_PROTO)
            elif status < 0:
                errors.append(status if status >= -4095 else SK_ECLUSTER_PROTO)
            elif count != g - f or got != len(rep):
                errors.append(SK_ECLUSTER_PROTO)
            elif osize:
                out[order[f:g]] = _np.frombuffer(rep, dtype=odtype, count=g - f, offset=_REP.size)

        self._wait(reqs, on_done, what="cluster call")
        if errors:
            _raise_code(errors[0], "cluster call")
        return out

    # -- collective calls --

    def fence(self):
        """Collective. After it every rank sees every update made before
        anyone entered it."""
        self._check()
        self._barrier(self.comm)

    def progress(self):
        """Serves waiting requests (inline mode, leaders); returns how many."""
        self._check()
        if not (self.serving and self.serve == "inline"):
            return 0
        total = 0
        while True:
            n = self._serve()
            total += n
            if n < 64:
                return total

    def _name(self, oid):
        return "skc-%016x-n%d-o%d" % (self.job_id, self.node, oid)

    def _publish(self, oid, make, attach, fill=None):
        """The node's segment: made by the leader, filled (replication), attached
        by the others, its name removed before anyone returns."""
        name = self._name(oid)
        seg, rc = None, 0
        if self.node_rank == 0:
            try:
                seg = make(name)
            except Exception as e:  # noqa: BLE001  (agreed on, re-raised everywhere below)
                rc = _code_of(e)
        try:
            self._agree(rc, "create")
            if fill:
                fill(name, seg)
            rc = 0
            if self.node_rank != 0:
                try:
                    seg = attach(name)
                except Exception as e:  # noqa: BLE001
                    rc = _code_of(e)
            self._barrier(self.node_comm)
            if self.node_rank == 0:
                _shmkit.unlink(name)
            self._agree(rc, "attach")
        except BaseException:
            if self._failed is not None or self.node_rank == 0:
                try:
                    _shmkit.unlink(name)
                except OSError:
                    pass
            if seg is not None:
                try:
                    seg.close()
                except (BufferError, OSError):
                    pass
            raise
        return seg

    def _node_tell(self, done, code):
        reqs = [self.node_comm.Isend(_np.array([done, code], dtype=_np.int32), r, _TAG_PROGRESS)
                for r in range(1, self.node_size)]
        self._wait(reqs, what="progress")

    def _replicate(self, desc, data_of, kind):
        """Replication: desc from the root (a _DESC tuple), then the copies."""
        buf = bytearray(_DESC.pack(*desc)) if desc else bytearray(_DESC.size)
        self._bcast(buf, self._root, self.comm)
        rc, dtc, ndim, *rest = _DESC.unpack(buf)
        shape, nbits, nbytes = tuple(rest[:ndim]), rest[32], rest[33]
        if rc < 0:
            _raise_code(rc, "replicate")
        oid = self._next_id = self._next_id + 1
        dtype = _np.dtype(_DTYPES[dtc - 1]) if kind == "array" else _np.dtype(_np.uint64)
        root = self._root
        root_node = self._node_of[root]

        def make(name):
            if kind == "array":
                return _shmkit.create(name, shape, dtype.name, owned=True)
            return _shmkit.Bits(nbits, name=name, owned=True)

        def attach(name):
            return _shmkit.open(name, readonly=True) if kind == "array" else _shmkit.Bits.open(name, readonly=True)

        def view(seg):
            return (_np.asarray(seg) if kind == "array" else seg.words()).reshape(-1).view(_np.uint8)

        def fill(name, seg):
            rc = 0
            if self.rank == root:
                try:
                    target = seg if self.node_rank == 0 else (
                        _shmkit.open(name) if kind == "array" else _shmkit.Bits.open(name))
                    v = view(target)
                    data_of(v)
                    del v
                    if target is not seg:
                        target.close()
                except Exception as e:  # noqa: BLE001
                    rc = _code_of(e)
            self._agree(rc, "replicate")
            rc = 0
            if self.node_rank == 0:
                v = view(seg)
                try:
                    for off in range(0, max(nbytes, 1), 16 << 20):
                        if nbytes:
                            self._bcast(v[off:off + (16 << 20)], root_node, self.leader_comm)
                        self._node_tell(0, 0)
                finally:
                    del v
                try:
                    seg.freeze()
                except Exception as e:  # noqa: BLE001
                    rc = _code_of(e)
                self._node_tell(1, rc)
            else:
                while True:
                    msg = _np.zeros(2, dtype=_np.int32)
                    self._wait([self.node_comm.Irecv(msg, 0, _TAG_PROGRESS)], what="replicate")
                    if msg[0]:
                        rc = int(msg[1])
                        break
            self._agree(rc, "replicate")

        seg = self._publish(oid, make, attach, fill)
        self._open += 1
        return oid, seg, shape, dtype, nbits

    def _root_desc(self, root, fn):
        """The root's description, or its error as rc (every rank learns it
        and raises the same exception)."""
        if not (isinstance(root, int) and 0 <= root < self.size):
            raise ValueError("root must be a rank of the cluster")
        self._root = root
        if self.rank != root:
            return None
        try:
            return fn()
        except Exception as e:  # noqa: BLE001  (the others learn the code)
            return (_code_of(e), 0, 0) + (0,) * 32 + (0, 0, 0)

    def replicate(self, array=None, root=0):
        """Collective. One read-only copy per node of the root's array (any
        C-contiguous NumPy array of a shmkit dtype; significant at the root
        only). Returns a ReplicatedArray."""
        self._check()
        src = {}

        def desc():
            a = _np.asarray(array)
            if not a.flags.c_contiguous:  # (ascontiguousarray would make a 0-d array 1-d)
                a = a.copy(order="C")
            dt = _dtype(a.dtype)
            if a.ndim > 32:
                raise ValueError("at most 32 dimensions")
            src["a"] = a
            return (0, _DTYPE_CODE[dt.name], a.ndim) + tuple(a.shape) + (0,) * (32 - a.ndim) + (0, a.nbytes, 0)

        d = self._root_desc(root, desc)

        def data_of(v):
            v[:] = src["a"].reshape(-1).view(_np.uint8)

        oid, seg, shape, dtype, _ = self._replicate(d, data_of, "array")
        return ReplicatedArray(self, oid, seg, shape, dtype)

    def replicate_npy(self, path=None, root=0):
        """Collective. One read-only copy per node of the root's .npy file
        (read by the root straight into its node's copy; path is significant at
        the root only). Fortran order, big-endian and other dtypes raise."""
        self._check()
        src = {}

        def desc():
            m = _np.load(path, mmap_mode="r")
            if m.ndim > 1 and m.flags.f_contiguous and not m.flags.c_contiguous:
                raise TypeError("%s is in Fortran order" % path)
            dt = _dtype(m.dtype)
            src["m"] = m
            return (0, _DTYPE_CODE[dt.name], m.ndim) + tuple(m.shape) + (0,) * (32 - m.ndim) + (0, m.nbytes, 0)

        d = self._root_desc(root, desc)

        def data_of(v):
            v[:] = _np.asarray(src["m"]).reshape(-1).view(_np.uint8)

        oid, seg, shape, dtype, _ = self._replicate(d, data_of, "array")
        src.clear()
        return ReplicatedArray(self, oid, seg, shape, dtype)

    def replicate_bits(self, bits=None, nbits=None, root=0):
        """Collective. One read-only bit array per node of the root's bits:
        a bool array (one bit per element), or uint64 words (sk_bits layout)
        with nbits. Returns a ReplicatedBits."""
        self._check()
        src = {}

        def desc():
            b = _np.asarray(bits)
            if b.dtype == _np.bool_:
                n = b.size
                words = _np.packbits(b.reshape(-1), bitorder="little")
                words = _np.concatenate([words, _np.zeros((-len(words)) % 8, dtype=_np.uint8)]).view(_np.uint64)
            else:
                if nbits is None:
                    raise ValueError("nbits is needed with words")
                n = int(nbits)
                words = _np.ascontiguousarray(b, dtype=_np.uint64).reshape(-1)
                if len(words) < (n + 63) // 64:
                    raise ValueError("%d words hold fewer than %d bits" % (len(words), n))
                words = words[:(n + 63) // 64].copy()
            if n % 64:
                words[-1] &= _np.uint64((1 << (n % 64)) - 1)
            src["w"] = words
            return (0, 0, 0) + (0,) * 32 + (n, len(words) * 8, 0)

        d = self._root_desc(root, desc)

        def data_of(v):
            v[:] = src["w"].view(_np.uint8)

        oid, seg, _, _, n = self._replicate(d, data_of, "bits")
        return ReplicatedBits(self, oid, seg, n)

    def partition(self, shape, dtype="float64", layout="rows", prows=0):
        """Collective. A zero-filled array of `shape` spread over the nodes:
        layout "rows" (node k gets rows [R*k/N, R*(k+1)/N)) or "blocks" (2-D,
        a prows x pcols grid; prows 0 picks the largest divisor of N not above
        its square root). Same arguments on every rank."""
        self._check()
        shape = (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)
        rc = 0
        try:
            dt = _dtype(dtype)
            if len(shape) < 1 or len(shape) > 32 or min(shape) < 0 or layout not in ("rows", "blocks"):
                raise ValueError("bad shape or layout")
            if layout == "blocks" and (len(shape) != 2 or prows < 0 or prows > self.nodes or
                                       (prows and self.nodes % prows)):
                raise ValueError("blocks need a 2-D shape and prows dividing the nodes")
        except (TypeError, ValueError):
            rc, dt = -22, None
        key = _digest((dt.name if dt is not None else None, shape, layout, prows if layout == "blocks" else 0))
        v = self._allmin([rc, key, -key])
        if v[0] < 0:
            _raise_code(v[0], "partition")
        if v[1] != -v[2]:
            raise ClusterMismatch(SK_ECLUSTER_MISMATCH, "partition: ranks passed different arguments")
        oid = self._next_id = self._next_id + 1
        return PartitionedArray(self, oid, shape, dt, layout, prows)

    def partition_bits(self, nbits):
        """Collective. A zeroed bit array of nbits bits whose 64-bit words are
        spread over the nodes as rows are. Same nbits on every rank."""
        self._check()
        nbits = int(nbits)
        rc = 0 if 0 <= nbits <= (1 << 40) else -22
        v = self._allmin([rc, nbits, -nbits])
        if v[0] < 0:
            _raise_code(v[0], "partition_bits")
        if v[1] != -v[2]:
            raise ClusterMismatch(SK_ECLUSTER_MISMATCH, "partition_bits: ranks passed different arguments")
        oid = self._next_id = self._next_id + 1
        return PartitionedBits(self, oid, nbits)

    def close(self):
        """Collective (local on a failed handle). Close the objects first."""
        if self.comm == _MPI.COMM_NULL:
            return
        if self._failed is None and self._open:
            raise RuntimeError("close the cluster's arrays and bit arrays first")
        try:
            if self._failed is None:
                self._barrier(self.comm)
        finally:
            self._stop = True
            if self._thread is not None:
                self._thread.join()
                self._thread = None
            if self._failed is None:
                self._free_comms()
            else:
                self.comm = _MPI.COMM_NULL

    def _free_comms(self):
        for c in (self.comm, self._req, self._rep, self.node_comm, self.leader_comm):
            if c != _MPI.COMM_NULL:
                c.Free()
        self.comm = self._req = self._rep = self.node_comm = self.leader_comm = _MPI.COMM_NULL

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.close()
        else:
            self._fail(exc[1])
            self.close()

    def __repr__(self):
        return "<shmkit.cluster.Cluster rank %d/%d node %d/%d job %016x%s>" % (
            self.rank, self.size, self.node, self.nodes, self.job_id, " failed" if self._failed else "")


class _Distributed:
    """What replicated and partitioned objects share."""

    _replicated = False

    def _close_common(self):
        cl = self._cl
        if cl is None:
            return
        try:
            if cl._failed is None:
                cl._barrier(cl.comm)  # every rank stops asking before the part goes
        finally:
            cl._unregister(self._obj.id)
            cl._open -= 1
            self._cl = None
            self._view = None
            self._obj = None
            try:
                self._seg.close()
            except BufferError:
                pass  # views of .local still hold the mapping; it goes with them
            self._seg = None

    def close(self):
        """Collective: waits for every rank, then lets go of this rank's mapping."""
        self._close_common()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ReplicatedArray(_Distributed):
    """One read-only copy per node. .local is the NumPy view (zero-copy);
    gather(index) reads flat indices from it; .shape, .dtype, .size."""

    _replicated = True

    def __init__(self, cl, oid, seg, shape, dtype):
        self._cl, self._seg, self.shape, self.dtype = cl, seg, tuple(shape), dtype
        self.size = int(_np.prod(shape, dtype=_np.uint64)) if shape else 1
        self._total = self.size
        self._view = _np.asarray(seg)
        self._obj = _Obj(oid, False, False, dtype, self._view.reshape(-1))
        self.name = seg.name

    @property
    def local(self):
        return self._view

    def _locate(self, idx):
        return _np.full(len(idx), self._cl.node, dtype=_np.intp), idx

    def gather(self, index):
        return self._cl._call(self, _GATHER, 0, index)

    def scatter(self, index, values):
        raise PermissionError("a replicated array is read-only")

    def add(self, index, delta, fetch=False):
        raise PermissionError("a replicated array is read-only")


class ReplicatedBits(_Distributed):
    """One read-only bit array per node. .local is the shmkit.Bits, .words its
    uint64 view; test(index) reads bits."""

    _replicated = True

    def __init__(self, cl, oid, seg, nbits):
        self._cl, self._seg, self.nbits = cl, seg, nbits
        self._total = nbits
        self._view = seg.words()
        self._obj = _Obj(oid, True, False, _np.dtype(_np.uint64), self._view)
        self._obj.count = nbits
        self.name = seg.name

    def __len__(self):
        return self.nbits

    @property
    def local(self):
        return self._seg

    @property
    def words(self):
        return self._view

    def _locate(self, idx):
        return _np.full(len(idx), self._cl.node, dtype=_np.intp), idx

    def test(self, index):
        return self._cl._call(self, _BTEST, 0, index)


class PartitionedArray(_Distributed):
    """Rows (or 2-D blocks) spread over the nodes. .local is this node's part
    as a writable NumPy view (zero-copy, shared by the node's ranks);
    part(node) gives its rows and columns; gather, scatter and add take flat
    C-order indices of the whole array."""

    def __init__(self, cl, oid, shape, dtype, layout, prows):
        self._cl, self.shape, self.dtype, self.layout = cl, shape, dtype, layout
        self.size = int(_np.prod(shape, dtype=_np.uint64))
        self._total = self.size
        n = cl.nodes
        self.rows = shape[0]
        self.cols = self.size // self.rows if self.rows else 0
        if layout == "rows":
            self.grid = (n, 1)
        else:
            pr = prows or max(p for p in range(1, int(n ** 0.5) + 1) if n % p == 0)
            self.grid = (pr, n // pr)
        self._rb = _bounds(self.rows, self.grid[0])
        self._cb = _bounds(self.cols, self.grid[1])
        (r0, r1), (c0, c1) = self.part(cl.node)
        part_shape = (r1 - r0,) + shape[1:] if layout == "rows" else (r1 - r0, c1 - c0)
        seg = cl._publish(oid, lambda name: _shmkit.create(name, part_shape, dtype.name, owned=True),
                          lambda name: _shmkit.open(name))
        self._seg = seg
        self._view = _np.asarray(seg)
        self._obj = _Obj(oid, False, True, dtype, self._view.reshape(-1))
        cl._register(self._obj)
        cl._agree(0, "partition")
        cl._open += 1

    @property
    def local(self):
        return self._view

    def part(self, node=None):
        """((row_begin, row_end), (col_begin, col_end)) of a node's part
        (default: this rank's), counting the array as rows x (size / rows)."""
        node = self._cl.node if node is None else node
        gi, gj = divmod(node, self.grid[1])
        return (int(self._rb[gi]), int(self._rb[gi + 1])), (int(self._cb[gj]), int(self._cb[gj + 1]))

    def _locate(self, idx):
        if self.cols == 0:
            return _np.zeros(0, dtype=_np.intp), idx
        r, c = idx // _np.uint64(self.cols), idx % _np.uint64(self.cols)
        i = _np.searchsorted(self._rb[1:], r, side="right")
        if self.layout == "rows":
            return i, idx - self._rb[i] * _np.uint64(self.cols)
        j = _np.searchsorted(self._cb[1:], c, side="right")
        w = self._cb[j + 1] - self._cb[j]
        return i * self.grid[1] + j, (r - self._rb[i]) * w + (c - self._cb[j])

    def owner(self, index):
        """The nodes owning flat indices."""
        idx = _np.asarray(index, dtype=_np.uint64).ravel()
        return self._locate(idx)[0]

    def gather(self, index):
        """The elements at flat indices, as a NumPy array of the dtype."""
        return self._cl._call(self, _GATHER, 0, index)

    def scatter(self, index, values):
        """Stores values at flat indices (list order within a node)."""
        self._cl._call(self, _SCATTER, 0, index, values)

    def add(self, index, delta, fetch=False):
        """Atomically adds delta (one value or one per index); with fetch=True
        returns each element's value just before its addition."""
        return self._cl._call(self, _ADD, _WANT_OLD if fetch else 0, index, delta)


class PartitionedBits(_Distributed):
    """A bit array whose 64-bit words are spread over the nodes. .local is
    this node's part (a shmkit.Bits; bit j of it is bit part()[0] + j)."""

    def __init__(self, cl, oid, nbits):
        self._cl, self.nbits = cl, nbits
        self._total = nbits
        self._wb = _bounds((nbits + 63) // 64, cl.nodes)
        lo, hi = self.part(cl.node)
        seg = cl._publish(oid, lambda name: _shmkit.Bits(hi - lo, name=name, owned=True),
                          lambda name: _shmkit.Bits.open(name))
        self._seg = seg
        self._view = seg.words()
        self._obj = _Obj(oid, True, True, _np.dtype(_np.uint64), self._view)
        self._obj.count = hi - lo
        cl._register(self._obj)
        cl._agree(0, "partition_bits")
        cl._open += 1

    def __len__(self):
        return self.nbits

    @property
    def local(self):
        return self._seg

    def part(self, node=None):
        """(begin, end) bits of a node's part (default: this rank's)."""
        node = self._cl.node if node is None else node
        lo, hi = 64 * int(self._wb[node]), min(64 * int(self._wb[node + 1]), self.nbits)
        return min(lo, hi), hi

    def _locate(self, idx):
        k = _np.searchsorted(self._wb[1:], idx >> _np.uint64(6), side="right")
        return k, idx - _np.uint64(64) * self._wb[k]

    def owner(self, index):
        return self._locate(_np.asarray(index, dtype=_np.uint64).ravel())[0]

    def test(self, index):
        """The bits at indices, as uint8 0/1."""
        return self._cl._call(self, _BTEST, 0, index)

    def set(self, index, fetch=False):
        """Atomically sets bits; with fetch=True returns their previous values."""
        return self._cl._call(self, _BSET, _WANT_OLD if fetch else 0, index)

    def clear(self, index, fetch=False):
        """Atomically clears bits; with fetch=True returns their previous values."""
        return self._cl._call(self, _BCLEAR, _WANT_OLD if fetch else 0, index)


def _fetch_add(flat, idx, vals):
    """flat[idx[i]] += vals[i] in list order, returning each value just
    before its addition (exact for floats: additions happen one by one)."""
    old = flat[idx].copy()
    uniq, first, inverse = _np.unique(idx, return_index=True, return_inverse=True)
    if len(uniq) == len(idx):
        flat[idx] += vals
        return old
    if flat.dtype.kind == "f":
        for i in range(len(idx)):
            old[i] = flat[idx[i]]
            flat[idx[i]] += vals[i]
        return old
    # Integers (wrapping, so any order of sums is exact): each old value is
    # the element plus the deltas of its earlier duplicates.
    order = _np.argsort(inverse, kind="stable")
    d = vals[order]
    csum = _np.cumsum(d, dtype=flat.dtype)
    grp = inverse[order]
    starts = _np.searchsorted(grp, grp, side="left")
    before = csum - d - _np.where(starts > 0, csum[starts - 1], 0).astype(flat.dtype)
    old_sorted = flat[idx[order]] + before
    old[order] = old_sorted
    _np.add.at(flat, idx, vals)
    return old
