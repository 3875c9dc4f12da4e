/*
 * python/ext/module.c: the shmkit._shmkit module: errors, waiting, and the
 * segment-backed objects that export memory (Segment, SharedArray, Bits) and
 * SharedValue. Locks are in sync.c, the queue in queue.c.
 *
 * Closing an object while buffer views of it (NumPy arrays, memoryviews) are
 * alive raises BufferError, as mmap and multiprocessing.shared_memory do: the
 * mapping stays until the last view is gone and close() is called again, or
 * the object is garbage collected (which cannot happen while views hold it).
 */
#include "ext.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
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

int skpy_wait(skpy_wait_fn fn, void *arg, int64_t deadline)
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

int skpy_name_arg(PyObject *o, const char **out)
{
	*out = NULL;
	if (!o || o == Py_None)
		return 0;
	if (!PyUnicode_Check(o)) {
		PyErr_Format(PyExc_TypeError, "a segment name must be a str, not %.100s", Py_TYPE(o)->tp_name);
		return -1;
	}
	*out = PyUnicode_AsUTF8(o);
	return *out ? 0 : -1;
}

static skpy_life lives = { .prev = &lives, .next = &lives };

int skpy_refuse_busy(void *obj)
{
	int n = ((skpy_base *)obj)->busy;
	if (n > 0) {
		PyErr_Format(PyExc_RuntimeError, "cannot close: %d call(s) in other threads are using it", n);
		return -1;
	}
	return 0;
}

int skpy_closable(void *obj)
{
	skpy_base *b = obj;
	if (b->lock && skpy_mutex_is_owned((MutexObject *)b->lock)) {
		PyErr_SetString(PyExc_RuntimeError, "cannot close while this thread holds its lock");
		return -1;
	}
	return skpy_refuse_busy(b);
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
	Py_RETURN_NONE;
}

void skpy_life_init(skpy_life *l, int generated, const char *name)
{
	l->creator = generated ? getpid() : 0;
	snprintf(l->name, sizeof l->name, "%s", name ? name : "");
	l->prev = l->next = NULL;
	if (l->creator) {
		l->next = &lives;
		l->prev = lives.prev;
		lives.prev->next = l;
		lives.prev = l;
	}
}

static void life_unlink(skpy_life *l)
{
	if (l->creator && l->creator == getpid() && l->name[0])
		(void)sk_segment_unlink(l->name);
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

void skpy_life_atexit(void)
{
	for (skpy_life *l = lives.next; l != &lives; l = l->next)
		life_unlink(l);
}

static PyObject *mod_atexit(PyObject *mod, PyObject *unused)
{
	(void)mod;
	(void)unused;
	skpy_life_atexit();
	Py_RETURN_NONE;
}

/* ---- dtypes ---- */

static const char *dtype_format(sk_dtype d)
{
	switch (d) {
	case SK_BOOL: return "?";
	case SK_INT8: return "b";
	case SK_INT16: return "h";
	case SK_INT32: return "i";
	case SK_INT64: return "q";
	case SK_UINT8: return "B";
	case SK_UINT16: return "H";
	case SK_UINT32: return "I";
	case SK_UINT64: return "Q";
	case SK_FLOAT32: return "f";
	case SK_FLOAT64: return "d";
	}
	return "B";
}

static PyObject *numpy_mod;

/* numpy.dtype(name) when NumPy is there, else the name as a str. */
static PyObject *dtype_object(sk_dtype d)
{
	const char *n = sk_dtype_name(d);
	if (!n)
		return PyErr_Format(PyExc_ValueError, "unknown dtype %d", (int)d);
	if (!numpy_mod) {
		numpy_mod = PyImport_ImportModule("numpy");
		if (!numpy_mod) {
			PyErr_Clear();
			return PyUnicode_FromString(n);
		}
	}
	return PyObject_CallMethod(numpy_mod, "dtype", "s", n);
}

static int dtype_arg(const char *n, sk_dtype *out)
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
static int elem_from_py(sk_dtype d, PyObject *o, void *out)
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
		size_t sz = sk_dtype_size(d);
		int is_signed = d == SK_INT8 || d == SK_INT16 || d == SK_INT32 || d == SK_INT64;
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

static PyObject *elem_to_py(sk_dtype d, const void *p)
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

static PyObject *info_dict(const sk_segment_info *in)
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
			     in->creator_alive ? Py_True : Py_False, "ctime_ns", (long long)in->ctime_ns, "dtype", dt,
			     "shape", shape, "nitems", (unsigned long long)in->nitems, "locked",
			     in->locked ? Py_True : Py_False, "owned", in->owned ? Py_True : Py_False, "frozen",
			     in->frozen ? Py_True : Py_False, "page_size", (unsigned long long)in->page_size, "mode",
			     (unsigned)in->mode, "uid", (unsigned)in->uid);
}

/* ---- Segment, SharedArray, Bits: objects that export their data ---- */

typedef struct {
	PyObject_HEAD int closed; /* the fields of skpy_base first */
	int busy;
	PyObject *lock; /* locked arrays: the Mutex made by get_lock() */
	PyObject *weakrefs;
	int kind;
	sk_segment *seg; /* raw segments */
	sk_array *arr;
	sk_bits *bits;
	char *data;
	uint64_t nbytes;
	int readonly;
	Py_ssize_t exports;
	skpy_life life;
	int ndim;
	Py_ssize_t itemsize;
	const char *format;
	sk_dtype dtype;
	Py_ssize_t shape[SK_MAX_DIMS], strides[SK_MAX_DIMS];
} DataObject;

static PyTypeObject Segment_Type, SharedArray_Type, Bits_Type;
static char empty_data[8];

static sk_segment *data_segment(DataObject *d)
{
	return d->seg ? d->seg : d->arr ? sk_array_segment(d->arr) : d->bits ? sk_bits_segment(d->bits) : NULL;
}

static int data_usable(DataObject *d)
{
	if (d->closed) {
		PyErr_SetString(PyExc_ValueError, "operation on a closed shmkit object");
		return -1;
	}
	return 0;
}

