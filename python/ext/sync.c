/*
 * python/ext/sync.c: Lock, RLock, Semaphore, BoundedSemaphore, Barrier,
 * Event and Condition over shmkit's process-shared primitives, with the
 * signatures of multiprocessing.
 *
 * Each object made with no name gets a generated one (so spawned processes
 * can attach to it when it is pickled) and is SK_CREATE_OWNED; the creating
 * process removes that name when the object is garbage collected.
 *
 * Layer: above base.c only (base.h has the layering); data.c and value.c
 * use the embedded-lock constructor of sync.h.
 *
 * Owner death: when the holder of a Lock or RLock dies holding it, the next
 * acquire() succeeds, marks the lock consistent, sets .owner_died to True
 * (until the next acquire) and issues shmkit.OwnerDiedWarning. If warnings
 * are turned into errors, the lock is released again and the error raised.
 */
#include "sync.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

/* ---- Lock and RLock ---- */

typedef struct MutexObject {
	SKPY_BASE_FIELDS;
	sk_segment *seg;  /* named locks: their own segment */
	sk_mutex *m;      /* the lock itself */
	PyObject *parent; /* embedded locks: the object whose segment holds it */
	int recursive;
	long count;     /* holds by that thread (RLock), 0 when not held here */
	int owner_died; /* the last acquire recovered the lock from a dead holder */
} MutexObject;

static PyTypeObject Mutex_Type;

static PyTypeObject RLock_Type;

static int mutex_usable(MutexObject *mo)
{
	if (mo->closed || (mo->parent && ((skpy_base *)mo->parent)->closed)) {
		PyErr_SetString(PyExc_ValueError, "the lock's segment was closed");
		return -1;
	}
	return 0;
}

static int mutex_is_owned(MutexObject *mo)
{
	/* The library knows the holder thread (a forked child is not it). */
	return mo->count > 0 && sk_mutex_held_by_me(mo->m) == 1;
}

int skpy_is_mutex(PyObject *o)
{
	return PyObject_TypeCheck(o, &Mutex_Type);
}

int skpy_mutex_held_here(PyObject *lock)
{
	return mutex_is_owned((MutexObject *)lock);
}

/* The lock became held (held 1) or free (held 0) by a thread of this process:
 * an embedded lock's parent counts it, and refuses close meanwhile. */
static void mutex_note(MutexObject *mo, int held)
{
	if (mo->parent)
		((skpy_base *)mo->parent)->held += held ? 1 : -1;
}

/* For Condition.wait: the recursion count is set aside around the wait. */
static long mutex_save(MutexObject *mo)
{
	long c = mo->count;
	mo->count = 0;
	mutex_note(mo, 0);
	return c;
}

static void mutex_restore(MutexObject *mo, long count)
{
	mo->count = count;
	mutex_note(mo, 1);
}

static int lock_fn(void *arg, int64_t slice)
{
	return sk_mutex_lock((sk_mutex *)arg, slice);
}

/* After an acquisition that returned SK_EOWNERDEAD: make it usable, tell.
 * Returns 0, or -1 with the lock released and the warning's error set. */
static int mutex_recovered(MutexObject *mo)
{
	sk_mutex_consistent(mo->m);
	mo->owner_died = 1;
	if (PyErr_WarnFormat(skpy_OwnerDiedWarning, 1,
			     "the previous holder of lock %s died holding it; acquired, but the data it protects may "
			     "be half updated",
			     mo->life.name[0] ? mo->life.name : "(embedded)") < 0) {
		mo->count = 0;
		mutex_note(mo, 0);
		sk_mutex_unlock(mo->m);
		return -1;
	}
	return 0;
}

/* acquire(block=True, timeout=None), also blocking= as threading spells it,
 * parsed by hand from a vectorcall: the common acquire() with no arguments
 * costs nothing here. */
static int parse_acquire(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, int *block, PyObject **timeout)
{
	*block = 1;
	*timeout = Py_None;
	if (nargs > 2) {
		PyErr_Format(PyExc_TypeError, "acquire() takes at most 2 arguments (%zd given)", nargs);
		return -1;
	}
	PyObject *b = nargs > 0 ? args[0] : NULL;
	if (nargs > 1)
		*timeout = args[1];
	Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
	for (Py_ssize_t i = 0; i < nkw; i++) {
		PyObject *k = PyTuple_GET_ITEM(kwnames, i), *v = args[nargs + i];
		if (PyUnicode_CompareWithASCIIString(k, "timeout") == 0 && nargs < 2) {
			*timeout = v;
		} else if ((PyUnicode_CompareWithASCIIString(k, "block") == 0 && nargs < 1) ||
			   PyUnicode_CompareWithASCIIString(k, "blocking") == 0) {
			b = v;
		} else {
			PyErr_Format(PyExc_TypeError, "acquire() got an unexpected or repeated keyword argument '%U'",
				     k);
			return -1;
		}
	}
	if (b) {
		int t = PyObject_IsTrue(b);
		if (t < 0)
			return -1;
		*block = t;
	}
	return 0;
}

/* Acquires: 1 acquired, 0 timed out, -1 error. */
static int mutex_acquire_impl(MutexObject *mo, int block, PyObject *timeout)
{
	if (mutex_usable(mo))
		return -1;
	if (mutex_is_owned(mo)) {
		if (mo->recursive) {
			mo->count++;
			return 1;
		}
		if (!block)
			return 0;
		PyErr_SetString(PyExc_RuntimeError, "this thread already holds the lock: acquiring it again would "
						    "deadlock (use RLock for recursive locking)");
		return -1;
	}
	int64_t deadline = skpy_deadline(block, timeout);
	if (deadline == -2)
		return -1;
	int rc = sk_mutex_trylock(mo->m);
	if (rc == -EBUSY && deadline != 0)
		rc = skpy_wait(mo->parent ? mo->parent : (PyObject *)mo, lock_fn, mo->m, deadline);
	if (rc == -EBUSY || rc == -ETIMEDOUT)
		return 0;
	if (rc == -EDEADLK) {
		PyErr_SetString(PyExc_RuntimeError,
				"this thread holds the lock through another handle: acquiring it again would deadlock");
		return -1;
	}
	if (rc != 0 && rc != SK_EOWNERDEAD) {
		skpy_raise(rc, mo->life.name[0] ? mo->life.name : NULL);
		return -1;
	}
	mo->count = 1;
	mo->owner_died = 0;
	mutex_note(mo, 1);
	if (rc == SK_EOWNERDEAD && mutex_recovered(mo))
		return -1;
	return 1;
}

/* The uncontended acquire() of a lock not held by this handle, in line: 1
 * acquired, 0 not (the general path then waits or reports), -1 error set
 * (a dead holder's lock taken over, with OwnerDiedWarning made an error). */
