/*
 * python/ext/data.c: the objects that map a segment and export its data
 * through the buffer protocol (Segment: raw bytes, SharedArray: a typed N-d
 * array, Bits: a bit array), and the segment-level functions of the module
 * (stat, unlink, gc, list, open_data). Layer: above base.c and sync.c
 * (a locked array's lock), see base.h.
 *
 * Closing never leaves a dangling view: close() unmaps at once only when
 * nothing can still point into the mapping (no buffer export, and no
 * reference to the object but the caller's: numpy.ndarray(buffer=obj) keeps a
 * reference and no export). Otherwise the object is marked closed (its
 * methods raise ValueError, new views are refused, a generated name is
 * removed) and the mapping stays until the object is deallocated, which
 * cannot happen while anything that uses the memory refers to it.
 */
#include "data.h"

#include <errno.h>
#include <string.h>

/* ---- Segment, SharedArray, Bits: objects that export their data ---- */

static PyTypeObject Segment_Type, ArrayHandle_Type;
static PyTypeObject *Bits_Type; /* bits.c gives it at init (skpy_data_set_bits_type) */
static char empty_data[8];

static sk_segment *data_segment(DataObject *d)
{
	return d->seg ? d->seg : d->arr ? sk_array_segment(d->arr) : d->bits ? sk_bits_segment(d->bits) : NULL;
}

int skpy_data_usable(DataObject *d)
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
		d->format = skpy_dtype_format(d->dtype);
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

int skpy_data_is_segment(PyObject *o)
{
	return PyObject_TypeCheck(o, &Segment_Type);
}

static PyObject *data_new(PyTypeObject *type)
{
	DataObject *d = (DataObject *)type->tp_alloc(type, 0);
	return (PyObject *)d;
}