static void data_fill(DataObject *d)
{
	sk_segment *seg = data_segment(d);
	d->readonly = (sk_segment_flags(seg) & SK_RDONLY) != 0;
	if (d->arr) {
		d->dtype = sk_array_dtype(d->arr);
		d->itemsize = (Py_ssize_t)sk_dtype_size(d->dtype);
		d->format = dtype_format(d->dtype);
		d->ndim = sk_array_ndim(d->arr);
		const uint64_t *sh = sk_array_shape(d->arr);
		const int64_t *st = sk_array_strides(d->arr);
		for (int i = 0; i < d->ndim; i++) {
			d->shape[i] = (Py_ssize_t)sh[i];
			d->strides[i] = (Py_ssize_t)st[i];
		}
		d->data = sk_array_data(d->arr);
		d->nbytes = sk_array_nbytes(d->arr);
	} else if (d->bits) {
		d->dtype = SK_UINT64;
		d->itemsize = 8;
		d->format = "Q";
		d->ndim = 1;
		d->shape[0] = (Py_ssize_t)((sk_bits_len(d->bits) + 63) / 64);
		d->strides[0] = 8;
		d->data = (char *)sk_bits_words(d->bits);
		d->nbytes = (uint64_t)d->shape[0] * 8;
	} else {
		d->dtype = SK_UINT8;
		d->itemsize = 1;
		d->format = "B";
		d->ndim = 1;
		d->shape[0] = (Py_ssize_t)sk_segment_size(d->seg);
		d->strides[0] = 1;
		d->data = sk_segment_data(d->seg);
		d->nbytes = sk_segment_size(d->seg);
	}
	if (!d->data)
		d->data = empty_data;
}

static PyObject *data_new(PyTypeObject *type)
{
	DataObject *d = (DataObject *)type->tp_alloc(type, 0);
	return (PyObject *)d;
}

static void data_release(DataObject *d)
{
	if (d->closed)
		return;
	d->closed = 1;
	if (d->seg)
		sk_segment_close(d->seg);
	if (d->arr)
		sk_array_close(d->arr);
	if (d->bits)
		sk_bits_close(d->bits);
	d->seg = NULL;
	d->arr = NULL;
	d->bits = NULL;
	d->data = empty_data;
	skpy_life_end(&d->life);
}

static void data_dealloc(DataObject *d)
{
	skpy_base_teardown(d);
	data_release(d);
	Py_TYPE(d)->tp_free((PyObject *)d);
}

static PyObject *data_close(DataObject *d, PyObject *unused)
{
	(void)unused;
	if (d->closed)
		Py_RETURN_NONE;
	if (d->exports > 0) {
		PyErr_Format(PyExc_BufferError,
			     "cannot close %s: %zd buffer view(s) of it (NumPy arrays, memoryviews) are still alive",
			     d->life.name[0] ? d->life.name : "the segment", d->exports);
		return NULL;
	}
	if (skpy_closable(d))
		return NULL;
	data_release(d);
	Py_RETURN_NONE;
}

static PyObject *data_unlink(DataObject *d, PyObject *unused)
{
	(void)unused;
	return skpy_unlink_named(&d->life);
}

static PyObject *data_enter(DataObject *d, PyObject *unused)
{
	(void)unused;
	if (data_usable(d))
		return NULL;
	Py_INCREF(d);
	return (PyObject *)d;
}

static PyObject *data_exit(DataObject *d, PyObject *args)
{
	(void)args;
	return data_close(d, NULL);
}

static PyObject *data_info(DataObject *d, PyObject *unused)
{
	(void)unused;
	if (data_usable(d))
		return NULL;
	sk_segment_info in;
	sk_segment_info_get(data_segment(d), &in);
	return info_dict(&in);
}

static PyObject *data_freeze(DataObject *d, PyObject *unused)
{
	(void)unused;
	if (data_usable(d))
		return NULL;
	if (d->exports > 0) {
		PyErr_SetString(PyExc_BufferError, "cannot freeze while buffer views are alive (they may be writable)");
		return NULL;
	}
	int rc = sk_segment_freeze(data_segment(d));
	if (rc)
		return skpy_raise(rc, d->life.name);
	data_fill(d);
	Py_RETURN_NONE;
}

/* Pickling (spawn, Queue): by name, to be attached again where unpickled. */
static PyObject *data_reduce(DataObject *d, PyObject *unused)
{
	(void)unused;
	if (data_usable(d))
		return NULL;
	if (!d->life.name[0]) {
		PyErr_SetString(PyExc_TypeError, "an anonymous segment cannot be pickled: it has no name to attach by");
		return NULL;
	}
	PyObject *mod = PyImport_ImportModule("shmkit");
	if (!mod)
		return NULL;
	PyObject *fn = PyObject_GetAttrString(mod, "open");
	Py_DECREF(mod);
	if (!fn)
		return NULL;
	return Py_BuildValue("N(sO)", fn, d->life.name, d->readonly ? Py_True : Py_False);
}

static int data_getbuffer(DataObject *d, Py_buffer *view, int flags)
{
	if (d->closed) {
		PyErr_SetString(PyExc_BufferError, "the shmkit object is closed");
		view->obj = NULL;
		return -1;
	}
	if ((flags & PyBUF_WRITABLE) && d->readonly) {
		PyErr_SetString(PyExc_BufferError, "the segment was opened read-only");
		view->obj = NULL;
		return -1;
	}
	view->buf = d->data;
	view->obj = (PyObject *)d;
	Py_INCREF(d);
	view->len = (Py_ssize_t)d->nbytes;
	view->readonly = d->readonly;
	view->itemsize = d->itemsize;
	view->format = (flags & PyBUF_FORMAT) ? (char *)d->format : NULL;
	view->ndim = d->ndim;
	view->shape = (flags & PyBUF_ND) == PyBUF_ND ? d->shape : NULL;
	view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? d->strides : NULL;
	view->suboffsets = NULL;
	view->internal = NULL; /* without PyBUF_ND the consumer sees plain bytes: the data is C-contiguous */
	d->exports++;
	return 0;
}

static void data_releasebuffer(DataObject *d, Py_buffer *view)
{
	(void)view;
	d->exports--;
}

static PyBufferProcs data_as_buffer = {
	(getbufferproc)data_getbuffer,
	(releasebufferproc)data_releasebuffer,
};

static PyObject *data_get_name(DataObject *d, void *c)
{
	(void)c;
	return PyUnicode_FromString(d->life.name);
}
static PyObject *data_get_nbytes(DataObject *d, void *c)
{
	(void)c;
	if (data_usable(d))
		return NULL;
	return PyLong_FromUnsignedLongLong(d->nbytes);
}
static PyObject *data_get_readonly(DataObject *d, void *c)
{
	(void)c;
	return PyBool_FromLong(d->readonly);
}
static PyObject *data_get_closed(DataObject *d, void *c)
{
	(void)c;
	return PyBool_FromLong(d->closed);
}

/* Opens or creates with the GIL released: creating reserves every page. */
typedef struct {
	int op;
	const char *name;
	int flags;
	sk_dtype dtype;
	int ndim;
	uint64_t shape[SK_MAX_DIMS];
	uint64_t size;
	sk_create_opts opts;
	void *out;
} open_args;

enum { OP_SEG_CREATE, OP_SEG_OPEN, OP_ARR_CREATE, OP_ARR_OPEN, OP_BITS_CREATE, OP_BITS_OPEN };