static inline int mutex_fast_acquire(MutexObject *mo)
{
	if (mo->count || mo->closed || (mo->parent && ((skpy_base *)mo->parent)->closed))
		return 0;
	int rc = sk_mutex_trylock(mo->m);
	if (rc != 0 && rc != SK_EOWNERDEAD)
		return 0;
	mo->count = 1;
	mo->owner_died = 0;
	mutex_note(mo, 1);
	return rc == SK_EOWNERDEAD && mutex_recovered(mo) ? -1 : 1;
}

SKPY_HOT_ENTRY static PyObject *mutex_acquire(MutexObject *mo, PyObject *const *args, Py_ssize_t nargs,
					      PyObject *kwnames)
{
	int block;
	PyObject *timeout;
	if (!nargs && !kwnames) {
		int f = mutex_fast_acquire(mo);
		if (f)
			return f < 0 ? NULL : Py_NewRef(Py_True);
	}
	if (parse_acquire(args, nargs, kwnames, &block, &timeout))
		return NULL;
	int r = mutex_acquire_impl(mo, block, timeout);
	if (r < 0)
		return NULL;
	return Py_NewRef(r ? Py_True : Py_False);
}

SKPY_HOT_ENTRY static PyObject *mutex_release(MutexObject *mo, PyObject *unused)
{
	(void)unused;
	/* The common case first: the only hold of a usable lock, which the
	 * library releases only for the thread whose hold it is (-EPERM for
	 * any other thread or process: the general path below says why). */
	if (mo->count == 1 && !mo->closed && !(mo->parent && ((skpy_base *)mo->parent)->closed)) {
		int rc = sk_mutex_unlock(mo->m);
		if (rc != -EPERM) {
			mo->count = 0;
			mutex_note(mo, 0);
			if (rc)
				return skpy_raise(rc, mo->life.name[0] ? mo->life.name : NULL);
			Py_RETURN_NONE;
		}
	}
	if (mutex_usable(mo))
		return NULL;
	if (!mutex_is_owned(mo)) {
		sk_lock_state st;
		if (sk_mutex_state(mo->m, &st) == 0 && st.held) {
			PyErr_SetString(PyExc_RuntimeError,
					"cannot release a lock held by another thread or process (shmkit locks are "
					"released by their holder)");
			return NULL;
		}
		if (mo->recursive) /* as threading.RLock and multiprocessing.RLock */
			PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
		else
			PyErr_SetString(PyExc_ValueError, "lock released too many times");
		return NULL;
	}
	if (--mo->count > 0)
		Py_RETURN_NONE;
	mutex_note(mo, 0);
	int rc = sk_mutex_unlock(mo->m);
	if (rc)
		return skpy_raise(rc, mo->life.name[0] ? mo->life.name : NULL);
	Py_RETURN_NONE;
}

SKPY_HOT_ENTRY static PyObject *mutex_enter(MutexObject *mo, PyObject *unused)
{
	(void)unused;
	int f = mutex_fast_acquire(mo);
	if (f)
		return f < 0 ? NULL : Py_NewRef(Py_True);
	int r = mutex_acquire_impl(mo, 1, Py_None);
	return r < 0 ? NULL : PyBool_FromLong(r);
}

SKPY_HOT_ENTRY static PyObject *mutex_exit(MutexObject *mo, PyObject *const *args, Py_ssize_t nargs)
{
	(void)args;
	(void)nargs;
	return mutex_release(mo, NULL);
}

static PyObject *mutex_py_is_owned(MutexObject *mo, PyObject *unused)
{
	(void)unused;
	return PyBool_FromLong(mutex_is_owned(mo));
}

static PyObject *state_dict(const sk_lock_state *st)
{
	return Py_BuildValue("{s:O,s:i,s:O,s:i,s:i,s:O,s:L,s:L}", "held", st->held ? Py_True : Py_False, "owner_pid",
			     (int)st->owner_pid, "owner_alive", st->owner_alive ? Py_True : Py_False, "readers",
			     st->readers, "waiters", st->waiters, "recoverable", st->recoverable ? Py_True : Py_False,
			     "value", (long long)st->value, "limit", (long long)st->limit);
}

static PyObject *mutex_locked(MutexObject *mo, PyObject *unused)
{
	(void)unused;
	if (mutex_usable(mo))
		return NULL;
	sk_lock_state st;
	int rc = sk_mutex_state(mo->m, &st);
	if (rc)
		return skpy_raise(rc, NULL);
	return PyBool_FromLong(st.held);
}

static PyObject *mutex_state(MutexObject *mo, PyObject *unused)
{
	(void)unused;
	if (mutex_usable(mo))
		return NULL;
	sk_lock_state st;
	int rc = sk_mutex_state(mo->m, &st);
	if (rc)
		return skpy_raise(rc, NULL);
	return state_dict(&st);
}

static MutexObject *mutex_alloc(PyTypeObject *type, int recursive)
{
	MutexObject *mo = (MutexObject *)type->tp_alloc(type, 0);
	if (mo)
		mo->recursive = recursive;
	return mo;
}

PyObject *skpy_mutex_embedded(sk_mutex *m, PyObject *parent, int recursive)
{
	MutexObject *mo = mutex_alloc(recursive ? &RLock_Type : &Mutex_Type, recursive);
	if (!mo)
		return NULL;
	mo->m = m;
	Py_INCREF(parent);
	mo->parent = parent;
	return (PyObject *)mo;
}

static PyObject *mutex_tp_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "owned", NULL };
	PyObject *name_o = Py_None;
	int owned = 1;
	const char *name;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|$Op", kwlist, &name_o, &owned) || skpy_name_arg(name_o, &name))
		return NULL;
	MutexObject *mo = mutex_alloc(type, PyType_IsSubtype(type, &RLock_Type));
	if (!mo)
		return NULL;
	sk_create_opts o = { .flags = skpy_owned_flag(owned || !name) };
	int rc = sk_mutex_create(name, &o, &mo->seg, &mo->m);
	if (rc) {
		Py_DECREF(mo);
		return skpy_raise(rc, name);
	}
	skpy_life_init(&mo->life, name == NULL, sk_segment_name(mo->seg));
	skpy_exit_register(mo->life.name);
	return (PyObject *)mo;
}

static PyObject *mutex_open(PyObject *cls, PyObject *args)
{
	const char *name;
	if (!PyArg_ParseTuple(args, "s", &name))
		return NULL;
	PyTypeObject *type = (PyTypeObject *)cls;
	MutexObject *mo = mutex_alloc(type, PyType_IsSubtype(type, &RLock_Type));
	if (!mo)
		return NULL;
	int rc = sk_mutex_open(name, &mo->seg, &mo->m);
	if (rc) {
		Py_DECREF(mo);
		return skpy_raise(rc, name);
	}
	skpy_life_init(&mo->life, 0, name);
	return (PyObject *)mo;
}

