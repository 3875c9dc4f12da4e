/*
 * named.h: the kinds of the named primitives, defined by sync.c: a named
 * mutex, rwlock, semaphore, barrier, event or condition variable is a
 * segment of one of these kinds holding it. Layer: sync.
 */
#ifndef SHMKIT_SRC_NAMED_H
#define SHMKIT_SRC_NAMED_H

#include "kind.h"

extern const sk__kind sk__kind_mutex;
extern const sk__kind sk__kind_rwlock;
extern const sk__kind sk__kind_sem;
extern const sk__kind sk__kind_barrier;
extern const sk__kind sk__kind_event;
extern const sk__kind sk__kind_cond;

#endif