static int run_open(open_args *a)
{
	int rc;
	Py_BEGIN_ALLOW_THREADS
	switch (a->op) {
	case OP_SEG_CREATE: rc = sk_segment_create(a->name, a->size, &a->opts, (sk_segment **)&a->out); break;
	case OP_SEG_OPEN: rc = sk_segment_open(a->name, a->flags, (sk_segment **)&a->out); break;
	case OP_ARR_CREATE:
		rc = sk_array_create(a->name, a->dtype, a->ndim, a->shape, &a->opts, (sk_array **)&a->out);
		break;
	case OP_ARR_OPEN: rc = sk_array_open(a->name, a->flags, (sk_array **)&a->out); break;
	case OP_BITS_CREATE: rc = sk_bits_create(a->name, a->size, &a->opts, (sk_bits **)&a->out); break;
	default: rc = sk_bits_open(a->name, a->flags, (sk_bits **)&a->out); break;
	}
	Py_END_ALLOW_THREADS
	return rc;
}

static PyObject *data_wrap(PyTypeObject *type, open_args *a, int generated)
{
	DataObject *d = (DataObject *)data_new(type);
	if (!d) {
		switch (a->op) {
		case OP_SEG_CREATE:
		case OP_SEG_OPEN: sk_segment_close(a->out); break;
		case OP_ARR_CREATE:
		case OP_ARR_OPEN: sk_array_close(a->out); break;
		default: sk_bits_close(a->out); break;
		}
		return NULL;
	}
	switch (a->op) {
	case OP_SEG_CREATE:
	case OP_SEG_OPEN: d->seg = a->out; break;
	case OP_ARR_CREATE:
	case OP_ARR_OPEN: d->arr = a->out; break;
	default: d->bits = a->out; break;
	}
	sk_segment *seg = data_segment(d);
	skpy_life_init(&d->life, generated, sk_segment_name(seg));
	data_fill(d);
	return (PyObject *)d;
}

static int flags_of(int owned, int anonymous, int huge)
{
	return (owned ? SK_CREATE_OWNED : 0) | (anonymous ? SK_CREATE_ANON : 0) | (huge ? SK_CREATE_HUGE : 0);
}

/* ---- Segment (raw bytes; SharedMemory is built on it) ---- */

static PyObject *segment_create(PyObject *mod, PyObject *args, PyObject *kw)
{
	(void)mod;
	static char *kwlist[] = { "name", "size", "owned", "huge", NULL };
	PyObject *name_o;
	unsigned long long size;
	int owned = 1, huge = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OK|pp", kwlist, &name_o, &size, &owned, &huge))
		return NULL;
	open_args a = { .op = OP_SEG_CREATE, .size = size };
	if (skpy_name_arg(name_o, &a.name))
		return NULL;
	a.opts.flags = (uint32_t)flags_of(owned || !a.name, 0, huge);
	int rc = run_open(&a);
	if (rc)
		return skpy_raise(rc, a.name);
	return data_wrap(&Segment_Type, &a, a.name == NULL);
}

static PyObject *segment_open(PyObject *mod, PyObject *args, PyObject *kw)
{
	(void)mod;
	static char *kwlist[] = { "name", "readonly", NULL };
	const char *name;
	int ro = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|p", kwlist, &name, &ro))
		return NULL;
	open_args a = { .op = OP_SEG_OPEN, .name = name, .flags = ro ? SK_RDONLY : SK_RDWR };
	int rc = run_open(&a);
	if (rc)
		return skpy_raise(rc, name);
	return data_wrap(&Segment_Type, &a, 0);
}

/* open_data(name, readonly=False): one open for the kinds that export data:
 * a Segment, SharedArray or Bits; for any other kind, its name as a str
 * (shmkit.open then opens it with the right type). */
static PyObject *open_data(PyObject *mod, PyObject *args, PyObject *kw)
{
	(void)mod;
	static char *kwlist[] = { "name", "readonly", NULL };
	const char *name;
	int ro = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|p", kwlist, &name, &ro))
		return NULL;
	open_args a = { .op = OP_SEG_OPEN, .name = name, .flags = ro ? SK_RDONLY : SK_RDWR };
	int rc = run_open(&a);
	if (rc)
		return skpy_raise(rc, name);
	sk_segment *seg = a.out;
	int kind = sk_segment_kind(seg);
	if (kind == SK_KIND_RAW)
		return data_wrap(&Segment_Type, &a, 0);
	if (kind == SK_KIND_ARRAY || kind == SK_KIND_BITS) {
		rc = kind == SK_KIND_ARRAY ? sk_array_wrap(seg, (sk_array **)&a.out)
					   : sk_bits_wrap(seg, (sk_bits **)&a.out);
		if (rc) {
			sk_segment_close(seg);
			return skpy_raise(rc, name);
		}
		a.op = kind == SK_KIND_ARRAY ? OP_ARR_OPEN : OP_BITS_OPEN;
		return data_wrap(kind == SK_KIND_ARRAY ? &SharedArray_Type : &Bits_Type, &a, 0);
	}
	sk_segment_close(seg);
	return PyUnicode_FromString(sk_kind_name(kind));
}

static PyObject *segment_get_size(DataObject *d, void *c)
{
	(void)c;
	return PyLong_FromUnsignedLongLong(d->closed ? 0 : d->nbytes);
}

/* ---- SharedArray ---- */

static PyObject *array_create(PyObject *mod, PyObject *args, PyObject *kw)
{
	(void)mod;
	static char *kwlist[] = { "name", "shape", "dtype", "owned", "locked", "huge", NULL };
	PyObject *name_o, *shape_o;
	const char *dt;
	int owned = 1, locked = 0, huge = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OOs|ppp", kwlist, &name_o, &shape_o, &dt, &owned, &locked, &huge))
		return NULL;
	open_args a = { .op = OP_ARR_CREATE };
	if (skpy_name_arg(name_o, &a.name) || dtype_arg(dt, &a.dtype))
		return NULL;
	PyObject *seq = PySequence_Fast(shape_o, "shape must be a sequence of non-negative ints");
	if (!seq)
		return NULL;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
	if (n > SK_MAX_DIMS) {
		Py_DECREF(seq);
		return PyErr_Format(PyExc_ValueError, "at most %d dimensions", SK_MAX_DIMS);
	}
	a.ndim = (int)n;
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *it = PyNumber_Index(PySequence_Fast_GET_ITEM(seq, i));
		long long v = it ? PyLong_AsLongLong(it) : -1;
		Py_XDECREF(it);
		if (v < 0) {
			Py_DECREF(seq);
			if (!PyErr_Occurred())
				PyErr_SetString(PyExc_ValueError, "negative dimensions are not allowed");
			return NULL;
		}
		a.shape[i] = (uint64_t)v;
	}
	Py_DECREF(seq);
	a.opts.flags = (uint32_t)flags_of(owned || !a.name, 0, huge) | (locked ? SK_CREATE_LOCKED : 0);
	int rc = run_open(&a);
	if (rc)
		return skpy_raise(rc, a.name);
	return data_wrap(&SharedArray_Type, &a, a.name == NULL);
}