static int mutex_traverse(MutexObject *mo, visitproc visit, void *arg)
{
	Py_VISIT(mo->parent);
	return 0;
}

static void mutex_dealloc(MutexObject *mo)
{
	PyObject_GC_UnTrack(mo);
	if (mo->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)mo);
	/* A lock this thread still holds is released: unmapping a held lock
	 * would leave it held for good (the kernel could not mark it). */
	if (!mo->closed && mutex_is_owned(mo) && !(mo->parent && ((skpy_base *)mo->parent)->closed)) {
		mutex_note(mo, 0);
		sk_mutex_unlock(mo->m);
	}
	if (mo->seg && !mo->closed)
		sk_segment_close(mo->seg);
	skpy_life_end(&mo->life);
	Py_CLEAR(mo->parent);
	Py_TYPE(mo)->tp_free((PyObject *)mo);
}

/* close(): this handle lets go (a named lock's segment is unmapped); the
 * lock lives on for the others. RuntimeError while a thread holds it through
 * this handle or waits in it (unmapping would strand it). */
static PyObject *mutex_close(MutexObject *mo, PyObject *unused)
{
	(void)unused;
	if (mo->closed)
		Py_RETURN_NONE;
	if (mo->count > 0) {
		PyErr_SetString(PyExc_RuntimeError, "cannot close while a thread holds the lock");
		return NULL;
	}
	if (skpy_closable(mo, "close"))
		return NULL;
	mo->closed = 1;
	if (mo->seg)
		sk_segment_close(mo->seg);
	mo->seg = NULL;
	skpy_life_end(&mo->life);
	Py_RETURN_NONE;
}

static PyObject *mutex_unlink(MutexObject *mo, PyObject *unused)
{
	(void)unused;
	return skpy_unlink_named(&mo->life);
}

/* Pickled by name (spawn, queues); an embedded lock through its parent. */
static PyObject *mutex_reduce(MutexObject *mo, PyObject *unused)
{
	(void)unused;
	if (mo->parent) {
		PyObject *getter = PyObject_GetAttrString(mo->parent, "get_lock");
		return getter ? Py_BuildValue("N()", getter) : NULL;
	}
	PyObject *open = PyObject_GetAttrString((PyObject *)Py_TYPE(mo), "open");
	return open ? Py_BuildValue("N(s)", open, mo->life.name) : NULL;
}

static PyObject *mutex_repr(MutexObject *mo)
{
	return PyUnicode_FromFormat("<shmkit.%s %s%s>", mo->recursive ? "RLock" : "Lock",
				    mo->life.name[0] ? mo->life.name : "(embedded)",
				    mutex_is_owned(mo) ? " held by this thread" : "");
}

static PyObject *mutex_get_name(MutexObject *mo, void *c)
{
	(void)c;
	return PyUnicode_FromString(mo->life.name);
}
static PyObject *mutex_get_owner_died(MutexObject *mo, void *c)
{
	(void)c;
	return PyBool_FromLong(mo->owner_died);
}

static PyMethodDef mutex_methods[] = {
	{ "acquire", (PyCFunction)(void (*)(void))mutex_acquire, METH_FASTCALL | METH_KEYWORDS,
	  "acquire($self, /, block=True, timeout=None, *, blocking=True)\n--\n\n"
	  "acquire(block=True, timeout=None) -> bool. Succeeds also when the holder died (see owner_died)." },
	{ "release", (PyCFunction)mutex_release, METH_NOARGS,
	  "release($self, /)\n--\n\n"
	  "Release (by the holding thread only)." },
	{ "locked", (PyCFunction)mutex_locked, METH_NOARGS,
	  "locked($self, /)\n--\n\n"
	  "True if some thread of some process holds it." },
	{ "state", (PyCFunction)mutex_state, METH_NOARGS,
	  "state($self, /)\n--\n\n"
	  "held, owner_pid, owner_alive, waiters, ... as a dict." },
	{ "_is_owned", (PyCFunction)mutex_py_is_owned, METH_NOARGS,
	  "_is_owned($self, /)\n--\n\n"
	  "True if the calling thread holds it." },
	{ "unlink", (PyCFunction)mutex_unlink, METH_NOARGS,
	  "unlink($self, /)\n--\n\n"
	  "Remove the lock's name." },
	{ "close", (PyCFunction)mutex_close, METH_NOARGS,
	  "close($self, /)\n--\n\n"
	  "This handle lets go of the lock (it lives on for the others). RuntimeError while held through it." },
	{ "open", (PyCFunction)mutex_open, METH_VARARGS | METH_CLASS,
	  "open($type, name, /)\n--\n\n"
	  "open(name): attach to a named lock." },
	{ "__enter__", (PyCFunction)mutex_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)(void (*)(void))mutex_exit, METH_FASTCALL, NULL },
	{ "__reduce__", (PyCFunction)mutex_reduce, METH_NOARGS, NULL },
	{ 0 }
};
static PyGetSetDef mutex_getset[] = {
	{ "name", (getter)mutex_get_name, NULL, "segment name ('' for a lock inside a value or array)", NULL },
	{ "owner_died", (getter)mutex_get_owner_died, NULL,
	  "True if the last acquire() through this object took the lock over from a holder that died", NULL },
	{ 0 }
};

static PyTypeObject Mutex_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit.Lock",
	.tp_basicsize = sizeof(MutexObject),
	.tp_dealloc = (destructor)mutex_dealloc,
	.tp_repr = (reprfunc)mutex_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_traverse = (traverseproc)mutex_traverse,
	.tp_doc = "Lock(*, name=None, owned=True)\n--\n\nA process-shared lock that survives its holder's death.",
	.tp_weaklistoffset = offsetof(MutexObject, weakrefs),
	.tp_methods = mutex_methods,
	.tp_getset = mutex_getset,
	.tp_new = mutex_tp_new,
};

static PyTypeObject RLock_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit.RLock",
	.tp_basicsize = sizeof(MutexObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_traverse = (traverseproc)mutex_traverse,
	.tp_doc = "RLock(*, name=None, owned=True)\n--\n\nA recursive Lock.",
	.tp_base = &Mutex_Type,
	.tp_new = mutex_tp_new,
};

/* ---- Semaphore, BoundedSemaphore, Event, Barrier, Condition ---- */

typedef struct {
	SKPY_BASE_FIELDS;
	sk_segment *seg;
	void *p;
	unsigned max;           /* BoundedSemaphore: the bound */
	unsigned parties;       /* Barrier */
	PyObject *action;       /* Barrier */
	PyObject *timeout;      /* Barrier: default timeout */
	MutexObject *cond_lock; /* Condition */
} SyncObject;