/* Unmaps (if still mapped) and marks closed; removes a generated name. */
static void data_release(DataObject *d)
{
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

void skpy_data_dealloc(DataObject *d)
{
	skpy_base_teardown(d);
	data_release(d);
	Py_CLEAR(d->owner); /* after the view is gone */
	Py_TYPE(d)->tp_free((PyObject *)d);
}

/* close(). The call holds one reference (its argument, or the bound method
 * it was called through); any other reference may be a NumPy array made with
 * numpy.ndarray(buffer=obj), which points into the mapping and holds no
 * export, so only an object with no other reference and no export is
 * unmapped at once. */
PyObject *skpy_data_close(DataObject *d, PyObject *unused)
{
	(void)unused;
	if (d->closed)
		Py_RETURN_NONE;
	if (skpy_closable(d, "close"))
		return NULL;
	if (d->exports == 0 && Py_REFCNT(d) <= 1) {
		data_release(d); /* nothing else can reach the memory */
	} else {
		d->closed = 1; /* unmapped when deallocated: views and references still use it */
		skpy_life_end(&d->life);
	}
	Py_RETURN_NONE;
}

/* A view inside another segment (bits_view) has no name of its own: its
 * name is its segment's, which unlink and freeze must not touch. */
static int not_a_view(DataObject *d, const char *what)
{
	if (!d->owner)
		return 0;
	PyErr_Format(PyExc_ValueError, "cannot %s a view inside segment %s: it has no segment of its own", what,
		     d->life.name);
	return -1;
}

PyObject *skpy_data_unlink(DataObject *d, PyObject *unused)
{
	(void)unused;
	if (not_a_view(d, "unlink"))
		return NULL;
	return skpy_unlink_named(&d->life);
}

PyObject *skpy_data_enter(DataObject *d, PyObject *unused)
{
	(void)unused;
	if (skpy_data_usable(d))
		return NULL;
	Py_INCREF(d);
	return (PyObject *)d;
}

PyObject *skpy_data_exit(DataObject *d, PyObject *args)
{
	(void)args;
	return skpy_data_close(d, NULL);
}

PyObject *skpy_data_info(DataObject *d, PyObject *unused)
{
	(void)unused;
	if (skpy_data_usable(d))
		return NULL;
	sk_segment_info in;
	sk_segment_info_get(data_segment(d), &in);
	return skpy_info_dict(&in);
}

/* freeze(): later opens are read-only. The library remaps the handle it
 * freezes read-only in place, which would make every writable view of this
 * object (and numpy.ndarray(buffer=obj), which it cannot see) fault on its
 * next write: so the segment is frozen through a second handle, as another
 * process would, and this object keeps its writable mapping; it refuses
 * writes and writable views from now on. */
PyObject *skpy_data_freeze(DataObject *d, PyObject *unused)
{
	(void)unused;
	if (skpy_data_usable(d))
		return NULL;
	if (skpy_closable(d, "freeze") || not_a_view(d, "freeze"))
		return NULL;
	if (d->readonly)
		Py_RETURN_NONE;
	if (!d->life.name[0])
		return PyErr_Format(PyExc_ValueError, "an unnamed segment cannot be frozen from here");
	sk_segment *other;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = sk_segment_open(d->life.name, SK_RDWR, &other);
	if (!rc) {
		rc = skpy_same_segment(other, data_segment(d)) ? sk_segment_freeze(other) : -ESTALE;
		sk_segment_close(other);
	}
	Py_END_ALLOW_THREADS
	if (rc == SK_EFROZEN)
		rc = 0; /* frozen already */
	if (rc)
		return skpy_raise(rc, d->life.name);
	d->readonly = 1;
	Py_RETURN_NONE;
}

/* _publish(name=None): names a segment made unpublished (create-fill-
 * publish), atomically, once its creator has filled it; None: a generated
 * name, removed when this object goes. Nothing happens for a segment that
 * has its name already. */
int skpy_data_publish_as(DataObject *d, const char *name)
{
	if (!d->unpublished)
		return 0;
	int rc = sk_segment_publish(data_segment(d), name);
	if (rc) {
		skpy_raise(rc, name);
		return -1;
	}
	d->unpublished = 0;
	skpy_life_init(&d->life, d->generated, sk_segment_name(data_segment(d)));
	skpy_exit_register(d->life.name);
	return 0;
}

PyObject *skpy_data_publish(DataObject *d, PyObject *args)
{
	PyObject *name_o = Py_None;
	const char *name;
	if (skpy_data_usable(d) || !PyArg_ParseTuple(args, "|O", &name_o) || skpy_name_arg(name_o, &name) ||
	    skpy_data_publish_as(d, name))
		return NULL;
	Py_RETURN_NONE;
}

/* _freeze_mapping(): freezes the segment through this object's own handle,
 * remapping it read-only in place: for a creator that has handed out no view
 * yet (share() before it publishes). BufferError while views exist. */
PyObject *skpy_data_freeze_mapping(DataObject *d, PyObject *unused)
{
	(void)unused;
	if (skpy_data_usable(d) || skpy_closable(d, "freeze"))
		return NULL;
	if (d->exports) {
		PyErr_SetString(PyExc_BufferError, "cannot remap read-only while buffer views are alive");
		return NULL;
	}
	int rc = sk_segment_freeze(data_segment(d));
	if (rc)
		return skpy_raise(rc, d->life.name);
	data_fill(d);
	Py_RETURN_NONE;
}

/* Pickling (spawn, Queue): the package decides how (shmkit._reduce_data:
 * a reference to the segment, which the receiver attaches). */
PyObject *skpy_data_reduce(DataObject *d, PyObject *unused)
{
	(void)unused;
	if (skpy_data_usable(d))
		return NULL;
	PyObject *fn = skpy_attr("shmkit", "_reduce_data");
	if (!fn)
		return NULL;
	PyObject *r = PyObject_CallOneArg(fn, (PyObject *)d);
	Py_DECREF(fn);
	return r;
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

PyBufferProcs skpy_data_as_buffer = {
	(getbufferproc)data_getbuffer,
	(releasebufferproc)data_releasebuffer,
};

PyObject *skpy_data_get_name(DataObject *d, void *c)
{
	(void)c;
	return PyUnicode_FromString(skpy_life_shown(&d->life));
}

/* _handoff(): a name of its own for the process this object is pickled for
 * (base.h); _adopt(shown): this object was attached by such a name, and
 * removes it when it goes. */
PyObject *skpy_data_handoff(DataObject *d, PyObject *unused)
{
	(void)unused;
	if (skpy_data_usable(d))
		return NULL;
	return skpy_handoff_method(data_segment(d), &d->life);
}

PyObject *skpy_data_adopt(DataObject *d, PyObject *shown)
{
	return skpy_adopt_method(&d->life, shown);
}
PyObject *skpy_data_get_nbytes(DataObject *d, void *c)
{
	(void)c;
	if (skpy_data_usable(d))
		return NULL;
	return PyLong_FromUnsignedLongLong(d->nbytes);
}
PyObject *skpy_data_get_readonly(DataObject *d, void *c)
{
	(void)c;
	return PyBool_FromLong(d->readonly);
}
PyObject *skpy_data_get_address(DataObject *d, void *c)
{
	(void)c;
	if (skpy_data_usable(d))
		return NULL;
	return PyLong_FromVoidPtr(d->data);
}

PyObject *skpy_data_get_exports(DataObject *d, void *c)
{
	(void)c;
	return PyLong_FromSsize_t(d->exports);
}

PyObject *skpy_data_get_closed(DataObject *d, void *c)
{
	(void)c;
	return PyBool_FromLong(d->closed);
}

int skpy_data_open(open_args *a)
{
	int rc;
	const char *name = a->name;
	if (a->unpublished) { /* the name is given at _publish, once the data is in */
		a->opts.flags |= SK_CREATE_UNPUBLISHED;
		name = NULL;
	}
	Py_BEGIN_ALLOW_THREADS
	switch (a->op) {
	case OP_SEG_CREATE: rc = sk_segment_create(name, a->size, &a->opts, (sk_segment **)&a->out); break;
	case OP_SEG_OPEN: rc = sk_segment_open(name, a->flags, (sk_segment **)&a->out); break;
	case OP_ARR_CREATE:
		rc = sk_array_create(name, a->dtype, a->ndim, a->shape, &a->opts, (sk_array **)&a->out);
		break;
	case OP_ARR_OPEN: rc = sk_array_open(name, a->flags, (sk_array **)&a->out); break;
	case OP_BITS_CREATE: rc = sk_bits_create(name, a->size, &a->opts, (sk_bits **)&a->out); break;
	default: rc = sk_bits_open(name, a->flags, (sk_bits **)&a->out); break;
	}
	Py_END_ALLOW_THREADS
	return rc;
}

PyObject *skpy_data_wrap(PyTypeObject *type, open_args *a, int generated)
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
	d->unpublished = a->unpublished;
	d->generated = generated;
	skpy_life_init(&d->life, generated && !a->unpublished, sk_segment_name(seg));
	if (!a->unpublished && (a->op == OP_SEG_CREATE || a->op == OP_ARR_CREATE || a->op == OP_BITS_CREATE))
		skpy_exit_register(d->life.name);
	data_fill(d);
	return (PyObject *)d;
}

int skpy_data_flags(int owned, int anonymous, int huge)
{
	return (owned ? SK_CREATE_OWNED : 0) | (anonymous ? SK_CREATE_ANON : 0) | (huge ? SK_CREATE_HUGE : 0);
}

/* ---- Segment (raw bytes; SharedMemory is built on it) ---- */

static PyObject *segment_create(PyObject *mod, PyObject *args, PyObject *kw)
{
	(void)mod;
	static char *kwlist[] = { "name", "size", "owned", "huge", "publish", NULL };
	PyObject *name_o;
	uint64_t size;
	int owned = 1, huge = 0, publish = 1;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO&|ppp", kwlist, &name_o, skpy_u64_conv, &size, &owned, &huge,
					 &publish))
		return NULL;
	open_args a = { .op = OP_SEG_CREATE, .size = size, .unpublished = !publish };
	if (skpy_name_arg(name_o, &a.name))
		return NULL;
	a.opts.flags = (uint32_t)skpy_data_flags(owned || !a.name, 0, huge);
	int rc = skpy_data_open(&a);
	if (rc)
		return skpy_raise(rc, a.name);
	return skpy_data_wrap(&Segment_Type, &a, a.name == NULL);
}

