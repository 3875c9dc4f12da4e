/*
 * bench/lock_boost.cpp: Boost.Interprocess interprocess_mutex (libboost-dev,
 * header-only) for bench/lock, behind the C interface of lock_boost.h. Built
 * only for `make bench`, when a C++ compiler and the Boost headers are there.
 *
 * Where the mutex lives: placement new into the benchmark's own anonymous
 * shared mapping (MAP_SHARED, inherited by the forked processes), in a slot
 * of 128 bytes aligned like the other locks' slots. That is how Boost's
 * documentation places an anonymous mutex (construct it in a mapped region),
 * and it keeps the comparison to the lock alone: a managed_shared_memory
 * would put the same bytes in another MAP_SHARED page and add a named
 * segment and a find by name at setup, which no lock+unlock pays for.
 *
 * On Linux, Boost 1.74's interprocess_mutex is a process-shared pthread mutex
 * (BOOST_INTERPROCESS_POSIX_PROCESS_SHARED): not robust, so a holder's death
 * leaves it locked; lock() throws if pthread_mutex_lock fails.
 */
#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <new>

#include "lock_boost.h"

namespace bip = boost::interprocess;

static_assert(sizeof(bip::interprocess_mutex) <= LOCK_BOOST_BYTES, "the slot in bench/lock's mapping is too small");
static_assert(alignof(bip::interprocess_mutex) <= 128, "the slot in bench/lock's mapping is aligned to 128");

static inline bip::interprocess_mutex *mutex_in(void *area)
{
	return static_cast<bip::interprocess_mutex *>(area);
}

extern "C" int lock_boost_init(void *area)
{
	try {
		new (area) bip::interprocess_mutex;
	} catch (const std::exception &) {
		return -1;
	}
	return 0;
}

extern "C" int lock_boost_cycle(void *area, long n)
{
	bip::interprocess_mutex *m = mutex_in(area);
	try {
		for (long i = 0; i < n; i++) {
			m->lock();
			m->unlock();
		}
	} catch (const std::exception &) {
		return -1;
	}
	return 0;
}

extern "C" int lock_boost_hammer(void *area, lock_counts *c, int me, long n)
{
	bip::interprocess_mutex *m = mutex_in(area);
	try {
		for (long i = 0; i != n && !c->stop; i++) {
			m->lock();
			c->acquisitions++;
			if (c->last_owner != me) {
				c->handoffs++;
				c->last_owner = me;
			}
			m->unlock();
		}
	} catch (const std::exception &) {
		return -1;
	}
	return 0;
}

extern "C" int lock_boost_turns(void *area, lock_counts *c, int me, long n)
{
	bip::interprocess_mutex *m = mutex_in(area);
	try {
		for (long i = 0; i != n && !c->stop; i++) {
			m->lock();
			if (c->turn == me) {
				c->turn = !me;
				c->turns++;
			}
			m->unlock();
		}
	} catch (const std::exception &) {
		return -1;
	}
	return 0;
}

extern "C" int lock_boost_lock(void *area)
{
	try {
		mutex_in(area)->lock();
	} catch (const std::exception &) {
		return -1;
	}
	return 0;
}

extern "C" int lock_boost_timed_lock(void *area, long ms)
{
	bip::interprocess_mutex *m = mutex_in(area);
	try {
		boost::posix_time::ptime until =
		    boost::posix_time::microsec_clock::universal_time() + boost::posix_time::milliseconds(ms);
		if (!m->timed_lock(until))
			return 0;
		m->unlock();
	} catch (const std::exception &) {
		return -1;
	}
	return 1;
}