static PyTypeObject Semaphore_Type, BoundedSemaphore_Type, Event_Type, Barrier_Type, Condition_Type;

static void sync_dealloc(SyncObject *s)
{
	if (s->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)s);
	if (s->seg)
		sk_segment_close(s->seg);
	skpy_life_end(&s->life);
	Py_CLEAR(s->action);
	Py_CLEAR(s->timeout);
	Py_CLEAR(s->cond_lock);
	Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyObject *sync_unlink(SyncObject *s, PyObject *unused)
{
	(void)unused;
	return skpy_unlink_named(&s->life);
}

static PyObject *sync_get_name(SyncObject *s, void *c)
{
	(void)c;
	return PyUnicode_FromString(s->life.name);
}

static PyObject *sync_finish(SyncObject *s, int rc, const char *name, int generated)
{
	if (rc) {
		Py_DECREF(s);
		return skpy_raise(rc, name);
	}
	skpy_life_init(&s->life, generated, sk_segment_name(s->seg));
	skpy_exit_register(s->life.name); /* opens too: at exit only what this process created goes */
	return (PyObject *)s;
}

/* Semaphore */

static PyObject *sem_tp_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "value", "name", "owned", NULL };
	long long value = 1;
	PyObject *name_o = Py_None;
	int owned = 1;
	const char *name;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|L$Op", kwlist, &value, &name_o, &owned) ||
	    skpy_name_arg(name_o, &name))
		return NULL;
	if (value < 0 || value > 0x7fffffff)
		return PyErr_Format(PyExc_ValueError, "semaphore initial value must be in 0..2**31-1, not %lld", value);
	SyncObject *s = (SyncObject *)type->tp_alloc(type, 0);
	if (!s)
		return NULL;
	s->max = PyType_IsSubtype(type, &BoundedSemaphore_Type) ? (unsigned)value : 0;
	sk_create_opts o = { .flags = skpy_owned_flag(owned || !name) };
	int rc = sk_sem_create(name, (uint32_t)value, s->max, &o, &s->seg, (sk_sem **)&s->p);
	return sync_finish(s, rc, name, name == NULL);
}

static PyObject *sync_open(PyObject *cls, PyObject *args)
{
	const char *name;
	if (!PyArg_ParseTuple(args, "s", &name))
		return NULL;
	PyTypeObject *type = (PyTypeObject *)cls;
	SyncObject *s = (SyncObject *)type->tp_alloc(type, 0);
	if (!s)
		return NULL;
	int rc;
	if (PyType_IsSubtype(type, &Semaphore_Type)) {
		rc = sk_sem_open(name, &s->seg, (sk_sem **)&s->p);
		sk_lock_state st;
		if (!rc && sk_sem_state(s->p, &st) == 0)
			s->max = (unsigned)st.limit;
	} else if (PyType_IsSubtype(type, &Event_Type)) {
		rc = sk_event_open(name, &s->seg, (sk_event **)&s->p);
	} else {
		rc = sk_barrier_open(name, &s->seg, (sk_barrier **)&s->p);
		sk_lock_state st;
		if (!rc && sk_barrier_state(s->p, &st) == 0)
			s->parties = (unsigned)st.limit;
	}
	return sync_finish(s, rc, name, 0);
}

static int sem_fn(void *arg, int64_t slice)
{
	return sk_sem_wait((sk_sem *)arg, slice);
}

static PyObject *sem_acquire_impl(SyncObject *s, int block, PyObject *timeout)
{
	int64_t deadline = skpy_deadline(block, timeout);
	if (deadline == -2)
		return NULL;
	int rc = sk_sem_wait(s->p, 0);
	if (rc == -EAGAIN && deadline != 0)
		rc = skpy_wait(s, sem_fn, s->p, deadline);
	if (rc == -EAGAIN || rc == -ETIMEDOUT)
		Py_RETURN_FALSE;
	if (rc)
		return skpy_raise(rc, s->life.name);
	Py_RETURN_TRUE;
}

static PyObject *sem_acquire(SyncObject *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	int block;
	PyObject *timeout;
	if (parse_acquire(args, nargs, kwnames, &block, &timeout))
		return NULL;
	return sem_acquire_impl(s, block, timeout);
}

static PyObject *sem_release(SyncObject *s, PyObject *args)
{
	int n = 1;
	if (!PyArg_ParseTuple(args, "|i", &n))
		return NULL;
	for (int i = 0; i < n; i++) {
		int rc = sk_sem_post(s->p);
		if (rc == -EOVERFLOW) {
			PyErr_SetString(PyExc_ValueError, "semaphore or lock released too many times");
			return NULL;
		}
		if (rc)
			return skpy_raise(rc, s->life.name);
	}
	Py_RETURN_NONE;
}

static PyObject *sem_get_value(SyncObject *s, PyObject *unused)
{
	(void)unused;
	int v = sk_sem_value(s->p);
	if (v < 0)
		return skpy_raise(v, s->life.name);
	return PyLong_FromLong(v);
}

static PyObject *sem_enter(SyncObject *s, PyObject *unused)
{
	(void)unused;
	return sem_acquire_impl(s, 1, Py_None);
}

static PyObject *sem_exit(SyncObject *s, PyObject *const *args, Py_ssize_t nargs)
{
	(void)args;
	(void)nargs;
	int rc = sk_sem_post(s->p);
	if (rc)
		return skpy_raise(rc, s->life.name);
	Py_RETURN_NONE;
}

static PyObject *sync_reduce(SyncObject *s, PyObject *unused)
{
	(void)unused;
	PyObject *open = PyObject_GetAttrString((PyObject *)Py_TYPE(s), "open");
	return open ? Py_BuildValue("N(s)", open, s->life.name) : NULL;
}

static PyObject *sem_repr(SyncObject *s)
{
	return PyUnicode_FromFormat("<shmkit.%s %s value=%d>", s->max ? "BoundedSemaphore" : "Semaphore", s->life.name,
				    sk_sem_value(s->p));
}

