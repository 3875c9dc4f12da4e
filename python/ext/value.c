/*
 * python/ext/value.c: SharedValue and SharedRawValue, a shared scalar (what
 * shmkit.Value, RawValue build on). Layer: above base.c and sync.c (its
 * lock), see base.h.
 *
 * A SharedValue has a lock: the robust one in its own segment (get_lock()
 * wraps it as an RLock), or a lock object given at creation (then the
 * segment holds a raw value and .value takes that lock, as multiprocessing's
 * Synchronized does). A SharedRawValue has none and no get_lock/get_obj:
 * every operation is one of the library's lock-free atomics. Typecodes 'c'
 * and 'u' are stored as uint8 and uint32 and read back as a 1-byte bytes and
 * a 1-character str, as ctypes' c_char and c_wchar do.
 */
#include "sync.h"

#include <errno.h>
#include <string.h>

/* ---- SharedValue ---- */

typedef struct {
	SKPY_BASE_FIELDS; /* lock: the RLock made by get_lock(), or the lock given */
	sk_value *v;
	sk_dtype dtype;
	int readonly;
	int ext_lock; /* lock is a lock object given at creation */
	char ctype;   /* 'c', 'u', or 0 for numbers */
} ValueObject;

static PyTypeObject SharedValue_Type, SharedRawValue_Type;

/* Element conversions, with 'c' and 'u' on top of the dtypes. */
static int value_from_py(ValueObject *v, PyObject *o, void *out)
{
	if (v->ctype == 'c' && PyBytes_Check(o)) {
		if (PyBytes_GET_SIZE(o) != 1) {
			PyErr_SetString(PyExc_TypeError, "one character bytes, bytearray or integer expected");
			return -1;
		}
		*(uint8_t *)out = (uint8_t)PyBytes_AS_STRING(o)[0];
		return 0;
	}
	if (v->ctype == 'u') {
		if (!PyUnicode_Check(o) || PyUnicode_GET_LENGTH(o) != 1) {
			PyErr_SetString(PyExc_TypeError, "unicode string of length 1 expected");
			return -1;
		}
		*(uint32_t *)out = (uint32_t)PyUnicode_READ_CHAR(o, 0);
		return 0;
	}
	return skpy_elem_from_py(v->dtype, o, out);
}

static PyObject *value_to_py(ValueObject *v, const void *p)
{
	if (v->ctype == 'c')
		return PyBytes_FromStringAndSize((const char *)p, 1);
	if (v->ctype == 'u') {
		uint32_t c = *(const uint32_t *)p;
		if (c > 0x10ffff)
			return skpy_raise(SK_ECORRUPT, v->life.name);
		return PyUnicode_FromOrdinal((int)c);
	}
	return skpy_elem_to_py(v->dtype, p);
}

static int ctype_arg(const char *c, sk_dtype dtype, char *out)
{
	*out = 0;
	if (!c || !*c)
		return 0;
	if ((c[0] == 'c' && dtype == SK_UINT8) || (c[0] == 'u' && dtype == SK_UINT32)) {
		*out = c[0];
		return 0;
	}
	PyErr_Format(PyExc_ValueError, "ctype '%s' does not fit dtype %s", c, sk_dtype_name(dtype));
	return -1;
}

static int value_usable(ValueObject *v)
{
	if (v->closed) {
		PyErr_SetString(PyExc_ValueError, "operation on a closed shmkit value");
		return -1;
	}
	return 0;
}

/* lock: a lock object (given at creation) or NULL. */
static PyObject *value_wrap(sk_value *sv, int generated, int readonly, const char *ctype, PyObject *lock)
{
	char ct;
	if (ctype_arg(ctype, sk_value_dtype(sv), &ct)) {
		sk_value_close(sv);
		return NULL;
	}
	PyTypeObject *t = sk_value_mutex(sv) || lock ? &SharedValue_Type : &SharedRawValue_Type;
	ValueObject *v = (ValueObject *)t->tp_alloc(t, 0);
	if (!v) {
		sk_value_close(sv);
		return NULL;
	}
	v->v = sv;
	v->dtype = sk_value_dtype(sv);
	v->readonly = readonly;
	v->ctype = ct;
	if (lock) {
		v->ext_lock = 1;
		v->lock = Py_NewRef(lock);
	}
	skpy_life_init(&v->life, generated, sk_value_name(sv));
	return (PyObject *)v;
}