static PyObject *segment_open(PyObject *mod, PyObject *args, PyObject *kw)
{
	(void)mod;
	static char *kwlist[] = { "name", "readonly", "any_owner", NULL };
	const char *name;
	int ro = 0, any = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|pp", kwlist, skpy_strname_conv, &name, &ro, &any))
		return NULL;
	open_args a = { .op = OP_SEG_OPEN, .name = name, .flags = skpy_open_flags(ro, any) };
	int rc = skpy_data_open(&a);
	if (rc)
		return skpy_raise(rc, name);
	return skpy_data_wrap(&Segment_Type, &a, 0);
}

/* open_data(name, readonly=False): one open for the kinds that export data:
 * a Segment, SharedArray or Bits; for any other kind, its name as a str
 * (shmkit.open then opens it with the right type). */
static PyObject *open_data(PyObject *mod, PyObject *args, PyObject *kw)
{
	(void)mod;
	static char *kwlist[] = { "name", "readonly", "any_owner", NULL };
	const char *name;
	int ro = 0, any = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|pp", kwlist, skpy_strname_conv, &name, &ro, &any))
		return NULL;
	open_args a = { .op = OP_SEG_OPEN, .name = name, .flags = skpy_open_flags(ro, any) };
	int rc = skpy_data_open(&a);
	if (rc)
		return skpy_raise(rc, name);
	sk_segment *seg = a.out;
	int kind = sk_segment_kind(seg);
	if (kind == SK_KIND_RAW)
		return skpy_data_wrap(&Segment_Type, &a, 0);
	if (kind == SK_KIND_ARRAY || kind == SK_KIND_BITS) {
		rc = kind == SK_KIND_ARRAY ? sk_array_wrap(seg, (sk_array **)&a.out)
					   : sk_bits_wrap(seg, (sk_bits **)&a.out);
		if (rc) {
			sk_segment_close(seg);
			return skpy_raise(rc, name);
		}
		a.op = kind == SK_KIND_ARRAY ? OP_ARR_OPEN : OP_BITS_OPEN;
		return skpy_data_wrap(kind == SK_KIND_ARRAY ? &ArrayHandle_Type : Bits_Type, &a, 0);
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
	static char *kwlist[] = { "name", "shape", "dtype", "owned", "locked", "huge", "publish", NULL };
	PyObject *name_o, *shape_o;
	const char *dt;
	int owned = 1, locked = 0, huge = 0, publish = 1;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OOs|pppp", kwlist, &name_o, &shape_o, &dt, &owned, &locked, &huge,
					 &publish))
		return NULL;
	open_args a = { .op = OP_ARR_CREATE, .unpublished = !publish };
	if (skpy_name_arg(name_o, &a.name) || skpy_dtype_arg(dt, &a.dtype))
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
	a.opts.flags = (uint32_t)skpy_data_flags(owned || !a.name, 0, huge) | (locked ? SK_CREATE_LOCKED : 0);
	int rc = skpy_data_open(&a);
	if (rc)
		return skpy_raise(rc, a.name);
	return skpy_data_wrap(&ArrayHandle_Type, &a, a.name == NULL);
}

