/*
 * python/ext/base.h: the infrastructure of the shmkit._shmkit extension.
 *
 * Layering (each file uses only the ones above it in this list, the way
 * src/ is layered; nothing calls upwards, and no two files call each other):
 *
 *   base.c    errors, deadlines and GIL-free waits, argument converters
 *             (names, 64-bit sizes), dtypes, generated-name lifetimes and the
 *             common object base (skpy_base: close/busy/held/lock/weakrefs).
 *             Calls only shmkit's public C API and CPython.
 *   sync.c    Lock, RLock, Semaphore, BoundedSemaphore, Event, Barrier,
 *             Condition (sync.h: the embedded-lock constructor for the files
 *             below).
 *   data.c    Segment, SharedArray and the segment-level functions (stat,
 *             unlink, gc, list, open_data); data.h has what the objects that
 *             export a segment's data share; uses sync.h for the lock of a
 *             locked array.
 *   bits.c    Bits (the library's bit arrays); uses data.h.
 *   value.c   SharedValue; uses sync.h for its lock.
 *   queue.c   Queue; uses base only.
 *   module.c  registers the module: calls each file's init, nothing else.
 *
 * The extension calls only shmkit's public C API (shmkit.h). Every blocking
 * call goes through skpy_wait, which releases the GIL and waits in slices so
 * that Ctrl-C (or any signal whose Python handler raises) interrupts it.
 */
#ifndef SHMKIT_PY_BASE_H
#define SHMKIT_PY_BASE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <sys/types.h>

#include <shmkit.h>

/* Exceptions of the module (made by skpy_base_init). */
extern PyObject *skpy_Error;             /* shmkit.Error(OSError): corrupt, foreign, ... segments */
extern PyObject *skpy_OwnerDiedWarning;  /* a lock's previous holder died holding it */
extern PyObject *skpy_ShutDown;          /* the queue was shut down */
extern PyObject *skpy_Empty, *skpy_Full; /* queue.Empty, queue.Full */
extern PyObject *skpy_BrokenBarrier;     /* threading.BrokenBarrierError */

/* Raises the Python exception that matches a shmkit return code; returns NULL.
 * name (may be NULL) is the segment the call was about. */
PyObject *skpy_raise(int rc, const char *name);

/* This process's pid, cached (refreshed in a forked child): getpid() is a
 * system call, and locks ask for it on every operation. */
extern pid_t skpy_pid;

/* The block/timeout pair of multiprocessing: not block -> 0 (do not wait);
 * timeout None -> -1 (forever); seconds otherwise (negative counts as 0).
 * Returns a deadline on CLOCK_MONOTONIC in ns (-1: none, 0: do not wait), or
 * -2 with an exception set. */
int64_t skpy_deadline(int block, PyObject *timeout);
int64_t skpy_now_ns(void);

/* Runs fn(arg, slice_ns) with the GIL released until it returns something
 * other than -ETIMEDOUT / -EAGAIN / -EBUSY or the deadline passes (deadline
 * -1: never; 0: one call with a zero slice). Between slices it takes the GIL
 * and runs pending signal handlers: if one raises, returns SKPY_EINTR with
 * the exception set. Otherwise returns fn's last code (-ETIMEDOUT when the
 * time ran out). obj (a skpy_base object, or NULL) counts as busy meanwhile,
 * so that close() in another thread refuses instead of unmapping. */
#define SKPY_EINTR (-999999)

/* A method on a hot path (Lock.acquire/release) starts on a cache line, so
 * that its speed does not depend on where the linker happens to put it. */
#define SKPY_HOT_ENTRY __attribute__((aligned(64)))
typedef int (*skpy_wait_fn)(void *arg, int64_t slice_ns);
int skpy_wait(void *obj, skpy_wait_fn fn, void *arg, int64_t deadline);

/* Argument converters (for "O&"): a segment name (None -> NULL; a str with
 * no NUL character inside, else ValueError) and an unsigned 64-bit count
 * (OverflowError at 2**64 and beyond, and for negatives; never wraps). */
int skpy_name_arg(PyObject *o, const char **out);
int skpy_name_conv(PyObject *o, void *out);    /* None allowed */
int skpy_strname_conv(PyObject *o, void *out); /* a str required */
int skpy_u64_conv(PyObject *o, void *out);     /* uint64_t */

/* The creation flags for an `owned` argument. */
static inline uint32_t skpy_owned_flag(int owned)
{
	return owned ? SK_CREATE_OWNED : 0;
}

/* Objects made without a name get a generated one; the process that made
 * them removes that name when it closes them (other processes that attached
 * keep working). The helper does that for every kind. */