/* The lock= argument of value_create/value_open: None (none given) or an
 * object with acquire and release. */
static int lock_obj_arg(PyObject *o, PyObject **out)
{
	*out = NULL;
	if (o == Py_None)
		return 0;
	if (!PyObject_HasAttrString(o, "acquire") || !PyObject_HasAttrString(o, "release")) {
		PyErr_Format(PyExc_AttributeError, "%R has no method 'acquire'", o);
		return -1;
	}
	*out = o;
	return 0;
}

static PyObject *value_create(PyObject *mod, PyObject *args, PyObject *kw)
{
	(void)mod;
	static char *kwlist[] = { "name", "dtype", "lock", "owned", "ctype", "lock_object", NULL };
	PyObject *name_o, *lock_o = Py_None, *ext;
	const char *dt, *name, *ctype = NULL;
	int lock = 1, owned = 1;
	sk_dtype dtype;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "Os|ppzO", kwlist, &name_o, &dt, &lock, &owned, &ctype, &lock_o))
		return NULL;
	if (skpy_name_arg(name_o, &name) || skpy_dtype_arg(dt, &dtype) || lock_obj_arg(lock_o, &ext))
		return NULL;
	/* With a lock object of its own, the segment holds a raw value. */
	sk_create_opts o = { .flags = (lock && !ext ? 0 : SK_CREATE_RAW) | skpy_owned_flag(owned || !name) };
	sk_value *sv;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = sk_value_create(name, dtype, &o, &sv);
	Py_END_ALLOW_THREADS
	if (rc)
		return skpy_raise(rc, name);
	skpy_exit_register(sk_value_name(sv));
	return value_wrap(sv, name == NULL, 0, ctype, ext);
}

static PyObject *value_open(PyObject *mod, PyObject *args, PyObject *kw)
{
	(void)mod;
	static char *kwlist[] = { "name", "readonly", "ctype", "lock_object", "any_owner", NULL };
	const char *name, *ctype = NULL;
	PyObject *lock_o = Py_None, *ext;
	int ro = 0, any = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|pzO$p", kwlist, skpy_strname_conv, &name, &ro, &ctype, &lock_o,
					 &any) ||
	    lock_obj_arg(lock_o, &ext))
		return NULL;
	sk_value *sv;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = sk_value_open(name, (ro ? SK_RDONLY : SK_RDWR) | (any ? SK_OPEN_ANY_OWNER : 0), &sv);
	Py_END_ALLOW_THREADS
	if (rc)
		return skpy_raise(rc, name);
	return value_wrap(sv, 0, ro, ctype, ext);
}

static void value_release(ValueObject *v)
{
	if (v->closed)
		return;
	v->closed = 1;
	sk_value_close(v->v);
	v->v = NULL;
	skpy_life_end(&v->life);
}

static void value_dealloc(ValueObject *v)
{
	skpy_base_teardown(v);
	value_release(v);
	Py_TYPE(v)->tp_free((PyObject *)v);
}

/* 1 when this thread holds the value's lock through get_lock(): then get and
 * set go straight to memory (the lock is an RLock, as in multiprocessing). */
static int value_held_here(ValueObject *v)
{
	return v->lock && skpy_is_mutex(v->lock) && skpy_mutex_held_here(v->lock);
}

/* The operations: the library's (its lock, or its atomics for a value
 * without a lock), or get and set under a lock object given at creation. */
enum { OP_GET, OP_SET, OP_ADD, OP_CAS };

/* get or set of a value guarded by a lock object given at creation, under
 * that lock (acquire() and release() called as multiprocessing's
 * Synchronized does; add and compare_and_swap stay the library's atomics). */
static int value_op_ext(ValueObject *v, int op, void *io)
{
	PyObject *r = PyObject_CallMethod(v->lock, "acquire", NULL);
	if (!r)
		return -1;
	Py_DECREF(r);
	void *p = sk_value_ptr(v->v);
	size_t sz = sk_dtype_size(v->dtype);
	if (op == OP_GET)
		memcpy(io, p, sz);
	else
		memcpy(p, io, sz);
	r = PyObject_CallMethod(v->lock, "release", NULL);
	if (!r)
		return -1;
	Py_DECREF(r);
	return 0;
}