static PyObject *array_open(PyObject *mod, PyObject *args, PyObject *kw)
{
	(void)mod;
	static char *kwlist[] = { "name", "readonly", "any_owner", NULL };
	const char *name;
	int ro = 0, any = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|pp", kwlist, skpy_strname_conv, &name, &ro, &any))
		return NULL;
	open_args a = { .op = OP_ARR_OPEN, .name = name, .flags = skpy_open_flags(ro, any) };
	int rc = skpy_data_open(&a);
	if (rc)
		return skpy_raise(rc, name);
	return skpy_data_wrap(&ArrayHandle_Type, &a, 0);
}

static PyObject *array_get_dtype(DataObject *d, void *c)
{
	(void)c;
	return skpy_dtype_object(d->dtype);
}
static PyObject *array_get_shape(DataObject *d, void *c)
{
	(void)c;
	if (skpy_data_usable(d))
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
	if (skpy_data_usable(d))
		return NULL;
	return PyLong_FromUnsignedLongLong(sk_array_size(d->arr));
}
static PyObject *array_get_locked(DataObject *d, void *c)
{
	(void)c;
	if (skpy_data_usable(d))
		return NULL;
	return PyBool_FromLong(sk_array_mutex(d->arr) != NULL);
}

static Py_ssize_t array_len(DataObject *d)
{
	if (skpy_data_usable(d))
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
	if (skpy_data_usable(d))
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
		return PyUnicode_FromFormat("<shmkit._shmkit.ArrayHandle %s (closed)>", d->life.name);
	PyObject *shape = array_get_shape(d, NULL);
	if (!shape)
		return NULL;
	PyObject *r = PyUnicode_FromFormat("<shmkit._shmkit.ArrayHandle %s shape=%R dtype=%s%s>", d->life.name, shape,
					   sk_dtype_name(d->dtype), d->readonly ? " readonly" : "");
	Py_DECREF(shape);
	return r;
}

