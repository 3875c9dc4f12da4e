/*
 * python/ext/bits.c: shmkit.Bits, a bit array in a segment (the library's
 * sk_bits). Layer: above data.c (data.h), see base.h.
 */
#include "data.h"

#include <errno.h>
#include <string.h>

static PyTypeObject Bits_Type;

/* ---- Bits ---- */

static PyObject *bits_tp_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "nbits", "name", "owned", "huge", NULL };
	uint64_t n;
	PyObject *name_o = Py_None;
	int owned = 1, huge = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|O$pp", kwlist, skpy_u64_conv, &n, &name_o, &owned, &huge))
		return NULL;
	open_args a = { .op = OP_BITS_CREATE, .size = n };
	if (skpy_name_arg(name_o, &a.name))
		return NULL;
	a.opts.flags = (uint32_t)skpy_data_flags(owned || !a.name, 0, huge);
	int rc = skpy_data_open(&a);
	if (rc)
		return skpy_raise(rc, a.name);
	return skpy_data_wrap(type, &a, a.name == NULL);
}

static PyObject *bits_open(PyObject *cls, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "readonly", NULL };
	const char *name;
	int ro = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|p", kwlist, &name, &ro))
		return NULL;
	open_args a = { .op = OP_BITS_OPEN, .name = name, .flags = ro ? SK_RDONLY : SK_RDWR };
	int rc = skpy_data_open(&a);
	if (rc)
		return skpy_raise(rc, name);
	return skpy_data_wrap((PyTypeObject *)cls, &a, 0);
}

static Py_ssize_t bits_len(DataObject *d)
{
	if (skpy_data_usable(d))
		return -1;
	return (Py_ssize_t)sk_bits_len(d->bits);
}

/* An index argument, negative counting from the end; -1 with an exception. */
static int bit_index(DataObject *d, PyObject *o, uint64_t *out)
{
	if (skpy_data_usable(d))
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
	uint64_t begin = 0;
	PyObject *end_o = Py_None;
	if (skpy_data_usable(d) ||
	    !PyArg_ParseTupleAndKeywords(args, kw, "|O&O", kwlist, skpy_u64_conv, &begin, &end_o))
		return -1;
	uint64_t n = sk_bits_len(d->bits);
	uint64_t end = n;
	if (end_o != Py_None && !skpy_u64_conv(end_o, &end))
		return -1;
	if (begin > end || end > n) {
		PyErr_Format(PyExc_IndexError, "range [%llu, %llu) is not within the %llu bits",
			     (unsigned long long)begin, (unsigned long long)end, (unsigned long long)n);
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
	SKPY_RELEASED(d, c = sk_bits_count(d->bits, b, e));
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
	SKPY_RELEASED(d, rc = set ? sk_bits_set_range(d->bits, b, e) : sk_bits_clear_range(d->bits, b, e));
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
	uint64_t from = 0;
	if (skpy_data_usable(d) || !PyArg_ParseTuple(args, "|O&", skpy_u64_conv, &from))
		return NULL;
	int64_t r;
	SKPY_RELEASED(d, r = set ? sk_bits_find_next_set(d->bits, from) : sk_bits_find_next_clear(d->bits, from));
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
	if (skpy_data_usable(d))
		return NULL;
	PyObject *np = skpy_numpy();
	if (!np)
		return NULL;
	return PyObject_CallMethod(np, "asarray", "O", (PyObject *)d);
}

static PyObject *bits_repr(DataObject *d)
{
	if (d->closed)
		return PyUnicode_FromFormat("<shmkit.Bits %s (closed)>", d->life.name);
	return PyUnicode_FromFormat("<shmkit.Bits %s len=%llu%s>", d->life.name,
				    (unsigned long long)sk_bits_len(d->bits), d->readonly ? " readonly" : "");
}

static PyMethodDef bits_methods[] = {
	DATA_COMMON_METHODS,
	{ "open", (PyCFunction)(void (*)(void))bits_open, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
	  "open($type, /, name, readonly=False)\n--\n\n"
	  "Bits.open(name, readonly=False): attach to an existing bit array." },
	{ "count", (PyCFunction)(void (*)(void))bits_count, METH_VARARGS | METH_KEYWORDS,
	  "count($self, /, begin=0, end=None)\n--\n\n"
	  "count(begin=0, end=None): set bits in [begin, end)." },
	{ "set_range", (PyCFunction)(void (*)(void))bits_set_range, METH_VARARGS | METH_KEYWORDS,
	  "set_range($self, /, begin=0, end=None)\n--\n\n"
	  "set_range(begin=0, end=None): set every bit of [begin, end)." },
	{ "clear_range", (PyCFunction)(void (*)(void))bits_clear_range, METH_VARARGS | METH_KEYWORDS,
	  "clear_range($self, /, begin=0, end=None)\n--\n\n"
	  "clear_range(begin=0, end=None): clear every bit of [begin, end)." },
	{ "test_and_set", (PyCFunction)bits_test_and_set, METH_O,
	  "test_and_set($self, i, /)\n--\n\n"
	  "Atomically set bit i; return its previous value." },
	{ "test_and_clear", (PyCFunction)bits_test_and_clear, METH_O,
	  "test_and_clear($self, i, /)\n--\n\n"
	  "Atomically clear bit i; return its previous value." },
	{ "flip", (PyCFunction)bits_flip, METH_O,
	  "flip($self, i, /)\n--\n\n"
	  "Atomically flip bit i." },
	{ "find_next_set", (PyCFunction)bits_find_next_set, METH_VARARGS,
	  "find_next_set($self, start=0, /)\n--\n\n"
	  "find_next_set(start=0): index of the first set bit >= start, or -1." },
	{ "find_next_clear", (PyCFunction)bits_find_next_clear, METH_VARARGS,
	  "find_next_clear($self, start=0, /)\n--\n\n"
	  "find_next_clear(start=0): index of the first clear bit >= start, or -1." },
	{ "words", (PyCFunction)bits_words, METH_NOARGS,
	  "words($self, /)\n--\n\n"
	  "A NumPy uint64 array over the words (zero copy; bit i is bit i%64 of word i//64)." },
	{ 0 }
};
static PyGetSetDef bits_getset[] = { DATA_COMMON_GETSET, { 0 } };
static PySequenceMethods bits_as_sequence = { .sq_length = (lenfunc)bits_len };
static PyMappingMethods bits_as_mapping = {
	.mp_length = (lenfunc)bits_len,
	.mp_subscript = (binaryfunc)bits_getitem,
	.mp_ass_subscript = (objobjargproc)bits_setitem,
};

static PyTypeObject Bits_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit.Bits",
	.tp_basicsize = sizeof(DataObject),
	.tp_dealloc = (destructor)skpy_data_dealloc,
	.tp_traverse = skpy_base_traverse,
	.tp_clear = skpy_base_clear,
	.tp_repr = (reprfunc)bits_repr,
	.tp_as_sequence = &bits_as_sequence,
	.tp_as_mapping = &bits_as_mapping,
	.tp_as_buffer = &skpy_data_as_buffer,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "Bits(nbits, name=None, *, owned=True, huge=False)\n--\n\nA shared bit array.\n"
		  "Bits.open(name) attaches. The buffer protocol exports the uint64 words.",
	.tp_weaklistoffset = offsetof(DataObject, weakrefs),
	.tp_methods = bits_methods,
	.tp_getset = bits_getset,
	.tp_new = bits_tp_new,
};

int skpy_bits_init(PyObject *m)
{
	if (skpy_add_type(m, &Bits_Type, "Bits"))
		return -1;
	skpy_data_set_bits_type(&Bits_Type);
	return 0;
}
