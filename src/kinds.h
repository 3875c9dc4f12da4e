/*
 * kinds.h: the descriptors of the kinds of this layer, each defined by its
 * own module, and those of the layers below (raw segments' in kind.h, the
 * named primitives' in named.h): every kind there is. Layer: kinds. A kind
 * includes it for its own descriptor; catalog.c, for the table of them all.
 */
#ifndef SHMKIT_SRC_KINDS_H
#define SHMKIT_SRC_KINDS_H

#include "kind.h"
#include "named.h"

extern const sk__kind sk__kind_array; /* array.c */
extern const sk__kind sk__kind_bits;  /* bits.c */
extern const sk__kind sk__kind_value; /* value.c */
extern const sk__kind sk__kind_queue; /* queue.c */

#endif
