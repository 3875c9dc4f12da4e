/*
 * segment.c: named, self-describing segments.
 *
 * Memory layout of a segment file (docs/format.md has every byte):
 *
 *   0      512  descriptor: magic, version, kind, sizes, dtype/shape, creator,
 *               checksum. Written once before the name exists; never changes.
 *   512   4096  live area: per-kind state that changes (locks, counters),
 *               validated by its own kind; the freeze mark at 1024; the
 *               creation record at 1088 (quick hash, pages obtained).
 *   4096   ...  data, page aligned, data_size bytes, zero-filled at creation,
 *               then padding up to a whole page.
 *
 * Concurrency: the descriptor is immutable, so any number of processes may
 * open, validate and map a segment at once without locking. Each handle keeps
 * a private validated copy of the descriptor, so a stray write into the
 * mapped header cannot change what this process believes the shape is.
 * Creation is atomic (see sys/linux.c): the name appears only after the
 * header is complete, or, with SK_CREATE_UNPUBLISHED, only when the creator
 * publishes it after filling the data.
 *
 * Trust: opens check the owner of the file on the descriptor they map
 * (SK_EOWNER unless SK_OPEN_ANY_OWNER), map the file, and copy the
 * descriptor, the creation record and the freeze mark out of the mapping
 * once each; everything is validated in the private copies. The creation
 * record is never trusted: its quick hash of the descriptor only spares
 * recomputing the FNV checksum (which any writer could rewrite too), and its
 * page report is informational. After the open nothing but the freeze mark is
 * read from the mapped header page, and that in one load. Owned
 * segments are removed only when their creator is judged dead in the pid and
 * time namespaces recorded in the header ("Is the creator alive?" below).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os.h"
#include "segment.h"

static void sweep(void);

uint64_t sk__header_checksum(const sk__header *h)
{
	const uint8_t *p = (const uint8_t *)h;
	uint64_t x = UINT64_C(0xcbf29ce484222325); /* FNV-1a 64 */
	for (size_t i = 0; i < offsetof(sk__header, checksum); i++) {
		x ^= p[i];
		x *= UINT64_C(0x100000001b3);
	}
	return x;
}

/* The quick hash (docs/format.md): four lanes over the descriptor's 64
 * little-endian words, each step rotl(lane + word * K2, 31) * K1 (the round
 * of xxHash64), merged and mixed. For a fixed lane a step is a bijection of
 * the word, and for a fixed word one of the lane, so any damage confined to
 * one word changes the hash: like the FNV checksum, it misses no single-byte
 * change. It takes about a tenth of the time of FNV-1a's 504 dependent
 * multiplications. */
#define QH_K1 UINT64_C(0x9e3779b97f4a7c15)
#define QH_K2 UINT64_C(0xc2b2ae3d27d4eb4f)
#define QH_K3 UINT64_C(0x165667b19e3779f9)

static inline uint64_t rotl64(uint64_t x, int r)
{
	return x << r | x >> (64 - r);
}

static inline uint64_t qh_step(uint64_t lane, const uint8_t *p)
{
	uint64_t w;
	memcpy(&w, p, sizeof w);
	return rotl64(lane + w * QH_K2, 31) * QH_K1;
}

uint64_t sk__desc_hash(const sk__header *h)
{
	const uint8_t *p = (const uint8_t *)h;
	uint64_t a0 = QH_K1, a1 = QH_K2, a2 = QH_K3, a3 = QH_K1 ^ QH_K2;
	for (size_t i = 0; i < SK__DESC_SIZE; i += 32) { /* word i/8 + k goes to lane k */
		a0 = qh_step(a0, p + i);
		a1 = qh_step(a1, p + i + 8);
		a2 = qh_step(a2, p + i + 16);
		a3 = qh_step(a3, p + i + 24);
	}
	uint64_t x = rotl64(a0, 1) + rotl64(a1, 7) + rotl64(a2, 12) + rotl64(a3, 18);
	x ^= x >> 33;
	x *= QH_K2;
	x ^= x >> 29;
	x *= QH_K3;
	x ^= x >> 32;
	return x;
}

/* Whether n bytes are all zero: words or'ed together, no early exit. */
static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t acc = 0;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, b + i, sizeof w);
		acc |= w;
	}
	for (; i < n; i++)
		acc |= b[i];
	return acc == 0;
}

/* Whether a creation record copied from a segment is usable at all: then its
 * hash may stand in for the checksum. */
static bool crec_usable(const sk__crec *r)
{
	return r->magic == SK__CREC_MAGIC && r->version == 1 && r->flags == 0 && r->resv == 0 &&
	       r->huge_status <= SK_HUGE_HUGETLB && r->huge_errno >= 0 && r->huge_bytes % SK__HUGE_PAGE == 0 &&
	       r->huge_first % SK__HUGE_PAGE == 0;
}

/* Whether a creation record is usable and describes the pages of the file
 * dev/ino, file_len bytes long. */
static bool crec_describes(const sk__crec *r, uint64_t dev, uint64_t ino, uint64_t file_len)
{
	return crec_usable(r) && r->dev == dev && r->ino == ino && r->huge_first <= file_len &&
	       r->huge_bytes <= file_len - r->huge_first;
}

/* The raw kind, the segment layer's own: untyped bytes, one item a byte. */
static int check_raw(const sk__header *h)
{
	return h->dtype || !sk__header_no_shape(h) || h->nitems != h->data_size ? SK_ECORRUPT : 0;
}

const sk__kind sk__kind_raw = { .id = SK_KIND_RAW, .name = "raw", .check = check_raw };

bool sk__header_no_shape(const sk__header *h)
{
	return h->ndim == 0 && all_zero(h->shape, sizeof h->shape);
}

int sk__kind_check(const sk__header *h, const sk__kind *k)
{
	if (k->id == 0)
		return k->check(h);
	if (h->kind != k->id)
		return SK_EKIND;
	if ((h->flags & SK__HF_LOCKED) && !(k->hflags & SK__HF_LOCKED))
		return SK_ECORRUPT;
	return k->check(h);
}