static PyMethodDef sem_methods[] = { { "acquire", (PyCFunction)(void (*)(void))sem_acquire,
				       METH_FASTCALL | METH_KEYWORDS,
				       "acquire($self, /, block=True, timeout=None, *, blocking=True)\n--\n\n"
				       "acquire(block=True, timeout=None) -> bool" },
				     { "release", (PyCFunction)sem_release, METH_VARARGS,
				       "release($self, n=1, /)\n--\n\n"
				       "release(n=1). ValueError past a BoundedSemaphore's bound." },
				     { "get_value", (PyCFunction)sem_get_value, METH_NOARGS,
				       "get_value($self, /)\n--\n\n"
				       "The count." },
				     { "unlink", (PyCFunction)sync_unlink, METH_NOARGS,
				       "unlink($self, /)\n--\n\n"
				       "Remove the name." },
				     { "open", (PyCFunction)sync_open, METH_VARARGS | METH_CLASS,
				       "open($type, name, /)\n--\n\n"
				       "open(name): attach to a named semaphore." },
				     { "__enter__", (PyCFunction)sem_enter, METH_NOARGS, NULL },
				     { "__exit__", (PyCFunction)(void (*)(void))sem_exit, METH_FASTCALL, NULL },
				     { "__reduce__", (PyCFunction)sync_reduce, METH_NOARGS, NULL },
				     { 0 } };
static PyGetSetDef sync_getset[] = { { "name", (getter)sync_get_name, NULL, "segment name", NULL }, { 0 } };

static PyTypeObject Semaphore_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit.Semaphore",
	.tp_basicsize = sizeof(SyncObject),
	.tp_dealloc = (destructor)sync_dealloc,
	.tp_repr = (reprfunc)sem_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Semaphore(value=1, *, name=None, owned=True)\n--\n\nA process-shared counting semaphore.",
	.tp_weaklistoffset = offsetof(SyncObject, weakrefs),
	.tp_methods = sem_methods,
	.tp_getset = sync_getset,
	.tp_new = sem_tp_new,
};

static PyTypeObject BoundedSemaphore_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit.BoundedSemaphore",
	.tp_basicsize = sizeof(SyncObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "BoundedSemaphore(value=1, *, name=None, owned=True)\n--\n\nrelease() past value raises ValueError.",
	.tp_base = &Semaphore_Type,
	.tp_new = sem_tp_new,
};

/* Event */

static PyObject *event_tp_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "owned", NULL };
	PyObject *name_o = Py_None;
	int owned = 1;
	const char *name;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|$Op", kwlist, &name_o, &owned) || skpy_name_arg(name_o, &name))
		return NULL;
	SyncObject *s = (SyncObject *)type->tp_alloc(type, 0);
	if (!s)
		return NULL;
	sk_create_opts o = { .flags = skpy_owned_flag(owned || !name) };
	int rc = sk_event_create(name, &o, &s->seg, (sk_event **)&s->p);
	return sync_finish(s, rc, name, name == NULL);
}

static int event_fn(void *arg, int64_t slice)
{
	return sk_event_wait((sk_event *)arg, slice);
}

static PyObject *event_wait(SyncObject *s, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "timeout", NULL };
	PyObject *timeout = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O", kwlist, &timeout))
		return NULL;
	int64_t deadline = skpy_deadline(1, timeout);
	if (deadline == -2)
		return NULL;
	int rc = sk_event_is_set(s->p) ? 0 : skpy_wait(s, event_fn, s->p, deadline);
	if (rc == -ETIMEDOUT)
		Py_RETURN_FALSE;
	if (rc)
		return skpy_raise(rc, s->life.name);
	Py_RETURN_TRUE;
}

static PyObject *event_call(SyncObject *s, int (*fn)(sk_event *))
{
	int rc = fn(s->p);
	if (rc < 0)
		return skpy_raise(rc, s->life.name);
	Py_RETURN_NONE;
}
static PyObject *event_set(SyncObject *s, PyObject *unused)
{
	(void)unused;
	return event_call(s, sk_event_set);
}
static PyObject *event_clear(SyncObject *s, PyObject *unused)
{
	(void)unused;
	return event_call(s, sk_event_clear);
}
static PyObject *event_is_set(SyncObject *s, PyObject *unused)
{
	(void)unused;
	int rc = sk_event_is_set(s->p);
	if (rc < 0)
		return skpy_raise(rc, s->life.name);
	return PyBool_FromLong(rc);
}

static PyObject *event_repr(SyncObject *s)
{
	int set = sk_event_is_set(s->p);
	return PyUnicode_FromFormat("<Event at %p %s %s>", (void *)s, s->life.name,
				    set < 0 ? "damaged"
				    : set   ? "set"
					    : "unset");
}

static PyMethodDef event_methods[] = { { "set", (PyCFunction)event_set, METH_NOARGS,
					 "set($self, /)\n--\n\n"
					 "Set the flag and wake every waiter." },
				       { "clear", (PyCFunction)event_clear, METH_NOARGS,
					 "clear($self, /)\n--\n\n"
					 "Clear the flag." },
				       { "is_set", (PyCFunction)event_is_set, METH_NOARGS,
					 "is_set($self, /)\n--\n\n"
					 "The flag." },
				       { "wait", (PyCFunction)(void (*)(void))event_wait, METH_VARARGS | METH_KEYWORDS,
					 "wait($self, /, timeout=None)\n--\n\n"
					 "wait(timeout=None) -> the flag (False when the timeout expired)." },
				       { "unlink", (PyCFunction)sync_unlink, METH_NOARGS,
					 "unlink($self, /)\n--\n\n"
					 "Remove the name." },
				       { "open", (PyCFunction)sync_open, METH_VARARGS | METH_CLASS,
					 "open($type, name, /)\n--\n\n"
					 "open(name): attach to a named event." },
				       { "__reduce__", (PyCFunction)sync_reduce, METH_NOARGS, NULL },
				       { 0 } };

static PyTypeObject Event_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit.Event",
	.tp_basicsize = sizeof(SyncObject),
	.tp_dealloc = (destructor)sync_dealloc,
	.tp_repr = (reprfunc)event_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Event(*, name=None, owned=True)\n--\n\nA process-shared manual-reset event.",
	.tp_weaklistoffset = offsetof(SyncObject, weakrefs),
	.tp_methods = event_methods,
	.tp_getset = sync_getset,
	.tp_new = event_tp_new,
};

/* Barrier */

static PyObject *barrier_tp_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "parties", "action", "timeout", "name", "owned", NULL };
	long long parties;
	PyObject *action = Py_None, *timeout = Py_None, *name_o = Py_None;
	int owned = 1;
	const char *name;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "L|OO$Op", kwlist, &parties, &action, &timeout, &name_o, &owned) ||
	    skpy_name_arg(name_o, &name))
		return NULL;
	if (parties < 1 || parties > 0xffff)
		return PyErr_Format(PyExc_ValueError, "parties must be in 1..65535, not %lld", parties);
	if (action != Py_None && !PyCallable_Check(action))
		return PyErr_Format(PyExc_TypeError, "action must be callable");
	SyncObject *s = (SyncObject *)type->tp_alloc(type, 0);
	if (!s)
		return NULL;
	s->parties = (unsigned)parties;
	if (action != Py_None) {
		Py_INCREF(action);
		s->action = action;
	}
	Py_INCREF(timeout);
	s->timeout = timeout;
	sk_create_opts o = { .flags = skpy_owned_flag(owned || !name) };
	int rc = sk_barrier_create(name, (uint32_t)parties, &o, &s->seg, (sk_barrier **)&s->p);
	return sync_finish(s, rc, name, name == NULL);
}

