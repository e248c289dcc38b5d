/* The shared-memory scoreboard: one slot per worker, mapped by the master
 * before any fork.  A worker writes only its own slot, with relaxed atomic
 * stores (no syscall, no lock a dying worker could leave held); the master
 * reads with acquire loads.  Times are CLOCK_MONOTONIC nanoseconds.
 * Also included by supervisor/ (see the include rule in DESIGN.md). */
#ifndef DROVER_SCOREBOARD_H
#define DROVER_SCOREBOARD_H

#include <signal.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SB_MAX_SLOTS 1024 /* workers alive at once, old and new during a reload */
#define SB_MAX_THREADS 64 /* per-thread heartbeats kept (thread model) */
#define SB_HIST_BUCKETS 22 /* latency: 50us * 2^i, i = 0..20, then +Inf (>52 s) */
#define SB_HIST_BASE_NS 50000ull
#define SB_STALL_SITES 16 /* blocking sites counted per worker; more go to "other" */
#define SB_SITE_LEN 120
#define SB_STALL_BUCKETS 10 /* stall durations: see sb_stall_upper_s */

/* accept() failures counted per kind (accept_errors[]): out of fds in the
 * process (EMFILE) or the system (ENFILE), out of kernel memory (ENOBUFS,
 * ENOMEM), anything else. */
enum sb_accept_err { SB_AE_EMFILE, SB_AE_ENFILE, SB_AE_NOMEM, SB_AE_OTHER, SB_AE_KINDS };

enum sb_state {
	SB_FREE = 0, /* slot unused */
	SB_BOOTING, /* forked, loading the app */
	SB_IDLE, /* waiting for a connection / request */
	SB_BUSY, /* serving a request */
	SB_DRAINING, /* asked to stop: finishing in-flight requests */
	SB_EXITED, /* gone; the master frees the slot when it reaps the pid */
};

/* Commands the master sets in a slot, followed by a signal (SIGURG) so that a
 * worker blocked in a syscall sees them. */
enum sb_cmd {
	SB_CMD_NONE = 0,
	SB_CMD_DRAIN = 1 << 0, /* stop accepting, finish, exit */
	SB_CMD_TRIM = 1 << 1, /* malloc_trim(0) at the next idle point */
	SB_CMD_STACK = 1 << 2, /* log a stack dump */
};

/* What a worker asks of the master (sb_slot.recycle_wanted): max_requests
 * goes through the master's graceful replace, so the successor accepts
 * before this worker drains (issue 12). */
enum sb_want {
	SB_WANT_NONE = 0,
	SB_WANT_SOON = 1, /* max_requests - margin served: replace me */
	SB_WANT_NOW = 2, /* max_requests served: no longer accepting, waiting for the drain */
};

/* A worker that set recycle_wanted tells the master at once with this
 * signal (the master otherwise looks at its next tick). */
#define SB_WAKE_MASTER_SIGNAL (SIGRTMIN + 4)

struct sb_thread {
	_Atomic uint64_t heartbeat_ns; /* last loop tick / request step */
	_Atomic uint32_t state; /* enum sb_state */
	_Atomic int32_t tid;
	_Atomic uint64_t req_start_ns; /* start of the current request, 0 if none */
};

/* One blocking site (the innermost app frame of a stall).  The watchdog
 * writes name once, then publishes it by raising stall_nsites (release). */
struct sb_stall_site {
	char name[SB_SITE_LEN];
	_Atomic uint64_t count; /* stalls begun here */
	_Atomic uint64_t total_ns; /* time of the ended ones */
};

struct sb_slot {
	/* identity: written by the master at spawn, by the worker at boot */
	_Atomic int32_t pid;
	_Atomic uint32_t generation; /* config generation (bumped by each HUP) */
	_Atomic uint32_t worker_no; /* 1, 2, ... as in the process title */
	_Atomic uint32_t state; /* enum sb_state */
	_Atomic uint32_t cmd; /* enum sb_cmd bits, set by the master */
	_Atomic uint32_t nthreads; /* heartbeats in use in threads[] */
	_Atomic uint64_t spawned_ns; /* set by the master at fork */
	_Atomic uint64_t booted_ns; /* worker ready to accept (0 while booting) */
	_Atomic uint64_t heartbeat_ns; /* max over threads; the timeout watches this */
	_Atomic uint64_t req_start_ns; /* sync/event: current request start, 0 if none */

