/*
 * python/ext/base.c: the infrastructure every object of shmkit._shmkit
 * stands on (errors, waits, argument converters, dtypes, lifetimes, the
 * common object base). The layering of the extension is described in base.h;
 * this file calls only shmkit's public C API and CPython.
 */
#include "base.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

pid_t skpy_pid;

static void refresh_pid(void)
{
	skpy_pid = getpid();
}

PyObject *skpy_Error, *skpy_OwnerDiedWarning, *skpy_ShutDown, *skpy_Empty, *skpy_Full, *skpy_BrokenBarrier;

/* ---- errors ---- */

PyObject *skpy_raise(int rc, const char *name)
{
	if (rc == SKPY_EINTR)
		return NULL; /* the signal handler's exception is already set */
	if (rc == SK_EBADNAME) {
		PyErr_Format(PyExc_ValueError,
			     "invalid segment name '%s': 1..%d characters of [A-Za-z0-9._-], not . or ..",
			     name ? name : "", SK_NAME_MAX);
		return NULL;
	}
	if (rc == SK_EOWNER) { /* another user's segment: name the owner */
		sk_segment_info in;
		if (name && sk_segment_stat(name, &in) == 0)
			PyErr_Format(PyExc_PermissionError,
				     "segment %s belongs to another user (uid %u), neither you nor root: what it holds "
				     "is that user's; pass any_owner=True to attach it anyway",
				     name, (unsigned)in.uid);
		else
			PyErr_Format(PyExc_PermissionError, "%s%s%s (pass any_owner=True to attach it anyway)",
				     name ? name : "", name ? ": " : "", sk_strerror(rc));
		return NULL;
	}
	if (rc == SK_EKIND || rc == SK_ETYPE) {
		PyErr_Format(PyExc_TypeError, "%s%s%s", name ? name : "", name ? ": " : "", sk_strerror(rc));
		return NULL;
	}
	if (rc > -1000) {
		/* An errno: OSError picks FileNotFoundError, FileExistsError, ... */
		PyObject *args =
		    name ? Py_BuildValue("(iss)", -rc, strerror(-rc), name) : Py_BuildValue("(is)", -rc, strerror(-rc));
		if (args) {
			PyErr_SetObject(PyExc_OSError, args);
			Py_DECREF(args);
		}
		return NULL;
	}
	PyObject *args =
	    name ? Py_BuildValue("(iss)", rc, sk_strerror(rc), name) : Py_BuildValue("(is)", rc, sk_strerror(rc));
	if (args) {
		PyErr_SetObject(skpy_Error, args);
		Py_DECREF(args);
	}
	return NULL;
}

/* ---- time and waiting ---- */

int64_t skpy_now_ns(void)
{
	return sk_monotonic_ns(); /* the library's clock: its timeouts are measured on it */
}

int64_t skpy_deadline(int block, PyObject *timeout)
{
	if (!block)
		return 0;
	if (!timeout || timeout == Py_None)
		return -1;
	double t = PyFloat_AsDouble(timeout);
	if (t == -1.0 && PyErr_Occurred())
		return -2;
	if (t != t) {
		PyErr_SetString(PyExc_ValueError, "timeout is NaN");
		return -2;
	}
	if (t <= 0)
		return 0;
	if (t > 1e9) /* about 31 years: as good as forever */
		return -1;
	int64_t d = skpy_now_ns() + (int64_t)(t * 1e9);
	return d > 0 ? d : 1;
}

#define SLICE_NS 50000000 /* 50 ms: how late Ctrl-C can be noticed at worst */

static int wait_slices(skpy_wait_fn fn, void *arg, int64_t deadline);

int skpy_wait(void *obj, skpy_wait_fn fn, void *arg, int64_t deadline)
{
	skpy_base *o = obj;
	if (o)
		o->busy++;
	int rc = wait_slices(fn, arg, deadline);
	if (o)
		o->busy--;
	return rc;
}

static int wait_slices(skpy_wait_fn fn, void *arg, int64_t deadline)
{
	for (;;) {
		int64_t slice = SLICE_NS;
		int last = 0;
		if (deadline >= 0) {
			int64_t left = deadline == 0 ? 0 : deadline - skpy_now_ns();
			if (left <= slice) {
				slice = left > 0 ? left : 0;
				last = 1;
			}
		}
		int rc;
		/* Released even for a zero slice: fn may copy a large message. */
		Py_BEGIN_ALLOW_THREADS
		rc = fn(arg, slice);
		Py_END_ALLOW_THREADS
		if (rc != -ETIMEDOUT && rc != -EAGAIN && rc != -EBUSY)
			return rc;
		if (last)
			return -ETIMEDOUT;
		if (PyErr_CheckSignals())
			return SKPY_EINTR;
	}
}