static PyObject *array_open(PyObject *mod, PyObject *args, PyObject *kw)
{
	(void)mod;
	static char *kwlist[] = { "name", "readonly", NULL };
	const char *name;
	int ro = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|p", kwlist, &name, &ro))
		return NULL;
	open_args a = { .op = OP_ARR_OPEN, .name = name, .flags = ro ? SK_RDONLY : SK_RDWR };
	int rc = run_open(&a);
	if (rc)
		return skpy_raise(rc, name);
	return data_wrap(&SharedArray_Type, &a, 0);
}

static PyObject *array_get_dtype(DataObject *d, void *c)
{
	(void)c;
	return dtype_object(d->dtype);
}
static PyObject *array_get_shape(DataObject *d, void *c)
{
	(void)c;
	if (data_usable(d))
		return NULL;
	PyObject *t = PyTuple_New(d->ndim);
	for (int i = 0; t && i < d->ndim; i++)
		PyTuple_SET_ITEM(t, i, PyLong_FromSsize_t(d->shape[i]));
	return t;
}
static PyObject *array_get_ndim(DataObject *d, void *c)
{
	(void)c;
	return PyLong_FromLong(d->ndim);
}
static PyObject *array_get_size(DataObject *d, void *c)
{
	(void)c;
	if (data_usable(d))
		return NULL;
	return PyLong_FromUnsignedLongLong(sk_array_size(d->arr));
}
static PyObject *array_get_locked(DataObject *d, void *c)
{
	(void)c;
	if (data_usable(d))
		return NULL;
	return PyBool_FromLong(sk_array_mutex(d->arr) != NULL);
}

static Py_ssize_t array_len(DataObject *d)
{
	if (data_usable(d))
		return -1;
	if (d->ndim == 0) {
		PyErr_SetString(PyExc_TypeError, "len() of a 0-d array");
		return -1;
	}
	return d->shape[0];
}

static PyObject *array_get_lock(DataObject *d, PyObject *unused)
{
	(void)unused;
	if (data_usable(d))
		return NULL;
	sk_mutex *m = sk_array_mutex(d->arr);
	if (!m) {
		PyErr_SetString(PyExc_AttributeError, "this array carries no lock (create it with locked=True)");
		return NULL;
	}
	if (!d->lock) {
		d->lock = skpy_mutex_embedded(m, (PyObject *)d, 1);
		if (!d->lock)
			return NULL;
	}
	Py_INCREF(d->lock);
	return d->lock;
}

static PyObject *array_repr(DataObject *d)
{
	if (d->closed)
		return PyUnicode_FromFormat("<shmkit.SharedArray %s (closed)>", d->life.name);
	PyObject *shape = array_get_shape(d, NULL);
	if (!shape)
		return NULL;
	PyObject *r = PyUnicode_FromFormat("<shmkit.SharedArray %s shape=%R dtype=%s%s>", d->life.name, shape,
					   sk_dtype_name(d->dtype), d->readonly ? " readonly" : "");
	Py_DECREF(shape);
	return r;
}

/* ---- Bits ---- */

static PyObject *bits_tp_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "nbits", "name", "owned", "huge", NULL };
	unsigned long long n;
	PyObject *name_o = Py_None;
	int owned = 1, huge = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "K|O$pp", kwlist, &n, &name_o, &owned, &huge))
		return NULL;
	open_args a = { .op = OP_BITS_CREATE, .size = n };
	if (skpy_name_arg(name_o, &a.name))
		return NULL;
	a.opts.flags = (uint32_t)flags_of(owned || !a.name, 0, huge);
	int rc = run_open(&a);
	if (rc)
		return skpy_raise(rc, a.name);
	return data_wrap(type, &a, a.name == NULL);
}

static PyObject *bits_open(PyObject *cls, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "readonly", NULL };
	const char *name;
	int ro = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|p", kwlist, &name, &ro))
		return NULL;
	open_args a = { .op = OP_BITS_OPEN, .name = name, .flags = ro ? SK_RDONLY : SK_RDWR };
	int rc = run_open(&a);
	if (rc)
		return skpy_raise(rc, name);
	return data_wrap((PyTypeObject *)cls, &a, 0);
}

static Py_ssize_t bits_len(DataObject *d)
{
	if (data_usable(d))
		return -1;
	return (Py_ssize_t)sk_bits_len(d->bits);
}

/* An index argument, negative counting from the end; -1 with an exception. */
static int bit_index(DataObject *d, PyObject *o, uint64_t *out)
{
	if (data_usable(d))
		return -1;
	Py_ssize_t i = PyNumber_AsSsize_t(o, PyExc_IndexError);
	if (i == -1 && PyErr_Occurred())
		return -1;
	Py_ssize_t n = (Py_ssize_t)sk_bits_len(d->bits);
	if (i < 0)
		i += n;
	if (i < 0 || i >= n) {
		PyErr_SetString(PyExc_IndexError, "bit index out of range");
		return -1;
	}
	*out = (uint64_t)i;
	return 0;
}

static int bits_check_rc(DataObject *d, int rc)
{
	if (rc < 0) {
		skpy_raise(rc, d->life.name);
		return -1;
	}
	return rc;
}

static PyObject *bits_getitem(DataObject *d, PyObject *key)
{
	uint64_t i;
	if (bit_index(d, key, &i))
		return NULL;
	int rc = bits_check_rc(d, sk_bits_test(d->bits, i));
	return rc < 0 ? NULL : PyBool_FromLong(rc);
}

static int bits_setitem(DataObject *d, PyObject *key, PyObject *v)
{
	uint64_t i;
	if (!v) {
		PyErr_SetString(PyExc_TypeError, "bits cannot be deleted");
		return -1;
	}
	if (bit_index(d, key, &i))
		return -1;
	int t = PyObject_IsTrue(v);
	if (t < 0)
		return -1;
	return bits_check_rc(d, t ? sk_bits_set(d->bits, i) : sk_bits_clear(d->bits, i)) < 0 ? -1 : 0;
}

static PyObject *bits_bitop(DataObject *d, PyObject *arg, int (*op)(sk_bits *, uint64_t))
{
	uint64_t i;
	if (bit_index(d, arg, &i))
		return NULL;
	int rc = bits_check_rc(d, op(d->bits, i));
	return rc < 0 ? NULL : PyBool_FromLong(rc);
}

static PyObject *bits_test_and_set(DataObject *d, PyObject *arg)
{
	return bits_bitop(d, arg, sk_bits_test_and_set);
}
static PyObject *bits_test_and_clear(DataObject *d, PyObject *arg)
{
	return bits_bitop(d, arg, sk_bits_test_and_clear);
}
static PyObject *bits_flip(DataObject *d, PyObject *arg)
{
	uint64_t i;
	if (bit_index(d, arg, &i))
		return NULL;
	if (bits_check_rc(d, sk_bits_flip(d->bits, i)) < 0)
		return NULL;
	Py_RETURN_NONE;
}

