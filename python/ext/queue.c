/*
 * python/ext/queue.c: shmkit.Queue. put/get move objects pickled with
 * protocol 5; buffers that support out-of-band pickling (NumPy arrays,
 * bytearrays) travel out of band, copied once straight into the ring by
 * put_oob. The Python class (shmkit/__init__.py) adds the nowait and many
 * variants and _decode, which unpacks the out-of-band format.
 *
 * Message formats: a pickle (it starts with the PROTO opcode 0x80), or, when
 * there are out-of-band buffers, 0x00 followed by
 *   u8[3] zero, u32 nbuf, u64 pickle_len, u64 buf_len[nbuf],
 *   then the pickle and each buffer, each starting on an 8-byte boundary.
 * Raw messages (put_bytes) are whatever the caller gave.
 *
 * Layer: above base.c only (base.h has the layering).
 */
#include "base.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_CAPACITY (32ull << 20)
#define SMALL            16384 /* messages up to this size are copied with the GIL held, then released */

typedef struct {
	SKPY_BASE_FIELDS; /* lock: always NULL, a queue hands out no lock */
	sk_queue *q;
	int foreign;  /* the queue's file belongs to another user (opened with any_owner) */
	unsigned uid; /* ... that user */
	int unpickle; /* get() may unpickle: not for a foreign queue unless asked */
	uint64_t capacity, max_msg;
	uint64_t maxsize; /* messages at most (0: as many as the ring holds), from the queue itself */
} QueueObject;

static PyTypeObject Queue_Type;

static int q_usable(QueueObject *q)
{
	if (q->closed) {
		PyErr_SetString(PyExc_ValueError, "Queue is closed");
		return -1;
	}
	return 0;
}

/* Errors of a put or get: rc is not 0. */
static PyObject *q_raise(QueueObject *q, int rc, int put, size_t len)
{
	if (rc == -ETIMEDOUT || rc == -EAGAIN) {
		PyErr_SetNone(put ? skpy_Full : skpy_Empty);
		return NULL;
	}
	if (rc == SK_ECLOSED) {
		PyErr_SetString(skpy_ShutDown,
				put ? "the queue was shut down: no more puts" : "the queue was shut down and is empty");
		return NULL;
	}
	if (rc == -EMSGSIZE && put) {
		PyErr_Format(PyExc_ValueError,
			     "message of %zu bytes is larger than the queue's max_msg (%llu bytes); create the queue "
			     "with a larger capacity or max_msg",
			     len, (unsigned long long)q->max_msg);
		return NULL;
	}
	return skpy_raise(rc, q->life.name);
}

/* After a create or open: the fixed sizes, read once, and whose the queue
 * is. The counters of qsize, empty, full, stats and repr are read later
 * without the queue's lock (a stopped peer holding it cannot freeze them),
 * from this handle's own mapping. unpickle: 1 yes, 0 no, -1 unless foreign.
 * 0, or -1 with an exception set. */
static int queue_attached(QueueObject *q, const char *name, int generated, int unpickle)
{
	skpy_life_init(&q->life, generated, name);
	sk_queue_stats st;
	sk_segment_info in;
	int rc = sk_queue_stats_peek(sk_queue_segment(q->q), &st);
	if (!rc)
		rc = sk_segment_info_get(sk_queue_segment(q->q), &in);
	if (rc) {
		skpy_raise(rc, q->life.name);
		return -1;
	}
	q->capacity = st.capacity;
	q->max_msg = st.max_msg;
	q->maxsize = st.max_messages;
	q->uid = (unsigned)in.uid;
	q->foreign = in.uid != geteuid() && in.uid != 0;
	q->unpickle = unpickle < 0 ? !q->foreign : unpickle;
	return 0;
}

static PyObject *queue_tp_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "maxsize", "name", "capacity", "max_msg", "owned", NULL };
	PyObject *name_o = Py_None, *max_o = Py_None;
	uint64_t cap = DEFAULT_CAPACITY;
	long long maxsize = 0;
	int owned = 1;
	const char *name;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|L$OO&Op", kwlist, &maxsize, &name_o, skpy_u64_conv, &cap, &max_o,
					 &owned) ||
	    skpy_name_arg(name_o, &name))
		return NULL;
	uint64_t max_msg = cap / 2;
	if (max_o != Py_None && !skpy_u64_conv(max_o, &max_msg))
		return NULL;
	if (cap < 64 || cap > (UINT64_C(1) << 40) || max_msg + 8 > cap)
		return PyErr_Format(PyExc_ValueError,
				    "capacity must be 64 bytes to 1 TiB and hold max_msg + 8 (capacity %llu, "
				    "max_msg %llu)",
				    (unsigned long long)cap, (unsigned long long)max_msg);
	QueueObject *q = (QueueObject *)type->tp_alloc(type, 0);
	if (!q)
		return NULL;
	/* maxsize <= 0: no limit but the ring's bytes, as in multiprocessing */
	sk_queue_config cfg = { .capacity = cap,
				.max_msg = max_msg,
				.max_messages = maxsize > 0 ? (uint64_t)maxsize : 0 };
	sk_create_opts o = { .flags = skpy_owned_flag(owned || !name) };
	int rc;
	SKPY_RELEASED(q, rc = sk_queue_create_with(name, &cfg, &o, &q->q));
	if (rc) {
		q->closed = 1;
		Py_DECREF(q);
		return skpy_raise(rc, name);
	}
	skpy_exit_register(sk_queue_name(q->q));
	if (queue_attached(q, sk_queue_name(q->q), name == NULL, 1)) {
		Py_DECREF(q);
		return NULL;
	}
	return (PyObject *)q;
}

typedef struct {
	const char *name;
	int flags;
	sk_queue *out;
} open_arg;

static int open_fn(void *arg, int64_t slice)
{
	open_arg *a = arg;
	return sk_queue_open_with(a->name, a->flags, slice, &a->out);
}

#define OPEN_WAIT_NS INT64_C(10000000000) /* opening waits for the queue's lock at most this long */

/* Queue.open(name, *, any_owner=False, unpickle=None): the queue's lock is
 * taken to validate its state, waited for in slices (Ctrl-C interrupts it)
 * at most 10 s (TimeoutError). any_owner: a queue another user made (else
 * PermissionError); unpickle: whether get() unpickles messages (default:
 * not from another user's queue, whose pickles would run that user's code). */
