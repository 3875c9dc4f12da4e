"""shmkit.dask: one copy per host of a large array for every worker of a Dask cluster.

Dask's own way to give every worker the same large array,
``client.scatter(x, broadcast=True)``, keeps one copy per worker process. Here
``share(client, x)`` keeps one copy per host, in a shmkit segment, and hands
out a small handle (``Shared``) instead: tasks receive the handle, and the
handle reads the host's copy read-only, without a copy, however many workers
and tasks use it::

    import shmkit.dask
    h = shmkit.dask.share(client, x)               # one segment per host
    client.submit(lambda a: float(a.sum()), h)     # a is the handle: np.asarray(a) is a view
    h.to_dask_array(chunks=...).map_blocks(f)      # every chunk a view of the host's copy
    h.release()                                    # the copies are gone on every host

See docs/dask.md. This module is imported only by ``import shmkit.dask``;
``import shmkit`` never imports Dask. It uses the public shmkit API only.

How it works. *Hosts*: the workers are grouped by what they see as
/dev/shm: the kernel's boot id plus the device and inode of /dev/shm
(``host_key()``), so that two workers share a copy exactly when each can open
the other's segments; Dask's own host address cannot tell apart two mount
namespaces on one machine, nor a host whose processes see different /dev/shm.
*Copies*: one task per host, pinned to one of its workers (the creator),
creates the segment under one random name used on every host (``skdask-`` and
64 random bits), owned by that worker process. On the client's own host the
client writes the data straight into it; every other host's creator gets the
data once over Dask's own transfer (one scatter, then worker to worker) and
writes it in. Each copy is frozen once filled (read-write opens fail).
*Handles*: a ``Shared`` pickles to its name, type and shape; where it is
unpickled it attaches to that host's copy read-only (a PROT_READ mapping) by
name, once per process (a cache keyed by name), and checks that the segment's
header matches what was shared.

Lifetime. Each copy has a *lease*: a small datum the client scatters to the
creator and the handle holds as a Dask future. A worker plugin removes the
copy's name when its lease is released there, which happens when
``release()`` is called, when the handle is garbage collected, and when the
client disconnects or dies. A creator that closes (the cluster closes, the
worker retires or restarts) removes its copies in the plugin's teardown and
at interpreter exit. A creator killed outright leaves an owned segment, which
shmkit's sweep (at the next create on that host) or ``shmkit gc`` removes;
``Shared.update()`` has a live worker adopt it before that, and gives hosts
that joined later a copy. Workers that attached drop their mapping when
``release()`` tells them, or within a second of the name going (the plugin
checks), as soon as no task still holds a view of it.

Object graphs: any other object (lists, dicts, tuples of arrays, bitarrays,
Bits, strings, ...) is kind "graph": each host's creator receives it through
Dask and makes its copy with shmkit.share (one frozen segment, owned, its
handle held until the lease goes); get() is shmkit.attach, arrays read-only
zero-copy views (docs/dask.md, "Object graphs").
"""

import asyncio as _asyncio
import atexit as _atexit
import io as _io
import os as _os
import pickle as _pickle
import secrets as _secrets
import threading as _threading

import numpy as _np

import shmkit as _shmkit

try:
    import distributed as _distributed
    from distributed.diagnostics.plugin import WorkerPlugin as _WorkerPlugin
    from tornado.ioloop import PeriodicCallback as _PeriodicCallback
except ImportError as _e:  # pragma: no cover - the message is the point
    raise ImportError("shmkit.dask needs Dask's distributed package (Debian: python3-distributed; "
                      "pip: distributed): %s" % _e) from _e

__all__ = ["share", "Shared", "hosts", "host_key", "MemoryLimitWarning"]

# Where the segments live: the library's fixed directory (docs/api.md).
_SHM_DIR = "/dev/shm"
_PREFIX = "skdask-"
_PLUGIN_NAME = "shmkit-dask"
# How often each worker looks for copies whose name has gone (seconds).
_SWEEP_SECONDS = 1.0


# ---- hosts ------------------------------------------------------------------------

def host_key():
    """The identity of the /dev/shm this process sees, as a string: the
    kernel's boot id, then the device and inode of /dev/shm. Two processes
    have the same key exactly when they see the same /dev/shm directory (the
    same machine, and the same tmpfs mounted there): a separate mount
    namespace with its own tmpfs (``unshare -m``, a container) is another
    host, a container that shares the machine's /dev/shm is the same one."""
    with open("/proc/sys/kernel/random/boot_id") as f:
        boot = f.read().strip()
    st = _os.stat(_SHM_DIR)
    return "%s/%d:%d/%d" % (boot, _os.major(st.st_dev), _os.minor(st.st_dev), st.st_ino)