static skpy_life lives = { .prev = &lives, .next = &lives };

int skpy_usable(void *obj)
{
	if (((skpy_base *)obj)->closed) {
		PyErr_Format(PyExc_ValueError, "operation on a closed %s", Py_TYPE((PyObject *)obj)->tp_name);
		return -1;
	}
	return 0;
}

int skpy_closable(void *obj, const char *what)
{
	skpy_base *b = obj;
	if (b->held > 0) {
		PyErr_Format(PyExc_RuntimeError, "cannot %s while a thread holds its lock", what);
		return -1;
	}
	if (b->busy > 0) {
		PyErr_Format(PyExc_RuntimeError, "cannot %s: %d call(s) in other threads are using it", what, b->busy);
		return -1;
	}
	return 0;
}

int skpy_base_traverse(PyObject *obj, visitproc visit, void *arg)
{
	Py_VISIT(((skpy_base *)obj)->lock);
	return 0;
}

int skpy_base_clear(PyObject *obj)
{
	Py_CLEAR(((skpy_base *)obj)->lock);
	return 0;
}

void skpy_base_teardown(void *obj)
{
	skpy_base *b = obj;
	PyObject_GC_UnTrack(b);
	if (b->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)b);
	Py_CLEAR(b->lock);
}

PyObject *skpy_unlink_named(skpy_life *life)
{
	if (!life->name[0]) {
		PyErr_SetString(PyExc_ValueError,
				"this object has no name of its own (anonymous, or inside another segment)");
		return NULL;
	}
	int rc = sk_segment_unlink(life->name);
	if (rc)
		return skpy_raise(rc, life->name);
	life->creator = 0; /* nothing left to remove at close */
	skpy_exit_forget(life->name);
	Py_RETURN_NONE;
}

static void life_enlist(skpy_life *l)
{
	if (l->next)
		return;
	l->next = &lives;
	l->prev = lives.prev;
	lives.prev->next = l;
	lives.prev = l;
}

void skpy_life_init(skpy_life *l, int generated, const char *name)
{
	l->creator = generated ? skpy_pid : 0;
	snprintf(l->name, sizeof l->name, "%s", name ? name : "");
	l->shown[0] = 0;
	if (l->creator)
		life_enlist(l);
}

const char *skpy_life_shown(const skpy_life *l)
{
	return l->shown[0] ? l->shown : l->name;
}

int skpy_same_segment(const sk_segment *a, const sk_segment *b)
{
	sk_segment_info x, y;
	if (sk_segment_info_get(a, &x) || sk_segment_info_get(b, &y))
		return 0;
	return x.kind == y.kind && x.ctime_ns == y.ctime_ns && x.creator_pid == y.creator_pid &&
	       x.creator_start == y.creator_start && x.data_size == y.data_size;
}

/* A hand-over name from seg; when the name seg was attached by is gone (a
 * hand-over name, removed once attached), from the name users see, if that
 * still names this very segment. */
static int link_token(const sk_segment *seg, const char *shown, char *token, size_t len)
{
	int rc = sk_segment_link(seg, NULL, token, len);
	if ((rc == -ENOENT || rc == -ESTALE) && shown) {
		sk_segment *other;
		int orc = sk_segment_open(shown, SK_RDONLY | SK_OPEN_ANY_OWNER, &other);
		if (!orc) {
			if (skpy_same_segment(seg, other))
				rc = sk_segment_link(other, NULL, token, len);
			sk_segment_close(other);
		}
	}
	return rc;
}

PyObject *skpy_handoff(const sk_segment *seg, const skpy_life *l)
{
	char token[SK_NAME_MAX + 1];
	const char *shown = l->shown[0] ? l->shown : NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = link_token(seg, shown, token, sizeof token);
	Py_END_ALLOW_THREADS
	if (rc == -ENOENT || rc == -ESTALE) {
		PyErr_Format(PyExc_FileNotFoundError, "%s cannot be handed to another process: its name was removed%s",
			     skpy_life_shown(l), rc == -ESTALE ? " (and is another segment's now)" : "");
		return NULL;
	}
	if (rc)
		return skpy_raise(rc, skpy_life_shown(l));
	return PyUnicode_FromString(token);
}