static PyObject *queue_open(PyObject *cls, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "any_owner", "unpickle", NULL };
	const char *name;
	int any = 0;
	PyObject *unpickle_o = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|$pO", kwlist, skpy_strname_conv, &name, &any, &unpickle_o))
		return NULL;
	int unpickle = unpickle_o == Py_None ? -1 : PyObject_IsTrue(unpickle_o);
	if (unpickle_o != Py_None && unpickle < 0)
		return NULL;
	QueueObject *q = (QueueObject *)((PyTypeObject *)cls)->tp_alloc((PyTypeObject *)cls, 0);
	if (!q)
		return NULL;
	open_arg a = { name, any ? SK_OPEN_ANY_OWNER : 0, NULL };
	int rc = open_fn(&a, 0); /* at once when nobody holds the lock */
	if (rc == -EAGAIN)
		rc = skpy_wait(q, open_fn, &a, skpy_now_ns() + OPEN_WAIT_NS);
	q->q = a.out;
	if (rc) {
		q->closed = 1;
		Py_DECREF(q);
		return skpy_raise(rc, name);
	}
	if (queue_attached(q, name, 0, unpickle)) {
		Py_DECREF(q);
		return NULL;
	}
	return (PyObject *)q;
}

static void queue_release(QueueObject *q)
{
	if (q->closed)
		return;
	q->closed = 1;
	sk_queue_close(q->q);
	q->q = NULL;
	skpy_life_end(&q->life);
}

static void queue_dealloc(QueueObject *q)
{
	if (q->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)q);
	queue_release(q);
	Py_TYPE(q)->tp_free((PyObject *)q);
}

static int parse_block(PyObject *args, PyObject *kw, char **kwlist, const char *fmt, int64_t *deadline, PyObject **a0,
		       PyObject **a1)
{
	int block = 1;
	PyObject *timeout = Py_None;
	int ok = a1   ? PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, a0, a1, &block, &timeout)
		 : a0 ? PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, a0, &block, &timeout)
		      : PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, &block, &timeout);
	if (!ok)
		return -1;
	*deadline = skpy_deadline(block, timeout);
	return *deadline == -2 ? -1 : 0;
}

/* ---- put ---- */

typedef struct {
	sk_queue *q;
	const void *msg;
	size_t len;
} push_arg;

static int push_fn(void *arg, int64_t slice)
{
	push_arg *a = arg;
	return sk_queue_push(a->q, a->msg, a->len, slice);
}

static PyObject *put_bytes(QueueObject *q, PyObject *data, int64_t deadline);

static PyObject *queue_put_bytes(QueueObject *q, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "data", "block", "timeout", NULL };
	PyObject *data;
	int64_t deadline;
	if (parse_block(args, kw, kwlist, "O|pO", &deadline, &data, NULL) || q_usable(q))
		return NULL;
	return put_bytes(q, data, deadline);
}

static PyObject *put_bytes(QueueObject *q, PyObject *data, int64_t deadline)
{
	Py_buffer view;
	if (PyObject_GetBuffer(data, &view, PyBUF_C_CONTIGUOUS) < 0)
		return NULL;
	push_arg a = { q->q, view.buf, (size_t)view.len };
	int rc = (size_t)view.len <= SMALL ? push_fn(&a, 0) : -EAGAIN;
	if (rc == -EAGAIN && (deadline != 0 || (size_t)view.len > SMALL))
		rc = skpy_wait(q, push_fn, &a, deadline);
	PyBuffer_Release(&view);
	if (rc)
		return q_raise(q, rc, 1, a.len);
	Py_RETURN_NONE;
}

typedef struct {
	sk_queue *q;
	size_t len;
	void *ptr;
} reserve_arg;

static int reserve_fn(void *arg, int64_t slice)
{
	reserve_arg *a = arg;
	return sk_queue_reserve(a->q, a->len, &a->ptr, slice);
}

static size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* One message holding a pickle and its out-of-band buffers, each copied
 * once into the ring (the format is at the top of this file). */
static PyObject *put_oob(QueueObject *q, PyObject *pick, PyObject *bufs, int64_t deadline)
{
	PyObject *seq = PySequence_Fast(bufs, "buffers must be a sequence");
	if (!seq)
		return NULL;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
	Py_buffer *views = PyMem_Calloc((size_t)n + 1, sizeof *views);
	PyObject *ret = NULL;
	Py_ssize_t got = 0;
	if (!views) {
		PyErr_NoMemory();
		goto out;
	}
	if (PyObject_GetBuffer(pick, &views[0], PyBUF_C_CONTIGUOUS) < 0)
		goto out;
	got = 1;
	for (Py_ssize_t i = 0; i < n; i++, got++)
		if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, i), &views[i + 1], PyBUF_ANY_CONTIGUOUS) < 0)
			goto out;
	size_t head = align8(16 + 8 * (size_t)n), total = head;
	for (Py_ssize_t i = 0; i <= n; i++)
		total = align8(total + (size_t)views[i].len);
	reserve_arg r = { q->q, total, NULL };
	int rc = skpy_wait(q, reserve_fn, &r, deadline);
	if (rc) {
		q_raise(q, rc, 1, total);
		goto out;
	}
	q->busy++;
	Py_BEGIN_ALLOW_THREADS
	char *p = r.ptr;
	memset(p, 0, head);
	uint32_t nb = (uint32_t)n;
	uint64_t pl = (uint64_t)views[0].len;
	memcpy(p + 4, &nb, 4);
	memcpy(p + 8, &pl, 8);
	for (Py_ssize_t i = 0; i < n; i++) {
		uint64_t l = (uint64_t)views[i + 1].len;
		memcpy(p + 16 + 8 * i, &l, 8);
	}
	size_t off = head;
	for (Py_ssize_t i = 0; i <= n; i++) {
		memcpy(p + off, views[i].buf, (size_t)views[i].len);
		size_t end = off + (size_t)views[i].len;
		off = align8(end);
		memset(p + end, 0, off - end);
	}
	rc = sk_queue_commit(q->q);
	Py_END_ALLOW_THREADS
	q->busy--;
	if (rc)
		q_raise(q, rc, 1, total);
	else {
		Py_INCREF(Py_None);
		ret = Py_None;
	}
