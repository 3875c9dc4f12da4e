"""Runs CPython's own multiprocessing tests against shmkit.

Usage: cpython_mp_runner.py START_METHOD [--json FILE] [--only PATTERN] [--exclude FILE]

The test classes come from Lib/test/_test_multiprocessing.py of the installed
interpreter (Debian: libpython3.11-testsuite). shmkit's classes replace
multiprocessing's in three places: the ProcessesMixin every test class is
combined with (self.Queue, self.Lock, ...), the multiprocessing package's own
names (tests that call multiprocessing.Queue() directly), and the
shared_memory module and multiprocessing.managers.SharedMemoryManager used by
_TestSharedMemory. The substitution happens at import, at the top level of
this file, so that a spawned child (which imports this file as __mp_main__)
runs it too before it unpickles the test's target.

Prints one line per test (PASS / FAIL / ERROR / SKIP, or EXCLUDED for the ids
listed one per line in the --exclude file, which are not run) and, with
--json, writes {test_id: outcome}. Each test is bounded by SIGALRM (shmkit's waits run
Python's signal handlers within 50 ms), so a hang is a failure, not a stall.
"""
import json
import os
import signal
import sys
import unittest

import multiprocessing
import multiprocessing.managers

import shmkit

try:
    import shmkit.shared_memory as _sk_shared_memory
except ImportError:  # before shmkit had the module: SharedMemory alone
    import types

    _sk_shared_memory = types.ModuleType("shmkit_shared_memory_shim")
    _sk_shared_memory.SharedMemory = shmkit.SharedMemory

try:
    import shmkit.managers as _sk_managers
except ImportError:
    _sk_managers = None

import test._test_multiprocessing as T

# The classes the suite swaps in; a name shmkit lacks stays unset, and its
# tests fail (that is what the count measures).
SWAPPED = ["Queue", "JoinableQueue", "SimpleQueue", "Lock", "RLock", "Semaphore", "BoundedSemaphore",
           "Condition", "Event", "Barrier", "Value", "Array", "RawValue", "RawArray"]


def _missing(name):
    def fn(*a, **k):
        raise NotImplementedError("shmkit has no %s" % name)
    return fn


class ShmkitMixin(T.ProcessesMixin):
    pass


for _n in SWAPPED:
    _obj = getattr(shmkit, _n, None) or _missing(_n)
    setattr(ShmkitMixin, _n, staticmethod(_obj))
    setattr(multiprocessing, _n, _obj)
T.shared_memory = _sk_shared_memory
if _sk_managers is not None:
    multiprocessing.managers.SharedMemoryManager = _sk_managers.SharedMemoryManager
else:
    multiprocessing.managers.SharedMemoryManager = _missing("SharedMemoryManager")

# The classes and tests under measure: the primitives, and the process tests
# that move data through queues.
CLASSES = ["_TestSharedMemory", "_TestValue", "_TestArray", "_TestLock", "_TestSemaphore", "_TestCondition",
           "_TestEvent", "_TestBarrier", "_TestQueue"]
PROCESS_TESTS = ["test_args_argument", "test_process", "test_process_mainthread_native_id", "test_close",
                 "test_lose_target_ref", "test_child_fd_inflation"]
PLAIN_CLASSES = ["TestSimpleQueue"]


def _make(name, base, mixin):
    cls = type("With" + name[1:] if name.startswith("_") else name, (base, mixin, unittest.TestCase), {})
    cls.__module__ = __name__
    globals()[cls.__name__] = cls  # picklable by reference (spawn pickles bound classmethods)
    return cls


def build_suite():
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for name in CLASSES:
        cls = _make(name, getattr(T, name), ShmkitMixin)
        suite.addTests(loader.loadTestsFromTestCase(cls))
    cls = _make("_TestProcess", T._TestProcess, ShmkitMixin)
    for t in PROCESS_TESTS:
        suite.addTest(cls(t))
    for name in PLAIN_CLASSES:
        cls = type(name, (getattr(T, name),), {})
        cls.__module__ = __name__
        globals()[name] = cls
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite


# Module-level so that spawned children find them under __mp_main__.
for _name in CLASSES + ["_TestProcess"]:
    _make(_name, getattr(T, _name), ShmkitMixin)
for _name in PLAIN_CLASSES:
    _c = type(_name, (getattr(T, _name),), {})
    _c.__module__ = __name__
    globals()[_name] = _c


class Result(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.outcomes = {}

    def _id(self, test):
        return test.id().split(".", 1)[-1]

    def addSuccess(self, test):
        self.outcomes.setdefault(self._id(test), "PASS")  # a failed subtest keeps FAIL

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.outcomes[self._id(test)] = "FAIL"
        self.detail(test, err)

    def addError(self, test, err):
        super().addError(test, err)
        self.outcomes[self._id(test)] = "ERROR"
        self.detail(test, err)

    def addSubTest(self, test, subtest, err):
        if err is not None:
            super().addSubTest(test, subtest, err)
            self.outcomes[self._id(test)] = "FAIL"
            self.detail(test, err)

    def addSkip(self, test, reason):
        self.outcomes[self._id(test)] = "SKIP"

    def addExpectedFailure(self, test, err):
        self.outcomes[self._id(test)] = "PASS"

    def addUnexpectedSuccess(self, test):
        self.outcomes[self._id(test)] = "PASS"

    def detail(self, test, err):
        if os.environ.get("SHMKIT_CONFORMANCE_VERBOSE"):
            import traceback
            sys.stderr.write("---- %s\n%s\n" % (self._id(test), "".join(traceback.format_exception(*err))[-3000:]))


def main():
    method = sys.argv[1]
    out = sys.argv[sys.argv.index("--json") + 1] if "--json" in sys.argv else None
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    excluded = set()
    if "--exclude" in sys.argv:
        with open(sys.argv[sys.argv.index("--exclude") + 1]) as f:
            excluded = {line.strip() for line in f if line.strip()}
    per_test = float(os.environ.get("SHMKIT_CONFORMANCE_TEST_TIMEOUT", "60"))
    multiprocessing.set_start_method(method, force=True)

    def alarm(signum, frame):
        raise TimeoutError("test took longer than %g s" % per_test)

    signal.signal(signal.SIGALRM, alarm)
    # Tests send SIGINT and expect KeyboardInterrupt: a runner started in the
    # background by a shell inherits SIGINT ignored, and Python keeps that.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    suite = build_suite()
    result = Result()
    for test in suite:
        tid = test.id().split(".", 1)[-1]
        if only and only not in tid:
            continue
        if tid in excluded:
            result.outcomes[tid] = "EXCLUDED"
            print("%-5s %s" % ("EXCLUDED", tid), flush=True)
            continue
        signal.setitimer(signal.ITIMER_REAL, per_test)
        try:
            test.run(result)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        print("%-5s %s" % (result.outcomes.get(tid, "ERROR"), tid), flush=True)
    for p in multiprocessing.active_children():
        p.kill()
        p.join()
    if out:
        with open(out, "w") as f:
            json.dump(result.outcomes, f, indent=1, sort_keys=True)
    n = len(result.outcomes)
    ok = sum(1 for v in result.outcomes.values() if v == "PASS")
    ex = sum(1 for v in result.outcomes.values() if v == "EXCLUDED")
    print("%s: %d passed, %d excluded, of %d" % (method, ok, ex, n))


if __name__ == "__main__":
    main()