/* Attached by a hand-over name: it is this process's to remove, now (its
 * mapping holds the segment from here on, so a receiver killed later leaves
 * no name behind); the object shows the segment's own name. */
void skpy_life_adopt(skpy_life *l, const char *shown)
{
	if (l->name[0] && strcmp(l->name, shown ? shown : "")) {
		(void)sk_segment_unlink(l->name);
		skpy_exit_forget(l->name);
	}
	snprintf(l->shown, sizeof l->shown, "%s", shown && strcmp(shown, l->name) ? shown : "");
	if (l->creator == skpy_pid)
		l->creator = 0; /* nothing left for this object to remove */
}

PyObject *skpy_handoff_method(const sk_segment *seg, skpy_life *l)
{
	if (!seg) {
		PyErr_SetString(PyExc_ValueError, "operation on a closed shmkit object");
		return NULL;
	}
	return skpy_handoff(seg, l);
}

PyObject *skpy_adopt_method(skpy_life *l, PyObject *shown)
{
	const char *s;
	if (!skpy_strname_conv(shown, &s))
		return NULL;
	skpy_life_adopt(l, s);
	Py_RETURN_NONE;
}

static void life_unlink(skpy_life *l)
{
	if (l->creator && l->creator == skpy_pid && l->name[0]) {
		(void)sk_segment_unlink(l->name);
		skpy_exit_forget(l->name);
	}
	l->creator = 0;
}

void skpy_life_end(skpy_life *l)
{
	life_unlink(l);
	if (l->next) {
		l->prev->next = l->next;
		l->next->prev = l->prev;
		l->prev = l->next = NULL;
	}
}

static void life_atexit(void)
{
	for (skpy_life *l = lives.next; l != &lives; l = l->next)
		life_unlink(l);
}

/* The names of the segments this process created (a set of str, under the
 * GIL). At its normal exit the owned ones among them go: those whose header
 * still names this process, alive, as creator and says owned (a name made
 * again by someone else since is left alone). */
static PyObject *created;

void skpy_exit_register(const char *name)
{
	if (!name || !name[0])
		return;
	if (!created && !(created = PySet_New(NULL))) {
		PyErr_Clear();
		return;
	}
	PyObject *s = PyUnicode_FromString(name);
	if (!s || PySet_Add(created, s))
		PyErr_Clear(); /* at worst the name is left to gc */
	Py_XDECREF(s);
}

void skpy_exit_forget(const char *name)
{
	PyObject *s = created && name ? PyUnicode_FromString(name) : NULL;
	if (s && PySet_Discard(created, s) < 0)
		PyErr_Clear();
	Py_XDECREF(s);
}

static void created_atexit(void)
{
	if (!created)
		return;
	PyObject *names = PySequence_List(created);
	if (!names) {
		PyErr_Clear();
		return;
	}
	pid_t me = getpid();
	for (Py_ssize_t i = 0; i < PyList_GET_SIZE(names); i++) {
		const char *n = PyUnicode_AsUTF8(PyList_GET_ITEM(names, i));
		sk_segment_info in;
		if (n && sk_segment_stat(n, &in) == 0 && in.owned && in.creator_pid == me && in.creator_alive == 1)
			(void)sk_segment_unlink(n);
		PyErr_Clear();
	}
	Py_DECREF(names);
	PySet_Clear(created);
}

static PyObject *mod_atexit(PyObject *mod, PyObject *unused)
{
	(void)mod;
	(void)unused;
	refresh_pid();
	life_atexit();
	created_atexit();
	Py_RETURN_NONE;
}

/* After a fork, in the child: what the parent created is not the child's. */
static PyObject *mod_forget_created(PyObject *mod, PyObject *unused)
{
	(void)mod;
	(void)unused;
	if (created)
		PySet_Clear(created);
	Py_RETURN_NONE;
}

/* ---- dtypes ---- */

/* The buffer-protocol format of each dtype, as a string, from the library's
 * dtype traits (filled by skpy_base_init). */
static char dtype_formats[SK_DTYPE_MAX + 1][2];

const char *skpy_dtype_format(sk_dtype d)
{
	return (int)d >= 1 && (int)d <= SK_DTYPE_MAX ? dtype_formats[d] : "B";
}

static PyObject *numpy_mod;

PyObject *skpy_numpy(void)
{
	if (!numpy_mod)
		numpy_mod = PyImport_ImportModule("numpy");
	return numpy_mod;
}

