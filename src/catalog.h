/*
 * catalog.h: what catalog.c offers the library's white-box users besides
 * the public any-kind functions. Layer: catalog.
 */
#ifndef SHMKIT_SRC_CATALOG_H
#define SHMKIT_SRC_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"

/* Validates a descriptor read from a file of actual_size bytes (`got` bytes
 * of it could be read) against every kind, with no creation record: as an
 * open of any kind does (the header fuzzer's entry). */
int sk__header_validate(const sk__header *h, size_t got, uint64_t actual_size);

#endif