out:
	for (Py_ssize_t i = 0; i < got; i++)
		PyBuffer_Release(&views[i]);
	PyMem_Free(views);
	Py_DECREF(seq);
	return ret;
}

/* put_many_bytes(items, block=True, timeout=None) -> how many were put. */
static PyObject *queue_put_many_bytes(QueueObject *q, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "items", "block", "timeout", NULL };
	PyObject *items;
	int64_t deadline;
	if (parse_block(args, kw, kwlist, "O|pO", &deadline, &items, NULL) || q_usable(q))
		return NULL;
	PyObject *seq = PySequence_Fast(items, "items must be a sequence of bytes-like objects");
	if (!seq)
		return NULL;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), got = 0, done = 0;
	Py_buffer *views = PyMem_Calloc((size_t)n + 1, sizeof *views);
	const void **ptrs = PyMem_Calloc((size_t)n + 1, sizeof *ptrs);
	size_t *lens = PyMem_Calloc((size_t)n + 1, sizeof *lens);
	PyObject *ret = NULL;
	if (!views || !ptrs || !lens) {
		PyErr_NoMemory();
		goto out;
	}
	for (; got < n; got++) {
		if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, got), &views[got], PyBUF_C_CONTIGUOUS) < 0)
			goto out;
		ptrs[got] = views[got].buf;
		lens[got] = (size_t)views[got].len;
		if (lens[got] > q->max_msg) {
			q_raise(q, -EMSGSIZE, 1, lens[got]);
			got++;
			goto out;
		}
	}
	while (done < n) {
		int rc;
		int64_t left = -1;
		if (deadline > 0) {
			left = deadline - skpy_now_ns();
			if (left < 0)
				left = 0;
		} else if (deadline == 0) {
			left = 0;
		}
		int chunk = n - done > 1 << 20 ? 1 << 20 : (int)(n - done);
		SKPY_RELEASED(q, rc = sk_queue_push_many(q->q, ptrs + done, lens + done, chunk,
							 left < 0 || left > 50000000 ? 50000000 : left));
		if (rc > 0) {
			done += rc;
			continue;
		}
		if ((rc == -ETIMEDOUT || rc == -EAGAIN) && (deadline < 0 || (deadline > 0 && left > 0))) {
			if (PyErr_CheckSignals())
				goto out;
			continue;
		}
		if (done > 0 && (rc == -ETIMEDOUT || rc == -EAGAIN))
			break;
		q_raise(q, rc, 1, 0);
		goto out;
	}
	ret = PyLong_FromSsize_t(done);
out:
	for (Py_ssize_t i = 0; i < got; i++)
		PyBuffer_Release(&views[i]);
	PyMem_Free(views);
	PyMem_Free(ptrs);
	PyMem_Free(lens);
	Py_DECREF(seq);
	return ret;
}

/* ---- get ---- */

typedef struct {
	sk_queue *q;
	char *buf;
	size_t bufsize, len;
} pop_arg;

static int pop_fn(void *arg, int64_t slice)
{
	pop_arg *a = arg;
	return sk_queue_pop(a->q, a->buf, a->bufsize, &a->len, slice);
}

static PyObject *new_buf(int ba, const char *src, size_t len)
{
	return ba ? PyByteArray_FromStringAndSize(src, (Py_ssize_t)len)
		  : PyBytes_FromStringAndSize(src, (Py_ssize_t)len);
}

/* One message as bytes (ba 0) or bytearray (ba 1). Small ones land on the
 * stack first; a larger one is popped straight into an object of its size. */
static PyObject *pop_obj(QueueObject *q, int64_t deadline, int ba)
{
	char stack[SMALL];
	pop_arg a = { q->q, stack, sizeof stack, 0 };
	int rc = pop_fn(&a, 0);
	if (rc == -EAGAIN && deadline != 0)
		rc = skpy_wait(q, pop_fn, &a, deadline);
	PyObject *o = NULL;
	while (rc == -EMSGSIZE) {
		Py_XDECREF(o);
		o = new_buf(ba, NULL, a.len);
		if (!o)
			return NULL;
		a.buf = ba ? PyByteArray_AS_STRING(o) : PyBytes_AS_STRING(o);
		a.bufsize = a.len;
		rc = skpy_wait(q, pop_fn, &a, deadline);
	}
	if (rc) {
		Py_XDECREF(o);
		return q_raise(q, rc, 0, 0);
	}
	if (!o)
		return new_buf(ba, stack, a.len);
	if (a.len != a.bufsize) {
		if (ba ? PyByteArray_Resize(o, (Py_ssize_t)a.len) : _PyBytes_Resize(&o, (Py_ssize_t)a.len))
			return NULL;
	}
	return o;
}

static PyObject *queue_get_bytes(QueueObject *q, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "block", "timeout", NULL };
	int64_t deadline;
	if (parse_block(args, kw, kwlist, "|pO", &deadline, NULL, NULL) || q_usable(q))
		return NULL;
	return pop_obj(q, deadline, 0);
}

typedef struct {
	sk_queue *q;
	char *buf;
	size_t bufsize;
	size_t *lens;
	int max;
} popm_arg;

static int popm_fn(void *arg, int64_t slice)
{
	popm_arg *a = arg;
	return sk_queue_pop_many(a->q, a->buf, a->bufsize, a->lens, a->max, slice);
}

/* get_many_bytes(max=64, block=True, timeout=None, *, bytearray=False) ->
 * list of 1..max messages; waits for the first only. */