typedef struct {
	sk_barrier *b;
	unsigned flags;
	sk_barrier_ticket t;
} barrier_wait_arg;

static int barrier_arrive_fn(void *arg, int64_t slice)
{
	barrier_wait_arg *a = arg;
	return sk_barrier_arrive(a->b, a->flags, slice, &a->t);
}

static int barrier_await_fn(void *arg, int64_t slice)
{
	barrier_wait_arg *a = arg;
	return sk_barrier_await(a->b, &a->t, slice);
}

static PyObject *barrier_broken_error(const char *why)
{
	PyErr_SetString(skpy_BrokenBarrier, why ? why : "the barrier is broken (aborted, reset, or a party timed out)");
	return NULL;
}

/* wait(timeout=None), as threading.Barrier.wait: returns this party's index
 * in the round, 0 .. parties-1 in arrival order. The last to arrive runs the
 * action (of this object: it is not stored in the segment) before anyone is
 * released; if the action raises, the barrier breaks and the exception
 * propagates. A timeout breaks the barrier for everyone; Ctrl-C withdraws
 * only this party. BrokenBarrierError while the barrier is broken. */
static PyObject *barrier_wait(SyncObject *s, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "timeout", NULL };
	PyObject *timeout = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O", kwlist, &timeout))
		return NULL;
	if (timeout == Py_None && s->timeout)
		timeout = s->timeout;
	int64_t deadline = skpy_deadline(1, timeout);
	if (deadline == -2)
		return NULL;
	barrier_wait_arg a = { .b = s->p, .flags = s->action ? SK_BARRIER_HOLD : 0 };
	int idx = sk_barrier_arrive(a.b, a.flags, 0, &a.t);
	if (idx == -ETIMEDOUT && deadline != 0) /* a held round (an action running) is still ending */
		idx = skpy_wait(s, barrier_arrive_fn, &a, deadline);
	if (idx == SKPY_EINTR)
		return NULL; /* nothing changed */
	if (idx == -ETIMEDOUT) {
		sk_barrier_abort(a.b); /* a timeout breaks the barrier, as in threading */
		return barrier_broken_error("the barrier's round did not complete within the timeout");
	}
	if (idx == SK_EBROKEN)
		return barrier_broken_error(NULL);
	if (idx < 0)
		return skpy_raise(idx, s->life.name);
	if ((unsigned)idx + 1 == s->parties) {
		/* The last arriver: the others wait until the action is done. */
		if (s->action) {
			PyObject *r = PyObject_CallNoArgs(s->action);
			if (!r) {
				sk_barrier_abort(a.b);
				return NULL;
			}
			Py_DECREF(r);
			int rc = sk_barrier_release(a.b, &a.t);
			if (rc == SK_EBROKEN)
				return barrier_broken_error(NULL);
			if (rc)
				return skpy_raise(rc, s->life.name);
		}
		return PyLong_FromLong(idx);
	}
	int rc = skpy_wait(s, barrier_await_fn, &a, deadline);
	if (rc == SKPY_EINTR) {
		/* The interrupted party withdraws (a round whose action runs cannot
		 * lose it: it then counts as passed). */
		sk_barrier_leave(a.b, &a.t, 0);
		return NULL;
	}
	if (rc == -ETIMEDOUT) {
		rc = sk_barrier_leave(a.b, &a.t, SK_BARRIER_BREAK);
		if (rc == 1)
			return PyLong_FromLong(idx); /* the round completed meanwhile */
		return barrier_broken_error("the barrier's round did not complete within the timeout");
	}
	if (rc == SK_EBROKEN)
		return barrier_broken_error(NULL);
	if (rc < 0)
		return skpy_raise(rc, s->life.name);
	return PyLong_FromLong(idx);
}

static PyObject *barrier_abort(SyncObject *s, PyObject *unused)
{
	(void)unused;
	int rc = sk_barrier_abort(s->p);
	if (rc)
		return skpy_raise(rc, s->life.name);
	Py_RETURN_NONE;
}

static PyObject *barrier_reset(SyncObject *s, PyObject *unused)
{
	(void)unused;
	int rc = sk_barrier_reset(s->p);
	if (rc)
		return skpy_raise(rc, s->life.name);
	Py_RETURN_NONE;
}

/* Barrier.open(name, action=None, timeout=None); pickling passes both on,
 * as multiprocessing's Barrier does. */
static PyObject *barrier_open(PyObject *cls, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "action", "timeout", NULL };
	const char *name;
	PyObject *action = Py_None, *timeout = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|OO", kwlist, skpy_strname_conv, &name, &action, &timeout))
		return NULL;
	if (action != Py_None && !PyCallable_Check(action))
		return PyErr_Format(PyExc_TypeError, "action must be callable");
	PyObject *nargs = Py_BuildValue("(s)", name);
	if (!nargs)
		return NULL;
	SyncObject *s = (SyncObject *)sync_open(cls, nargs);
	Py_DECREF(nargs);
	if (!s)
		return NULL;
	if (action != Py_None)
		s->action = Py_NewRef(action);
	Py_XSETREF(s->timeout, Py_NewRef(timeout));
	return (PyObject *)s;
}

static PyObject *barrier_reduce(SyncObject *s, PyObject *unused)
{
	(void)unused;
	PyObject *open = PyObject_GetAttrString((PyObject *)Py_TYPE(s), "open");
	return open ? Py_BuildValue("N(sOO)", open, s->life.name, s->action ? s->action : Py_None,
				    s->timeout ? s->timeout : Py_None)
		    : NULL;
}

static PyObject *barrier_repr(SyncObject *s)
{
	int broken = sk_barrier_broken(s->p);
	sk_lock_state st = { 0 };
	sk_barrier_state(s->p, &st);
	return PyUnicode_FromFormat("<shmkit.Barrier %s parties=%u waiting=%lld%s>", s->life.name, s->parties,
				    (long long)st.value, broken == 1 ? " broken" : "");
}

static PyObject *barrier_get_parties(SyncObject *s, void *c)
{
	(void)c;
	return PyLong_FromUnsignedLong(s->parties);
}
static PyObject *barrier_get_n_waiting(SyncObject *s, void *c)
{
	(void)c;
	sk_lock_state st;
	int rc = sk_barrier_state(s->p, &st);
	if (rc)
		return skpy_raise(rc, s->life.name);
	return PyLong_FromLongLong(st.value);
}
static PyObject *barrier_get_broken(SyncObject *s, void *c)
{
	(void)c;
	int rc = sk_barrier_broken(s->p);
	if (rc < 0)
		return skpy_raise(rc, s->life.name);
	return PyBool_FromLong(rc);
}