typedef struct {
	sk_value *v;
	int op;
	void *io;            /* get: out; set: in; add: delta in, old value out; cas: expected in, seen out */
	const void *desired; /* cas */
} vop_arg;

static int vop_fn(void *arg, int64_t slice)
{
	vop_arg *a = arg;
	uint64_t old = 0;
	int rc;
	switch (a->op) {
	case OP_GET: return sk_value_get_timed(a->v, a->io, slice);
	case OP_SET: return sk_value_set_timed(a->v, a->io, slice);
	case OP_ADD:
		rc = sk_value_add_timed(a->v, a->io, &old, slice);
		if (rc == 0 || rc == SK_EOWNERDEAD)
			memcpy(a->io, &old, sk_dtype_size(sk_value_dtype(a->v)));
		return rc;
	default: return sk_value_cas_timed(a->v, a->io, a->desired, slice);
	}
}

/* Runs op with the library's timed calls: first without waiting (GIL
 * held), then in slices with the GIL released, running signal handlers
 * between them (Ctrl-C within 50 ms). Returns 0, or for cas 1 when it
 * swapped; -1 with an exception set. When the lock's previous holder had
 * died, the library has done the operation and repaired the lock; that is
 * reported with OwnerDiedWarning (an update the holder made under get_lock()
 * may be half done). */
static int value_op(ValueObject *v, int op, void *io, const void *desired)
{
	if (v->ext_lock && (op == OP_GET || op == OP_SET))
		return value_op_ext(v, op, io);
	vop_arg a = { v->v, op, io, desired };
	int rc = vop_fn(&a, 0);
	if (rc == -ETIMEDOUT || rc == -EAGAIN || rc == -EBUSY)
		rc = skpy_wait(v, vop_fn, &a, -1);
	if (rc == -EDEADLK) {
		PyErr_SetString(PyExc_RuntimeError, "this thread holds the value's lock through another handle");
		return -1;
	}
	int died = rc == SK_EOWNERDEAD || (op == OP_CAS && rc >= 0 && (rc & SK_VALUE_OWNERDEAD));
	if (rc < 0 && rc != SK_EOWNERDEAD) {
		skpy_raise(rc, v->life.name);
		return -1;
	}
	int r = op == OP_CAS ? (rc & SK_VALUE_SWAPPED) != 0 : 0;
	if (died && PyErr_WarnFormat(skpy_OwnerDiedWarning, 1,
				     "the previous holder of value %s's lock died holding it; the operation was done, "
				     "but an update it made under get_lock() may be half done",
				     v->life.name) < 0)
		return -1;
	return r;
}

static PyObject *value_get(ValueObject *v, void *c)
{
	(void)c;
	if (value_usable(v))
		return NULL;
	uint64_t raw = 0;
	if (value_held_here(v))
		memcpy(&raw, sk_value_ptr(v->v), sk_dtype_size(v->dtype));
	else if (value_op(v, OP_GET, &raw, NULL) < 0)
		return NULL;
	return value_to_py(v, &raw);
}

static int value_set(ValueObject *v, PyObject *o, void *c)
{
	(void)c;
	if (!o) {
		PyErr_SetString(PyExc_TypeError, "cannot delete the value");
		return -1;
	}
	if (value_usable(v))
		return -1;
	uint64_t raw = 0;
	if (value_from_py(v, o, &raw))
		return -1;
	if (value_held_here(v)) {
		memcpy(sk_value_ptr(v->v), &raw, sk_dtype_size(v->dtype));
		return 0;
	}
	return value_op(v, OP_SET, &raw, NULL) < 0 ? -1 : 0;
}

static PyObject *value_add(ValueObject *v, PyObject *delta)
{
	if (value_usable(v))
		return NULL;
	if (value_held_here(v) && !v->ext_lock) {
		PyErr_SetString(PyExc_RuntimeError,
				"add() takes the value's lock itself: call it without holding get_lock()");
		return NULL;
	}
	uint64_t d = 0;
	if (v->ctype) {
		PyErr_SetString(PyExc_TypeError, "add() of a character value");
		return NULL;
	}
	if (skpy_elem_from_py(v->dtype, delta, &d) || value_op(v, OP_ADD, &d, NULL) < 0)
		return NULL;
	return skpy_elem_to_py(v->dtype, &d);
}