/* ---- type tables of the three ---- */

static PyMethodDef segment_methods[] = { DATA_COMMON_METHODS, { 0 } };
static PyGetSetDef segment_getset[] = { DATA_COMMON_GETSET,
					{ "size", (getter)segment_get_size, NULL, "bytes of data", NULL },
					{ 0 } };

static PyMethodDef array_methods[] = { DATA_COMMON_METHODS,
				       { "get_lock", (PyCFunction)array_get_lock, METH_NOARGS,
					 "get_lock($self, /)\n--\n\n"
					 "The robust lock carried by a locked array (an RLock)." },
				       { 0 } };
static PyGetSetDef array_getset[] = { DATA_COMMON_GETSET,
				      { "dtype", (getter)array_get_dtype, NULL, "element type", NULL },
				      { "shape", (getter)array_get_shape, NULL, "extent of each dimension", NULL },
				      { "ndim", (getter)array_get_ndim, NULL, "number of dimensions", NULL },
				      { "size", (getter)array_get_size, NULL, "number of elements", NULL },
				      { "locked", (getter)array_get_locked, NULL, "carries a lock", NULL },
				      { 0 } };
static PySequenceMethods array_as_sequence = { .sq_length = (lenfunc)array_len };

static PyTypeObject Segment_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit.Segment",
	.tp_basicsize = sizeof(DataObject),
	.tp_dealloc = (destructor)skpy_data_dealloc,
	.tp_traverse = skpy_base_traverse,
	.tp_clear = skpy_base_clear,
	.tp_as_buffer = &skpy_data_as_buffer,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "A raw shared-memory segment (bytes). Made by shmkit._shmkit.segment_create / segment_open\n"
		  "(it has no constructor of its own).",
	.tp_weaklistoffset = offsetof(DataObject, weakrefs),
	.tp_methods = segment_methods,
	.tp_getset = segment_getset,
};

static PyTypeObject ArrayHandle_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit._shmkit.ArrayHandle",
	.tp_basicsize = sizeof(DataObject),
	.tp_dealloc = (destructor)skpy_data_dealloc,
	.tp_traverse = skpy_base_traverse,
	.tp_clear = skpy_base_clear,
	.tp_repr = (reprfunc)array_repr,
	.tp_as_sequence = &array_as_sequence,
	.tp_as_buffer = &skpy_data_as_buffer,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "The handle of a typed N-d array segment (shmkit.SharedArray, a numpy.ndarray, is made\n"
		  "over it); numpy.asarray(h) is a zero-copy view. Made by array_create and array_open.",
	.tp_weaklistoffset = offsetof(DataObject, weakrefs),
	.tp_methods = array_methods,
	.tp_getset = array_getset,
};