def _probe(spec=None):
    """Run on every worker by hosts() and share(): what they need to know of
    it, and with spec, the state of that copy on its host: "ok" (complete,
    its creator alive), "orphan" (complete, its creator dead: owned, so the
    next sweep removes it), "none" (no copy), "broken" (never completed, its
    creator dead), "busy" (being filled), "foreign" (another segment of that
    name, or one that does not validate)."""
    import socket
    p = {"host": host_key(), "uid": _os.getuid(), "hostname": socket.gethostname(), "pid": _os.getpid()}
    if spec is not None:
        try:
            st = _shmkit.stat(spec["name"])
        except FileNotFoundError:
            p["state"] = "none"
        except OSError:
            p["state"] = "foreign"
        else:
            if not _matches(st, spec):
                p["state"] = "foreign"
            elif not st["frozen"]:
                p["state"] = "broken" if st["creator_alive"] is False else "busy"
            else:
                p["state"] = "orphan" if st["creator_alive"] is False else "ok"
    return p


def _matches(st, spec):
    """Whether a segment's header (shmkit.stat) describes what spec shared
    (a graph: a raw segment of the size of the first copy, once known)."""
    if spec["kind"] == "graph":
        return st["kind"] == "raw" and spec.get("nbytes") in (None, st["data_size"])
    if spec["kind"] == "array":
        return st["kind"] == "array" and st["dtype"] == spec["dtype"] and tuple(st["shape"]) == tuple(spec["shape"])
    return st["kind"] == "bits" and st["nitems"] == spec["nbits"]


def hosts(client):
    """The client's workers grouped by host (``host_key()``): a dict from
    host key to the sorted list of worker addresses there. Dask's own view,
    the IP address of each worker (``client.scheduler_info()``), can put two
    hosts under one address (two mount namespaces of one machine) and is not
    used."""
    return {h: sorted(w) for h, w in _group(client.run(_probe)).items()}


def _group(probes):
    out = {}
    for addr, p in probes.items():
        out.setdefault(p["host"], []).append(addr)
    return out


# ---- the kinds of object that can be shared ----------------------------------------
#
# Each kind says how to describe an object (spec: what a handle carries and an
# attach checks), what travels to other hosts (payload), how a creator makes
# and fills a copy, how the client fills the copy on its own host, and how a
# process attaches read-only. Object graphs (issue 18) will be one more kind.

# NumPy dtype names shmkit arrays store (docs/python.md).
_DTYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64"}


class _ArrayKind:
    name = "array"

    @staticmethod
    def spec(obj):
        a = _np.asarray(obj)
        dt = a.dtype
        if dt.name not in _DTYPES or not dt.isnative:
            raise TypeError("shmkit.dask shares arrays of bool, int8..int64, uint8..uint64, float32 and float64 "
                            "in native byte order, not %s" % dt)
        return {"kind": "array", "dtype": dt.name, "shape": tuple(int(n) for n in a.shape), "nbytes": int(a.nbytes)}

    @staticmethod
    def payload(obj):
        return _np.ascontiguousarray(obj)

    @staticmethod
    def create(name, spec, data):
        return _shmkit.create(name, spec["shape"], spec["dtype"], owned=True)

    @staticmethod
    def fill(seg, data):
        view = _np.asarray(seg)
        try:
            view[...] = data
        finally:
            del view

    @staticmethod
    def read(view):
        return _np.array(view)

    @staticmethod
    def attach(name, spec):
        seg = _shmkit.open(name, readonly=True)
        if (not isinstance(seg, _shmkit.SharedArray) or seg.dtype != spec["dtype"]
                or tuple(seg.shape) != tuple(spec["shape"])):
            what = "%s %s" % (getattr(seg, "dtype", type(seg).__name__), getattr(seg, "shape", ""))
            seg.close()
            raise TypeError("segment %s on this host holds %s, not the shared %s %s"
                            % (name, what, spec["dtype"], tuple(spec["shape"])))
        return seg, _np.asarray(seg)