/* begin/end arguments: end None means len; both clamp like slices do not:
 * out of range is an error. */
static int bit_range(DataObject *d, PyObject *args, PyObject *kw, uint64_t *b, uint64_t *e)
{
	static char *kwlist[] = { "begin", "end", NULL };
	unsigned long long begin = 0;
	PyObject *end_o = Py_None;
	if (data_usable(d) || !PyArg_ParseTupleAndKeywords(args, kw, "|KO", kwlist, &begin, &end_o))
		return -1;
	uint64_t n = sk_bits_len(d->bits);
	uint64_t end = n;
	if (end_o != Py_None) {
		end = PyLong_AsUnsignedLongLong(end_o);
		if (end == (uint64_t)-1 && PyErr_Occurred())
			return -1;
	}
	if (begin > end || end > n) {
		PyErr_Format(PyExc_IndexError, "range [%llu, %llu) is not within the %llu bits", begin,
			     (unsigned long long)end, (unsigned long long)n);
		return -1;
	}
	*b = begin;
	*e = end;
	return 0;
}

static PyObject *bits_count(DataObject *d, PyObject *args, PyObject *kw)
{
	uint64_t b, e;
	if (bit_range(d, args, kw, &b, &e))
		return NULL;
	int64_t c;
	d->busy++;
	Py_BEGIN_ALLOW_THREADS
	c = sk_bits_count(d->bits, b, e);
	Py_END_ALLOW_THREADS
	d->busy--;
	if (c < 0)
		return skpy_raise((int)c, d->life.name);
	return PyLong_FromLongLong(c);
}

static PyObject *bits_range_op(DataObject *d, PyObject *args, PyObject *kw, int set)
{
	uint64_t b, e;
	if (bit_range(d, args, kw, &b, &e))
		return NULL;
	int rc;
	d->busy++;
	Py_BEGIN_ALLOW_THREADS
	rc = set ? sk_bits_set_range(d->bits, b, e) : sk_bits_clear_range(d->bits, b, e);
	Py_END_ALLOW_THREADS
	d->busy--;
	if (rc < 0)
		return skpy_raise(rc, d->life.name);
	Py_RETURN_NONE;
}
static PyObject *bits_set_range(DataObject *d, PyObject *args, PyObject *kw)
{
	return bits_range_op(d, args, kw, 1);
}
static PyObject *bits_clear_range(DataObject *d, PyObject *args, PyObject *kw)
{
	return bits_range_op(d, args, kw, 0);
}

static PyObject *bits_find(DataObject *d, PyObject *args, int set)
{
	unsigned long long from = 0;
	if (data_usable(d) || !PyArg_ParseTuple(args, "|K", &from))
		return NULL;
	int64_t r;
	d->busy++;
	Py_BEGIN_ALLOW_THREADS
	r = set ? sk_bits_find_next_set(d->bits, from) : sk_bits_find_next_clear(d->bits, from);
	Py_END_ALLOW_THREADS
	d->busy--;
	if (r == SK_ENOTFOUND)
		return PyLong_FromLong(-1);
	if (r < 0)
		return skpy_raise((int)r, d->life.name);
	return PyLong_FromLongLong(r);
}
static PyObject *bits_find_next_set(DataObject *d, PyObject *args)
{
	return bits_find(d, args, 1);
}
static PyObject *bits_find_next_clear(DataObject *d, PyObject *args)
{
	return bits_find(d, args, 0);
}

static PyObject *bits_words(DataObject *d, PyObject *unused)
{
	(void)unused;
	if (data_usable(d))
		return NULL;
	if (!numpy_mod) {
		numpy_mod = PyImport_ImportModule("numpy");
		if (!numpy_mod)
			return NULL;
	}
	return PyObject_CallMethod(numpy_mod, "asarray", "O", (PyObject *)d);
}

static PyObject *bits_repr(DataObject *d)
{
	if (d->closed)
		return PyUnicode_FromFormat("<shmkit.Bits %s (closed)>", d->life.name);
	return PyUnicode_FromFormat("<shmkit.Bits %s len=%llu%s>", d->life.name,
				    (unsigned long long)sk_bits_len(d->bits), d->readonly ? " readonly" : "");
}

/* ---- type tables of the three ---- */

#define DATA_COMMON_METHODS                                                                     \
	{ "close", (PyCFunction)data_close, METH_NOARGS,                                        \
	  "Unmap. BufferError while NumPy arrays or memoryviews of it are alive." },            \
	    { "unlink", (PyCFunction)data_unlink, METH_NOARGS,                                  \
	      "Remove the name; processes that have it keep their mapping." },                  \
	    { "info", (PyCFunction)data_info, METH_NOARGS, "The segment's header as a dict." }, \
	    { "freeze", (PyCFunction)data_freeze, METH_NOARGS,                                  \
	      "Make the segment read-only for good: later read-write opens fail." },            \
	    { "__enter__", (PyCFunction)data_enter, METH_NOARGS, NULL },                        \
	    { "__exit__", (PyCFunction)data_exit, METH_VARARGS, NULL },                         \
	{                                                                                       \
		"__reduce__", (PyCFunction)data_reduce, METH_NOARGS, NULL                       \
	}

#define DATA_COMMON_GETSET                                                             \
	{ "name", (getter)data_get_name, NULL, "segment name", NULL },                 \
	    { "nbytes", (getter)data_get_nbytes, NULL, "bytes of data", NULL },        \
	    { "readonly", (getter)data_get_readonly, NULL, "opened read-only", NULL }, \
	{                                                                              \
		"closed", (getter)data_get_closed, NULL, "True after close()", NULL    \
	}

static PyMethodDef segment_methods[] = { DATA_COMMON_METHODS, { NULL } };
static PyGetSetDef segment_getset[] = { DATA_COMMON_GETSET,
					{ "size", (getter)segment_get_size, NULL, "bytes of data", NULL },
					{ NULL } };

static PyMethodDef array_methods[] = { DATA_COMMON_METHODS,
				       { "get_lock", (PyCFunction)array_get_lock, METH_NOARGS,
					 "The robust lock carried by a locked array (an RLock)." },
				       { NULL } };
static PyGetSetDef array_getset[] = { DATA_COMMON_GETSET,
				      { "dtype", (getter)array_get_dtype, NULL, "element type", NULL },
				      { "shape", (getter)array_get_shape, NULL, "extent of each dimension", NULL },
				      { "ndim", (getter)array_get_ndim, NULL, "number of dimensions", NULL },
				      { "size", (getter)array_get_size, NULL, "number of elements", NULL },
				      { "locked", (getter)array_get_locked, NULL, "carries a lock", NULL },
				      { NULL } };