	/* counters, monotonic over the worker's life */
	_Atomic uint64_t requests;
	_Atomic uint64_t accepted; /* connections */
	_Atomic uint32_t inflight; /* requests being served now */
	_Atomic uint32_t connections; /* open connections now */
	_Atomic uint32_t listening; /* enum sb_accept: would take a new connection */
	_Atomic uint64_t bytes_out;
	_Atomic uint64_t busy_ns; /* time spent serving requests */
	_Atomic uint64_t status_class[6]; /* [1]=1xx .. [5]=5xx, [0]=other */
	_Atomic uint64_t hist[SB_HIST_BUCKETS]; /* request duration buckets */
	_Atomic uint64_t hist_sum_ns;

	/* heap (mallinfo2), refreshed at most every heap_sample_interval */
	_Atomic uint64_t heap_arena, heap_hblkhd, heap_uordblks, heap_fordblks, heap_keepcost;
	_Atomic uint64_t heap_sampled_ns;
	_Atomic uint64_t trims; /* malloc_trim calls done */
	_Atomic uint32_t recycle_wanted; /* enum sb_want, set by the worker */
	/* Python workers: pymalloc's arenas are mmap()ed outside malloc, so
	 * mallinfo2 does not see them.  Bytes of arenas mapped now (counted by a
	 * wrapper around the arena allocator) and blocks allocated in them
	 * (sys.getallocatedblocks()); both 0 for a C app.  Refreshed with the
	 * heap figures. */
	_Atomic uint64_t py_arena_bytes, py_blocks;

	/* stalls, written by the worker's watchdog thread alone (watchdog.c) */
	_Atomic uint64_t stalls; /* begun */
	_Atomic uint64_t stall_ns; /* total time of the ended ones */
	_Atomic uint64_t stall_hist[SB_STALL_BUCKETS]; /* ended ones, by duration */
	_Atomic uint64_t stall_since_ns; /* start of the stall in progress, 0: none */
	_Atomic uint32_t stall_recent; /* begun within the last minute (stall_action) */
	_Atomic uint32_t stall_nsites;
	/* the stall in progress since stall_since_ns (the oldest, if several):
	 * its site index + 1 (0: none), and how many are in progress, so that
	 * the master counts a long stall before it ends (issue 10 gap a) */
	_Atomic uint32_t stall_now_site, stall_now_n;
	struct sb_stall_site sites[SB_STALL_SITES + 1]; /* the last one is "other" */

	/* accept() failures by enum sb_accept_err (workers/accept_err.c) */
	_Atomic uint64_t accept_errors[SB_AE_KINDS];

	struct sb_thread threads[SB_MAX_THREADS];
} __attribute__((aligned(64)));

struct scoreboard {
	uint32_t nslots;
	_Atomic uint32_t used; /* slots[0..used) were ever claimed: bounds scans */
	struct sb_slot slots[];
};

/* Map a zeroed scoreboard of nslots shared with future children.  NULL and
 * errno on failure. */
struct scoreboard *sb_map(uint32_t nslots);
void sb_unmap(struct scoreboard *sb);
/* A free slot (state SB_FREE), zeroed and marked SB_BOOTING; NULL if full. */
struct sb_slot *sb_claim(struct scoreboard *sb);
/* Give a slot back (after the master reaped its worker). */
void sb_release(struct sb_slot *slot);

uint64_t sb_now_ns(void); /* CLOCK_MONOTONIC, vDSO: no syscall */

/* slot->listening (thread and event models): whether, and how well, the
 * worker would serve a new connection now.  A worker that holds back for
 * fairness keeps publishing its level, so the others still count it. */
enum sb_accept {
	SB_ACCEPT_NONE = 0, /* full, draining, out of max_requests: takes nothing */
	SB_ACCEPT_FREE = 1, /* a new client is served at once (a thread is free) */
	SB_ACCEPT_QUEUED = 2, /* a new client waits behind running requests */
};

