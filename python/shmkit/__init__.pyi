# Type stubs of the shmkit package (python/shmkit/__init__.py and the C core
# it re-exports, _shmkit.pyi). tests/python/test_typing.py checks that every
# public name is here and that mypy accepts these stubs.
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal, Protocol, overload

import numpy as np
from typing_extensions import Self

from ._shmkit import (
    Barrier as Barrier,
    Bits as Bits,
    BoundedSemaphore as BoundedSemaphore,
    Condition as Condition,
    Error as Error,
    Event as Event,
    Lock as Lock,
    OwnerDiedWarning as OwnerDiedWarning,
    RLock as RLock,
    Segment as Segment,
    Semaphore as Semaphore,
    SharedRawValue as SharedRawValue,
    SharedValue as SharedValue,
    ShutDown as ShutDown,
    gc as gc,
    stat as stat,
    unlink as unlink,
)
from ._shmkit import ArrayHandle as _ArrayHandle
from ._shmkit import Queue as _CQueue
from ._share import Shared as Shared
from ._share import attach as attach
from ._share import share as share
from .shared_memory import ShareableList as ShareableList

__version__: str
DTYPES: tuple[str, ...]
__all__ = [
    "create",
    "open",
    "unlink",
    "stat",
    "gc",
    "list_segments",
    "DTYPES",
    "SharedArray",
    "Bits",
    "Segment",
    "SharedMemory",
    "ShareableList",
    "Value",
    "Array",
    "RawValue",
    "RawArray",
    "SharedValue",
    "SharedRawValue",
    "SynchronizedArray",
    "SharedRawArray",
    "Lock",
    "RLock",
    "Semaphore",
    "BoundedSemaphore",
    "Barrier",
    "Event",
    "Condition",
    "Queue",
    "SimpleQueue",
    "JoinableQueue",
    "Error",
    "OwnerDiedWarning",
    "ShutDown",
    "share",
    "attach",
    "Shared",
    "from_numpy",
]

def list_segments() -> list[str]: ...

class SharedArray(np.ndarray[Any, np.dtype[Any]]):
    """A numpy.ndarray whose memory is a shmkit segment."""
    def __new__(cls, shape: int | Sequence[int], dtype: Any = "float64", *, name: str | None = None,
                owned: bool = True, locked: bool = False, huge: bool = False) -> SharedArray: ...
    @property
    def name(self) -> str | None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def readonly(self) -> bool: ...
    @property
    def locked(self) -> bool: ...
    def close(self) -> None: ...
    def unlink(self) -> None: ...
    def info(self) -> dict[str, Any]: ...
    def freeze(self) -> None: ...
    def get_lock(self) -> Any: ...
    def copy(self, order: Any = "C") -> np.ndarray[Any, np.dtype[Any]]: ...  # type: ignore[override]
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> None: ...
def create(name: str | None, shape: int | Sequence[int], dtype: Any = "float64", *, owned: bool = True,
           locked: bool = False, huge: bool = False) -> SharedArray: ...
def open(name: str, readonly: bool = False, *, any_owner: bool = False) -> Any: ...  # noqa: A001
def from_numpy(a: Any, name: str | None = None, *, owned: bool = True, locked: bool = False, huge: bool = False,
               readonly: bool = False) -> SharedArray: ...


class SharedMemory:
    def __init__(self, name: str | None = None, create: bool = False, size: int = 0) -> None: ...
    @property
    def buf(self) -> memoryview: ...
    @property
    def name(self) -> str: ...
    @property
    def size(self) -> int: ...
    def close(self) -> None: ...
    def unlink(self) -> None: ...

class _LockLike(Protocol):
    """A lock object Value and Array can use: shmkit's, or any with acquire and release."""
    def acquire(self, *args: Any, **kwargs: Any) -> Any: ...
    def release(self) -> Any: ...

@overload
def Value(typecode_or_type: Any, *args: Any, lock: Literal[False], name: str | None = None,
          owned: bool = True) -> SharedRawValue: ...
@overload
def Value(typecode_or_type: Any, *args: Any, lock: Literal[True] | None | _LockLike = True, name: str | None = None,
          owned: bool = True) -> SharedValue: ...
def RawValue(typecode_or_type: Any, *args: Any, name: str | None = None, owned: bool = True) -> SharedRawValue: ...

class _SharedSequence:
    def __init__(self, arr: _ArrayHandle, kind: str | None = None, lock: Any = None) -> None: ...
    @classmethod
    def open(cls, name: str, typecode: str | None = None) -> Self: ...
    def __len__(self) -> int: ...
    def __getitem__(self, i: int | slice) -> Any: ...
    def __setitem__(self, i: int | slice, value: Any) -> None: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __array__(self, dtype: Any = None) -> Any: ...
    value: Any
    raw: bytes
    @property
    def name(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...
    def unlink(self) -> None: ...

class SynchronizedArray(_SharedSequence):
    def get_lock(self) -> Any: ...
    def get_obj(self) -> SharedArray: ...

class SharedRawArray(_SharedSequence): ...

@overload
def Array(typecode_or_type: Any, size_or_initializer: int | Iterable[Any], *, lock: Literal[False],
          name: str | None = None, owned: bool = True) -> SharedRawArray: ...
@overload
def Array(typecode_or_type: Any, size_or_initializer: int | Iterable[Any], *,
          lock: Literal[True] | None | _LockLike = True, name: str | None = None,
          owned: bool = True) -> SynchronizedArray: ...
def RawArray(typecode_or_type: Any, size_or_initializer: int | Iterable[Any], *, name: str | None = None,
             owned: bool = True) -> SharedRawArray: ...

class Queue(_CQueue):
    def put_nowait(self, obj: object) -> None: ...
    def get_nowait(self) -> Any: ...
    def put_many(self, objs: Iterable[object], block: bool = True, timeout: float | None = None) -> int: ...
    def get_many(self, max: int = 64, block: bool = True,  # noqa: A002
                 timeout: float | None = None) -> list[Any]: ...

class JoinableQueue(Queue):
    def task_done(self) -> None: ...
    def join(self, timeout: float | None = None) -> bool: ...

class SimpleQueue(Queue):
    def __new__(cls, *, name: str | None = None, capacity: int = 33554432, max_msg: int | None = None,
                owned: bool = True) -> Self: ...