static PyObject *queue_get_many_bytes(QueueObject *q, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "max", "block", "timeout", "bytearray", NULL };
	int max = 64, block = 1, ba = 0;
	PyObject *timeout = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|ipO$p", kwlist, &max, &block, &timeout, &ba) || q_usable(q))
		return NULL;
	if (max < 1)
		return PyErr_Format(PyExc_ValueError, "max must be at least 1");
	int64_t deadline = skpy_deadline(block, timeout);
	if (deadline == -2)
		return NULL;
	size_t bufsize = 1u << 20;
	popm_arg a = { q->q, PyMem_RawMalloc(bufsize), bufsize, PyMem_RawMalloc(sizeof(size_t) * (size_t)max), max };
	PyObject *list = NULL;
	if (!a.buf || !a.lens) {
		PyErr_NoMemory();
		goto out;
	}
	int rc = popm_fn(&a, 0);
	if (rc == -EAGAIN && deadline != 0)
		rc = skpy_wait(q, popm_fn, &a, deadline);
	if (rc == -EMSGSIZE) {
		/* The first message alone is larger than the buffer. */
		PyObject *one = pop_obj(q, deadline, ba);
		if (one) {
			list = PyList_New(1);
			if (list)
				PyList_SET_ITEM(list, 0, one);
			else
				Py_DECREF(one);
		}
		goto out;
	}
	if (rc < 0) {
		q_raise(q, rc, 0, 0);
		goto out;
	}
	list = PyList_New(rc);
	size_t off = 0;
	for (int i = 0; list && i < rc; i++) {
		PyObject *o = new_buf(ba, a.buf + off, a.lens[i]);
		if (!o) {
			Py_CLEAR(list);
			break;
		}
		PyList_SET_ITEM(list, i, o);
		off += a.lens[i];
	}
out:
	PyMem_RawFree(a.buf);
	PyMem_RawFree(a.lens);
	return list;
}

/* ---- objects: pickle protocol 5, buffers out of band ---- */

static PyObject *pickle_dumps, *pickle_loads, *py_decode, *kw_buffer_callback, *int_five;

static int pickle_ready(void)
{
	if (py_decode)
		return 0;
	PyObject *pk = PyImport_ImportModule("pickle");
	if (!pk)
		return -1;
	pickle_dumps = PyObject_GetAttrString(pk, "dumps");
	pickle_loads = PyObject_GetAttrString(pk, "loads");
	Py_DECREF(pk);
	PyObject *mod = PyImport_ImportModule("shmkit");
	if (!mod)
		return -1;
	PyObject *dec = PyObject_GetAttrString(mod, "_decode");
	Py_DECREF(mod);
	kw_buffer_callback = Py_BuildValue("(s)", "buffer_callback");
	int_five = PyLong_FromLong(5);
	if (!pickle_dumps || !pickle_loads || !dec || !kw_buffer_callback || !int_five) {
		Py_XDECREF(dec);
		return -1;
	}
	py_decode = dec;
	return 0;
}

/* ---- the compact format: common objects without pickle ----
 *
 * A message that starts with 0x01 holds one value encoded as a tag byte and
 * its payload, all little-endian:
 *   'N' None, 'T' True, 'F' False,
 *   'i' int (i64: ints of -2**63 .. 2**63-1), 'd' float (f64, bit exact),
 *   's' str (u32 length, UTF-8), 'b' bytes (u32 length, the bytes),
 *   't' tuple / 'l' list (u32 count, then each item), nested at most
 *   COMPACT_DEPTH deep.
 * Only these exact types (no subclasses) travel this way, and only when the
 * whole message fits in SMALL bytes; everything else is pickled. What comes
 * out is equal to what went in and of the same type. A message is read from
 * shared memory another process may write: every length is checked against
 * the end before it is used, and a malformed message raises shmkit.Error. */
#define COMPACT_TAG   0x01
#define COMPACT_DEPTH 8

typedef struct {
	unsigned char *p, *end;
} wbuf;

static int put_raw(wbuf *w, const void *src, size_t n)
{
	if ((size_t)(w->end - w->p) < n)
		return 1;
	memcpy(w->p, src, n);
	w->p += n;
	return 0;
}

static int put_tag_len(wbuf *w, char tag, size_t n)
{
	if (n > UINT32_MAX || (size_t)(w->end - w->p) < 5)
		return 1;
	uint32_t l = (uint32_t)n;
	*w->p++ = (unsigned char)tag;
	memcpy(w->p, &l, 4);
	w->p += 4;
	return 0;
}

/* 0 encoded, 1 not encodable this way (pickle it), -1 error set. */
static int compact_enc(wbuf *w, PyObject *o, int depth)
{
	PyTypeObject *t = Py_TYPE(o);
	if (o == Py_None || o == Py_True || o == Py_False) {
		char c = o == Py_None ? 'N' : o == Py_True ? 'T' : 'F';
		return put_raw(w, &c, 1);
	}
	if (t == &PyLong_Type) {
		int ovf;
		long long v = PyLong_AsLongLongAndOverflow(o, &ovf);
		if (ovf)
			return 1;
		if (v == -1 && PyErr_Occurred())
			return -1;
		unsigned char b[9] = { 'i' };
		int64_t x = v;
		memcpy(b + 1, &x, 8);
		return put_raw(w, b, 9);
	}
	if (t == &PyFloat_Type) {
		unsigned char b[9] = { 'd' };
		double x = PyFloat_AS_DOUBLE(o);
		memcpy(b + 1, &x, 8);
		return put_raw(w, b, 9);
	}
	if (t == &PyUnicode_Type) {
		Py_ssize_t n;
		const char *u = PyUnicode_AsUTF8AndSize(o, &n);
		if (!u) { /* lone surrogates: pickle knows how */
			PyErr_Clear();
			return 1;
		}
		return put_tag_len(w, 's', (size_t)n) || put_raw(w, u, (size_t)n);
	}
	if (t == &PyBytes_Type) {
		size_t n = (size_t)PyBytes_GET_SIZE(o);
		return put_tag_len(w, 'b', n) || put_raw(w, PyBytes_AS_STRING(o), n);
	}
	if ((t == &PyTuple_Type || t == &PyList_Type) && depth < COMPACT_DEPTH) {
		PyObject *seq = o;
		Py_ssize_t n = t == &PyTuple_Type ? PyTuple_GET_SIZE(o) : PyList_GET_SIZE(o);
		if (put_tag_len(w, t == &PyTuple_Type ? 't' : 'l', (size_t)n))
			return 1;
		for (Py_ssize_t i = 0; i < n; i++) {
			/* A list may change under us only through code we call: we call none. */
			PyObject *it = t == &PyTuple_Type ? PyTuple_GET_ITEM(seq, i) : PyList_GET_ITEM(seq, i);
			int r = compact_enc(w, it, depth + 1);
			if (r)
				return r;
		}
		return 0;
	}
	return 1;
}