static PyMethodDef barrier_methods[] = {
	{ "wait", (PyCFunction)(void (*)(void))barrier_wait, METH_VARARGS | METH_KEYWORDS,
	  "wait($self, /, timeout=None)\n--\n\n"
	  "This party's index in the round, 0 .. parties-1 in arrival order; the last to arrive runs action\n"
	  "before the others are released. A timeout breaks the barrier (BrokenBarrierError here and for\n"
	  "every other party); Ctrl-C withdraws this party only." },
	{ "abort", (PyCFunction)barrier_abort, METH_NOARGS,
	  "abort($self, /)\n--\n\nBreak the barrier: waiting and later parties get BrokenBarrierError until reset()." },
	{ "reset", (PyCFunction)barrier_reset, METH_NOARGS,
	  "reset($self, /)\n--\n\nStart a fresh round; parties waiting in the old one get BrokenBarrierError." },
	{ "unlink", (PyCFunction)sync_unlink, METH_NOARGS,
	  "unlink($self, /)\n--\n\n"
	  "Remove the name." },
	{ "open", (PyCFunction)(void (*)(void))barrier_open, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
	  "open($type, /, name, action=None, timeout=None)\n--\n\n"
	  "Attach to a named barrier (action and timeout: this object's)." },
	{ "__reduce__", (PyCFunction)barrier_reduce, METH_NOARGS, NULL },
	{ 0 }
};
static PyGetSetDef barrier_getset[] = { { "name", (getter)sync_get_name, NULL, "segment name", NULL },
					{ "parties", (getter)barrier_get_parties, NULL, "parties per round", NULL },
					{ "n_waiting", (getter)barrier_get_n_waiting, NULL, "parties waiting now",
					  NULL },
					{ "broken", (getter)barrier_get_broken, NULL,
					  "True while the barrier is broken (abort, a party's timeout)", NULL },
					{ 0 } };

static PyTypeObject Barrier_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit.Barrier",
	.tp_basicsize = sizeof(SyncObject),
	.tp_dealloc = (destructor)sync_dealloc,
	.tp_repr = (reprfunc)barrier_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Barrier(parties, action=None, timeout=None, *, name=None, owned=True)\n--\n\nA reusable "
		  "process-shared barrier.",
	.tp_weaklistoffset = offsetof(SyncObject, weakrefs),
	.tp_methods = barrier_methods,
	.tp_getset = barrier_getset,
	.tp_new = barrier_tp_new,
};

/* Condition */

static PyObject *cond_tp_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "lock", "name", "owned", NULL };
	PyObject *lock = Py_None, *name_o = Py_None;
	int owned = 1;
	const char *name;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O$Op", kwlist, &lock, &name_o, &owned) ||
	    skpy_name_arg(name_o, &name))
		return NULL;
	if (lock == Py_None) {
		lock = PyObject_CallNoArgs((PyObject *)&RLock_Type);
		if (!lock)
			return NULL;
	} else if (!PyObject_TypeCheck(lock, &Mutex_Type)) {
		return PyErr_Format(PyExc_TypeError, "a shmkit Condition needs a shmkit Lock or RLock, not %.100s",
				    Py_TYPE(lock)->tp_name);
	} else {
		Py_INCREF(lock);
	}
	SyncObject *s = (SyncObject *)type->tp_alloc(type, 0);
	if (!s) {
		Py_DECREF(lock);
		return NULL;
	}
	s->cond_lock = (MutexObject *)lock;
	sk_create_opts o = { .flags = skpy_owned_flag(owned || !name) };
	int rc = sk_cond_create(name, &o, &s->seg, (sk_cond **)&s->p);
	return sync_finish(s, rc, name, name == NULL);
}

static PyObject *cond_open(PyObject *cls, PyObject *args)
{
	const char *name;
	PyObject *lock;
	if (!PyArg_ParseTuple(args, "sO!", &name, &Mutex_Type, &lock))
		return NULL;
	PyTypeObject *type = (PyTypeObject *)cls;
	SyncObject *s = (SyncObject *)type->tp_alloc(type, 0);
	if (!s)
		return NULL;
	Py_INCREF(lock);
	s->cond_lock = (MutexObject *)lock;
	int rc = sk_cond_open(name, &s->seg, (sk_cond **)&s->p);
	return sync_finish(s, rc, name, 0);
}

static PyObject *cond_reduce(SyncObject *s, PyObject *unused)
{
	(void)unused;
	PyObject *open = PyObject_GetAttrString((PyObject *)Py_TYPE(s), "open");
	return open ? Py_BuildValue("N(sO)", open, s->life.name, (PyObject *)s->cond_lock) : NULL;
}

static PyObject *cond_acquire(SyncObject *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	return mutex_acquire(s->cond_lock, args, nargs, kwnames);
}
static PyObject *cond_release(SyncObject *s, PyObject *unused)
{
	(void)unused;
	return mutex_release(s->cond_lock, NULL);
}
static PyObject *cond_enter(SyncObject *s, PyObject *unused)
{
	(void)unused;
	return mutex_enter(s->cond_lock, NULL);
}
static PyObject *cond_exit(SyncObject *s, PyObject *const *args, Py_ssize_t nargs)
{
	(void)args;
	(void)nargs;
	return mutex_release(s->cond_lock, NULL);
}

typedef struct {
	sk_cond *c;
	uint32_t ticket;
} cond_wait_arg;

static int cond_sleep_fn(void *arg, int64_t slice)
{
	cond_wait_arg *a = arg;
	return sk_cond_sleep(a->c, a->ticket, slice);
}