static PySequenceMethods array_as_sequence = { .sq_length = (lenfunc)array_len };

static PyMethodDef bits_methods[] = {
	DATA_COMMON_METHODS,
	{ "open", (PyCFunction)(void (*)(void))bits_open, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
	  "Bits.open(name, readonly=False): attach to an existing bit array." },
	{ "count", (PyCFunction)(void (*)(void))bits_count, METH_VARARGS | METH_KEYWORDS,
	  "count(begin=0, end=None): set bits in [begin, end)." },
	{ "set_range", (PyCFunction)(void (*)(void))bits_set_range, METH_VARARGS | METH_KEYWORDS,
	  "set_range(begin=0, end=None): set every bit of [begin, end)." },
	{ "clear_range", (PyCFunction)(void (*)(void))bits_clear_range, METH_VARARGS | METH_KEYWORDS,
	  "clear_range(begin=0, end=None): clear every bit of [begin, end)." },
	{ "test_and_set", (PyCFunction)bits_test_and_set, METH_O, "Atomically set bit i; return its previous value." },
	{ "test_and_clear", (PyCFunction)bits_test_and_clear, METH_O,
	  "Atomically clear bit i; return its previous value." },
	{ "flip", (PyCFunction)bits_flip, METH_O, "Atomically flip bit i." },
	{ "find_next_set", (PyCFunction)bits_find_next_set, METH_VARARGS,
	  "find_next_set(start=0): index of the first set bit >= start, or -1." },
	{ "find_next_clear", (PyCFunction)bits_find_next_clear, METH_VARARGS,
	  "find_next_clear(start=0): index of the first clear bit >= start, or -1." },
	{ "words", (PyCFunction)bits_words, METH_NOARGS,
	  "A NumPy uint64 array over the words (zero copy; bit i is bit i%64 of word i//64)." },
	{ NULL }
};
static PyGetSetDef bits_getset[] = { DATA_COMMON_GETSET, { NULL } };
static PySequenceMethods bits_as_sequence = { .sq_length = (lenfunc)bits_len };
static PyMappingMethods bits_as_mapping = {
	.mp_length = (lenfunc)bits_len,
	.mp_subscript = (binaryfunc)bits_getitem,
	.mp_ass_subscript = (objobjargproc)bits_setitem,
};

static PyTypeObject Segment_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit.Segment",
	.tp_basicsize = sizeof(DataObject),
	.tp_dealloc = (destructor)data_dealloc,
	.tp_traverse = skpy_base_traverse,
	.tp_clear = skpy_base_clear,
	.tp_as_buffer = &data_as_buffer,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "A raw shared-memory segment (bytes). Made by shmkit._shmkit.segment_create / segment_open.",
	.tp_weaklistoffset = offsetof(DataObject, weakrefs),
	.tp_methods = segment_methods,
	.tp_getset = segment_getset,
};

static PyTypeObject SharedArray_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit.SharedArray",
	.tp_basicsize = sizeof(DataObject),
	.tp_dealloc = (destructor)data_dealloc,
	.tp_traverse = skpy_base_traverse,
	.tp_clear = skpy_base_clear,
	.tp_repr = (reprfunc)array_repr,
	.tp_as_sequence = &array_as_sequence,
	.tp_as_buffer = &data_as_buffer,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "A typed N-d array in a named segment; numpy.asarray(a) is a zero-copy view.\n"
		  "Made by shmkit.create() and shmkit.open().",
	.tp_weaklistoffset = offsetof(DataObject, weakrefs),
	.tp_methods = array_methods,
	.tp_getset = array_getset,
};

static PyTypeObject Bits_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit.Bits",
	.tp_basicsize = sizeof(DataObject),
	.tp_dealloc = (destructor)data_dealloc,
	.tp_traverse = skpy_base_traverse,
	.tp_clear = skpy_base_clear,
	.tp_repr = (reprfunc)bits_repr,
	.tp_as_sequence = &bits_as_sequence,
	.tp_as_mapping = &bits_as_mapping,
	.tp_as_buffer = &data_as_buffer,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "Bits(nbits, name=None, *, owned=True, huge=False): a shared bit array.\n"
		  "Bits.open(name) attaches. The buffer protocol exports the uint64 words.",
	.tp_weaklistoffset = offsetof(DataObject, weakrefs),
	.tp_methods = bits_methods,
	.tp_getset = bits_getset,
	.tp_new = bits_tp_new,
};

/* ---- SharedValue ---- */

typedef struct {
	PyObject_HEAD int closed; /* the fields of skpy_base first */
	int busy;
	PyObject *lock; /* locked values: the RLock made by get_lock() */
	PyObject *weakrefs;
	sk_value *v;
	sk_dtype dtype;
	int readonly;
	skpy_life life;
} ValueObject;

static PyTypeObject SharedValue_Type;

static int value_usable(ValueObject *v)
{
	if (v->closed) {
		PyErr_SetString(PyExc_ValueError, "operation on a closed shmkit value");
		return -1;
	}
	return 0;
}

static PyObject *value_wrap(sk_value *sv, int generated, int readonly)
{
	ValueObject *v = (ValueObject *)SharedValue_Type.tp_alloc(&SharedValue_Type, 0);
	if (!v) {
		sk_value_close(sv);
		return NULL;
	}
	v->v = sv;
	v->dtype = sk_value_dtype(sv);
	v->readonly = readonly;
	skpy_life_init(&v->life, generated, sk_value_name(sv));
	return (PyObject *)v;
}

static PyObject *value_create(PyObject *mod, PyObject *args, PyObject *kw)
{
	(void)mod;
	static char *kwlist[] = { "name", "dtype", "lock", "owned", NULL };
	PyObject *name_o;
	const char *dt, *name;
	int lock = 1, owned = 1;
	sk_dtype dtype;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "Os|pp", kwlist, &name_o, &dt, &lock, &owned))
		return NULL;
	if (skpy_name_arg(name_o, &name) || dtype_arg(dt, &dtype))
		return NULL;
	sk_create_opts o = { .flags = (lock ? 0 : SK_CREATE_RAW) | skpy_owned_flag(owned || !name) };
	sk_value *sv;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = sk_value_create(name, dtype, &o, &sv);
	Py_END_ALLOW_THREADS
	if (rc)
		return skpy_raise(rc, name);
	return value_wrap(sv, name == NULL, 0);
}

static PyObject *value_open(PyObject *mod, PyObject *args, PyObject *kw)
{
	(void)mod;
	static char *kwlist[] = { "name", "readonly", NULL };
	const char *name;
	int ro = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|p", kwlist, &name, &ro))
		return NULL;
	sk_value *sv;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = sk_value_open(name, ro ? SK_RDONLY : SK_RDWR, &sv);
	Py_END_ALLOW_THREADS
	if (rc)
		return skpy_raise(rc, name);
	return value_wrap(sv, 0, ro);
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
	return v->lock && skpy_mutex_is_owned((MutexObject *)v->lock);
}