int sk__header_validate_kind(const sk__header *h, size_t got, uint64_t actual_size, const sk__crec *rec,
			     const sk__kind *kind)
{
	if (got < sizeof h->magic) /* too short for a magic: ours only if a prefix of it */
		return memcmp(h->magic, SK__MAGIC, got) ? SK_EFOREIGN : SK_ETOOSMALL;
	if (memcmp(h->magic, SK__MAGIC, sizeof h->magic))
		return SK_EFOREIGN;
	if (got < sizeof *h || actual_size < SK__HEADER_SIZE)
		return SK_ETOOSMALL;
	if (h->version > SK__LAYOUT_VERSION)
		return SK_EVERSION;
	if (h->version == 0)
		return SK_ECORRUPT;
	/* The creator's quick hash of these 512 bytes (checksum included), when it
	 * matches, says what recomputing FNV-1a would: any change to the bytes it
	 * was made from fails it, and FNV-1a then decides. */
	bool quick = rec && crec_usable(rec) && rec->desc_hash == sk__desc_hash(h);
	if (!quick && h->checksum != sk__header_checksum(h))
		return SK_ECHECKSUM;
	/* The checksum matched: what follows catches headers written wrongly
	 * (or forged), not random damage. */
	if (h->header_size != SK__HEADER_SIZE || h->resv0 || !all_zero(h->resv, sizeof h->resv))
		return SK_ECORRUPT;
	if (h->version == 1 && (h->ns_dev || h->pidns || h->timens))
		return SK_ECORRUPT; /* reserved bytes in version 1 */
	if (h->data_offset < SK__HEADER_SIZE || h->data_offset % SK__PAGE || h->creator_pid <= 0)
		return SK_ECORRUPT;
	uint64_t end;
	if (__builtin_add_overflow(h->data_offset, h->data_size, &end) || end > UINT64_MAX - SK__PAGE ||
	    h->file_size != sk__round_up(end, SK__PAGE))
		return SK_ECORRUPT;
	if (h->flags & ~(SK__HF_LOCKED | SK__HF_OWNED))
		return SK_ECORRUPT;
	int rc = kind ? sk__kind_check(h, kind) : 0;
	if (rc)
		return rc;
	if (actual_size < h->file_size)
		return SK_ETRUNCATED;
	return 0;
}

/* Everything but creator_alive. */
static void info_from_fields(const sk__header *h, sk_segment_info *info)
{
	info->kind = (int)h->kind;
	info->version = h->version;
	info->data_size = h->data_size;
	info->data_offset = h->data_offset;
	info->file_size = h->file_size;
	info->creator_pid = h->creator_pid;
	info->creator_start = h->creator_start;
	info->creator_pidns = h->pidns;
	info->ctime_ns = h->ctime_ns;
	info->dtype = (sk_dtype)h->dtype;
	info->ndim = (int)h->ndim;
	memcpy(info->shape, h->shape, sizeof info->shape);
	info->nitems = h->nitems;
	info->locked = (h->flags & SK__HF_LOCKED) != 0;
	info->owned = (h->flags & SK__HF_OWNED) != 0;
}

/* ---- Is the creator alive? ----
 *
 * A creator is named by its pid as its own pid namespace sees it, its start
 * time (clock ticks since boot as its time namespace sees it), and, from
 * layout 2 on, those namespaces. Another process can judge it only where
 * these mean the same to it:
 *   - a different time namespace: start times do not compare (kept);
 *   - the same pid namespace, with /proc showing that namespace: look up
 *     the pid directly, as before;
 *   - otherwise scan /proc (once per judge, again only if the creator could
 *     have started after the scan): a process in the creator's namespace
 *     with its pid there and its start time is the creator. Not finding it
 *     proves death only if the scan could see the whole namespace: if it
 *     saw any process of that namespace (then /proc belongs to an ancestor,
 *     which sees all of them), or if /proc is the initial namespace's
 *     (which sees every process). Otherwise the namespace is hidden (a
 *     sibling container): kept.
 * Anything /proc cannot tell keeps the segment. */
typedef struct judge {
	bool viewed, proc_own, proc_all;
	bool scanned;
	int scan_rc;
	sk__proc *procs;
	size_t nprocs;
	uint64_t scan_ticks;
} judge;

static void judge_free(judge *j)
{
	free(j->procs);
	memset(j, 0, sizeof *j);
}

static int judge_creator(judge *j, const sk__header *h)
{
	if (h->version < 2)
		return SK_GC_OLD_LAYOUT;
	if (!h->pidns || !h->creator_start)
		return SK_GC_UNKNOWN;
	uint64_t dev, pidns, timens;
	sk__sys_self_ns(&dev, &pidns, &timens);
	if (!pidns || dev != h->ns_dev)
		return SK_GC_UNKNOWN;
	if (timens != h->timens)
		return SK_GC_TIMENS;
	if (!j->viewed) {
		sk__sys_proc_view(&j->proc_own, &j->proc_all);
		j->viewed = true;
	}
	if (pidns == h->pidns && j->proc_own) {
		uint64_t start;
		int rc = sk__sys_proc_start(h->creator_pid, &start);
		if (rc == -ESRCH)
			return SK_GC_DEAD;
		if (rc)
			return SK_GC_UNKNOWN;
		return start == h->creator_start ? SK_GC_ALIVE : SK_GC_DEAD; /* another start: pid reused */
	}
	/* A scan that began before the creator started cannot have seen it (a
	 * tick of margin for rounding): scan again. A scan made now began after
	 * the header was read, hence after the creator started. */
	if (!j->scanned || (!j->scan_rc && j->scan_ticks <= h->creator_start + 1)) {
		free(j->procs);
		j->procs = NULL;
		j->nprocs = 0;
		j->scan_rc = sk__sys_proc_scan(&j->procs, &j->nprocs, &j->scan_ticks);
		j->scanned = true;
	}
	if (j->scan_rc)
		return SK_GC_UNKNOWN;
	/* A namespace's inode can be reused once it has died; then its
	 * processes are all dead, and so is the creator: whatever runs there
	 * now has another start time. */
	bool seen_ns = false, hidden_candidate = false;
	for (size_t i = 0; i < j->nprocs; i++) {
		const sk__proc *p = &j->procs[i];
		bool in_ns = p->ns_known && p->ns_dev == h->ns_dev && p->ns_ino == h->pidns;
		seen_ns |= in_ns;
		if (p->pid != h->creator_pid)
			continue;
		if (in_ns)
			return p->start == h->creator_start ? SK_GC_ALIVE : SK_GC_DEAD;
		if (!p->ns_known)
			hidden_candidate = true; /* this one's namespace is not ours to read */
	}
	if (hidden_candidate)
		return SK_GC_UNKNOWN;
	return seen_ns || j->proc_all ? SK_GC_DEAD : SK_GC_NS_HIDDEN;
}

const char *sk_gc_verdict_str(int verdict)
{
	switch (verdict) {
	case SK_GC_DEAD:
		return "its creator has died (no process with its pid and start time runs in its pid namespace)";
	case SK_GC_ALIVE: return "its creator still runs";
	case SK_GC_NS_HIDDEN:
		return "its creator lived in a pid namespace this process cannot see (another container): not judged";
	case SK_GC_TIMENS:
		return "its creator lived in another time namespace, whose start times do not compare: not judged";
	case SK_GC_UNKNOWN:
		return "/proc cannot tell whether its creator runs (not mounted, not readable, or no start time "
		       "recorded): not judged";
	case SK_GC_OLD_LAYOUT: return "layout version 1 records no pid namespace for its creator: not judged";
	case SK_GC_UNLINK_FAILED: return "its creator has died, but its name could not be removed";
	}
	return "unknown verdict";
}

static void info_judged(const sk__header *h, sk_segment_info *info, judge *j)
{
	info_from_fields(h, info);
	int v = judge_creator(j, h);
	info->creator_alive = v == SK_GC_ALIVE ? 1 : v == SK_GC_DEAD ? 0 : -1;
}

void sk__info_from_header(const sk__header *h, sk_segment_info *info)
{
	judge j = { 0 };
	info_judged(h, info, &j);
	judge_free(&j);
}