/* ---- module functions ---- */

static PyObject *mod_stat(PyObject *mod, PyObject *arg)
{
	(void)mod;
	const char *name;
	if (!skpy_strname_conv(arg, &name))
		return NULL;
	sk_segment_info in;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = sk_segment_stat(name, &in);
	Py_END_ALLOW_THREADS
	if (rc)
		return skpy_raise(rc, name);
	return skpy_info_dict(&in);
}

static PyObject *mod_unlink(PyObject *mod, PyObject *arg)
{
	(void)mod;
	const char *name;
	if (!skpy_strname_conv(arg, &name))
		return NULL;
	int rc = sk_segment_unlink(name);
	if (rc)
		return skpy_raise(rc, name);
	skpy_exit_forget(name);
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

static PyMethodDef data_functions[] = {
	{ "segment_create", (PyCFunction)(void (*)(void))segment_create, METH_VARARGS | METH_KEYWORDS,
	  "segment_create($module, /, name, size, owned=True, huge=False, publish=True)\n--\n\n"
	  "segment_create(name, size, owned=True, huge=False, publish=True) -> Segment\n"
	  "publish=False: named only by _publish(name), once filled." },
	{ "segment_open", (PyCFunction)(void (*)(void))segment_open, METH_VARARGS | METH_KEYWORDS,
	  "segment_open($module, /, name, readonly=False, any_owner=False)\n--\n\n"
	  "segment_open(name, readonly=False, any_owner=False) -> Segment" },
	{ "array_create", (PyCFunction)(void (*)(void))array_create, METH_VARARGS | METH_KEYWORDS,
	  "array_create($module, /, name, shape, dtype, owned=True, locked=False, huge=False, publish=True)\n--\n\n"
	  "array_create(name, shape, dtype, owned=True, locked=False, huge=False, publish=True) -> ArrayHandle" },
	{ "array_open", (PyCFunction)(void (*)(void))array_open, METH_VARARGS | METH_KEYWORDS,
	  "array_open($module, /, name, readonly=False, any_owner=False)\n--\n\n"
	  "array_open(name, readonly=False, any_owner=False) -> ArrayHandle" },
	{ "open_data", (PyCFunction)(void (*)(void))open_data, METH_VARARGS | METH_KEYWORDS,
	  "open_data($module, /, name, readonly=False, any_owner=False)\n--\n\n"
	  "open_data(name, readonly=False, any_owner=False) -> Segment, ArrayHandle or Bits; the kind's name "
	  "for other kinds" },
	{ "stat", (PyCFunction)mod_stat, METH_O,
	  "stat($module, name, /)\n--\n\n"
	  "stat(name) -> dict: the validated header of a segment." },
	{ "unlink", (PyCFunction)mod_unlink, METH_O,
	  "unlink($module, name, /)\n--\n\n"
	  "unlink(name): remove a segment's name." },
	{ "gc", (PyCFunction)(void (*)(void))mod_gc, METH_VARARGS | METH_KEYWORDS,
	  "gc($module, /, dry_run=False)\n--\n\n"
	  "gc(dry_run=False) -> names removed: owned segments whose creator died." },
	{ "list", (PyCFunction)mod_list, METH_NOARGS,
	  "list($module, /)\n--\n\n"
	  "list() -> names of the valid shmkit segments in /dev/shm." },
	{ 0 }
};

void skpy_data_set_bits_type(PyTypeObject *t)
{
	Bits_Type = t;
}

int skpy_data_init(PyObject *m)
{
	if (skpy_add_type(m, &Segment_Type, "Segment") || skpy_add_type(m, &ArrayHandle_Type, "ArrayHandle"))
		return -1;
	return PyModule_AddFunctions(m, data_functions);
}
