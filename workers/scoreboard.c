/* The shared-memory scoreboard: mapping, slot claim/release (master side) and
 * the request accounting helpers a worker calls on every request (no syscall:
 * the monotonic clock is a vDSO call and the counters are plain atomics). */
#include "scoreboard.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static size_t sb_size(uint32_t nslots)
{
	return sizeof(struct scoreboard) + (size_t)nslots * sizeof(struct sb_slot);
}

struct scoreboard *sb_map(uint32_t nslots)
{
	if (nslots == 0 || nslots > SB_MAX_SLOTS) {
		errno = EINVAL;
		return NULL;
	}
	/* MAP_SHARED|MAP_ANONYMOUS: inherited by every child forked later; the
	 * pages are zeroed by the kernel and touched only as slots are used. */
	void *p = mmap(NULL, sb_size(nslots), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	struct scoreboard *sb = p;
	sb->nslots = nslots;
	return sb;
}

void sb_unmap(struct scoreboard *sb)
{
	if (sb)
		munmap(sb, sb_size(sb->nslots));
}

struct sb_slot *sb_claim(struct scoreboard *sb)
{
	for (uint32_t i = 0; i < sb->nslots; i++) {
		struct sb_slot *s = &sb->slots[i];
		if (atomic_load_explicit(&s->state, memory_order_acquire) != SB_FREE)
			continue;
		memset((void *)s, 0, sizeof(*s));
		atomic_store_explicit(&s->state, SB_BOOTING, memory_order_release);
		if (atomic_load_explicit(&sb->used, memory_order_relaxed) < i + 1)
			atomic_store_explicit(&sb->used, i + 1, memory_order_release);
		return s;
	}
	return NULL;
}

void sb_release(struct sb_slot *slot)
{
	atomic_store_explicit(&slot->pid, 0, memory_order_relaxed);
	atomic_store_explicit(&slot->state, SB_FREE, memory_order_release);
}

/* A worker that takes new connections now, and its level (0: none). */
static uint32_t accept_level(const struct sb_slot *o)
{
	uint32_t st = atomic_load_explicit(&o->state, memory_order_relaxed);
	if (st != SB_IDLE && st != SB_BUSY)
		return SB_ACCEPT_NONE;
	return atomic_load_explicit(&o->listening, memory_order_relaxed);
}

bool sb_fair_to_accept(const struct scoreboard *sb, const struct sb_slot *me)
{
	if (!sb)
		return true;
	uint32_t mine = atomic_load_explicit(&me->connections, memory_order_relaxed);
	if (mine == 0)
		return true;
	uint32_t used = atomic_load_explicit(&sb->used, memory_order_acquire);
	for (uint32_t i = 0; i < used && i < sb->nslots; i++) {
		const struct sb_slot *o = &sb->slots[i];
		if (o == me || accept_level(o) == SB_ACCEPT_NONE)
			continue;
		/* Not to one in an ongoing stall (the watchdog's stall_now_n: a
		 * request or loop past stall_threshold): an event loop blocked in
		 * the app, or a thread worker whose threads are all held by long
		 * requests, takes nothing from the queue, and a new client waited
		 * for it (3.5 s thread, 6.5 s event, measured) while this worker
		 * could serve it at once.  Short requests are not stalls: a
		 * saturated worker that completes them still counts (the level
		 * flickers with each request; see the header). */
		if (atomic_load_explicit(&o->stall_now_n, memory_order_relaxed) > 0)
			continue;
		if (atomic_load_explicit(&o->connections, memory_order_relaxed) < mine)
			return false;
	}
	return true;
}

uint64_t sb_pool_accepted(const struct scoreboard *sb)
{
	uint64_t n = 0;
	if (!sb)
		return 0;
	uint32_t used = atomic_load_explicit(&sb->used, memory_order_acquire);
	for (uint32_t i = 0; i < used && i < sb->nslots; i++)
		n += atomic_load_explicit(&sb->slots[i].accepted, memory_order_relaxed);
	return n;
}

unsigned sb_fair_wait_ms(const struct scoreboard *sb, uint64_t *seen, unsigned prev_ms,
			 unsigned max_ms, bool fresh)
{
	uint64_t acc = sb_pool_accepted(sb);
	unsigned ms = fresh || acc != *seen ? SB_FAIR_WAIT_MIN_MS : prev_ms * 2;
	if (ms < SB_FAIR_WAIT_MIN_MS)
		ms = SB_FAIR_WAIT_MIN_MS;
	*seen = acc;
	return ms > max_ms ? max_ms : ms;
}

uint32_t sb_excess_connections(const struct scoreboard *sb, const struct sb_slot *me)
{
	if (!sb)
		return 0;
	uint32_t mine = atomic_load_explicit(&me->connections, memory_order_relaxed);
	uint32_t least = mine;
	uint32_t used = atomic_load_explicit(&sb->used, memory_order_acquire);
	for (uint32_t i = 0; i < used && i < sb->nslots; i++) {
		const struct sb_slot *o = &sb->slots[i];
		if (o == me || accept_level(o) == SB_ACCEPT_NONE)
			continue;
		uint32_t n = atomic_load_explicit(&o->connections, memory_order_relaxed);
		if (n < least)
			least = n;
	}
	/* Half the gap: moving that many evens the pair out, and several
	 * workers above the same least one do not all empty themselves. */
	return mine >= least + 2 ? (mine - least) / 2 : 0;
}

uint64_t sb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

unsigned sb_hist_bucket(uint64_t ns)
{
	/* Bucket i holds durations <= 50us * 2^i; the last one everything above. */
	uint64_t bound = SB_HIST_BASE_NS;
	for (unsigned i = 0; i < SB_HIST_BUCKETS - 1; i++, bound <<= 1)
		if (ns <= bound)
			return i;
	return SB_HIST_BUCKETS - 1;
}

double sb_hist_upper_s(unsigned i)
{
	if (i >= SB_HIST_BUCKETS - 1)
		return __builtin_inf();
	return (double)(SB_HIST_BASE_NS << i) / 1e9;
}

void sb_request_done(struct sb_slot *s, int status, uint64_t duration_ns, uint64_t bytes_out)
{
	unsigned cls = (status >= 100 && status < 600) ? (unsigned)status / 100 : 0;
	sb_add(&s->requests, 1);
	sb_add(&s->status_class[cls], 1);
	sb_add(&s->hist[sb_hist_bucket(duration_ns)], 1);
	sb_add(&s->hist_sum_ns, duration_ns);
	sb_add(&s->busy_ns, duration_ns);
	sb_add(&s->bytes_out, bytes_out);
}

static const double stall_bounds[SB_STALL_BUCKETS - 1] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

double sb_stall_upper_s(unsigned i)
{
	return i < SB_STALL_BUCKETS - 1 ? stall_bounds[i] : INFINITY;
}

unsigned sb_stall_bucket(uint64_t ns)
{
	double s = (double)ns / 1e9;
	unsigned i = 0;
	while (i < SB_STALL_BUCKETS - 1 && s > stall_bounds[i])
		i++;
	return i;
}