static PyObject *compact_bad(void)
{
	return skpy_raise(SK_ECORRUPT, "a queue message in the compact format is malformed");
}

static PyObject *compact_dec(const unsigned char **pp, const unsigned char *end, int depth)
{
	const unsigned char *p = *pp;
	if (p >= end)
		return compact_bad();
	unsigned char tag = *p++;
	PyObject *r = NULL;
	uint32_t n = 0;
	switch (tag) {
	case 'N': r = Py_NewRef(Py_None); break;
	case 'T': r = Py_NewRef(Py_True); break;
	case 'F': r = Py_NewRef(Py_False); break;
	case 'i':
	case 'd': {
		if (end - p < 8)
			return compact_bad();
		if (tag == 'i') {
			int64_t x;
			memcpy(&x, p, 8);
			r = PyLong_FromLongLong(x);
		} else {
			double x;
			memcpy(&x, p, 8);
			r = PyFloat_FromDouble(x);
		}
		p += 8;
		break;
	}
	case 's':
	case 'b':
	case 't':
	case 'l':
		if (end - p < 4)
			return compact_bad();
		memcpy(&n, p, 4);
		p += 4;
		if (tag == 's' || tag == 'b') {
			if ((size_t)(end - p) < n)
				return compact_bad();
			r = tag == 's' ? PyUnicode_DecodeUTF8((const char *)p, n, "strict")
				       : PyBytes_FromStringAndSize((const char *)p, n);
			p += n;
			break;
		}
		/* Every item takes at least one byte: a count past the end is malformed. */
		if (depth >= COMPACT_DEPTH || (size_t)(end - p) < n)
			return compact_bad();
		r = tag == 't' ? PyTuple_New(n) : PyList_New(n);
		for (uint32_t i = 0; r && i < n; i++) {
			PyObject *it = compact_dec(&p, end, depth + 1);
			if (!it) {
				Py_CLEAR(r);
				break;
			}
			if (tag == 't')
				PyTuple_SET_ITEM(r, i, it);
			else
				PyList_SET_ITEM(r, i, it);
		}
		break;
	default: return compact_bad();
	}
	*pp = p;
	return r;
}

/* One object from a whole compact message (after its tag byte). */
static PyObject *compact_decode(const unsigned char *p, size_t len)
{
	const unsigned char *end = p + len;
	PyObject *o = compact_dec(&p, end, 0);
	if (o && p != end) {
		Py_DECREF(o);
		return compact_bad();
	}
	return o;
}

/* Encodes obj into buf (SMALL bytes): its length, 0 when it does not travel
 * this way, -1 with an exception set. */
static Py_ssize_t compact_encode(PyObject *obj, unsigned char *buf)
{
	wbuf w = { buf + 1, buf + SMALL };
	buf[0] = COMPACT_TAG;
	int r = compact_enc(&w, obj, 0);
	return r < 0 ? -1 : r ? 0 : (Py_ssize_t)(w.p - buf);
}

/* The (block=True, timeout=None) of put and get, after `first` leading
 * positional arguments, parsed by hand from a vectorcall. */
static int parse_bt(const char *fn, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, Py_ssize_t first,
		    int64_t *deadline)
{
	PyObject *block = NULL, *timeout = Py_None;
	if (nargs < first || nargs > first + 2) {
		PyErr_Format(PyExc_TypeError, "%s() takes %zd to %zd positional arguments (%zd given)", fn, first,
			     first + 2, nargs);
		return -1;
	}
	if (nargs > first)
		block = args[first];
	if (nargs > first + 1)
		timeout = args[first + 1];
	Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
	for (Py_ssize_t i = 0; i < nkw; i++) {
		PyObject *k = PyTuple_GET_ITEM(kwnames, i);
		if (PyUnicode_CompareWithASCIIString(k, "block") == 0 && nargs <= first)
			block = args[nargs + i];
		else if (PyUnicode_CompareWithASCIIString(k, "timeout") == 0 && nargs <= first + 1)
			timeout = args[nargs + i];
		else {
			PyErr_Format(PyExc_TypeError, "%s() got an unexpected or repeated keyword argument '%U'", fn,
				     k);
			return -1;
		}
	}
	int b = 1;
	if (block && (b = PyObject_IsTrue(block)) < 0)
		return -1;
	*deadline = skpy_deadline(b, timeout);
	return *deadline == -2 ? -1 : 0;
}

/* Pickles obj (protocol 5, buffers out of band) and puts it. */
static PyObject *put_pickled(QueueObject *q, PyObject *obj, int64_t deadline)
{
	if (pickle_ready())
		return NULL;
	PyObject *bufs = PyList_New(0);
	PyObject *append = bufs ? PyObject_GetAttrString(bufs, "append") : NULL;
	PyObject *data = NULL, *ret = NULL;
	if (append) {
		PyObject *argv[] = { obj, int_five, append };
		data = PyObject_Vectorcall(pickle_dumps, argv, 2, kw_buffer_callback);
	}
	if (data)
		ret = PyList_GET_SIZE(bufs) ? put_oob(q, data, bufs, deadline) : put_bytes(q, data, deadline);
	Py_XDECREF(data);
	Py_XDECREF(append);
	Py_XDECREF(bufs);
	return ret;
}

/* put(obj, block=True, timeout=None) */
static PyObject *queue_put(QueueObject *q, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	int64_t deadline;
	if (parse_bt("put", args, nargs, kwnames, 1, &deadline) || q_usable(q))
		return NULL;
	unsigned char buf[SMALL];
	Py_ssize_t n = compact_encode(args[0], buf);
	if (n < 0)
		return NULL;
	if (n == 0)
		return put_pickled(q, args[0], deadline);
	push_arg a = { q->q, buf, (size_t)n };
	int rc = push_fn(&a, 0);
	if (rc == -EAGAIN && deadline != 0)
		rc = skpy_wait(q, push_fn, &a, deadline);
	if (rc)
		return q_raise(q, rc, 1, a.len);
	Py_RETURN_NONE;
}

/* An object from a message in a bytearray: the compact format, a pickle, or
 * a pickle whose buffers travelled out of band (they come back as writable
 * memory of their own). */