/* numpy.dtype(name) when NumPy is there, else the name as a str. */
PyObject *skpy_dtype_object(sk_dtype d)
{
	const char *n = sk_dtype_name(d);
	if (!n)
		return PyErr_Format(PyExc_ValueError, "unknown dtype %d", (int)d);
	PyObject *np = skpy_numpy();
	if (!np) {
		PyErr_Clear();
		return PyUnicode_FromString(n);
	}
	return PyObject_CallMethod(np, "dtype", "s", n);
}

int skpy_dtype_arg(const char *n, sk_dtype *out)
{
	*out = sk_dtype_from_name(n);
	if (!*out) {
		PyErr_Format(PyExc_TypeError,
			     "unsupported dtype %s: shmkit stores bool, int8..int64, uint8..uint64, float32, float64",
			     n);
		return -1;
	}
	return 0;
}

/* Element <-> Python object. */
int skpy_elem_from_py(sk_dtype d, PyObject *o, void *out)
{
	switch (d) {
	case SK_BOOL: {
		int t = PyObject_IsTrue(o);
		if (t < 0)
			return -1;
		*(uint8_t *)out = (uint8_t)t;
		return 0;
	}
	case SK_FLOAT32:
	case SK_FLOAT64: {
		double v = PyFloat_AsDouble(o);
		if (v == -1.0 && PyErr_Occurred())
			return -1;
		if (d == SK_FLOAT32)
			*(float *)out = (float)v;
		else
			*(double *)out = v;
		return 0;
	}
	case SK_UINT64: {
		PyObject *i = PyNumber_Index(o);
		if (!i)
			return -1;
		unsigned long long v = PyLong_AsUnsignedLongLong(i);
		Py_DECREF(i);
		if (v == (unsigned long long)-1 && PyErr_Occurred())
			return -1;
		*(uint64_t *)out = v;
		return 0;
	}
	default: {
		PyObject *i = PyNumber_Index(o);
		if (!i)
			return -1;
		long long v = PyLong_AsLongLong(i);
		Py_DECREF(i);
		if (v == -1 && PyErr_Occurred())
			return -1;
		const sk_dtype_traits *t = sk_dtype_traits_of(d);
		size_t sz = t ? t->size : 8;
		int is_signed = t && t->kind == 'i';
		long long lo = 0, hi = 0;
		if (sz < 8) {
			lo = is_signed ? -(1LL << (sz * 8 - 1)) : 0;
			hi = is_signed ? (1LL << (sz * 8 - 1)) - 1 : (1LL << (sz * 8)) - 1;
			if (v < lo || v > hi) {
				PyErr_Format(PyExc_OverflowError, "%lld does not fit in %s", v, sk_dtype_name(d));
				return -1;
			}
		}
		switch (sz) {
		case 1: *(int8_t *)out = (int8_t)v; break;
		case 2: *(int16_t *)out = (int16_t)v; break;
		case 4: *(int32_t *)out = (int32_t)v; break;
		default: *(int64_t *)out = v; break;
		}
		return 0;
	}
	}
}

PyObject *skpy_elem_to_py(sk_dtype d, const void *p)
{
	switch (d) {
	case SK_BOOL: return PyBool_FromLong(*(const uint8_t *)p);
	case SK_INT8: return PyLong_FromLong(*(const int8_t *)p);
	case SK_INT16: return PyLong_FromLong(*(const int16_t *)p);
	case SK_INT32: return PyLong_FromLong(*(const int32_t *)p);
	case SK_INT64: return PyLong_FromLongLong(*(const int64_t *)p);
	case SK_UINT8: return PyLong_FromUnsignedLong(*(const uint8_t *)p);
	case SK_UINT16: return PyLong_FromUnsignedLong(*(const uint16_t *)p);
	case SK_UINT32: return PyLong_FromUnsignedLong(*(const uint32_t *)p);
	case SK_UINT64: return PyLong_FromUnsignedLongLong(*(const uint64_t *)p);
	case SK_FLOAT32: return PyFloat_FromDouble(*(const float *)p);
	case SK_FLOAT64: return PyFloat_FromDouble(*(const double *)p);
	}
	return PyErr_Format(PyExc_ValueError, "unknown dtype %d", (int)d);
}

/* ---- segment info as a dict ---- */