/* Fair share of connections across workers: false if another worker that
 * accepts (any level but NONE, watching or deferring) holds fewer
 * connections than me, so that a burst of keep-alive clients spreads over
 * the pool instead of piling on whichever worker the kernel wakes first.
 * A worker in an ongoing stall (slot->stall_now_n > 0) does not count: it
 * takes nothing from the queue until the stall ends.
 * The level does not break ties: it flickers with every request under load,
 * and two workers each deferring to the other's better level of a moment
 * ago would leave the listen queue to nobody.  The worker with the fewest
 * never defers, so one always accepts.  A few relaxed loads per call. */
bool sb_fair_to_accept(const struct scoreboard *sb, const struct sb_slot *me);

/* Connections accepted by all workers so far (it changes when any worker
 * accepts): a deferring worker looks at the fair share again soon after. */
uint64_t sb_pool_accepted(const struct scoreboard *sb);
/* A worker deferring to another (sb_fair_to_accept false): milliseconds
 * until it judges the fair share again.  SB_FAIR_WAIT_MIN_MS when fresh (it
 * just began deferring) or when the pool accepted anything since *seen (the
 * verdict is stale then), else twice prev_ms, at most max_ms; *seen becomes
 * the pool's accept count (sb_pool_accepted).  The back-off keeps an idle
 * deferring worker to a few wake-ups a second, not a thousand. */
#define SB_FAIR_WAIT_MIN_MS 1u
unsigned sb_fair_wait_ms(const struct scoreboard *sb, uint64_t *seen, unsigned prev_ms,
			 unsigned max_ms, bool fresh);

/* Connections me should hand to the others: half the gap between mine and
 * the fewest any other accepting worker holds, once that gap is 2 or more
 * (a gap of 1 is as even as the count allows); 0 when balanced.  The thread
 * model closes that many keep-alive connections after their next response,
 * so that their clients reconnect, and the fair accept sends them to the
 * worker with the fewest. */
uint32_t sb_excess_connections(const struct scoreboard *sb, const struct sb_slot *me);
/* The kind of an accept() errno, and its label ("EMFILE", ...). */
static inline enum sb_accept_err sb_accept_err_kind(int err)
{
	return err == EMFILE ? SB_AE_EMFILE
	     : err == ENFILE ? SB_AE_ENFILE
	     : err == ENOBUFS || err == ENOMEM ? SB_AE_NOMEM : SB_AE_OTHER;
}
static inline const char *sb_accept_err_name(unsigned kind)
{
	static const char *const n[SB_AE_KINDS] = {"EMFILE", "ENFILE", "ENOBUFS", "other"};
	return kind < SB_AE_KINDS ? n[kind] : "other";
}

/* Bucket index of a request duration. */
unsigned sb_hist_bucket(uint64_t ns);
/* Upper bound in seconds of bucket i (+Inf for the last). */
double sb_hist_upper_s(unsigned i);

/* Upper bound in seconds of stall bucket i: 0.1 0.25 0.5 1 2.5 5 10 30 60 +Inf. */
double sb_stall_upper_s(unsigned i);
unsigned sb_stall_bucket(uint64_t ns);

/* Worker-side helpers: relaxed stores, no syscall. */
static inline void sb_store(_Atomic uint64_t *p, uint64_t v)
{
	atomic_store_explicit(p, v, memory_order_relaxed);
}
static inline void sb_add(_Atomic uint64_t *p, uint64_t v)
{
	/* Threads of one worker share its counters, hence an atomic add. */
	atomic_fetch_add_explicit(p, v, memory_order_relaxed);
}
static inline void sb_set_state(struct sb_slot *s, enum sb_state st)
{
	atomic_store_explicit(&s->state, (uint32_t)st, memory_order_release);
}
/* Record a finished request: count, status class, duration histogram. */
void sb_request_done(struct sb_slot *s, int status, uint64_t duration_ns, uint64_t bytes_out);

/* Master-side read. */
static inline uint64_t sb_load(const _Atomic uint64_t *p)
{
	return atomic_load_explicit(p, memory_order_acquire);
}

#endif