const char *sk_huge_str(int status)
{
	switch (status) {
	case SK_HUGE_UNKNOWN: return "not recorded (made by an older shmkit, or a copy of a segment's file)";
	case SK_HUGE_ALL: return "every whole 2 MiB of the file collapsed into a 2 MiB page at creation";
	case SK_HUGE_PARTIAL: return "part of the file collapsed into 2 MiB pages; the kernel refused the rest";
	case SK_HUGE_REFUSED: return "the kernel refused 2 MiB pages at creation";
	case SK_HUGE_SMALL: return "no 2 MiB pages asked for: the file is smaller than 4 MiB (SK_HUGE_MIN)";
	case SK_HUGE_OPTED_OUT: return "no 2 MiB pages asked for (SK_CREATE_NOHUGE)";
	case SK_HUGE_HUGETLB: return "hugetlb pages from the huge-page pool";
	}
	return "unknown";
}

static int gen_name(char *buf, size_t len)
{
	static unsigned counter;
	uint8_t r[6];
	int rc = sk__sys_random(r, sizeof r);
	if (rc)
		return rc;
	pid_t pid;
	uint64_t start;
	sk__sys_self(&pid, &start);
	unsigned c = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
	snprintf(buf, len, "sk-%d-%u-%02x%02x%02x%02x%02x%02x", (int)pid, c, r[0], r[1], r[2], r[3], r[4], r[5]);
	return 0;
}

/* Links the unnamed file fd under name, or under a generated name when name
 * is NULL; the name given is copied to out. -EEXIST if name is taken. */
static int publish_name(int fd, const char *name, char out[SK_NAME_MAX + 1])
{
	if (name) {
		int rc = sk__sys_publish(fd, name);
		if (!rc)
			snprintf(out, SK_NAME_MAX + 1, "%s", name);
		return rc;
	}
	/* Generated names carry 48 random bits: a clash is rare, but retry. */
	int rc = -EEXIST;
	for (int tries = 0; tries < 16 && rc == -EEXIST; tries++) {
		char gen[64];
		rc = gen_name(gen, sizeof gen);
		if (!rc)
			rc = sk__sys_publish(fd, gen);
		if (!rc)
			snprintf(out, SK_NAME_MAX + 1, "%s", gen);
	}
	return rc;
}

/* ---- Handles ---- */

#define SLOT_SIZE 1008u /* 64 + 4 * 1008 = 4096: the bitmap and four slots share the first page */
#define SLOTS     64
static struct {
	uint64_t used; /* bit i: slot i is taken */
	uint8_t pad[56];
	uint8_t slot[SLOTS][SLOT_SIZE];
} handles __attribute__((aligned(4096)));
static_assert(sizeof(sk_segment) <= SLOT_SIZE, "a segment handle fits a slot");