static PyObject *decode(PyObject *msg)
{
	const unsigned char *p = (const unsigned char *)PyByteArray_AS_STRING(msg);
	Py_ssize_t n = PyByteArray_GET_SIZE(msg);
	if (n && p[0] == COMPACT_TAG)
		return compact_decode(p + 1, (size_t)n - 1);
	if (pickle_ready())
		return NULL;
	if (n && p[0] == 0x80)
		return PyObject_CallOneArg(pickle_loads, msg);
	return PyObject_CallOneArg(py_decode, msg);
}

typedef struct {
	sk_queue *q;
	const void *ptr;
	size_t len;
} peek_arg;

static int peek_fn(void *arg, int64_t slice)
{
	peek_arg *a = arg;
	return sk_queue_peek(a->q, &a->ptr, &a->len, slice);
}

/* get() of a queue whose pickles this process does not load (another user's,
 * or unpickle=False): the oldest message is looked at in place and copied
 * out; a compact one is taken and decoded, a pickle is handed back, first,
 * and refused with PermissionError (get_bytes() takes it raw). */
static PyObject *get_no_pickle(QueueObject *q, int64_t deadline)
{
	peek_arg a = { q->q, NULL, 0 };
	int rc = peek_fn(&a, 0);
	if (rc == -EAGAIN && deadline != 0)
		rc = skpy_wait(q, peek_fn, &a, deadline);
	if (rc)
		return q_raise(q, rc, 0, 0);
	PyObject *msg = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)a.len);
	if (!msg) {
		(void)sk_queue_unpeek(q->q);
		return NULL;
	}
	/* A copy first: a peer may rewrite the message in place meanwhile. */
	SKPY_RELEASED(q, memcpy(PyByteArray_AS_STRING(msg), a.ptr, a.len));
	const unsigned char *p = (const unsigned char *)PyByteArray_AS_STRING(msg);
	if (a.len == 0 || p[0] != COMPACT_TAG) {
		Py_DECREF(msg);
		rc = sk_queue_unpeek(q->q);
		if (rc)
			return skpy_raise(rc, q->life.name);
		if (q->foreign)
			PyErr_Format(
			    PyExc_PermissionError,
			    "queue %s belongs to another user (uid %u): its next message is pickled, and "
			    "unpickling it would run that user's code; it stays in the queue. Take it raw with "
			    "get_bytes(), or open the queue with Queue.open(name, any_owner=True, unpickle=True) "
			    "if you trust that user",
			    q->life.name, q->uid);
		else
			PyErr_Format(
			    PyExc_PermissionError,
			    "queue %s was opened with unpickle=False and its next message is pickled; it stays "
			    "in the queue (get_bytes() takes it raw)",
			    q->life.name);
		return NULL;
	}
	rc = sk_queue_release(q->q);
	PyObject *r = rc ? skpy_raise(rc, q->life.name) : compact_decode(p + 1, a.len - 1);
	Py_DECREF(msg);
	return r;
}

/* get(block=True, timeout=None) */
static PyObject *queue_get(QueueObject *q, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	int64_t deadline;
	if (parse_bt("get", args, nargs, kwnames, 0, &deadline) || q_usable(q))
		return NULL;
	if (!q->unpickle)
		return get_no_pickle(q, deadline);
	/* A small message lands on the stack: a compact one is decoded from there. */
	unsigned char stack[SMALL];
	pop_arg a = { q->q, (char *)stack, sizeof stack, 0 };
	int rc = pop_fn(&a, 0);
	if (rc == -EAGAIN && deadline != 0)
		rc = skpy_wait(q, pop_fn, &a, deadline);
	if (rc == 0 && a.len > 0 && stack[0] == COMPACT_TAG)
		return compact_decode(stack + 1, a.len - 1);
	PyObject *msg;
	if (rc == 0) {
		msg = PyByteArray_FromStringAndSize((const char *)stack, (Py_ssize_t)a.len);
	} else if (rc == -EMSGSIZE) {
		msg = pop_obj(q, deadline, 1); /* larger than the stack: popped into its own bytearray */
	} else {
		return q_raise(q, rc, 0, 0);
	}
	if (!msg)
		return NULL;
	PyObject *r = decode(msg);
	Py_DECREF(msg);
	return r;
}

/* _encode(obj) -> bytes: one message as put() makes it, without out-of-band
 * buffers (put_many). _decode_msg(msg) -> the object (get_many). */
static PyObject *queue_encode(PyObject *mod, PyObject *obj)
{
	(void)mod;
	unsigned char buf[SMALL];
	Py_ssize_t n = compact_encode(obj, buf);
	if (n < 0)
		return NULL;
	if (n > 0)
		return PyBytes_FromStringAndSize((const char *)buf, n);
	if (pickle_ready())
		return NULL;
	PyObject *argv[] = { obj, int_five };
	return PyObject_Vectorcall(pickle_dumps, argv, 2, NULL);
}

static PyObject *queue_decode_msg(PyObject *mod, PyObject *msg)
{
	(void)mod;
	if (!PyByteArray_Check(msg))
		return PyErr_Format(PyExc_TypeError, "a message is a bytearray");
	return decode(msg);
}

/* ---- the rest ---- */

static int stats_of(QueueObject *q, sk_queue_stats *st)
{
	if (q_usable(q))
		return -1;
	int rc = sk_queue_stats_peek(sk_queue_segment(q->q), st);
	if (rc) {
		skpy_raise(rc, q->life.name);
		return -1;
	}
	return 0;
}

static PyObject *queue_stats(QueueObject *q, PyObject *unused)
{
	(void)unused;
	sk_queue_stats st;
	if (stats_of(q, &st))
		return NULL;
	return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:O,s:i,s:i,s:K,s:K,s:K,s:i}", "capacity",
			     (unsigned long long)st.capacity, "max_msg", (unsigned long long)st.max_msg, "used",
			     (unsigned long long)st.used, "messages", (unsigned long long)st.messages, "pushed",
			     (unsigned long long)st.pushed, "popped", (unsigned long long)st.popped, "shut_down",
			     st.closed ? Py_True : Py_False, "waiting_producers", st.waiting_producers,
			     "waiting_consumers", st.waiting_consumers, "recoveries", (unsigned long long)st.recoveries,
			     "max_messages", (unsigned long long)st.max_messages, "unfinished",
			     (unsigned long long)st.unfinished, "in_flight", st.in_flight);
}

