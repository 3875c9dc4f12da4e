/*
 * internal.h: every private header of the library at once, for white-box
 * users only (tests/, fuzz/, bench/): the library's own modules include the
 * headers of their layer and below (docs/design.md), never this one.
 * Nothing here is part of the public API or ABI.
 *
 *   os.h       the OS layer's contract (src/sys/linux.c)
 *   clock.h    deadlines on CLOCK_MONOTONIC, the spin-wait hint
 *   simd.h     the bit-array kernels (src/simd.c)
 *   format.h   the on-disk format of a segment
 *   kind.h     how a kind describes itself to the segment layer
 *   segment.h  the handle, create and open for the kinds (src/segment.c)
 *   named.h    the named primitives' kinds (src/sync.c)
 *   kinds.h    every kind's descriptor
 *   catalog.h  the any-kind validation (src/catalog.c)
 */
#ifndef SHMKIT_INTERNAL_H
#define SHMKIT_INTERNAL_H

#include "shmkit.h"

#include "catalog.h"
#include "clock.h"
#include "format.h"
#include "kind.h"
#include "kinds.h"
#include "named.h"
#include "os.h"
#include "segment.h"
#include "simd.h"

#endif
