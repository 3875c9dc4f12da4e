"""shmkit.managers: multiprocessing.managers.SharedMemoryManager on shmkit
segments, without a server process.

CPython's manager starts a server process that owns the segments and removes
them at shutdown (or leaves them to its resource tracker if it is killed).
shmkit's segments are owned by the process that creates them: their names go
when that process dies, however it dies, with no helper process. So this
manager is an object in the calling process that remembers what it made and
removes it at shutdown() or at the end of a ``with`` block; other processes
attach to the segments by name (SharedMemory(name), ShareableList(name=...))
as with CPython's. It has no address and no connect(): it is not a
BaseManager.
"""
import threading as _threading

from . import SharedMemory as _SharedMemory
from .shared_memory import ShareableList as _ShareableList

__all__ = ["SharedMemoryManager"]


class SharedMemoryManager:
    """SharedMemoryManager(): start(), SharedMemory(size),
    ShareableList(sequence), shutdown(), and use as a context manager, like
    multiprocessing.managers.SharedMemoryManager. Methods called before
    start() raise ValueError, as CPython's do."""

    def __init__(self, *args, **kwargs):
        self._names = []
        self._started = False
        self._mutex = _threading.Lock()

    def start(self, initializer=None, initargs=()):
        """Starts managing (there is no server process to start; initializer,
        if given, is called here with initargs)."""
        with self._mutex:
            if self._started:
                raise ValueError("the SharedMemoryManager was already started")
            self._started = True
        if initializer is not None:
            initializer(*initargs)

    def _check(self):
        if not self._started:
            raise ValueError("the SharedMemoryManager is not started: call start() or use it in a with block")

    def SharedMemory(self, size):
        "A new SharedMemory of size bytes, removed at shutdown()."
        with self._mutex:
            self._check()
            shm = _SharedMemory(create=True, size=size)
            self._names.append(shm.name)
        return shm

    def ShareableList(self, sequence):
        "A new ShareableList of sequence, removed at shutdown()."
        with self._mutex:
            self._check()
            sl = _ShareableList(sequence)
            self._names.append(sl.shm.name)
        return sl

    def shutdown(self):
        """Removes the names of every segment this manager made (processes
        that have them mapped keep them until they close them)."""
        with self._mutex:
            names, self._names = self._names, []
            self._started = False
        from . import unlink
        for n in names:
            try:
                unlink(n)
            except FileNotFoundError:
                pass

    def __enter__(self):
        if not self._started:
            self.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def __del__(self):
        try:
            if self._started:
                self.shutdown()
        except Exception:
            pass