static PyObject *queue_qsize(QueueObject *q, PyObject *unused)
{
	(void)unused;
	sk_queue_stats st;
	if (stats_of(q, &st))
		return NULL;
	return PyLong_FromUnsignedLongLong(st.messages);
}

static PyObject *queue_empty(QueueObject *q, PyObject *unused)
{
	PyObject *n = queue_qsize(q, unused);
	if (!n)
		return NULL;
	int z = PyLong_AsLong(n) == 0;
	Py_DECREF(n);
	return PyBool_FromLong(z);
}

/* True when a message of max_msg bytes would not fit now. */
static PyObject *queue_full(QueueObject *q, PyObject *unused)
{
	(void)unused;
	sk_queue_stats st;
	if (stats_of(q, &st))
		return NULL;
	return PyBool_FromLong((q->maxsize && st.messages >= q->maxsize) ||
			       st.capacity - st.used < align8(st.max_msg) + 8);
}

static int shutdown_fn(void *arg, int64_t slice)
{
	return sk_queue_shutdown_timed((sk_queue *)arg, slice);
}

/* shutdown(): waits for the queue's lock in slices (Ctrl-C interrupts it),
 * at most 10 s (TimeoutError). */
static PyObject *queue_shutdown(QueueObject *q, PyObject *unused)
{
	(void)unused;
	if (q_usable(q))
		return NULL;
	int rc = sk_queue_shutdown_timed(q->q, 0);
	if (rc == -EAGAIN)
		rc = skpy_wait(q, shutdown_fn, q->q, skpy_now_ns() + OPEN_WAIT_NS);
	if (rc)
		return skpy_raise(rc, q->life.name);
	Py_RETURN_NONE;
}

/* JoinableQueue: every published message is a task until task_done(). */
static PyObject *queue_task_done(QueueObject *q, PyObject *unused)
{
	(void)unused;
	if (q_usable(q))
		return NULL;
	int rc = sk_queue_task_done(q->q);
	if (rc == -EINVAL) {
		PyErr_SetString(PyExc_ValueError, "task_done() called too many times");
		return NULL;
	}
	if (rc)
		return skpy_raise(rc, q->life.name);
	Py_RETURN_NONE;
}

static int join_fn(void *arg, int64_t slice)
{
	return sk_queue_join((sk_queue *)arg, slice);
}

/* join(timeout=None): waits until every published message was marked done;
 * True, or False when the timeout ran out (multiprocessing's join has no
 * timeout and returns None; this one returns True then). */
static PyObject *queue_join(QueueObject *q, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "timeout", NULL };
	PyObject *timeout = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O", kwlist, &timeout) || q_usable(q))
		return NULL;
	int64_t deadline = skpy_deadline(1, timeout);
	if (deadline == -2)
		return NULL;
	int rc = sk_queue_join(q->q, 0);
	if ((rc == -EAGAIN || rc == -ETIMEDOUT) && deadline != 0)
		rc = skpy_wait(q, join_fn, q->q, deadline);
	if (rc == -EAGAIN || rc == -ETIMEDOUT)
		Py_RETURN_FALSE;
	if (rc)
		return skpy_raise(rc, q->life.name);
	Py_RETURN_TRUE;
}

static PyObject *queue_close(QueueObject *q, PyObject *unused)
{
	(void)unused;
	if (skpy_closable(q, "close"))
		return NULL;
	queue_release(q);
	Py_RETURN_NONE;
}

static PyObject *queue_unlink(QueueObject *q, PyObject *unused)
{
	(void)unused;
	return skpy_unlink_named(&q->life);
}

static PyObject *queue_noop(QueueObject *q, PyObject *unused)
{
	(void)q;
	(void)unused;
	Py_RETURN_NONE;
}

static PyObject *queue_reduce(QueueObject *q, PyObject *unused)
{
	(void)unused;
	if (q_usable(q))
		return NULL;
	PyObject *token = skpy_handoff(sk_queue_segment(q->q), &q->life);
	PyObject *fn = token ? skpy_attr("shmkit", "_reopen_queue") : NULL;
	PyObject *r = fn ? Py_BuildValue("N(OOsOO)", fn, (PyObject *)Py_TYPE(q), token, skpy_life_shown(&q->life),
					 q->foreign ? Py_True : Py_False, q->unpickle ? Py_True : Py_False)
			 : NULL;
	Py_XDECREF(token);
	return r;
}

static PyObject *queue_get_name(QueueObject *q, void *c)
{
	(void)c;
	return PyUnicode_FromString(skpy_life_shown(&q->life));
}

static PyObject *queue_adopt(QueueObject *q, PyObject *shown)
{
	return skpy_adopt_method(&q->life, shown);
}
static PyObject *queue_get_capacity(QueueObject *q, void *c)
{
	(void)c;
	return PyLong_FromUnsignedLongLong(q->capacity);
}
static PyObject *queue_get_max_msg(QueueObject *q, void *c)
{
	(void)c;
	return PyLong_FromUnsignedLongLong(q->max_msg);
}
static PyObject *queue_get_maxsize(QueueObject *q, void *c)
{
	(void)c;
	return PyLong_FromUnsignedLongLong(q->maxsize);
}
static PyObject *queue_get_unpickle(QueueObject *q, void *c)
{
	(void)c;
	return PyBool_FromLong(q->unpickle);
}
static PyObject *queue_get_foreign(QueueObject *q, void *c)
{
	(void)c;
	return PyBool_FromLong(q->foreign);
}
static PyObject *queue_get_closed(QueueObject *q, void *c)
{
	(void)c;
	return PyBool_FromLong(q->closed);
}

