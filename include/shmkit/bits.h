/*
 * shmkit/bits.h: bit arrays of up to 2^40 bits in named segments.
 *
 * Bits are stored in little-endian 64-bit words: bit i lives in word i / 64 at
 * position i % 64, the layout of numpy.unpackbits(..., bitorder="little").
 * Bits past the length in the last word are always zero.
 *
 * Concurrency: single-bit set/clear/flip and test_and_set/test_and_clear are
 * atomic read-modify-writes, safe from any number of processes at once.
 * Range operations update their first and last word atomically and the words
 * between with plain stores: two ranges that do not overlap may be written
 * concurrently. Counting, searching and the and/or/xor/not bulk operations
 * read and write plain memory; run them while no one else writes the bits
 * involved (or accept a result that mixes before and after).
 *
 * Counting and bulk operations pick the fastest code for the CPU at run time
 * (AVX-512, AVX2, POPCNT or portable C); the environment variable
 * SHMKIT_SIMD=portable|popcnt|avx2|avx512 forces a path, sk_simd_path() tells
 * which one is in use.
 */
#ifndef SHMKIT_BITS_H
#define SHMKIT_BITS_H

#include <stdint.h>

#include "common.h"
#include "segment.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SK_BITS_MAX (UINT64_C(1) << 40)

typedef struct sk_bits sk_bits;

/* Creates a zeroed bit array of nbits (0..SK_BITS_MAX) bits under name (NULL:
 * generated). Errors as sk_array_create; -EINVAL above SK_BITS_MAX. */
int sk_bits_create(const char *name, uint64_t nbits, const sk_create_opts *opts, sk_bits **out);
/* Opens an existing bit array; flags and errors as sk_segment_open, and
 * SK_EKIND if the segment is not one. */
int sk_bits_open(const char *name, int flags, sk_bits **out);
/* Unmaps and frees the handle (a view: frees only the view); accepts NULL.
 * Returns 0. */
int sk_bits_close(sk_bits *b);
/* A bit array of nbits bits inside another segment's data (raw, say, to keep
 * many bit arrays in one segment): its words start at byte offset (a
 * multiple of 8) of sk_segment_data(seg) and must lie within the data
 * (-ERANGE otherwise; -EINVAL for a bad offset or nbits > SK_BITS_MAX). The
 * view borrows seg: close the view before seg. Writes through it need seg
 * mapped read-write (SK_EREADONLY otherwise). Every call works on a view as
 * on a bit array of its own; the bits past nbits in its last word must be
 * zero for and/or/xor to keep that invariant in their results (whoever
 * fills the words sees to it). */
int sk_bits_view(sk_segment *seg, uint64_t offset, uint64_t nbits, sk_bits **out);
/* As sk_array_wrap, for bit arrays. */
int sk_bits_wrap(sk_segment *seg, sk_bits **out);

uint64_t sk_bits_len(const sk_bits *b);
uint64_t *sk_bits_words(const sk_bits *b); /* ceil(len / 64) words; NULL when len is 0 */
const char *sk_bits_name(const sk_bits *b);
sk_segment *sk_bits_segment(const sk_bits *b);

/* Single bits. test returns 0 or 1; the others return 0. All return -ERANGE
 * for i >= len, and the writers SK_EREADONLY on a read-only handle. */
int sk_bits_test(const sk_bits *b, uint64_t i);
int sk_bits_set(sk_bits *b, uint64_t i);
int sk_bits_clear(sk_bits *b, uint64_t i);
int sk_bits_flip(sk_bits *b, uint64_t i);
/* Atomically set (clear) bit i and return its previous value, 0 or 1. */
int sk_bits_test_and_set(sk_bits *b, uint64_t i);
int sk_bits_test_and_clear(sk_bits *b, uint64_t i);

/* Set or clear every bit in [begin, end). -ERANGE unless begin <= end <= len. */
int sk_bits_set_range(sk_bits *b, uint64_t begin, uint64_t end);
int sk_bits_clear_range(sk_bits *b, uint64_t begin, uint64_t end);

/* Number of set bits in [begin, end), or -ERANGE. */
int64_t sk_bits_count(const sk_bits *b, uint64_t begin, uint64_t end);

/* Index of the first set (clear) bit at or after `from`, SK_ENOTFOUND when
 * there is none, -ERANGE when from > len. */
int64_t sk_bits_find_next_set(const sk_bits *b, uint64_t from);
int64_t sk_bits_find_next_clear(const sk_bits *b, uint64_t from);

/* dst = a OP b, bit by bit. All operands must have the same length
 * (SK_ETYPE otherwise); dst may be a or b. */
int sk_bits_and(sk_bits *dst, const sk_bits *a, const sk_bits *b);
int sk_bits_or(sk_bits *dst, const sk_bits *a, const sk_bits *b);
int sk_bits_xor(sk_bits *dst, const sk_bits *a, const sk_bits *b);
/* dst = ~a (bits past the length stay zero). dst may be a. */
int sk_bits_not(sk_bits *dst, const sk_bits *a);

/* Name of the code path used for counting and bulk operations:
 * "avx512", "avx2", "popcnt" or "portable". */
const char *sk_simd_path(void);

#ifdef __cplusplus
}
#endif
#endif