static PyObject *value_cas(ValueObject *v, PyObject *args)
{
	PyObject *exp_o, *des_o;
	if (value_usable(v) || !PyArg_ParseTuple(args, "OO", &exp_o, &des_o))
		return NULL;
	if (value_held_here(v) && !v->ext_lock) {
		PyErr_SetString(PyExc_RuntimeError,
				"compare_and_swap() takes the value's lock itself: call it without holding get_lock()");
		return NULL;
	}
	uint64_t e = 0, d = 0;
	if (value_from_py(v, exp_o, &e) || value_from_py(v, des_o, &d))
		return NULL;
	int rc = value_op(v, OP_CAS, &e, &d);
	if (rc < 0)
		return NULL;
	return Py_BuildValue("(ON)", rc == 1 ? Py_True : Py_False, value_to_py(v, &e));
}

static PyObject *value_get_lock(ValueObject *v, PyObject *unused)
{
	(void)unused;
	if (value_usable(v))
		return NULL;
	if (v->ext_lock)
		return Py_NewRef(v->lock);
	sk_mutex *m = sk_value_mutex(v->v);
	if (!m) {
		PyErr_SetString(PyExc_AttributeError, "this value was made with lock=False: it has no lock");
		return NULL;
	}
	if (!v->lock) {
		v->lock = skpy_mutex_embedded(m, (PyObject *)v, 1);
		if (!v->lock)
			return NULL;
	}
	Py_INCREF(v->lock);
	return v->lock;
}

static PyObject *value_close(ValueObject *v, PyObject *unused)
{
	(void)unused;
	if (skpy_closable(v, "close"))
		return NULL;
	value_release(v);
	Py_RETURN_NONE;
}

static PyObject *value_unlink(ValueObject *v, PyObject *unused)
{
	(void)unused;
	return skpy_unlink_named(&v->life);
}

static PyObject *value_reduce(ValueObject *v, PyObject *unused)
{
	(void)unused;
	if (value_usable(v))
		return NULL;
	PyObject *mod = PyImport_ImportModule("shmkit._shmkit");
	if (!mod)
		return NULL;
	PyObject *fn = PyObject_GetAttrString(mod, "value_open");
	Py_DECREF(mod);
	if (!fn)
		return NULL;
	char ct[2] = { v->ctype, 0 };
	return Py_BuildValue("N(sOzO)", fn, v->life.name, v->readonly ? Py_True : Py_False, v->ctype ? ct : NULL,
			     v->ext_lock ? v->lock : Py_None);
}

static PyObject *value_repr(ValueObject *v)
{
	const char *tn = Py_TYPE(v)->tp_name;
	if (v->closed)
		return PyUnicode_FromFormat("<%s %s (closed)>", tn, v->life.name);
	PyObject *val = value_get(v, NULL);
	if (!val)
		return NULL;
	PyObject *r = PyUnicode_FromFormat("<%s %s %s %R>", tn, v->life.name,
					   v->ctype == 'c'   ? "c_char"
					   : v->ctype == 'u' ? "c_wchar"
							     : sk_dtype_name(v->dtype),
					   val);
	Py_DECREF(val);
	return r;
}

static PyObject *value_get_name(ValueObject *v, void *c)
{
	(void)c;
	return PyUnicode_FromString(v->life.name);
}
static PyObject *value_get_dtype(ValueObject *v, void *c)
{
	(void)c;
	return skpy_dtype_object(v->dtype);
}

static PyObject *value_get_obj(ValueObject *v, PyObject *unused)
{
	(void)unused;
	if (value_usable(v))
		return NULL;
	return Py_NewRef(v);
}

static PyObject *value_get_closed(ValueObject *v, void *c)
{
	(void)c;
	return PyBool_FromLong(v->closed);
}

static PyObject *value_enter(ValueObject *v, PyObject *unused)
{
	(void)unused;
	Py_INCREF(v);
	return (PyObject *)v;
}
static PyObject *value_exit(ValueObject *v, PyObject *args)
{
	(void)args;
	return value_close(v, NULL);
}