class _BitsKind:
    name = "bits"

    @staticmethod
    def spec(obj):
        n = len(obj)
        return {"kind": "bits", "nbits": n, "nbytes": ((n + 63) // 64) * 8}

    @staticmethod
    def payload(obj):
        return _np.asarray(obj.words())  # Dask's transfer copies it

    @staticmethod
    def create(name, spec, data):
        return _shmkit.Bits(spec["nbits"], name, owned=True)

    @staticmethod
    def fill(seg, data):
        words = seg.words()
        try:
            words[...] = data.words() if isinstance(data, _shmkit.Bits) else data
        finally:
            del words

    @staticmethod
    def read(bits):
        return _np.array(bits.words(), dtype=_np.uint64)

    @staticmethod
    def attach(name, spec):
        seg = _shmkit.open(name, readonly=True)
        if not isinstance(seg, _shmkit.Bits) or len(seg) != spec["nbits"]:
            seg.close()
            raise TypeError("segment %s on this host is not the shared bit array of %d bits" % (name, spec["nbits"]))
        return seg, seg


class _Payload:
    """A graph on its way to a creator: one object for client.scatter (which
    would scatter a list, tuple or dict element by element)."""

    def __init__(self, obj):
        self.obj = obj


class _Private(_pickle.Pickler):
    """Pickles an attached graph with private copies of its data: a
    SharedArray (which pickles as a reference to this host's segment) as a
    plain array, a Bits as its words."""

    def reducer_override(self, obj):
        if isinstance(obj, _np.ndarray) and type(obj) is not _np.ndarray and type(obj) is not _np.memmap:
            return _np.asarray, (obj.view(_np.ndarray),)
        if type(obj) is _shmkit.Bits:
            return _bits_again, (len(obj), _np.array(obj.words(), dtype=_np.uint64))
        return NotImplemented


def _bits_again(nbits, words):
    "A Bits of another host's copy, arrived as its words: an unnamed Bits again, for shmkit.share."
    b = _shmkit.Bits(nbits)
    w = b.words()
    w[...] = words
    del w
    return b


class _GraphKind:
    name = "graph"

    @staticmethod
    def spec(obj):
        return {"kind": "graph", "nbytes": None}  # the size of the first copy, once made

    @staticmethod
    def payload(obj):
        return _Payload(obj)

    @staticmethod
    def create(name, spec, data):
        # One step: shmkit.share writes the whole graph into a new segment and
        # publishes it frozen, owned by this process (_kept holds it).
        if isinstance(data, _Payload):
            data = data.obj
        elif isinstance(data, bytes):  # read() on another host
            data = _pickle.loads(data)
        else:  # an attached graph being adopted: its arrays refer to the old segment, which goes
            data = _pickle.loads(_GraphKind.read(data))
        return _shmkit.share(data, name=name, owned=True)

    @staticmethod
    def fill(seg, data):
        pass  # filled when made

    @staticmethod
    def read(graph):
        out = _io.BytesIO()
        _Private(out, protocol=5).dump(graph)
        return out.getvalue()

    @staticmethod
    def attach(name, spec):
        st = _shmkit.stat(name)
        if not _matches(st, spec):
            raise TypeError("segment %s on this host holds a %s segment of %d bytes, not the shared graph "
                            "of %s bytes" % (name, st["kind"], st["data_size"], spec.get("nbytes")))
        return None, _shmkit.attach(name)  # a raw segment that is not a share: TypeError


_KINDS = {"array": _ArrayKind, "bits": _BitsKind, "graph": _GraphKind}


def _kind_of(obj):
    if isinstance(obj, _shmkit.Bits):
        return _BitsKind
    if isinstance(obj, (_np.ndarray, _shmkit.SharedArray)) or hasattr(obj, "__array_interface__") \
            or hasattr(obj, "__array__"):
        return _ArrayKind
    return _GraphKind


# ---- what each process holds -----------------------------------------------------------
#
# _owned: in a creator, lease key -> (name, creation time) of the copies it
# made (it removes them). _attached: in any process, name -> (segment, view)
# of the copies it reads. Tasks run in threads: both are guarded by _lock.

_lock = _threading.RLock()  # reentrant: a handle collected while it is held forgets under it
_owned: "dict[object, tuple[str, int]]" = {}
_kept: "dict[object, object]" = {}  # lease key -> the shmkit.share handle of a graph copy made here
_attached: "dict[str, tuple[object, object]]" = {}
_atexit_set = False


def _unlink_own(name, ctime_ns):
    """Removes a copy's name if it is still the one this process made then
    (its header names us and that creation time: a copy made again under the
    same name by a later lease stays)."""
    try:
        st = _shmkit.stat(name)
        if st["creator_pid"] != _os.getpid() or st["ctime_ns"] != ctime_ns:
            return False
        _shmkit.unlink(name)
        return True
    except FileNotFoundError:
        return False


def _drop_owned(keys):
    """Removes the copies made under these lease keys; returns their names."""
    with _lock:
        made = [_owned.pop(k) for k in keys if k in _owned]
        kept = [_kept.pop(k) for k in keys if k in _kept]
    for name, ctime_ns in made:
        _unlink_own(name, ctime_ns)
    for h in kept:
        h.close()
    return [name for name, _ in made]


def _drop_all_owned():
    with _lock:
        keys = list(_owned)
    return _drop_owned(keys)


def _forget(name):
    """Lets go of this process's mapping of a copy (the mapping goes with the
    last view that tasks still hold)."""
    with _lock:
        return _attached.pop(name, None) is not None


def _sweep_attached():
    """Forgets the copies whose name has gone (released, or their creator died
    and was swept)."""
    with _lock:
        names = list(_attached)
    for n in names:
        if not _os.path.lexists(_os.path.join(_SHM_DIR, n)):
            _forget(n)


def _attach(spec):
    name = spec["name"]
    with _lock:
        ent = _attached.get(name)
        if ent is None:
            try:
                ent = _KINDS[spec["kind"]].attach(name, spec)
            except FileNotFoundError:
                raise FileNotFoundError(
                    "no copy of %s on this host (%s): it was released, or this host joined after share() or "
                    "lost its copy with the worker that made it (the client's handle.update() makes one)"
                    % (name, host_key())) from None
            _attached[name] = ent
        return ent[1]


def _read_copy(spec):
    """A task on a host that has the copy: a private copy of its data (what
    update() sends to the hosts without one)."""
    return _KINDS[spec["kind"]].read(_attach(spec))


def _create_copy(lease, spec, source, data=None):
    """The task that makes one host's copy, run on that host's creator.
    lease: the key of the small datum the client scattered to this worker;
    the copy lives while that key does. source: "client" (the client fills
    it: its own host), "data" (fill it with data), "adopt" (fill it from the
    complete copy its dead creator left on this host)."""
    global _atexit_set
    kind, name = _KINDS[spec["kind"]], spec["name"]
    old = None
    if source == "adopt":
        # Mapped first: the create below may sweep it away (its creator is dead).
        try:
            st = _shmkit.stat(name)
            if st["owned"] and st["frozen"] and st["creator_alive"] is False and _matches(st, spec):
                old = kind.attach(name, spec)
        except FileNotFoundError:
            pass
        if old is None:
            raise FileNotFoundError("no complete copy of %s left on this host to adopt" % name)
    if source == "adopt":
        data = old[1]
    try:
        try:
            seg = kind.create(name, spec, data)
        except FileExistsError:
            # Only a copy whose creator died may be replaced (it is owned: the
            # next sweep would remove it anyway).
            st = _shmkit.stat(name)
            if not st["owned"] or st["creator_alive"] is not False or not _matches(st, spec):
                raise
            _shmkit.unlink(name)
            seg = kind.create(name, spec, data)
    except BaseException:
        if old is not None:
            old_seg, old = old[0], None
            if old_seg is not None:  # a graph's attach keeps no segment of its own
                old_seg.close()
        raise
    keep = kind is _GraphKind  # an owned share's name goes with its handle: kept until the lease goes
    try:
        info = seg.info()
        with _lock:
            _owned[lease] = (name, info["ctime_ns"])
            if keep:
                _kept[lease] = seg
            if not _atexit_set:
                _atexit.register(_drop_all_owned)
                _atexit_set = True
        # The lease may have gone before we registered it (the client gave up):
        # then nothing else would remove the copy.
        if lease not in _distributed.get_worker().data:
            raise RuntimeError("the lease of %s was released before its copy was made" % name)
        if source != "client" and not keep:
            kind.fill(seg, data)
            seg.freeze()
    except BaseException:
        _drop_owned([lease])
        raise
    finally:
        if not keep:
            seg.close()
        if old is not None:
            old_seg, old, data = old[0], None, None  # its view goes first
            if old_seg is not None:
                old_seg.close()
    return int(info["data_size"])


# distributed.core.Status names of a worker that is going away.
_CLOSING = ("closing", "closed", "closing_gracefully", "failed")


class _Plugin(_WorkerPlugin):
    """On every worker: removes the copies it made when their lease key is
    released or the worker closes, and forgets the copies whose name has gone."""

    def __init__(self):
        self._pc = None

    def setup(self, worker):
        self._pc = _PeriodicCallback(_sweep_attached, _SWEEP_SECONDS * 1000)
        worker.periodic_callbacks[_PLUGIN_NAME] = self._pc
        self._pc.start()

    def teardown(self, worker):
        if self._pc is not None:
            self._pc.stop()
            if worker.periodic_callbacks.get(_PLUGIN_NAME) is self._pc:
                del worker.periodic_callbacks[_PLUGIN_NAME]
        # Replaced by another registration, the worker runs on: its copies stay.
        if getattr(worker.status, "name", None) in _CLOSING:
            _drop_all_owned()

    def transition(self, key, start, finish, **kwargs):
        if finish in ("released", "forgotten") and key in _owned:
            _drop_owned([key])


def _ensure_plugin(client):
    # Registering replaces an earlier registration (on every worker, and for
    # workers that join later); that is harmless (the teardown of the one
    # replaced keeps the copies), so every share() registers: nothing to track.
    client.register_worker_plugin(_Plugin(), name=_PLUGIN_NAME)


# ---- sharing ---------------------------------------------------------------------------

def share(client, obj, *, timeout=None):
    """Puts obj on every host of client's cluster, one copy per host, and
    returns a Shared handle to give to tasks.

    obj: a NumPy array of a dtype shmkit stores (bool, int8..int64,
    uint8..uint64, float32, float64) or an array-like object (one with
    __array__ or __array_interface__: a shmkit.SharedArray, a memmap), or a
    shmkit.Bits; anything else is an object graph, put in one segment per host
    by shmkit.share (h.get() gives it, arrays as read-only views).
    timeout: seconds to wait for every host's copy (None: as long as it takes);
    on timeout the copies made so far are removed and TimeoutError raised.

    Every host of the workers the client sees now gets one copy; hosts that
    join later, or lose their copy with the worker that made it, get one from
    handle.update(). The copies go with release(), with the handle (garbage
    collected), with the client, and with the workers that made them
    (docs/dask.md)."""
    kind = _kind_of(obj)
    h = Shared(dict(kind.spec(obj), name=_PREFIX + _secrets.token_hex(8)), client)
    try:
        if not _extend(h, obj, timeout):
            raise ValueError("the client has no workers to share with")
    except BaseException:
        h.release()
        raise
    return h


def _extend(handle, obj, timeout):
    """Makes a copy on every host of the client's workers that has no
    complete copy with a live creator: from obj (share), else by adopting
    the complete copy a dead creator left on that host, else from another
    host's copy (update). Returns how many hosts have a copy."""
    client, spec = handle._client, handle._spec
    kind = _KINDS[spec["kind"]]
    probes = client.run(_probe, spec)
    groups = {}
    for addr in sorted(probes):
        groups.setdefault(probes[addr]["host"], []).append(addr)
    states = {h: {probes[a]["state"] for a in ws} for h, ws in groups.items()}
    bad = sorted(h for h, st in states.items() if st & {"foreign", "busy"})
    if bad:
        raise FileExistsError("%s on host(s) %s is not a complete shared copy (being made, or another segment)"
                              % (spec["name"], ", ".join(bad)))
    have = sorted(h for h, st in states.items() if st == {"ok"})
    todo = {h: ws[0] for h, ws in groups.items() if h not in have}
    if not todo:
        return len(have)
    _warn_memory_limit(client, spec, probes)
    _ensure_plugin(client)
    me = host_key()
    if obj is not None:
        # The client writes its own host's copy itself (it may open the
        # creator's segment: same user); the other hosts get obj once via Dask.
        # A graph cannot be written into another process's segment: every
        # host's creator gets it through Dask.
        local = me if (me in todo and probes[todo[me]]["uid"] == _os.getuid()
                       and kind is not _GraphKind) else None
        how = {h: "client" if h == local else "data" for h in todo}
    else:
        how = {h: "adopt" if states[h] == {"orphan"} else "data" for h in todo}
    need = sorted(h for h in todo if how[h] == "data")
    if need and obj is None and not have:
        raise FileNotFoundError("no host has a copy of %s left to make one from for %s: share it again"
                                % (spec["name"], ", ".join(need)))
    payload, made, stale = None, [], []
    try:
        if need and obj is not None:
            payload = client.scatter(kind.payload(obj), workers=[todo[need[0]]], hash=False)
        elif need:
            payload = client.submit(_read_copy, spec, workers=groups[have[0]], allow_other_workers=False,
                                    pure=False)
        for h in sorted(todo):
            w = todo[h]
            lease = client.scatter(spec["name"], workers=[w], hash=False)
            stale.append(handle._leases.pop(h, None))  # released once the new copy is made
            handle._leases[h], handle._creators[h] = lease, w
            made.append(client.submit(_create_copy, lease.key, spec, how[h], payload if how[h] == "data" else None,
                                      workers=[w], allow_other_workers=False, pure=False, retries=0))
        try:
            _distributed.wait(made, timeout=timeout)
        except _asyncio.TimeoutError as e:  # the builtin TimeoutError since Python 3.11, not before
            raise TimeoutError("the copies of %s were not all made within %s s" % (spec["name"], timeout)) from e
        for f in made:
            if f.status != "finished":
                f.result()  # raises the creator's error
        if spec.get("nbytes") is None:
            spec["nbytes"] = made[0].result()  # a graph: the size of its first copy
        if "client" in how.values():
            seg = _shmkit.open(spec["name"])
            try:
                kind.fill(seg, obj)
                seg.freeze()
            finally:
                seg.close()
    finally:
        for f in made + stale + [payload]:
            if f is not None:
                f.release()
    return len(have) + len(todo)


class MemoryLimitWarning(UserWarning):
    """share() was given more data than half a worker's memory limit: Dask
    counts the pages of the host's copy that a worker has read in its memory
    (RSS), pauses it at 80% of its limit and restarts it at 95%."""


def _warn_memory_limit(client, spec, probes):
    try:
        limits = [w.get("memory_limit") or 0 for a, w in client.scheduler_info()["workers"].items() if a in probes]
    except Exception:  # no scheduler information: nothing to compare with
        return
    limits = [n for n in limits if n > 0]
    if limits and (spec["nbytes"] or 0) > min(limits) // 2:
        import warnings
        warnings.warn("sharing %d MiB with workers whose memory limit is %d MiB: Dask counts the pages of the "
                      "shared copy a worker reads in its memory and pauses it at 80%% of its limit (restarts it "
                      "at 95%%); give the workers a memory_limit above their own needs plus the data "
                      "(docs/dask.md, 'Memory limits')" % (spec["nbytes"] >> 20, min(limits) >> 20),
                      MemoryLimitWarning, stacklevel=4)  # share() or update()'s caller


def _release(client, name, leases, creators):
    """Removes every host's copy now and makes the workers let go of it."""
    try:
        keys = [f.key for f in leases.values()]
        alive = client.scheduler_info()["workers"]  # a departed creator would cost a connect timeout
        there = sorted(set(creators[h] for h in leases) & set(alive))
        if keys and there:
            client.run(_drop_owned, keys, workers=there, on_error="ignore")
        client.run(_forget, name, on_error="ignore")
    except Exception:  # the client or cluster is gone: the leases and teardowns do it
        pass
    finally:
        for f in leases.values():
            f.release()
        _forget(name)


# ---- the handle ------------------------------------------------------------------------

def _restore(spec):
    return Shared(spec)


class Shared:
    """A handle to an object shared with every host of a Dask cluster.

    Where share() returned it, it also holds the copies (release() removes
    them). Pickled, it is its name, type and shape (about 150 bytes); in any
    process of a host with a copy, get() / numpy.asarray(h) / h[i] read that
    copy read-only without a copy. Attributes: name, kind ("array" or
    "bits"), nbytes; arrays also dtype, shape, ndim; bits nbits."""

    def __init__(self, spec, client=None):
        self._spec = spec
        self._client = client
        self._leases = {}  # host key -> the lease future (on the client's handle)
        self._creators = {}  # host key -> address of the worker that made its copy
        self._released = False
        if client is None:
            # Unpickled in a process (a task's argument): attach now if this
            # host has the copy; where it has none (a scheduler or client on
            # another machine), the first read says so.
            try:
                _attach(spec)
            except (OSError, TypeError, ValueError):
                pass

    # -- what it is
    @property
    def name(self):
        "The segment's name (the same on every host)."
        return self._spec["name"]

    @property
    def kind(self):
        '"array" or "bits".'
        return self._spec["kind"]

    @property
    def nbytes(self):
        "Bytes of data in one copy."
        return self._spec["nbytes"]

    @property
    def dtype(self):
        self._need("array", "dtype")
        return _np.dtype(self._spec["dtype"])

    @property
    def shape(self):
        self._need("array", "shape")
        return tuple(self._spec["shape"])

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def nbits(self):
        self._need("bits", "nbits")
        return self._spec["nbits"]

    @property
    def hosts(self):
        """Host key -> the worker that made that host's copy (on the handle
        share() returned; empty elsewhere)."""
        return dict(self._creators)

    def _need(self, kind, what):
        if self._spec["kind"] != kind:
            raise AttributeError("a shared %s has no %s" % (self._spec["kind"], what))

    # -- reading the host's copy
    def get(self):
        """This host's copy, attached read-only by name (once per process): a
        read-only NumPy array for an array, a read-only shmkit.Bits for bits."""
        if self._released:
            raise ValueError("%s was released" % self.name)
        return _attach(self._spec)

    def __array__(self, dtype=None, copy=None):
        if self._spec["kind"] == "graph":
            raise TypeError("a shared object graph is not a NumPy array: h.get() is the graph")
        if self._spec["kind"] != "array":
            raise TypeError("a shared bit array is not a NumPy array: h.get() is the Bits, "
                            "h.get().words() its uint64 words")
        a = self.get()
        if copy:
            return _np.array(a, dtype=dtype, copy=True)
        return a if dtype is None else a.astype(dtype, copy=False)

    def __getitem__(self, index):
        return self.get()[index]

    def __len__(self):
        if self._spec["kind"] == "bits":
            return self._spec["nbits"]
        if self._spec["kind"] == "graph":
            return len(self.get())
        if not self.shape:
            raise TypeError("len() of a shared 0-d array")
        return self.shape[0]

    def to_dask_array(self, chunks="auto"):
        """A dask.array over this host's copy, whatever the host: one task per
        chunk takes a read-only view of that host's copy (no copy per chunk)
        and Dask fuses it with what follows (map_blocks, reductions, ...)."""
        if self._spec["kind"] != "array":
            raise TypeError("to_dask_array() takes a shared array, not a shared %s" % self._spec["kind"])
        import dask.array as da
        meta = _np.empty((0,) * len(self.shape), dtype=self.dtype)
        return da.from_array(self, chunks=chunks, asarray=False, meta=meta, inline_array=True, lock=False)

    # -- lifetime
    def update(self, timeout=None):
        """Makes a copy on the hosts that have none: hosts whose workers joined
        after share(), and hosts that lost their copy with the worker that made
        it (restarted, retired, killed). The data comes from another host's
        copy, once per host. Returns the number of hosts with a copy."""
        if self._client is None:
            raise ValueError("only the handle share() returned can update %s" % self.name)
        if self._released:
            raise ValueError("%s was released" % self.name)
        return _extend(self, None, timeout)

    def release(self):
        """Removes the copy on every host and has every worker let go of it
        (a task still using a view keeps its mapping until it ends). Only the
        handle share() returned can; later reads raise ValueError. Calling it
        again does nothing."""
        if self._client is None:
            raise ValueError("only the handle share() returned can release %s" % self.name)
        if self._released:
            return
        self._released = True
        _release(self._client, self.name, self._leases, self._creators)
        self._leases = {}

    def __del__(self):
        # The leases go with this object (Dask then removes the copies); the
        # client's own mapping, if it read the copy, goes here.
        if getattr(self, "_client", None) is not None and not self._released:
            _forget(self._spec["name"])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._client is not None:
            self.release()

    # -- pickling and Dask
    def __reduce__(self):
        return (_restore, (self._spec,))

    def __dask_tokenize__(self):
        return ("shmkit.dask.Shared", self._spec["name"])

    def __repr__(self):
        s = self._spec
        what = ("%s %s" % (s["dtype"], tuple(s["shape"])) if s["kind"] == "array" else "%d bits" % s["nbits"]
                if s["kind"] == "bits" else "object graph of %s bytes" % s["nbytes"])
        where = " on %d host(s)" % len(self._creators) if self._client is not None else ""
        return "<shmkit.dask.Shared %s: %s%s%s>" % (s["name"], what, where, " (released)" if self._released else "")