typedef struct skpy_life {
	pid_t creator; /* the process that removes name when the object goes (generated or handed-over names), 0 if none
			*/
	char name[SK_NAME_MAX + 1];    /* the name the object attached by */
	char shown[SK_NAME_MAX + 1];   /* the name users see, when name is a hand-over name standing for it */
	struct skpy_life *prev, *next; /* the live generated names (under the GIL) */
} skpy_life;
void skpy_life_init(skpy_life *l, int generated, const char *name);
void skpy_life_end(skpy_life *l);
/* The name users see (the segment's, also for an object attached by a
 * hand-over name). */
const char *skpy_life_shown(const skpy_life *l);

/* Handing a segment to another process (pickling): a name of its own for
 * the receiver, a hard link to seg's file (sk_segment_link), so that the
 * sender may drop the segment meanwhile. A str, or NULL with an exception.
 * The receiver attaches by it and adopts it (skpy_life_adopt), which removes
 * that name at once: from then on its mapping holds the segment. */
PyObject *skpy_handoff(const sk_segment *seg, const skpy_life *l);
void skpy_life_adopt(skpy_life *l, const char *shown);
/* Whether two handles map one segment (its header records who made it and
 * when, to the nanosecond). */
int skpy_same_segment(const sk_segment *a, const sk_segment *b);
/* _handoff() and _adopt(shown) methods of an object with a skpy_life. */
PyObject *skpy_handoff_method(const sk_segment *seg, skpy_life *l);
PyObject *skpy_adopt_method(skpy_life *l, PyObject *shown);
/* Every segment this process creates is registered: at its normal exit (and
 * Ctrl-C) the owned ones go at once, not at the next sweep. forget: its name
 * was removed already. */
void skpy_exit_register(const char *name);
void skpy_exit_forget(const char *name);

/* Every object of the module starts like this. A lock object made from one
 * (get_lock) can tell that it was closed, and the lifecycle code below serves
 * them all. */
#define SKPY_BASE_FIELDS                                                                      \
	PyObject_HEAD int closed;                                                             \
	int busy;           /* calls running with the GIL released: close() waits for none */ \
	int held;           /* holds of its embedded lock by threads of this process */       \
	PyObject *lock;     /* the lock object made by get_lock(), which refers back here */  \
	PyObject *weakrefs; /* for weakref.finalize and friends */                            \
	skpy_life life      /* name, and whether this process removes it at close */

typedef struct skpy_base {
	SKPY_BASE_FIELDS;
} skpy_base;

/* Runs stmt with the GIL released while obj counts as busy (the one way a
 * bulk operation runs: close and freeze refuse meanwhile). */
#define SKPY_RELEASED(obj, stmt)                         \
	do {                                             \
		skpy_base *skpy_b_ = (skpy_base *)(obj); \
		skpy_b_->busy++;                         \
		Py_BEGIN_ALLOW_THREADS                   \
		stmt;                                    \
		Py_END_ALLOW_THREADS                     \
		skpy_b_->busy--;                         \
	} while (0)

/* 0 when obj may be unmapped (closed, frozen) now; -1 with RuntimeError while
 * a thread of this process holds its lock (unmapping would strand the lock)
 * or other threads are inside it with the GIL released. what names the
 * operation ("close", "freeze"). */
int skpy_closable(void *obj, const char *what);
/* ValueError "operation on a closed ..." when obj is closed. */
int skpy_usable(void *obj);
/* tp_traverse and tp_clear of those objects (the object <-> lock cycle) and
 * the start of their tp_dealloc. */
int skpy_base_traverse(PyObject *obj, visitproc visit, void *arg);
int skpy_base_clear(PyObject *obj);
void skpy_base_teardown(void *obj);
/* unlink() of a named object: removes the name, and with it the duty to
 * remove it at close. ValueError for an object without a name of its own. */
PyObject *skpy_unlink_named(skpy_life *life);
/* A callable of the shmkit package or module, for __reduce__: new reference. */
PyObject *skpy_attr(const char *module, const char *name);

/* ---- dtypes ---- */
const char *skpy_dtype_format(sk_dtype d); /* struct/buffer format character */
PyObject *skpy_dtype_object(sk_dtype d);   /* numpy.dtype, or its name without NumPy */
int skpy_dtype_arg(const char *name, sk_dtype *out);
int skpy_elem_from_py(sk_dtype d, PyObject *o, void *out); /* OverflowError when it does not fit */
PyObject *skpy_elem_to_py(sk_dtype d, const void *p);
PyObject *skpy_numpy(void); /* the numpy module (borrowed), or NULL with ImportError */

/* A segment's header as a dict (stat(), info()). */
PyObject *skpy_info_dict(const sk_segment_info *in);

/* Readies a type and adds it to the module under name. 0 or -1. */
int skpy_add_type(PyObject *module, PyTypeObject *t, const char *name);

/* The inits, in layer order (module.c calls them). 0 or -1. */
int skpy_base_init(PyObject *module);
int skpy_sync_init(PyObject *module);
int skpy_data_init(PyObject *module);
int skpy_value_init(PyObject *module);
int skpy_queue_init(PyObject *module);

#endif