#define VALUE_COMMON_METHODS                                                                                  \
	{ "add", (PyCFunction)value_add, METH_O,                                                              \
	  "add($self, delta, /)\n--\n\nAtomically add delta; return the old value." },                        \
	    { "compare_and_swap", (PyCFunction)value_cas, METH_VARARGS,                                       \
	      "compare_and_swap($self, expected, desired, /)\n--\n\n(swapped, value seen): atomically store " \
	      "desired if the value equals expected." },                                                      \
	    { "close", (PyCFunction)value_close, METH_NOARGS,                                                 \
	      "close($self, /)\n--\n\nUnmap. RuntimeError while a thread holds its lock or waits in it." },   \
	    { "unlink", (PyCFunction)value_unlink, METH_NOARGS, "unlink($self, /)\n--\n\nRemove the name." }, \
	    { "__enter__", (PyCFunction)value_enter, METH_NOARGS, NULL },                                     \
	    { "__exit__", (PyCFunction)value_exit, METH_VARARGS, NULL },                                      \
	{                                                                                                     \
		"__reduce__", (PyCFunction)value_reduce, METH_NOARGS, NULL                                    \
	}

static PyMethodDef value_methods[] = {
	{ "get_lock", (PyCFunction)value_get_lock, METH_NOARGS,
	  "get_lock($self, /)\n--\n\nThe value's lock: its robust RLock (inside it .value reads and writes "
	  "directly), or the lock object it was made with." },
	{ "get_obj", (PyCFunction)value_get_obj, METH_NOARGS,
	  "get_obj($self, /)\n--\n\nThe shared object itself (shmkit keeps the scalar and its lock in one object)." },
	VALUE_COMMON_METHODS,
	{ 0 }
};
static PyMethodDef raw_value_methods[] = { VALUE_COMMON_METHODS, { 0 } };
static PyGetSetDef value_getset[] = { { "value", (getter)value_get, (setter)value_set,
					"the shared scalar (read and written under its lock, or atomically)", NULL },
				      { "name", (getter)value_get_name, NULL, "segment name", NULL },
				      { "dtype", (getter)value_get_dtype, NULL, "element type", NULL },
				      { "closed", (getter)value_get_closed, NULL, "True after close()", NULL },
				      { 0 } };

static PyTypeObject SharedValue_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit.SharedValue",
	.tp_basicsize = sizeof(ValueObject),
	.tp_dealloc = (destructor)value_dealloc,
	.tp_traverse = skpy_base_traverse,
	.tp_clear = skpy_base_clear,
	.tp_repr = (reprfunc)value_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "A shared scalar with a lock, in a named segment; made by shmkit.Value().",
	.tp_weaklistoffset = offsetof(ValueObject, weakrefs),
	.tp_methods = value_methods,
	.tp_getset = value_getset,
};

static PyTypeObject SharedRawValue_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit.SharedRawValue",
	.tp_basicsize = sizeof(ValueObject),
	.tp_dealloc = (destructor)value_dealloc,
	.tp_traverse = skpy_base_traverse,
	.tp_clear = skpy_base_clear,
	.tp_repr = (reprfunc)value_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "A shared scalar without a lock (every operation atomic), in a named segment; made by "
		  "shmkit.RawValue() and shmkit.Value(lock=False).",
	.tp_weaklistoffset = offsetof(ValueObject, weakrefs),
	.tp_methods = raw_value_methods,
	.tp_getset = value_getset,
};

static PyMethodDef value_functions[] = {
	{ "value_create", (PyCFunction)(void (*)(void))value_create, METH_VARARGS | METH_KEYWORDS,
	  "value_create($module, name, dtype, lock=True, owned=True, ctype=None, lock_object=None)\n--\n\n"
	  "A new SharedValue (SharedRawValue without a lock)." },
	{ "value_open", (PyCFunction)(void (*)(void))value_open, METH_VARARGS | METH_KEYWORDS,
	  "value_open($module, /, name, readonly=False, ctype=None, lock_object=None, *, any_owner=False)\n--\n\n"
	  "Attach to a named value." },
	{ 0 }
};

int skpy_value_init(PyObject *m)
{
	if (skpy_add_type(m, &SharedValue_Type, "SharedValue") ||
	    skpy_add_type(m, &SharedRawValue_Type, "SharedRawValue"))
		return -1;
	return PyModule_AddFunctions(m, value_functions);
}