static PyObject *cond_wait(SyncObject *s, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "timeout", NULL };
	PyObject *timeout = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O", kwlist, &timeout))
		return NULL;
	if (mutex_usable(s->cond_lock))
		return NULL;
	if (!mutex_is_owned(s->cond_lock)) {
		PyErr_SetString(PyExc_RuntimeError, "cannot wait on un-acquired lock");
		return NULL;
	}
	int64_t deadline = skpy_deadline(1, timeout);
	if (deadline == -2)
		return NULL;
	cond_wait_arg a = { .c = s->p };
	int rc = sk_cond_begin(a.c, s->cond_lock->m, &a.ticket);
	if (rc)
		return skpy_raise(rc, s->life.name);
	long saved = mutex_save(s->cond_lock);
	/* A zero timeout still releases and retakes the lock, like threading. */
	PyObject *busy = s->cond_lock->parent ? s->cond_lock->parent : (PyObject *)s->cond_lock;
	int wrc = deadline == 0 ? sk_cond_sleep(a.c, a.ticket, 0) : skpy_wait(busy, cond_sleep_fn, &a, deadline);
	/* The lock is taken back whatever happened, as threading does. */
	int lrc;
	SKPY_RELEASED(busy, lrc = sk_mutex_lock(s->cond_lock->m, -1));
	if (lrc != 0 && lrc != SK_EOWNERDEAD) {
		if (wrc != SKPY_EINTR)
			skpy_raise(lrc, s->life.name);
		return NULL;
	}
	mutex_restore(s->cond_lock, saved);
	if (lrc == SK_EOWNERDEAD) {
		s->cond_lock->owner_died = 1;
		if (mutex_recovered(s->cond_lock))
			return NULL;
	}
	if (wrc == SKPY_EINTR)
		return NULL;
	if (wrc == -ETIMEDOUT)
		Py_RETURN_FALSE;
	if (wrc)
		return skpy_raise(wrc, s->life.name);
	Py_RETURN_TRUE;
}

static PyObject *cond_notify(SyncObject *s, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "n", NULL };
	int n = 1;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|i", kwlist, &n))
		return NULL;
	if (!mutex_is_owned(s->cond_lock)) {
		PyErr_SetString(PyExc_RuntimeError, "cannot notify on un-acquired lock");
		return NULL;
	}
	for (int i = 0; i < n; i++) {
		int rc = sk_cond_signal(s->p);
		if (rc)
			return skpy_raise(rc, s->life.name);
	}
	Py_RETURN_NONE;
}

static PyObject *cond_notify_all(SyncObject *s, PyObject *unused)
{
	(void)unused;
	if (!mutex_is_owned(s->cond_lock)) {
		PyErr_SetString(PyExc_RuntimeError, "cannot notify on un-acquired lock");
		return NULL;
	}
	int rc = sk_cond_broadcast(s->p);
	if (rc)
		return skpy_raise(rc, s->life.name);
	Py_RETURN_NONE;
}

static PyObject *cond_wait_for(SyncObject *s, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "predicate", "timeout", NULL };
	PyObject *pred, *timeout = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O", kwlist, &pred, &timeout))
		return NULL;
	int64_t deadline = skpy_deadline(1, timeout);
	if (deadline == -2)
		return NULL;
	for (;;) {
		PyObject *r = PyObject_CallNoArgs(pred);
		if (!r)
			return NULL;
		int t = PyObject_IsTrue(r);
		if (t != 0)
			return t < 0 ? (Py_DECREF(r), NULL) : r;
		PyObject *left = Py_None;
		if (deadline >= 0) {
			int64_t ns = deadline == 0 ? 0 : deadline - skpy_now_ns();
			if (ns <= 0)
				return r;
			left = PyFloat_FromDouble((double)ns / 1e9);
		} else {
			Py_INCREF(left);
		}
		Py_DECREF(r);
		PyObject *wargs = Py_BuildValue("(N)", left);
		PyObject *w = wargs ? cond_wait(s, wargs, NULL) : NULL;
		Py_XDECREF(wargs);
		if (!w)
			return NULL;
		Py_DECREF(w);
	}
}

static PyObject *cond_get_lock(SyncObject *s, void *c)
{
	(void)c;
	Py_INCREF(s->cond_lock);
	return (PyObject *)s->cond_lock;
}

static PyMethodDef cond_methods[] = {
	{ "acquire", (PyCFunction)(void (*)(void))cond_acquire, METH_FASTCALL | METH_KEYWORDS,
	  "acquire($self, /, block=True, timeout=None, *, blocking=True)\n--\n\n"
	  "acquire(block=True, timeout=None): acquire the underlying lock." },
	{ "release", (PyCFunction)cond_release, METH_NOARGS,
	  "release($self, /)\n--\n\n"
	  "Release the underlying lock." },
	{ "wait", (PyCFunction)(void (*)(void))cond_wait, METH_VARARGS | METH_KEYWORDS,
	  "wait($self, /, timeout=None)\n--\n\n"
	  "wait(timeout=None) -> False if the timeout expired. Wake-ups without notify can happen." },
	{ "wait_for", (PyCFunction)(void (*)(void))cond_wait_for, METH_VARARGS | METH_KEYWORDS,
	  "wait_for($self, /, predicate, timeout=None)\n--\n\n"
	  "wait_for(predicate, timeout=None) -> the predicate's last value." },
	{ "notify", (PyCFunction)(void (*)(void))cond_notify, METH_VARARGS | METH_KEYWORDS,
	  "notify($self, /, n=1)\n--\n\n"
	  "notify(n=1): wake up to n waiters." },
	{ "notify_all", (PyCFunction)cond_notify_all, METH_NOARGS,
	  "notify_all($self, /)\n--\n\n"
	  "Wake every waiter." },
	{ "unlink", (PyCFunction)sync_unlink, METH_NOARGS,
	  "unlink($self, /)\n--\n\n"
	  "Remove the condition's name (not its lock's)." },
	{ "open", (PyCFunction)cond_open, METH_VARARGS | METH_CLASS,
	  "open($type, name, lock, /)\n--\n\n"
	  "open(name, lock): attach to a named condition used with lock." },
	{ "__enter__", (PyCFunction)cond_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)(void (*)(void))cond_exit, METH_FASTCALL, NULL },
	{ "__reduce__", (PyCFunction)cond_reduce, METH_NOARGS, NULL },
	{ 0 }
};
static PyGetSetDef cond_getset[] = { { "name", (getter)sync_get_name, NULL, "segment name", NULL },
				     { "lock", (getter)cond_get_lock, NULL, "the underlying Lock or RLock", NULL },
				     { 0 } };

static PyTypeObject Condition_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit.Condition",
	.tp_basicsize = sizeof(SyncObject),
	.tp_dealloc = (destructor)sync_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Condition(lock=None, *, name=None, owned=True)\n--\n\nA process-shared condition variable over a "
		  "shmkit Lock or RLock (a new RLock when None).",
	.tp_weaklistoffset = offsetof(SyncObject, weakrefs),
	.tp_methods = cond_methods,
	.tp_getset = cond_getset,
	.tp_new = cond_tp_new,
};

int skpy_sync_init(PyObject *m)
{
	return skpy_add_type(m, &Mutex_Type, "Lock") || skpy_add_type(m, &RLock_Type, "RLock") ||
	       skpy_add_type(m, &Semaphore_Type, "Semaphore") ||
	       skpy_add_type(m, &BoundedSemaphore_Type, "BoundedSemaphore") || skpy_add_type(m, &Event_Type, "Event") ||
	       skpy_add_type(m, &Barrier_Type, "Barrier") || skpy_add_type(m, &Condition_Type, "Condition");
}