static PyObject *value_get(ValueObject *v, void *c)
{
	(void)c;
	if (value_usable(v))
		return NULL;
	uint64_t raw = 0;
	if (value_held_here(v)) {
		memcpy(&raw, sk_value_ptr(v->v), sk_dtype_size(v->dtype));
	} else {
		int rc;
		v->busy++;
		Py_BEGIN_ALLOW_THREADS
		rc = sk_value_get(v->v, &raw);
		Py_END_ALLOW_THREADS
		v->busy--;
		if (rc && rc != SK_EOWNERDEAD)
			return skpy_raise(rc, v->life.name);
	}
	return elem_to_py(v->dtype, &raw);
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
	if (elem_from_py(v->dtype, o, &raw))
		return -1;
	if (value_held_here(v)) {
		memcpy(sk_value_ptr(v->v), &raw, sk_dtype_size(v->dtype));
		return 0;
	}
	int rc;
	v->busy++;
	Py_BEGIN_ALLOW_THREADS
	rc = sk_value_set(v->v, &raw);
	Py_END_ALLOW_THREADS
	v->busy--;
	if (rc && rc != SK_EOWNERDEAD) {
		skpy_raise(rc, v->life.name);
		return -1;
	}
	return 0;
}

static PyObject *value_add(ValueObject *v, PyObject *delta)
{
	if (value_usable(v))
		return NULL;
	if (value_held_here(v)) {
		PyErr_SetString(PyExc_RuntimeError,
				"add() takes the value's lock itself: call it without holding get_lock()");
		return NULL;
	}
	uint64_t d = 0, old = 0;
	if (elem_from_py(v->dtype, delta, &d))
		return NULL;
	int rc;
	v->busy++;
	Py_BEGIN_ALLOW_THREADS
	rc = sk_value_add(v->v, &d, &old);
	Py_END_ALLOW_THREADS
	v->busy--;
	if (rc && rc != SK_EOWNERDEAD)
		return skpy_raise(rc, v->life.name);
	return elem_to_py(v->dtype, &old);
}

static PyObject *value_cas(ValueObject *v, PyObject *args)
{
	PyObject *exp_o, *des_o;
	if (value_usable(v) || !PyArg_ParseTuple(args, "OO", &exp_o, &des_o))
		return NULL;
	if (value_held_here(v)) {
		PyErr_SetString(PyExc_RuntimeError,
				"compare_and_swap() takes the value's lock itself: call it without holding get_lock()");
		return NULL;
	}
	uint64_t e = 0, d = 0;
	if (elem_from_py(v->dtype, exp_o, &e) || elem_from_py(v->dtype, des_o, &d))
		return NULL;
	int rc;
	v->busy++;
	Py_BEGIN_ALLOW_THREADS
	rc = sk_value_cas(v->v, &e, &d);
	Py_END_ALLOW_THREADS
	v->busy--;
	if (rc < 0 && rc != SK_EOWNERDEAD)
		return skpy_raise(rc, v->life.name);
	return Py_BuildValue("(ON)", rc == 1 ? Py_True : Py_False, elem_to_py(v->dtype, &e));
}

static PyObject *value_get_lock(ValueObject *v, PyObject *unused)
{
	(void)unused;
	if (value_usable(v))
		return NULL;
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
	if (skpy_closable(v))
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
	return Py_BuildValue("N(sO)", fn, v->life.name, v->readonly ? Py_True : Py_False);
}

static PyObject *value_repr(ValueObject *v)
{
	if (v->closed)
		return PyUnicode_FromFormat("<shmkit.SharedValue %s (closed)>", v->life.name);
	PyObject *val = value_get(v, NULL);
	if (!val)
		return NULL;
	PyObject *r = PyUnicode_FromFormat("<shmkit.SharedValue %s %s %R>", v->life.name, sk_dtype_name(v->dtype), val);
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
	return dtype_object(v->dtype);
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

static PyMethodDef value_methods[] = {
	{ "get_lock", (PyCFunction)value_get_lock, METH_NOARGS,
	  "The value's robust lock (an RLock); .value inside it reads and writes directly." },
	{ "add", (PyCFunction)value_add, METH_O, "Atomically add delta; return the old value." },
	{ "compare_and_swap", (PyCFunction)value_cas, METH_VARARGS,
	  "compare_and_swap(expected, desired) -> (swapped, value seen)." },
	{ "close", (PyCFunction)value_close, METH_NOARGS, "Unmap." },
	{ "unlink", (PyCFunction)value_unlink, METH_NOARGS, "Remove the name." },
	{ "__enter__", (PyCFunction)value_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)value_exit, METH_VARARGS, NULL },
	{ "__reduce__", (PyCFunction)value_reduce, METH_NOARGS, NULL },
	{ NULL }
};
static PyGetSetDef value_getset[] = { { "value", (getter)value_get, (setter)value_set,
					"the shared scalar (read and written under its lock)", NULL },
				      { "name", (getter)value_get_name, NULL, "segment name", NULL },
				      { "dtype", (getter)value_get_dtype, NULL, "element type", NULL },
				      { NULL } };

static PyTypeObject SharedValue_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit.SharedValue",
	.tp_basicsize = sizeof(ValueObject),
	.tp_dealloc = (destructor)value_dealloc,
	.tp_traverse = skpy_base_traverse,
	.tp_clear = skpy_base_clear,
	.tp_repr = (reprfunc)value_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "A shared scalar in a named segment; made by shmkit.Value().",
	.tp_weaklistoffset = offsetof(ValueObject, weakrefs),
	.tp_methods = value_methods,
	.tp_getset = value_getset,
};

/* ---- module functions ---- */

static PyObject *mod_stat(PyObject *mod, PyObject *arg)
{
	(void)mod;
	const char *name = PyUnicode_AsUTF8(arg);
	if (!name)
		return NULL;
	sk_segment_info in;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = sk_segment_stat(name, &in);
	Py_END_ALLOW_THREADS
	if (rc)
		return skpy_raise(rc, name);
	return info_dict(&in);
}

static PyObject *mod_unlink(PyObject *mod, PyObject *arg)
{
	(void)mod;
	const char *name = PyUnicode_AsUTF8(arg);
	if (!name)
		return NULL;
	int rc = sk_segment_unlink(name);
	if (rc)
		return skpy_raise(rc, name);
	Py_RETURN_NONE;
}

static int gc_report(const char *name, const sk_segment_info *info, void *arg)
{
	(void)info;
	PyObject *s = PyUnicode_FromString(name);
	if (!s || PyList_Append((PyObject *)arg, s)) {
		Py_XDECREF(s);
		return -1;
	}
	Py_DECREF(s);
	return 0;
}