PyObject *skpy_info_dict(const sk_segment_info *in)
{
	PyObject *shape = PyTuple_New(in->kind == SK_KIND_ARRAY ? in->ndim : 0);
	if (!shape)
		return NULL;
	for (int i = 0; in->kind == SK_KIND_ARRAY && i < in->ndim; i++)
		PyTuple_SET_ITEM(shape, i, PyLong_FromUnsignedLongLong(in->shape[i]));
	const char *dt = in->dtype ? sk_dtype_name(in->dtype) : NULL;
	return Py_BuildValue("{s:s,s:s,s:K,s:K,s:K,s:i,s:O,s:L,s:z,s:N,s:K,s:O,s:O,s:O,s:K,s:I,s:I}", "name", in->name,
			     "kind", sk_kind_name(in->kind), "data_size", (unsigned long long)in->data_size,
			     "data_offset", (unsigned long long)in->data_offset, "file_size",
			     (unsigned long long)in->file_size, "creator_pid", (int)in->creator_pid, "creator_alive",
			     in->creator_alive > 0    ? Py_True
			     : in->creator_alive == 0 ? Py_False
						      : Py_None,
			     "ctime_ns", (long long)in->ctime_ns, "dtype", dt, "shape", shape, "nitems",
			     (unsigned long long)in->nitems, "locked", in->locked ? Py_True : Py_False, "owned",
			     in->owned ? Py_True : Py_False, "frozen", in->frozen ? Py_True : Py_False, "page_size",
			     (unsigned long long)in->page_size, "mode", (unsigned)in->mode, "uid", (unsigned)in->uid);
}

/* ---- argument converters ---- */

int skpy_name_arg(PyObject *o, const char **out)
{
	*out = NULL;
	if (!o || o == Py_None)
		return 0;
	if (!PyUnicode_Check(o)) {
		PyErr_Format(PyExc_TypeError, "a segment name must be a str, not %.100s", Py_TYPE(o)->tp_name);
		return -1;
	}
	Py_ssize_t n;
	const char *s = PyUnicode_AsUTF8AndSize(o, &n);
	if (!s)
		return -1;
	if ((size_t)n != strlen(s)) {
		PyErr_SetString(PyExc_ValueError, "a segment name cannot contain a NUL character");
		return -1;
	}
	*out = s;
	return 0;
}

int skpy_name_conv(PyObject *o, void *out)
{
	return skpy_name_arg(o, out) == 0;
}

int skpy_strname_conv(PyObject *o, void *out)
{
	if (o == Py_None) {
		PyErr_SetString(PyExc_TypeError, "a segment name must be a str, not None");
		return 0;
	}
	return skpy_name_arg(o, out) == 0;
}

int skpy_u64_conv(PyObject *o, void *out)
{
	PyObject *i = PyNumber_Index(o);
	if (!i)
		return 0;
	if (_PyLong_Sign(i) < 0) {
		Py_DECREF(i);
		PyErr_SetString(PyExc_OverflowError, "a size, count or index cannot be negative");
		return 0;
	}
	unsigned long long v = PyLong_AsUnsignedLongLong(i);
	Py_DECREF(i);
	if (v == (unsigned long long)-1 && PyErr_Occurred())
		return 0; /* OverflowError: 2**64 and beyond */
	*(uint64_t *)out = v;
	return 1;
}

PyObject *skpy_attr(const char *module, const char *name)
{
	PyObject *m = PyImport_ImportModule(module);
	if (!m)
		return NULL;
	PyObject *a = PyObject_GetAttrString(m, name);
	Py_DECREF(m);
	return a;
}

int skpy_add_type(PyObject *m, PyTypeObject *t, const char *name)
{
	if (PyType_Ready(t) < 0)
		return -1;
	Py_INCREF(t);
	if (PyModule_AddObject(m, name, (PyObject *)t) < 0) {
		Py_DECREF(t);
		return -1;
	}
	return 0;
}

static PyObject *mod_strerror(PyObject *mod, PyObject *arg)
{
	(void)mod;
	long c = PyLong_AsLong(arg);
	if (c == -1 && PyErr_Occurred())
		return NULL;
	return PyUnicode_FromString(sk_strerror((int)c));
}

/* dtypes(): the library's dtype traits, one tuple per dtype, in code order:
 * (name, size, kind, format, typestr). The package derives its tables here. */
