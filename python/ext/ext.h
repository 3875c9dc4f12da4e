/*
 * python/ext/ext.h: what the files of the shmkit._shmkit extension share.
 *
 * The extension calls only shmkit's public C API (shmkit.h). Every blocking
 * call goes through skpy_wait, which releases the GIL and waits in slices so
 * that Ctrl-C (or any signal whose Python handler raises) interrupts it.
 */
#ifndef SHMKIT_PY_EXT_H
#define SHMKIT_PY_EXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <sys/types.h>

#include <shmkit.h>

/* Exceptions of the module (set up by module.c). */
extern PyObject *skpy_Error;             /* shmkit.Error(OSError): corrupt, foreign, ... segments */
extern PyObject *skpy_OwnerDiedWarning;  /* a lock's previous holder died holding it */
extern PyObject *skpy_ShutDown;          /* the queue was shut down */
extern PyObject *skpy_Empty, *skpy_Full; /* queue.Empty, queue.Full */
extern PyObject *skpy_BrokenBarrier;     /* threading.BrokenBarrierError */

/* Raises the Python exception that matches a shmkit return code; returns NULL.
 * name (may be NULL) is the segment the call was about. */
PyObject *skpy_raise(int rc, const char *name);

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
 * time ran out). */
#define SKPY_EINTR (-999999)
typedef int (*skpy_wait_fn)(void *arg, int64_t slice_ns);
int skpy_wait(skpy_wait_fn fn, void *arg, int64_t deadline);

/* A name argument: None -> NULL, str -> its UTF-8. Returns 0 or -1 (exception set). */
int skpy_name_arg(PyObject *o, const char **out);

/* The creation flags for an `owned` argument. */
static inline uint32_t skpy_owned_flag(int owned)
{
	return owned ? SK_CREATE_OWNED : 0;
}

/* Objects made without a name get a generated one; the process that made
 * them removes that name when it closes them (other processes that attached
 * keep working). The helper does that for every kind. */
typedef struct skpy_life {
	pid_t creator; /* pid of the process that generated the name, 0 if none */
	char name[SK_NAME_MAX + 1];
	struct skpy_life *prev, *next; /* the live generated names (under the GIL) */
} skpy_life;
void skpy_life_init(skpy_life *l, int generated, const char *name);
void skpy_life_end(skpy_life *l);
/* At interpreter exit: removes the generated names this process still has. */
void skpy_life_atexit(void);

/* The objects that map a segment and can be closed (arrays, bits, raw
 * segments, values, queues) start like this: a lock object made from one can
 * tell that it was closed, and the lifecycle code below serves them all. */
typedef struct skpy_base {
	PyObject_HEAD int closed;
	int busy;       /* calls running with the GIL released: close() waits for none */
	PyObject *lock; /* the lock object made by get_lock(), which refers back to this */
	PyObject *weakrefs;
} skpy_base;

/* close() of an object that another thread is using (with the GIL released)
 * raises RuntimeError instead of unmapping memory under it. */
int skpy_refuse_busy(void *obj);
/* 0 when obj may be unmapped now; -1 with RuntimeError while this thread
 * holds its lock (unmapping would strand the lock) or other threads use it. */
int skpy_closable(void *obj);
/* tp_traverse and tp_clear of those objects (the object <-> lock cycle) and
 * the start of their tp_dealloc. */
int skpy_base_traverse(PyObject *obj, visitproc visit, void *arg);
int skpy_base_clear(PyObject *obj);
void skpy_base_teardown(void *obj);
/* unlink() of a named object: removes the name, and with it the duty to
 * remove it at close. ValueError for an object without a name of its own. */
PyObject *skpy_unlink_named(skpy_life *life);

/* The mutex object shared by Lock, RLock, Condition and the locks inside
 * values and arrays (sync.c). */
typedef struct MutexObject MutexObject;
extern PyTypeObject Mutex_Type;
/* Wraps a mutex that lives inside parent's segment (parent is kept alive). */
PyObject *skpy_mutex_embedded(sk_mutex *m, PyObject *parent, int recursive);
/* 1 if the calling thread of this process holds it through this object. */
int skpy_mutex_is_owned(MutexObject *mo);
sk_mutex *skpy_mutex_ptr(MutexObject *mo);
/* The recursion count, for Condition.wait: it saves and restores it around the wait. */
long skpy_mutex_save(MutexObject *mo);
void skpy_mutex_restore(MutexObject *mo, long count);

/* Readies a type and adds it to the module under name. 0 or -1. */
int skpy_add_type(PyObject *module, PyTypeObject *t, const char *name);

int skpy_sync_init(PyObject *module);
int skpy_queue_init(PyObject *module);

#endif