static PyObject *mod_gc(PyObject *mod, PyObject *args, PyObject *kw)
{
	(void)mod;
	static char *kwlist[] = { "dry_run", NULL };
	int dry = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|p", kwlist, &dry))
		return NULL;
	PyObject *list = PyList_New(0);
	if (!list)
		return NULL;
	int rc = sk_segment_gc(dry ? SK_GC_DRY_RUN : 0, gc_report, list);
	if (PyErr_Occurred()) {
		Py_DECREF(list);
		return NULL;
	}
	if (rc < 0) {
		Py_DECREF(list);
		return skpy_raise(rc, NULL);
	}
	return list;
}

static int list_fn(const char *name, int status, const sk_segment_info *info, void *arg)
{
	(void)info;
	if (status)
		return 0;
	PyObject *s = PyUnicode_FromString(name);
	if (!s || PyList_Append((PyObject *)arg, s)) {
		Py_XDECREF(s);
		return -1;
	}
	Py_DECREF(s);
	return 0;
}

static PyObject *mod_list(PyObject *mod, PyObject *unused)
{
	(void)mod;
	(void)unused;
	PyObject *list = PyList_New(0);
	if (!list)
		return NULL;
	int rc = sk_segment_list(list_fn, list);
	if (PyErr_Occurred()) {
		Py_DECREF(list);
		return NULL;
	}
	if (rc < 0) {
		Py_DECREF(list);
		return skpy_raise(rc, NULL);
	}
	return list;
}

static PyObject *mod_strerror(PyObject *mod, PyObject *arg)
{
	(void)mod;
	long c = PyLong_AsLong(arg);
	if (c == -1 && PyErr_Occurred())
		return NULL;
	return PyUnicode_FromString(sk_strerror((int)c));
}

static PyMethodDef module_methods[] = {
	{ "segment_create", (PyCFunction)(void (*)(void))segment_create, METH_VARARGS | METH_KEYWORDS,
	  "segment_create(name, size, owned=True, huge=False) -> Segment" },
	{ "segment_open", (PyCFunction)(void (*)(void))segment_open, METH_VARARGS | METH_KEYWORDS,
	  "segment_open(name, readonly=False) -> Segment" },
	{ "array_create", (PyCFunction)(void (*)(void))array_create, METH_VARARGS | METH_KEYWORDS,
	  "array_create(name, shape, dtype, owned=True, locked=False, huge=False) -> SharedArray" },
	{ "array_open", (PyCFunction)(void (*)(void))array_open, METH_VARARGS | METH_KEYWORDS,
	  "array_open(name, readonly=False) -> SharedArray" },
	{ "value_create", (PyCFunction)(void (*)(void))value_create, METH_VARARGS | METH_KEYWORDS,
	  "value_create(name, dtype, lock=True, owned=True) -> SharedValue" },
	{ "value_open", (PyCFunction)(void (*)(void))value_open, METH_VARARGS | METH_KEYWORDS,
	  "value_open(name, readonly=False) -> SharedValue" },
	{ "open_data", (PyCFunction)(void (*)(void))open_data, METH_VARARGS | METH_KEYWORDS,
	  "open_data(name, readonly=False) -> Segment, SharedArray or Bits; the kind's name for other kinds" },
	{ "stat", (PyCFunction)mod_stat, METH_O, "stat(name) -> dict: the validated header of a segment." },
	{ "unlink", (PyCFunction)mod_unlink, METH_O, "unlink(name): remove a segment's name." },
	{ "gc", (PyCFunction)(void (*)(void))mod_gc, METH_VARARGS | METH_KEYWORDS,
	  "gc(dry_run=False) -> names removed: owned segments whose creator died." },
	{ "list", (PyCFunction)mod_list, METH_NOARGS, "list() -> names of the valid shmkit segments in /dev/shm." },
	{ "strerror", (PyCFunction)mod_strerror, METH_O, "strerror(code) -> text of a shmkit return code." },
	{ "_atexit", (PyCFunction)mod_atexit, METH_NOARGS,
	  "Remove the generated names of objects this process made and still has (registered with atexit)." },
	{ NULL }
};

static struct PyModuleDef module_def = {
	PyModuleDef_HEAD_INIT,
	.m_name = "shmkit._shmkit",
	.m_doc = "The C core of the shmkit Python module. Use the shmkit package, not this.",
	.m_size = -1,
	.m_methods = module_methods,
};

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

static PyObject *attr_of(const char *mod, const char *name)
{
	PyObject *m = PyImport_ImportModule(mod);
	if (!m)
		return NULL;
	PyObject *a = PyObject_GetAttrString(m, name);
	Py_DECREF(m);
	return a;
}

PyMODINIT_FUNC PyInit__shmkit(void)
{
	PyObject *m = PyModule_Create(&module_def);
	if (!m)
		return NULL;
	skpy_Empty = attr_of("queue", "Empty");
	skpy_Full = attr_of("queue", "Full");
	skpy_BrokenBarrier = attr_of("threading", "BrokenBarrierError");
	if (!skpy_Empty || !skpy_Full || !skpy_BrokenBarrier)
		goto fail;
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
				? attr_of("queue", "ShutDown")
				: (Py_INCREF(PyExc_Exception), PyExc_Exception);
	skpy_ShutDown = sd_base ? PyErr_NewExceptionWithDoc(
				      "shmkit.ShutDown",
				      "The queue was shut down: puts fail, and gets once it is empty.", sd_base, NULL)
				: NULL;
	Py_XDECREF(sd_base);
	if (!skpy_Error || !skpy_OwnerDiedWarning || !skpy_ShutDown)
		goto fail;
	Py_INCREF(skpy_Error);
	Py_INCREF(skpy_OwnerDiedWarning);
	Py_INCREF(skpy_ShutDown);
	if (PyModule_AddObject(m, "Error", skpy_Error) ||
	    PyModule_AddObject(m, "OwnerDiedWarning", skpy_OwnerDiedWarning) ||
	    PyModule_AddObject(m, "ShutDown", skpy_ShutDown))
		goto fail;
	if (skpy_add_type(m, &Segment_Type, "Segment") || skpy_add_type(m, &SharedArray_Type, "SharedArray") ||
	    skpy_add_type(m, &Bits_Type, "Bits") || skpy_add_type(m, &SharedValue_Type, "SharedValue"))
		goto fail;
	if (skpy_sync_init(m) || skpy_queue_init(m))
		goto fail;
	if (PyModule_AddStringConstant(m, "library_version", sk_version()) ||
	    PyModule_AddStringConstant(m, "simd_path", sk_simd_path()) ||
	    PyModule_AddIntConstant(m, "NAME_MAX", SK_NAME_MAX))
		goto fail;
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
