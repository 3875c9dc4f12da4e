/*
 * python/ext/data.h: what the objects that map a segment and export its data
 * share (data.c: Segment, SharedArray and the segment functions; bits.c:
 * Bits). Layer: above base.c and sync.c (base.h has the layering).
 */
#ifndef SHMKIT_PY_DATA_H
#define SHMKIT_PY_DATA_H

#include "sync.h"

typedef struct {
	SKPY_BASE_FIELDS; /* lock: a locked array's RLock, made by get_lock() */
	int kind;
	sk_segment *seg; /* raw segments */
	sk_array *arr;
	sk_bits *bits;
	PyObject *owner; /* a bit-array view (bits_view): the Segment whose data it is, kept alive */
	int unpublished; /* created without a name: _publish gives it one */
	int generated;   /* its name is (or will be) generated: removed when it goes */
	uint64_t offset; /* ... and where in that data its words start */
	char *data;
	uint64_t nbytes;
	int readonly;
	Py_ssize_t exports;
	int ndim;
	Py_ssize_t itemsize;
	const char *format;
	sk_dtype dtype;
	Py_ssize_t shape[SK_MAX_DIMS], strides[SK_MAX_DIMS];
} DataObject;

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
	int unpublished; /* creates: without a name (SK_CREATE_UNPUBLISHED), until _publish */
	void *out;
} open_args;

enum { OP_SEG_CREATE, OP_SEG_OPEN, OP_ARR_CREATE, OP_ARR_OPEN, OP_BITS_CREATE, OP_BITS_OPEN };

/* The open flags of the readonly and any_owner arguments. */
static inline int skpy_open_flags(int readonly, int any_owner)
{
	return (readonly ? SK_RDONLY : SK_RDWR) | (any_owner ? SK_OPEN_ANY_OWNER : 0);
}

/* Opens or creates what a describes, with the GIL released. */
int skpy_data_open(open_args *a);
/* The object of type for what skpy_data_open made (a->out), or NULL (then
 * a->out is closed). generated: this process made its name up. */
PyObject *skpy_data_wrap(PyTypeObject *type, open_args *a, int generated);
/* The SK_CREATE_* flags of the owned / anonymous / huge arguments. */
int skpy_data_flags(int owned, int anonymous, int huge);
/* Names d (made with a->unpublished) name, or a generated name for NULL,
 * once its creator filled it. 0, or -1 with an exception. */
int skpy_data_publish_as(DataObject *d, const char *name);
/* -1 with ValueError when d is closed. */
int skpy_data_usable(DataObject *d);
/* Whether o is a raw Segment object (what bits views live in). */
int skpy_data_is_segment(PyObject *o);

/* What every type of them has (their method and getset tables use the
 * macros below). */
void skpy_data_dealloc(DataObject *d);
extern PyBufferProcs skpy_data_as_buffer;
PyObject *skpy_data_close(DataObject *d, PyObject *unused);
PyObject *skpy_data_unlink(DataObject *d, PyObject *unused);
PyObject *skpy_data_enter(DataObject *d, PyObject *unused);
PyObject *skpy_data_exit(DataObject *d, PyObject *args);
PyObject *skpy_data_info(DataObject *d, PyObject *unused);
PyObject *skpy_data_freeze(DataObject *d, PyObject *unused);
PyObject *skpy_data_reduce(DataObject *d, PyObject *unused);
PyObject *skpy_data_publish(DataObject *d, PyObject *args);
PyObject *skpy_data_handoff(DataObject *d, PyObject *unused);
PyObject *skpy_data_adopt(DataObject *d, PyObject *shown);
PyObject *skpy_data_freeze_mapping(DataObject *d, PyObject *unused);
PyObject *skpy_data_get_name(DataObject *d, void *c);
PyObject *skpy_data_get_nbytes(DataObject *d, void *c);
PyObject *skpy_data_get_readonly(DataObject *d, void *c);
PyObject *skpy_data_get_closed(DataObject *d, void *c);
PyObject *skpy_data_get_address(DataObject *d, void *c);
PyObject *skpy_data_get_exports(DataObject *d, void *c);

#define DATA_COMMON_METHODS                                                                                  \
	{ "close", (PyCFunction)skpy_data_close, METH_NOARGS,                                                \
	  "close($self, /)\n--\n\nUnmap. BufferError while NumPy arrays or memoryviews of it are alive." },  \
	    { "unlink", (PyCFunction)skpy_data_unlink, METH_NOARGS,                                          \
	      "unlink($self, /)\n--\n\nRemove the name; processes that have it keep their mapping." },       \
	    { "info", (PyCFunction)skpy_data_info, METH_NOARGS,                                              \
	      "info($self, /)\n--\n\n"                                                                       \
	      "The segment's header as a dict." },                                                           \
	    { "freeze", (PyCFunction)skpy_data_freeze, METH_NOARGS,                                          \
	      "freeze($self, /)\n--\n\nMake the segment read-only for good: later read-write opens fail." }, \
	    { "__enter__", (PyCFunction)skpy_data_enter, METH_NOARGS, NULL },                                \
	    { "__exit__", (PyCFunction)skpy_data_exit, METH_VARARGS, NULL },                                 \
	    { "_publish", (PyCFunction)skpy_data_publish, METH_VARARGS,                                      \
	      "_publish($self, name=None, /)\n--\n\nName a segment made unpublished, once filled." },        \
	    { "_handoff", (PyCFunction)skpy_data_handoff, METH_NOARGS,                                       \
	      "_handoff($self, /)\n--\n\nA name of its own for a process this is handed to." },              \
	    { "_adopt", (PyCFunction)skpy_data_adopt, METH_O,                                                \
	      "_adopt($self, shown, /)\n--\n\nAttached by a hand-over name: remove it when done." },         \
	    { "_freeze_mapping", (PyCFunction)skpy_data_freeze_mapping, METH_NOARGS,                         \
	      "_freeze_mapping($self, /)\n--\n\nFreeze through this handle (no view may exist)." },          \
	{                                                                                                    \
		"__reduce__", (PyCFunction)skpy_data_reduce, METH_NOARGS, NULL                               \
	}

#define DATA_COMMON_GETSET                                                                        \
	{ "name", (getter)skpy_data_get_name, NULL, "segment name", NULL },                       \
	    { "nbytes", (getter)skpy_data_get_nbytes, NULL, "bytes of data", NULL },              \
	    { "readonly", (getter)skpy_data_get_readonly, NULL, "opened read-only", NULL },       \
	    { "address", (getter)skpy_data_get_address, NULL, "where the data is mapped", NULL }, \
	    { "_exports", (getter)skpy_data_get_exports, NULL, "buffer views alive", NULL },      \
	{                                                                                         \
		"closed", (getter)skpy_data_get_closed, NULL, "True after close()", NULL          \
	}

/* bits.c hands its type to data.c (open_data returns Bits), and registers it. */
void skpy_data_set_bits_type(PyTypeObject *t);
int skpy_bits_init(PyObject *module);

#endif
