/*
 * python/ext/sync.h: what sync.c gives the files above it (data.c for locked
 * arrays, value.c for values): the lock object of a lock that lives inside
 * another object's segment. See base.h for the layering.
 */
#ifndef SHMKIT_PY_SYNC_H
#define SHMKIT_PY_SYNC_H

#include "base.h"

/* A Lock (recursive 0) or RLock (1) over m, which lives inside parent's
 * segment: parent (a skpy_base object) is kept alive, its `held` counts the
 * holds by threads of this process, and its `busy` the waits, so that
 * parent's close() refuses while either is non-zero. New reference. */
PyObject *skpy_mutex_embedded(sk_mutex *m, PyObject *parent, int recursive);
/* 1 if o is a shmkit Lock or RLock. */
int skpy_is_mutex(PyObject *o);
/* 1 if the calling thread holds the lock through this lock object. */
int skpy_mutex_held_here(PyObject *lock);

#endif