void *sk__handle_alloc(size_t size)
{
	if (size <= SLOT_SIZE) {
		uint64_t used = __atomic_load_n(&handles.used, __ATOMIC_RELAXED);
		while (~used) {
			int i = __builtin_ctzll(~used);
			if (__atomic_compare_exchange_n(&handles.used, &used, used | UINT64_C(1) << i, false,
							__ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
				memset(handles.slot[i], 0, size);
				return handles.slot[i];
			}
		}
	}
	return calloc(1, size);
}

void sk__handle_free(void *p)
{
	uint8_t *b = p, *first = handles.slot[0];
	if (b >= first && b < first + sizeof handles.slot) {
		size_t i = (size_t)(b - first) / SLOT_SIZE;
		__atomic_fetch_and(&handles.used, ~(UINT64_C(1) << i), __ATOMIC_RELEASE);
	} else {
		free(p);
	}
}

/* A segment mapped in this process, its descriptor validated: what a
 * handle is made from, by a create or an attach. */
typedef struct mapped {
	uint8_t *base; /* the mapping, header page first */
	size_t size;   /* bytes mapped */
	size_t page;   /* the file system's page */
	sk__header h;  /* the validated private copy of the descriptor */
	sk__crec rec;  /* the creation record copied from the file (never trusted) */
	sk__file st;   /* the file mapped */
} mapped;

/* Builds the handle of the segment m under name (flags: SK_RDONLY or
 * SK_RDWR); the handle takes over the mapping. */
static int make_handle(const mapped *m, const char *name, int flags, sk_segment **out)
{
	sk_segment *s = sk__handle_alloc(sizeof *s);
	if (!s)
		return -ENOMEM;
	size_t n = strlen(name);
	memcpy(s->name, name, n + 1); /* names are checked: at most SK_NAME_MAX */
	s->base = m->base;
	s->map_size = m->size;
	s->flags = flags & SK_RDONLY;
	s->mode = m->st.mode;
	s->uid = m->st.uid;
	s->dev = m->st.dev;
	s->ino = m->st.ino;
	s->fd = -1;
	s->unpublished = false;
	s->page_size = m->page;
	const sk__crec *rec = &m->rec;
	if (crec_describes(rec, m->st.dev, m->st.ino, m->size)) {
		s->huge_status = (int)rec->huge_status;
		s->huge_errno = rec->huge_errno;
		s->huge_bytes = rec->huge_bytes;
		s->huge_first = rec->huge_first;
	} else {
		s->huge_status = SK_HUGE_UNKNOWN;
		s->huge_errno = 0;
		s->huge_bytes = s->huge_first = 0;
	}
	s->hdr = m->h;
	*out = s;
	return 0;
}

/* ---- Pages ----
 *
 * Every mapping of a file of at least SK_HUGE_MIN bytes starts on a 2 MiB
 * boundary, so that each 2 MiB page of the file can be mapped by one
 * page-table entry. The creator turns the file's whole 2 MiB blocks into
 * transparent huge pages before anything is written: it reserves one 4 KiB
 * page per block, has the kernel collapse each block (MADV_COLLAPSE allocates
 * the 2 MiB page and zeroes the rest of it, about ten times faster than
 * reserving and then collapsing 512 small pages), and only then reserves the
 * rest of the file. Blocks the kernel refuses keep 4 KiB pages; the creation
 * record says how many became huge and why not. */

/* The alignment of a mapping of msize bytes of a file with pages of `page`. */
static size_t map_align(size_t msize, size_t page)
{
	return page == SK__PAGE && msize >= SK_HUGE_MIN ? SK__HUGE_PAGE : 0;
}

/* The creation options' flags and mode: -EINVAL for a flag no kind takes, a
 * contradiction, reserved bytes set or more than permission bits; *mode gets
 * the file's permission bits (0600 by default). */
static int check_opts(const sk_create_opts *opts, uint32_t *mode)
{
	*mode = 0600;
	if (!opts)
		return 0;
	if ((opts->flags & ~(uint32_t)(SK_CREATE_LOCKED | SK_CREATE_RAW | SK__CREATE_COMMON)) ||
	    ((opts->flags & SK_CREATE_ANON) && (opts->flags & (SK_CREATE_OWNED | SK_CREATE_UNPUBLISHED))) ||
	    ((opts->flags & SK_CREATE_HUGE) && (opts->flags & SK_CREATE_NOHUGE)) ||
	    !all_zero(opts->resv, sizeof opts->resv) || (opts->mode & ~0777u))
		return -EINVAL; /* permission bits only: no setuid, setgid or sticky bit */
	if (opts->mode)
		*mode = opts->mode;
	return 0;
}

/* Reserves the file's pages: all of [0, len), or for a SK_CREATE_HUGE layout
 * the header page and the data from 2 MiB on (the rest of the first 2 MiB is
 * never touched and takes no memory); the file is len bytes long after. */
static int reserve_file(int fd, bool huge_layout, uint64_t len)
{
	if (!huge_layout)
		return sk__sys_reserve(fd, len);
	int rc = sk__sys_truncate(fd, len);
	if (!rc)
		rc = sk__sys_reserve_at(fd, 0, SK__PAGE);
	if (!rc && len > SK__HUGE_PAGE)
		rc = sk__sys_reserve_at(fd, SK__HUGE_PAGE, len - SK__HUGE_PAGE);
	return rc;
}

/* Collapses the 2 MiB blocks [first, end) of the mapping at base (each holds
 * one reserved 4 KiB page) and records the outcome. Stops at the first
 * EINVAL (the kernel cannot for this file or process: asking again is
 * pointless) and after 4 blocks in a row found no free 2 MiB page. */
static void collapse_blocks(uint8_t *base, uint64_t first, uint64_t end, sk__crec *rec)
{
	uint64_t got = 0, first_huge = 0;
	int err = 0, misses = 0;
	for (uint64_t b = first; b < end; b += SK__HUGE_PAGE) {
		/* Map the block's reserved page first: where the file system made
		 * it part of a 2 MiB page already (tmpfs huge=always, within_size),
		 * the collapse then finds it mapped whole and succeeds; unmapped, it
		 * would be refused with EINVAL. */
		(void)*(volatile const uint8_t *)(base + b);
		int rc = sk__sys_collapse(base + b);
		if (rc == -EAGAIN) /* a page was busy for a moment */
			rc = sk__sys_collapse(base + b);
		if (!rc) {
			if (!got)
				first_huge = b;
			got += SK__HUGE_PAGE;
			misses = 0;
			continue;
		}
		err = -rc;
		if (rc == -EINVAL || ++misses >= 4)
			break;
	}
	rec->huge_bytes = got;
	rec->huge_first = first_huge;
	rec->huge_errno = got == end - first ? 0 : err;
	rec->huge_status = got == end - first ? SK_HUGE_ALL : got ? SK_HUGE_PARTIAL : SK_HUGE_REFUSED;
}

/* The checks of a create's arguments before anything is made; *mode gets
 * the file's permission bits. */
static int check_create(const char *name, const sk__seg_desc *d, const sk_create_opts *opts, uint32_t *mode)
{
	uint32_t cflags = opts ? opts->flags : 0;
	if ((cflags & (SK_CREATE_ANON | SK_CREATE_UNPUBLISHED)) && name)
		return -EINVAL; /* an anonymous segment has no name; an unpublished one gets it later */
	if (name && sk_name_check(name))
		return SK_EBADNAME;
	int rc = check_opts(opts, mode);
	if (rc)
		return rc;
	if (d->ndim < 0 || d->ndim > SK_MAX_DIMS)
		return -EINVAL;
	if (d->data_size > UINT64_MAX - 2 * (uint64_t)SK__HUGE_PAGE)
		return -EOVERFLOW;
	return 0;
}

/* The descriptor of a new segment of d made by this process with the
 * creation flags cflags: the data at the header page's end, or with
 * SK_CREATE_HUGE on a 2 MiB boundary; checksummed, and validated with d's
 * kind (-EINVAL when it does not pass: a caller bug, not a system state). */
static int new_header(const sk__seg_desc *d, uint32_t cflags, sk__header *h)
{
	memset(h, 0, sizeof *h);
	memcpy(h->magic, SK__MAGIC, sizeof h->magic);
	h->version = SK__LAYOUT_VERSION;
	h->header_size = SK__HEADER_SIZE;
	h->kind = d->kind->id;
	h->flags = d->hflags | (cflags & SK_CREATE_OWNED ? SK__HF_OWNED : 0);
	h->data_offset = cflags & SK_CREATE_HUGE ? SK__HUGE_PAGE : SK__HEADER_SIZE;
	h->data_size = d->data_size;
	h->file_size = sk__round_up(h->data_offset + d->data_size, SK__PAGE);
	if (sk__round_up(h->file_size, SK__HUGE_PAGE) > (uint64_t)SIZE_MAX / 2)
		return -EOVERFLOW;
	pid_t pid;
	sk__sys_self(&pid, &h->creator_start);
	h->creator_pid = pid;
	sk__sys_self_ns(&h->ns_dev, &h->pidns, &h->timens);
	h->ctime_ns = sk__sys_realtime_ns();
	h->dtype = (uint32_t)d->dtype;
	h->ndim = (uint32_t)d->ndim;
	h->nitems = d->nitems;
	for (int i = 0; i < d->ndim; i++)
		h->shape[i] = d->shape[i];
	h->checksum = sk__header_checksum(h);
	return sk__header_validate_kind(h, sizeof *h, h->file_size, NULL, d->kind) ? -EINVAL : 0;
}

/* The unnamed file of a new segment, with exactly `mode`: an anonymous
 * segment's memfd (with SK_CREATE_HUGE, from the huge-page pool when the
 * pool holds file_size bytes: reserved and sealed here), or a file in the shm
 * directory that gets its name once complete. */
static int new_file(bool anon, bool huge, uint32_t mode, uint64_t file_size, int *fd, uid_t *owner)
{
	int f;
	if (anon && huge && sk__sys_memfd_huge(mode, &f, owner) == 0) {
		if (sk__sys_reserve(f, sk__round_up(file_size, sk__sys_fs_page(f))) == 0 &&
		    sk__sys_seal_shrink(f) == 0) {
			*fd = f;
			return 0;
		}
		sk__sys_close(f); /* the huge-page pool cannot hold it: plain pages */
	}
	return anon ? sk__sys_memfd(mode, fd, owner) : sk__sys_tmpfile(mode, fd, owner);
}

/* How a new file gets its pages ("Pages" above). */
typedef struct page_plan {
	size_t page;           /* the file system's page: 4 KiB, or 2 MiB for hugetlbfs */
	uint64_t flen;         /* the file's length */
	size_t msize;          /* bytes mapped */
	bool collapse;         /* whether the 2 MiB blocks [cfirst, cend) are collapsed */
	uint64_t cfirst, cend; /* file offsets */
} page_plan;

/* Plans the pages of the new file fd for a descriptor of file_size bytes,
 * and records in rec why no 2 MiB page is asked for, when none is. */
static void plan_pages(int fd, bool huge, bool nohuge, uint64_t file_size, page_plan *p, sk__crec *rec)
{
	p->page = sk__sys_fs_page(fd);
	/* SK_CREATE_HUGE rounds the file up to whole 2 MiB pages. */
	p->flen = huge && p->page == SK__PAGE ? sk__round_up(file_size, SK__HUGE_PAGE) : file_size;
	p->msize = (size_t)sk__round_up(p->flen, p->page);
	p->cfirst = huge ? SK__HUGE_PAGE : 0;
	p->cend = p->flen / SK__HUGE_PAGE * SK__HUGE_PAGE;
	p->collapse = false;
	if (p->page != SK__PAGE) {
		rec->huge_status = SK_HUGE_HUGETLB; /* reserved and sealed by new_file */
		rec->huge_bytes = p->msize;
	} else if (nohuge) {
		rec->huge_status = SK_HUGE_OPTED_OUT;
	} else if ((!huge && p->flen < SK_HUGE_MIN) || p->cend <= p->cfirst) {
		rec->huge_status = SK_HUGE_SMALL;
	} else {
		p->collapse = true;
	}
}

/* Gives the new file fd its pages as planned and maps it at *base, p->msize
 * bytes, recording in rec the 2 MiB pages it got. Collapsing: the file at its
 * length, one reserved page in each block (the kernel collapses no block
 * that is all hole), the blocks collapsed (allocating 2 MiB pages before the
 * file is reserved whole, so that a file that cannot fit fails first, at
 * once), then the rest reserved. Otherwise the pages are reserved before the
 * mapping. Either way a full /dev/shm fails the create, never a later access
 * (SIGBUS). On failure nothing stays mapped. */
static int give_pages(int fd, bool huge, const page_plan *p, sk__crec *rec, uint8_t **base)
{
	int rc = 0;
	if (p->page == SK__PAGE && p->collapse) {
		rc = p->flen > sk__sys_fs_room(fd) ? -ENOSPC : sk__sys_truncate(fd, p->flen);
		for (uint64_t b = p->cfirst; !rc && b < p->cend; b += SK__HUGE_PAGE)
			rc = sk__sys_reserve_at(fd, b, SK__PAGE);
	} else if (p->page == SK__PAGE) {
		rc = reserve_file(fd, huge, p->flen);
	}
	void *m = NULL;
	if (!rc)
		rc = sk__sys_map_aligned(fd, p->msize, false, map_align(p->msize, p->page), &m);
	if (!rc && p->collapse) {
		collapse_blocks(m, p->cfirst, p->cend, rec);
		rc = reserve_file(fd, huge, p->flen); /* the tail, and blocks that stayed small */
	}
	if (rc && m)
		sk__sys_unmap(m, p->msize);
	*base = rc ? NULL : m;
	return rc;
}

/* Writes the descriptor and the creation record into the new segment m
 * (through the mapping: hugetlbfs has no write()) and has d's kind
 * initialise its state, before the name exists: no one sees a half-made
 * segment. */
static int write_head(mapped *m, const sk__seg_desc *d)
{
	memcpy(m->base, &m->h, sizeof m->h);
	m->rec.desc_hash = sk__desc_hash(&m->h);
	m->rec.dev = m->st.dev;
	m->rec.ino = m->st.ino;
	memcpy(m->base + SK__CREC_OFFSET, &m->rec, sizeof m->rec);
	return d->init ? d->init(m->base, d->init_arg) : 0;
}

/* The handle of the new segment m: published now under name (a generated
 * one when NULL), or, unnamed (anonymous or unpublished), under no name yet.
 * The name is removed again when no handle can be made. */
static int publish_handle(int fd, const char *name, bool unnamed, const mapped *m, sk_segment **out)
{
	char published[SK_NAME_MAX + 1] = "";
	int rc = unnamed ? 0 : publish_name(fd, name, published);
	if (!rc)
		rc = make_handle(m, published, SK_RDWR, out);
	if (rc && !unnamed && published[0])
		sk__sys_unlink(published);
	return rc;
}

int sk__segment_create(const char *name, const sk__seg_desc *d, const sk_create_opts *opts, sk_segment **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	uint32_t cflags = opts ? opts->flags : 0, mode;
	bool anon = cflags & SK_CREATE_ANON, unpub = cflags & SK_CREATE_UNPUBLISHED;
	bool huge = cflags & SK_CREATE_HUGE;
	mapped m = { .rec = { .magic = SK__CREC_MAGIC, .version = 1 } };
	int rc = check_create(name, d, opts, &mode);
	if (!rc)
		rc = new_header(d, cflags, &m.h);
	if (rc)
		return rc;
	sweep(); /* owned segments of dead creators go, cheaply, before adding one */
	int fd;
	rc = new_file(anon, huge, mode, m.h.file_size, &fd, &m.st.uid);
	if (rc)
		return rc;
	page_plan p;
	plan_pages(fd, huge, cflags & SK_CREATE_NOHUGE, m.h.file_size, &p, &m.rec);
	rc = give_pages(fd, huge, &p, &m.rec, &m.base);
	m.size = p.msize;
	m.page = p.page;
	/* An anonymous segment can be sealed: no process it is passed to can
	 * shrink it under another's mapping. Named files cannot be (see
	 * docs/security.md); a hugetlb memfd was sealed by new_file. */
	if (!rc && anon && p.page == SK__PAGE)
		rc = sk__sys_seal_shrink(fd);
	m.st.size = p.flen;
	m.st.mode = mode;
	if (!rc)
		rc = sk__sys_fd_ident(fd, &m.st.dev, &m.st.ino);
	if (!rc)
		rc = write_head(&m, d);
	if (!rc)
		rc = publish_handle(fd, name, anon || unpub, &m, out);
	if (rc && m.base)
		sk__sys_unmap(m.base, m.size);
	if (!rc && (anon || unpub)) {
		(*out)->fd = fd;
		(*out)->unpublished = unpub;
	} else {
		sk__sys_close(fd); /* an unnamed file that was never linked vanishes here */
	}
	return rc;
}

int sk_segment_publish(sk_segment *seg, const char *name)
{
	if (!seg || !seg->unpublished)
		return -EINVAL;
	if (name && sk_name_check(name))
		return SK_EBADNAME;
	char published[SK_NAME_MAX + 1];
	int rc = publish_name(seg->fd, name, published);
	if (rc)
		return rc; /* still unpublished: another name may be tried */
	snprintf(seg->name, sizeof seg->name, "%s", published);
	sk__sys_close(seg->fd);
	seg->fd = -1;
	seg->unpublished = false;
	return 0;
}

int sk__segment_create_wrapped(const char *name, const sk__seg_desc *d, const sk_create_opts *opts,
			       int (*wrap)(sk_segment *seg, void *out), void *out)
{
	sk_segment *seg;
	int rc = sk__segment_create(name, d, opts, &seg);
	if (rc)
		return rc;
	rc = wrap(seg, out);
	if (rc) {
		if (seg->fd < 0)
			sk__sys_unlink(seg->name);
		sk_segment_close(seg);
	}
	return rc;
}

int sk_segment_create(const char *name, uint64_t size, const sk_create_opts *opts, sk_segment **out)
{
	if (opts && (opts->flags & ~SK__CREATE_COMMON))
		return -EINVAL; /* only the common flags mean anything for raw bytes */
	sk__seg_desc d = { .kind = &sk__kind_raw, .nitems = size, .data_size = size };
	return sk__segment_create(name, &d, opts, out);
}

/* The descriptor and the live area through the creation record, as one pread
 * reads them (sk_segment_stat, gc, and opens of files too short or too long
 * to map whole). */
typedef struct head_read {
	sk__header h;
	uint8_t live[SK__CREC_OFFSET - SK__DESC_SIZE];
	sk__crec rec;
} head_read;
static_assert(offsetof(head_read, live) == SK__DESC_SIZE, "live area offset");
static_assert(offsetof(head_read, rec) == SK__CREC_OFFSET, "creation record offset");

/* The freeze mark {magic, 1} as one little-endian 64-bit word. */
#define FROZEN_WORD ((uint64_t)1 << 32 | SK__FREEZE_MAGIC)

/* Reads the header of the file open as fd (st from its fstat) by pread and
 * validates it, its kind fields with kind (NULL: not those). *got tells how
 * many bytes of hr were read. */
static int read_head(int fd, const sk__file *st, const sk__kind *kind, head_read *hr, size_t *got)
{
	memset(hr, 0, sizeof *hr);
	ssize_t n = sk__sys_pread(fd, hr, sizeof *hr, 0);
	if (n < 0)
		return (int)n;
	*got = (size_t)n;
	size_t desc = *got < sizeof hr->h ? *got : sizeof hr->h;
	return sk__header_validate_kind(&hr->h, desc, st->size, *got == sizeof *hr ? &hr->rec : NULL, kind);
}

static bool head_frozen(const head_read *hr, size_t got)
{
	uint64_t fz;
	memcpy(&fz, hr->live + (SK__FREEZE_OFFSET - SK__DESC_SIZE), sizeof fz);
	return got >= SK__FREEZE_OFFSET + sizeof fz && fz == FROZEN_WORD;
}

/* Whether a file owned by uid may be attached with these open flags: it
 * must be the caller's (effective uid) or root's, unless the caller asked
 * for any owner. Decided on the open descriptor's fstat, so the file checked
 * is the file mapped. */
static int check_owner(uid_t uid, int flags)
{
	if (uid == 0 || (flags & SK_OPEN_ANY_OWNER) || uid == sk__sys_euid())
		return 0;
	return SK_EOWNER;
}

/* Opens name, checks its owner (when check_owner_flags >= 0), reads and
 * validates its header (with kind, as read_head). On success *fd is open. */
static int open_checked(const char *name, int check_owner_flags, const sk__kind *kind, int *fd, head_read *hr,
			size_t *got, sk__file *st)
{
	if (sk_name_check(name))
		return SK_EBADNAME;
	int f;
	int rc = sk__sys_open_file(name, true, &f, st);
	if (rc)
		return rc;
	if (check_owner_flags >= 0)
		rc = check_owner(st->uid, check_owner_flags);
	if (!rc)
		rc = read_head(f, st, kind, hr, got);
	if (rc) {
		sk__sys_close(f);
		return rc;
	}
	*fd = f;
	return 0;
}

/* Attaches to the segment file open as fd (st: its fstat; the caller has
 * checked the owner): maps it whole, copies the descriptor, the creation
 * record and (read-write) the freeze mark out of the mapping once each,
 * validates the private copies, and builds the handle. The same system calls
 * as a plain shm_open + mmap: no pread, no fstatfs (the file system's page is
 * remembered per device), one mmap. */
static int attach(int fd, const sk__file *st, const char *name, int flags, const sk__kind *kind, sk_segment **out)
{
	bool rdonly = flags & SK_RDONLY;
	mapped m = { .page = sk__sys_fs_page_of(fd, st->dev), .st = *st };
	int rc;
	if (st->size >= SK__HEADER_SIZE && st->size <= (uint64_t)SIZE_MAX / 2) {
		size_t msize = (size_t)sk__round_up(st->size, m.page);
		void *p;
		if (sk__sys_map_aligned(fd, msize, rdonly, map_align(msize, m.page), &p) == 0) {
			m.base = p;
			m.size = msize;
		}
	}
	if (m.base) {
		memcpy(&m.h, m.base, sizeof m.h);
		memcpy(&m.rec, m.base + SK__CREC_OFFSET, sizeof m.rec);
		rc = sk__header_validate_kind(&m.h, sizeof m.h, st->size, &m.rec, kind);
		if (!rc && !rdonly &&
		    __atomic_load_n((const uint64_t *)(m.base + SK__FREEZE_OFFSET), __ATOMIC_ACQUIRE) == FROZEN_WORD)
			rc = SK_EFROZEN;
	} else {
		/* Too short to be a segment, too long to map whole (stretched past
		 * its header's size), or not mappable as asked (a memfd sealed
		 * against writes): the header by pread, then file_size mapped. */
		head_read hr;
		size_t got = 0;
		rc = read_head(fd, st, kind, &hr, &got);
		m.h = hr.h;
		m.rec = hr.rec;
		if (!rc && !rdonly && head_frozen(&hr, got))
			rc = SK_EFROZEN;
		if (!rc) {
			void *p;
			size_t msize = (size_t)sk__round_up(m.h.file_size, m.page);
			rc = sk__sys_map_aligned(fd, msize, rdonly, map_align(msize, m.page), &p);
			if (!rc) {
				m.base = p;
				m.size = msize;
			}
		}
	}
	if (!rc)
		rc = make_handle(&m, name, flags, out);
	if (rc && m.base)
		sk__sys_unmap(m.base, m.size);
	return rc;
}

int sk__segment_open(const char *name, int flags, const sk__kind *kind, sk_segment **out)
{
	if (!out || (flags & ~SK__OPEN_FLAGS))
		return -EINVAL;
	*out = NULL;
	if (sk_name_check(name))
		return SK_EBADNAME;
	int fd;
	sk__file st;
	int rc = sk__sys_open_file(name, flags & SK_RDONLY, &fd, &st);
	if (rc)
		return rc;
	rc = check_owner(st.uid, flags);
	if (!rc)
		rc = attach(fd, &st, name, flags, kind, out);
	sk__sys_close(fd);
	return rc;
}

int sk_segment_close(sk_segment *seg)
{
	if (!seg)
		return 0;
	sk__sys_unmap(seg->base, seg->map_size);
	if (seg->fd >= 0)
		sk__sys_close(seg->fd);
	sk__handle_free(seg);
	return 0;
}

int sk_segment_unlink(const char *name)
{
	if (sk_name_check(name))
		return SK_EBADNAME;
	int fd;
	int rc = sk__sys_open(name, true, &fd, NULL, NULL, NULL);
	if (rc)
		return rc;
	uint8_t magic[sizeof(SK__MAGIC) - 1];
	ssize_t got = sk__sys_pread(fd, magic, sizeof magic, 0);
	sk__sys_close(fd);
	if (got < 0)
		return (int)got;
	/* Only the magic is checked: a segment whose header is damaged is
	 * still ours to remove. */
	if ((size_t)got < sizeof magic || memcmp(magic, SK__MAGIC, sizeof magic))
		return SK_EFOREIGN;
	return sk__sys_unlink(name);
}

int sk_segment_unlink_any(const char *name)
{
	return sk_name_check(name) ? SK_EBADNAME : sk__sys_unlink(name);
}

/* The pages fields of info from a creation record of the file st. */
static void info_pages(sk_segment_info *info, const sk__crec *rec, const sk__file *st)
{
	if (!crec_describes(rec, st->dev, st->ino, st->size))
		return; /* SK_HUGE_UNKNOWN */
	info->huge_status = (int)rec->huge_status;
	info->huge_errno = rec->huge_errno;
	info->huge_bytes = rec->huge_bytes;
}

static int stat_judged(const char *name, sk_segment_info *info, const sk__kind *kind, judge *j)
{
	if (!info)
		return -EINVAL;
	memset(info, 0, sizeof *info);
	int fd;
	head_read hr;
	size_t got;
	sk__file st;
	int rc = open_checked(name, -1, kind, &fd, &hr, &got, &st);
	if (rc)
		return rc;
	snprintf(info->name, sizeof info->name, "%s", name);
	info_judged(&hr.h, info, j);
	info->mode = st.mode;
	info->uid = st.uid;
	info->frozen = head_frozen(&hr, got);
	if (got == sizeof hr)
		info_pages(info, &hr.rec, &st);
	/* No mapping here: the pages the file holds. */
	info->page_size = info->huge_bytes ? SK__HUGE_PAGE : sk__sys_fs_page_of(fd, st.dev);
	sk__sys_close(fd);
	return 0;
}

int sk__segment_stat(const char *name, sk_segment_info *info, const sk__kind *kind)
{
	judge j = { 0 };
	int rc = stat_judged(name, info, kind, &j);
	judge_free(&j);
	return rc;
}

const char *sk_segment_name(const sk_segment *seg)
{
	return seg->name;
}

void *sk_segment_data(const sk_segment *seg)
{
	return seg->hdr.data_size ? seg->base + seg->hdr.data_offset : NULL;
}

uint64_t sk_segment_size(const sk_segment *seg)
{
	return seg->hdr.data_size;
}

int sk_segment_kind(const sk_segment *seg)
{
	return (int)seg->hdr.kind;
}

int sk_segment_flags(const sk_segment *seg)
{
	return seg->flags;
}

/* info from the handle's validated copy of the header and what the open
 * saw of the file, but page_size. */
static void handle_info(const sk_segment *seg, sk_segment_info *info)
{
	memset(info, 0, sizeof *info);
	snprintf(info->name, sizeof info->name, "%s", seg->name);
	sk__info_from_header(&seg->hdr, info);
	info->mode = seg->mode;
	info->uid = seg->uid;
	info->huge_status = seg->huge_status;
	info->huge_errno = seg->huge_errno;
	info->huge_bytes = seg->huge_bytes;
	info->sealed = seg->fd >= 0 && sk__sys_shrink_sealed(seg->fd);
	/* The freeze mark {magic, 1}, read once: one 64-bit load (little-endian). */
	uint64_t fz = __atomic_load_n((const uint64_t *)(seg->base + SK__FREEZE_OFFSET), __ATOMIC_ACQUIRE);
	info->frozen = fz == ((uint64_t)1 << 32 | SK__FREEZE_MAGIC);
}

int sk_segment_info_get(const sk_segment *seg, sk_segment_info *info)
{
	handle_info(seg, info);
	/* What this mapping uses: the file system's page, or, where the mapping
	 * is aligned for 2 MiB pages, whether one page-table entry maps the first
	 * 2 MiB the creator recorded as huge (or, without a record, the first
	 * whole 2 MiB of data: a tmpfs mounted huge=always makes them whatever
	 * the creator asked), faulted in here. */
	info->page_size = seg->page_size;
	uint64_t probe = seg->huge_bytes ? seg->huge_first : seg->hdr.data_offset / SK__HUGE_PAGE * SK__HUGE_PAGE;
	if (seg->page_size == SK__PAGE && (uintptr_t)seg->base % SK__HUGE_PAGE == 0 &&
	    probe + SK__HUGE_PAGE <= seg->map_size && sk__sys_thp_mapped(seg->base + probe))
		info->page_size = SK__HUGE_PAGE;
	return 0;
}

int sk_segment_fstat(const sk_segment *seg, sk_segment_info *info)
{
	if (!seg || !info)
		return -EINVAL;
	handle_info(seg, info);
	/* The pages the file holds, as sk_segment_stat tells: nothing is faulted in. */
	info->page_size = seg->huge_bytes ? SK__HUGE_PAGE : seg->page_size;
	return 0;
}

int sk__segment_list(sk_list_fn fn, void *arg, const sk__kind *kind)
{
	if (!fn)
		return -EINVAL;
	char **names;
	size_t n;
	int rc = sk__sys_list(&names, &n);
	if (rc)
		return rc;
	int visited = 0, stop = 0;
	judge j = { 0 }; /* one /proc scan, if any, for the whole listing */
	for (size_t i = 0; i < n; i++) {
		if (!stop) {
			sk_segment_info info;
			int st;
			if (sk_name_check(names[i])) {
				/* shmkit never makes such a name: foreign, not opened. */
				memset(&info, 0, sizeof info);
				snprintf(info.name, sizeof info.name, "%s", names[i]);
				st = SK_EFOREIGN;
			} else {
				st = stat_judged(names[i], &info, kind, &j);
				if (st)
					snprintf(info.name, sizeof info.name, "%s", names[i]);
			}
			visited++;
			stop = fn(names[i], st, &info, arg);
		}
		free(names[i]);
	}
	free(names);
	judge_free(&j);
	return stop ? stop : visited;
}

/* Judges one owned segment open as fd and removes its name if its creator
 * is dead (unless dry). Calls fn with the verdict. Returns 1 if removed. */
static int gc_one(const char *name, int fd, const sk__header *h, uint32_t mode, uid_t uid, int flags, judge *j,
		  sk_gc_explain_fn fn, void *arg)
{
	int verdict = judge_creator(j, h), err = 0;
	if (verdict == SK_GC_DEAD && !(flags & SK_GC_DRY_RUN) && (err = sk__sys_unlink_if_same(name, fd)) != 0)
		verdict = SK_GC_UNLINK_FAILED;
	if (fn) {
		sk_segment_info info;
		memset(&info, 0, sizeof info);
		snprintf(info.name, sizeof info.name, "%s", name);
		info_from_fields(h, &info);
		info.creator_alive = verdict == SK_GC_ALIVE ? 1 : verdict == SK_GC_DEAD ? 0 : -1;
		info.mode = mode;
		info.uid = uid;
		fn(name, &info, verdict, err, arg);
	}
	return verdict == SK_GC_DEAD;
}

/* The sweep's place in the sorted names: it goes on after the last name it
 * examined, so that every name is examined in turn however many sort
 * before it. A process's first sweep starts at a random name, since most
 * processes sweep once. Guarded by the sweep's own exclusion. */
static char sweep_after[SK_NAME_MAX + 1];
static bool sweep_started;

/* Examines the names in sorted order, all of them (cap 0), or at most cap
 * valid names from the sweep's place on, wrapping around. Headers are
 * validated with kind (NULL: their kind fields are not checked). */
static int gc_run(int flags, int cap, const sk__kind *kind, sk_gc_explain_fn fn, void *arg)
{
	char **names;
	size_t n;
	int rc = sk__sys_list(&names, &n);
	if (rc)
		return rc;
	size_t first = 0;
	if (cap && n) {
		if (sweep_started) {
			while (first < n && strcmp(names[first], sweep_after) <= 0)
				first++;
			first %= n;
		} else {
			uint64_t r = 0;
			sk__sys_random(&r, sizeof r);
			first = (size_t)(r % n);
			sweep_started = true;
		}
	}
	int removed = 0, examined = 0;
	judge j = { 0 };
	for (size_t k = 0; k < n; k++) {
		const char *name = names[(first + k) % n];
		if (sk_name_check(name) || (cap && examined >= cap))
			continue;
		examined++;
		if (cap)
			snprintf(sweep_after, sizeof sweep_after, "%s", name);
		int fd;
		head_read hr;
		size_t got;
		sk__file st;
		if (open_checked(name, -1, kind, &fd, &hr, &got, &st) == 0) {
			if (hr.h.flags & SK__HF_OWNED)
				removed += gc_one(name, fd, &hr.h, st.mode, st.uid, flags, &j, fn, arg);
			sk__sys_close(fd);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	judge_free(&j);
	return removed;
}

int sk__segment_gc(int flags, sk_gc_explain_fn fn, void *arg, const sk__kind *kind)
{
	return gc_run(flags, 0, kind, fn, arg);
}

/* At create time: at most once per 10 s per process, at most 256 headers,
 * from where the last sweep of this process stopped (a random place for its
 * first): every name is examined in turn. The segment layer knows no kind
 * but raw, so the sweep validates each header's common fields (magic,
 * version, checksum, sizes, flags) and judges its creator; sk_segment_gc
 * (catalog.c) checks each kind's fields too. */
static void sweep(void)
{
	static int64_t last;
	const char *env = getenv("SHMKIT_SWEEP");
	if (env && !strcmp(env, "0"))
		return;
	int64_t now = sk__sys_monotonic_ns();
	int64_t prev = __atomic_load_n(&last, __ATOMIC_RELAXED);
	if (prev && now - prev < INT64_C(10000000000))
		return;
	if (!__atomic_compare_exchange_n(&last, &prev, now, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return; /* another thread sweeps */
	static int sweeping;
	if (__atomic_exchange_n(&sweeping, 1, __ATOMIC_ACQUIRE))
		return; /* a sweep of more than 10 s still runs */
	gc_run(0, 256, NULL, NULL, NULL);
	__atomic_store_n(&sweeping, 0, __ATOMIC_RELEASE);
}

int sk_segment_fd(const sk_segment *seg)
{
	return seg->fd;
}

int sk__segment_open_fd(int fd, int flags, const sk__kind *kind, sk_segment **out)
{
	if (!out || fd < 0 || (flags & ~SK__OPEN_FLAGS))
		return -EINVAL;
	*out = NULL;
	sk__file st;
	int rc = sk__sys_fd_file(fd, &st);
	if (!rc)
		rc = check_owner(st.uid, flags);
	if (!rc)
		rc = attach(fd, &st, "", flags, kind, out);
	if (rc)
		return rc;
	/* A memfd that arrives unsealed (made elsewhere) is sealed against
	 * shrinking here when the descriptor allows it; a named file cannot be. */
	if (!sk__sys_shrink_sealed(fd))
		(void)sk__sys_seal_shrink(fd);
	int own;
	rc = sk__sys_dup(fd, &own);
	if (rc) {
		sk_segment_close(*out);
		*out = NULL;
		return rc;
	}
	(*out)->fd = own;
	return 0;
}

/* Opens a named segment's name again, refusing (-ESTALE) if the name now
 * belongs to another file than the one this handle maps. */
static int reopen_same(const sk_segment *seg, bool rdonly, int *out)
{
	int fd;
	sk__file st;
	int rc = sk__sys_open_file(seg->name, rdonly, &fd, &st);
	if (rc)
		return rc;
	if (st.dev != seg->dev || st.ino != seg->ino)
		rc = -ESTALE; /* unlinked and made again, or replaced: not ours to hand out */
	if (rc) {
		sk__sys_close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

int sk_segment_link(const sk_segment *seg, const char *name, char *out, size_t outlen)
{
	if (!seg || (out && outlen < SK_NAME_MAX + 1) || (seg->fd >= 0 && !seg->unpublished))
		return -EINVAL; /* an anonymous segment lives on another file system: it has no name to add */
	if (name && sk_name_check(name))
		return SK_EBADNAME;
	int fd = seg->fd, rc = 0;
	if (fd < 0 && (rc = reopen_same(seg, true, &fd)) != 0)
		return rc; /* the handle's name is gone (-ENOENT) or is another file's now (-ESTALE) */
	char linked[SK_NAME_MAX + 1];
	rc = publish_name(fd, name, linked);
	if (fd != seg->fd)
		sk__sys_close(fd);
	if (!rc && out)
		snprintf(out, outlen, "%s", linked);
	return rc;
}

int sk_segment_send(int sock, const sk_segment *seg)
{
	if (!seg)
		return -EINVAL;
	if (seg->fd >= 0)
		return sk__sys_send_fd(sock, seg->fd);
	/* A named segment travels as a descriptor too: the receiver needs no name. */
	int fd;
	int rc = reopen_same(seg, seg->flags & SK_RDONLY, &fd);
	if (rc)
		return rc;
	rc = sk__sys_send_fd(sock, fd);
	sk__sys_close(fd);
	return rc;
}

int sk_segment_freeze(sk_segment *seg)
{
	if (!seg)
		return -EINVAL;
	if (seg->flags & SK_RDONLY)
		return SK_EREADONLY;
	/* Kinds whose state is written as they are used cannot be frozen. */
	uint32_t k = seg->hdr.kind;
	if (!(k == SK_KIND_RAW || k == SK_KIND_BITS || k == SK_KIND_ARRAY) || (seg->hdr.flags & SK__HF_LOCKED))
		return -EINVAL;
	/* A read-only descriptor: the new mapping must not count as writable. */
	int ro, rc = seg->fd >= 0 ? sk__sys_reopen_rdonly(seg->fd, &ro) : reopen_same(seg, true, &ro);
	if (rc)
		return rc;
	uint32_t *fz = (uint32_t *)(seg->base + SK__FREEZE_OFFSET);
	__atomic_store_n(&fz[0], SK__FREEZE_MAGIC, __ATOMIC_RELEASE);
	__atomic_store_n(&fz[1], 1, __ATOMIC_RELEASE);
	/* This handle becomes read-only, at the same address: pointers stay valid. */
	rc = sk__sys_remap_fixed(ro, seg->base, seg->map_size, true);
	if (!rc && seg->fd >= 0 && !seg->unpublished && (rc = sk__sys_seal_writes(seg->fd)) != 0) {
		/* Someone still maps it writable: undo, through the writable memfd. */
		if (sk__sys_remap_fixed(seg->fd, seg->base, seg->map_size, false) == 0)
			__atomic_store_n(&fz[1], 0, __ATOMIC_RELEASE);
		else
			seg->flags = SK_RDONLY; /* the mapping is read-only now, frozen or not */
	} else if (rc) {
		__atomic_store_n(&fz[1], 0, __ATOMIC_RELEASE); /* the remap failed: still writable */
	}
	if (!rc)
		seg->flags = SK_RDONLY;
	sk__sys_close(ro);
	return rc;
}