static PyObject *mod_dtypes(PyObject *mod, PyObject *unused)
{
	(void)mod;
	(void)unused;
	PyObject *t = PyTuple_New(SK_DTYPE_MAX);
	for (int d = 1; t && d <= SK_DTYPE_MAX; d++) {
		const sk_dtype_traits *tr = sk_dtype_traits_of((sk_dtype)d);
		PyObject *e =
		    Py_BuildValue("(sICCs)", tr->name, (unsigned)tr->size, (int)tr->kind, (int)tr->format, tr->typestr);
		if (!e) {
			Py_DECREF(t);
			return NULL;
		}
		PyTuple_SET_ITEM(t, d - 1, e);
	}
	return t;
}

static PyMethodDef base_methods[] = {
	{ "strerror", (PyCFunction)mod_strerror, METH_O, "strerror(code, /)\n--\n\nThe text of a shmkit return code." },
	{ "dtypes", (PyCFunction)mod_dtypes, METH_NOARGS,
	  "dtypes($module, /)\n--\n\nThe library's dtype traits: (name, size, kind, format, typestr) per dtype." },
	{ "_atexit", (PyCFunction)mod_atexit, METH_NOARGS,
	  "_atexit($module, /)\n--\n\nRemove the names this process removes at its exit: generated names of "
	  "objects it still has, and every owned segment it created (registered with atexit)." },
	{ "_forget_created", (PyCFunction)mod_forget_created, METH_NOARGS,
	  "_forget_created($module, /)\n--\n\nIn a forked child: the parent's segments are not the child's to "
	  "remove." },
	{ 0 }
};

int skpy_base_init(PyObject *m)
{
	for (int d = 1; d <= SK_DTYPE_MAX; d++) {
		char f = sk_dtype_traits_of((sk_dtype)d)->format;
		/* 64-bit integers as C long where it is 64 bits: NumPy then gives its
		 * canonical int64 / uint64 types (for 'q' it gives longlong). */
		if (sizeof(long) == 8 && (f == 'q' || f == 'Q'))
			f = f == 'q' ? 'l' : 'L';
		dtype_formats[d][0] = f;
	}
	refresh_pid();
	if (pthread_atfork(NULL, NULL, refresh_pid))
		return PyErr_NoMemory(), -1;
	skpy_Empty = skpy_attr("queue", "Empty");
	skpy_Full = skpy_attr("queue", "Full");
	skpy_BrokenBarrier = skpy_attr("threading", "BrokenBarrierError");
	if (!skpy_Empty || !skpy_Full || !skpy_BrokenBarrier)
		return -1;
	skpy_Error =
	    PyErr_NewExceptionWithDoc("shmkit.Error",
				      "A shmkit failure that is not an OS error: a corrupt, foreign, truncated "
				      "or frozen segment, an unusable lock, ... args are (code, message[, name]).",
				      PyExc_OSError, NULL);
	skpy_OwnerDiedWarning = PyErr_NewExceptionWithDoc(
	    "shmkit.OwnerDiedWarning",
	    "Issued by acquire() when the lock's previous holder died holding it: the lock was acquired and "
	    "the data it protects may be half updated.",
	    PyExc_RuntimeWarning, NULL);
	PyObject *sd_base = PyObject_HasAttrString(PyImport_AddModule("queue"), "ShutDown")
				? skpy_attr("queue", "ShutDown")
				: (Py_INCREF(PyExc_Exception), PyExc_Exception);
	skpy_ShutDown = sd_base ? PyErr_NewExceptionWithDoc(
				      "shmkit.ShutDown",
				      "The queue was shut down: puts fail, and gets once it is empty.", sd_base, NULL)
				: NULL;
	Py_XDECREF(sd_base);
	if (!skpy_Error || !skpy_OwnerDiedWarning || !skpy_ShutDown)
		return -1;
	Py_INCREF(skpy_Error);
	Py_INCREF(skpy_OwnerDiedWarning);
	Py_INCREF(skpy_ShutDown);
	if (PyModule_AddObject(m, "Error", skpy_Error) ||
	    PyModule_AddObject(m, "OwnerDiedWarning", skpy_OwnerDiedWarning) ||
	    PyModule_AddObject(m, "ShutDown", skpy_ShutDown))
		return -1;
	if (PyModule_AddFunctions(m, base_methods))
		return -1;
	if (PyModule_AddStringConstant(m, "library_version", sk_version()) ||
	    PyModule_AddStringConstant(m, "simd_path", sk_simd_path()) ||
	    PyModule_AddIntConstant(m, "NAME_MAX", SK_NAME_MAX))
		return -1;
	return 0;
}