static PyMethodDef queue_methods[] = {
	{ "put_bytes", (PyCFunction)(void (*)(void))queue_put_bytes, METH_VARARGS | METH_KEYWORDS,
	  "put_bytes($self, /, data, block=True, timeout=None)\n--\n\n"
	  "put_bytes(data, block=True, timeout=None): one raw message (any bytes-like object)." },
	{ "get_bytes", (PyCFunction)(void (*)(void))queue_get_bytes, METH_VARARGS | METH_KEYWORDS,
	  "get_bytes($self, /, block=True, timeout=None)\n--\n\n"
	  "get_bytes(block=True, timeout=None) -> bytes: the oldest message as it was put." },
	{ "put_many_bytes", (PyCFunction)(void (*)(void))queue_put_many_bytes, METH_VARARGS | METH_KEYWORDS,
	  "put_many_bytes($self, /, items, block=True, timeout=None)\n--\n\n"
	  "put_many_bytes(items, block=True, timeout=None) -> how many were put (under one lock per batch)." },
	{ "get_many_bytes", (PyCFunction)(void (*)(void))queue_get_many_bytes, METH_VARARGS | METH_KEYWORDS,
	  "get_many_bytes($self, /, max=64, block=True, timeout=None, *, bytearray=False)\n--\n\n"
	  "get_many_bytes(max=64, block=True, timeout=None) -> list of 1..max messages." },
	{ "put", (PyCFunction)(void (*)(void))queue_put, METH_FASTCALL | METH_KEYWORDS,
	  "put($self, /, obj, block=True, timeout=None)\n--\n\n"
	  "put(obj, block=True, timeout=None): pickle (protocol 5; buffers such as NumPy arrays out of band, "
	  "copied once) and put. queue.Full when there is no room in time." },
	{ "get", (PyCFunction)(void (*)(void))queue_get, METH_FASTCALL | METH_KEYWORDS,
	  "get($self, /, block=True, timeout=None)\n--\n\n"
	  "get(block=True, timeout=None) -> the oldest object. queue.Empty when none comes in time." },
	{ "qsize", (PyCFunction)queue_qsize, METH_NOARGS,
	  "qsize($self, /)\n--\n\n"
	  "Messages waiting." },
	{ "empty", (PyCFunction)queue_empty, METH_NOARGS,
	  "empty($self, /)\n--\n\n"
	  "True if no message waits." },
	{ "full", (PyCFunction)queue_full, METH_NOARGS,
	  "full($self, /)\n--\n\n"
	  "True if a message of max_msg bytes would not fit now." },
	{ "stats", (PyCFunction)queue_stats, METH_NOARGS,
	  "stats($self, /)\n--\n\n"
	  "Counters of the queue as a dict." },
	{ "shutdown", (PyCFunction)queue_shutdown, METH_NOARGS,
	  "shutdown($self, /)\n--\n\n"
	  "Refuse puts everywhere from now on; gets drain what is left, then raise shmkit.ShutDown." },
	{ "close", (PyCFunction)queue_close, METH_NOARGS,
	  "close($self, /)\n--\n\n"
	  "This process is done with the queue: unmap it (the queue lives on for the others)." },
	{ "unlink", (PyCFunction)queue_unlink, METH_NOARGS,
	  "unlink($self, /)\n--\n\n"
	  "Remove the queue's name." },
	{ "_task_done", (PyCFunction)queue_task_done, METH_NOARGS,
	  "_task_done($self, /)\n--\n\nMark one message handled (JoinableQueue.task_done)." },
	{ "_join", (PyCFunction)(void (*)(void))queue_join, METH_VARARGS | METH_KEYWORDS,
	  "_join($self, /, timeout=None)\n--\n\nWait until every message was marked handled (JoinableQueue.join)." },
	{ "join_thread", (PyCFunction)queue_noop, METH_NOARGS,
	  "join_thread($self, /)\n--\n\n"
	  "Nothing to join: put() has copied the message into shared memory before it returns." },
	{ "cancel_join_thread", (PyCFunction)queue_noop, METH_NOARGS,
	  "cancel_join_thread($self, /)\n--\n\n"
	  "Nothing to cancel (see join_thread)." },
	{ "open", (PyCFunction)(void (*)(void))queue_open, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
	  "open($type, /, name, *, any_owner=False, unpickle=None)\n--\n\n"
	  "Attach to a named queue (waiting for its lock at most 10 s). any_owner: one another user made;\n"
	  "unpickle: whether get() unpickles (default: not from another user's queue)." },
	{ "__reduce__", (PyCFunction)queue_reduce, METH_NOARGS, NULL },
	{ "_adopt", (PyCFunction)queue_adopt, METH_O,
	  "_adopt($self, shown, /)\n--\n\nAttached by a hand-over name: remove it when done." },
	{ 0 }
};

static PyGetSetDef queue_getset[] = {
	{ "name", (getter)queue_get_name, NULL, "segment name", NULL },
	{ "capacity", (getter)queue_get_capacity, NULL, "ring bytes", NULL },
	{ "max_msg", (getter)queue_get_max_msg, NULL, "largest message in bytes", NULL },
	{ "closed", (getter)queue_get_closed, NULL, "True after close()", NULL },
	{ "maxsize", (getter)queue_get_maxsize, NULL, "messages at most (0: no limit)", NULL },
	{ "unpickle", (getter)queue_get_unpickle, NULL, "get() unpickles messages", NULL },
	{ "foreign", (getter)queue_get_foreign, NULL, "the queue belongs to another user", NULL },
	{ 0 }
};

static PyTypeObject Queue_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit._shmkit.Queue",
	.tp_basicsize = sizeof(QueueObject),
	.tp_dealloc = (destructor)queue_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Queue(maxsize=0, *, name=None, capacity=33554432, max_msg=None, owned=True)\n--\n\n"
		  "The queue in C; shmkit.Queue adds the nowait and many variants.",
	.tp_weaklistoffset = offsetof(QueueObject, weakrefs),
	.tp_methods = queue_methods,
	.tp_getset = queue_getset,
	.tp_new = queue_tp_new,
};

static PyMethodDef queue_functions[] = {
	{ "_encode", (PyCFunction)queue_encode, METH_O,
	  "_encode($module, obj, /)\n--\n\nOne queue message for obj as put() makes it (no out-of-band buffers)." },
	{ "_decode_msg", (PyCFunction)queue_decode_msg, METH_O,
	  "_decode_msg($module, msg, /)\n--\n\nThe object in one queue message (a bytearray)." },
	{ 0 }
};

int skpy_queue_init(PyObject *m)
{
	if (skpy_add_type(m, &Queue_Type, "Queue"))
		return -1;
	return PyModule_AddFunctions(m, queue_functions);
}
