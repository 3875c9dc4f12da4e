/*
 * shmkit.h: the umbrella header. Include this, link with -lshmkit
 * (pkg-config --cflags --libs shmkit).
 */
#ifndef SHMKIT_H
#define SHMKIT_H

#include "shmkit/common.h"
#include "shmkit/segment.h"
#include "shmkit/array.h"
#include "shmkit/bits.h"
#include "shmkit/pool.h"
#include "shmkit/sync.h"
#include "shmkit/value.h"
#include "shmkit/queue.h"

#endif
