/* What the master knows of its workers, the host and itself: plain data,
 * filled by the sampler (sampler.c) from the scoreboard and /proc, read by
 * the decisions (stall.c ...) and the renderers (metrics.c, status.c).  No
 * event loop, no arbiter: a decision and its unit test need only this. */
#ifndef DROVER_SAMPLE_H
#define DROVER_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "supervisor/sample_parse.h"
#include "supervisor/stallstat.h"
#include "supervisor/stats.h"
#include "supervisor/taskstats.h"
#include "workers/scoreboard.h"

#define SAMPLE_MAX_LISTENERS 32
#define SAMPLE_MAX_TASKS 4096 /* threads read per worker; more are not summed */
#define SAMPLE_PASS_BUCKETS 8 /* sampler pass-duration histogram, bounds in sample_pass_le_s */
static const double sample_pass_le_s[SAMPLE_PASS_BUCKETS] = {
	0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5};

struct task_buf {
	struct task_sample *t;
	size_t n, cap;
};

/* Everything known of one process (a worker, or the master itself). */
struct proc_view {
	pid_t pid;
	uint64_t starttime; /* tells a reused pid apart */
	bool valid; /* one read done */
	uint64_t t_ns; /* time of the last read */
	struct proc_sample proc, prev;
	uint64_t prev_t_ns;
	bool has_delta; /* prev and agg describe the last interval */
	struct thread_agg agg; /* per-thread deltas over the last interval */
	struct task_buf tasks[2]; /* previous and current per-thread reads */
	unsigned cur; /* index of the current one in tasks[] */
	uint64_t vcsw_total, ivcsw_total, wait_ns_total; /* summed deltas, monotonic */
	struct smaps_rollup smaps;
	bool has_smaps;
	char wchan[64]; /* set only while in D state */
	uint64_t cost_ns; /* wall time the last read of this process took */
	/* The thread-group path (taskstats): totals now and at the last read;
	 * the per-thread files are read only on this worker's turn (detail),
	 * and their figures held until the next turn. */
	bool has_ts, has_ts_prev;
	struct ts_totals ts, ts_prev;
	uint64_t detail_t_ns; /* time of the per-thread read in tasks[cur]; 0: none */
	double detail_s; /* span of the last detail delta, s */
	double detail_wait_s; /* run-queue wait per second over that span */
	int detail_busiest_tid;
	double detail_busiest_csw_s;
	uint64_t smaps_due_ns; /* the next smaps_rollup read (spread over the interval) */
	uint64_t smaps_reads; /* smaps_rollup reads of this process */
};

struct worker_view {
	struct proc_view p;
	unsigned no;
	uint32_t generation;
	uint64_t spawned_ns, booted_ns;
	uint64_t heartbeat_ns; /* the worker's last loop tick (scoreboard) */
	uint64_t stop_ns, kill_ns; /* when the master asked it to stop / killed it, 0 if not */
	bool stopping;
	uint32_t sb_state, inflight, connections;
	/* scoreboard counters at the last read */
	uint64_t requests, accepted, bytes_out, busy_ns, trims;
	uint64_t smaps_trims; /* trims at the last smaps_rollup read */
	uint64_t pass_requests, pass_busy_ns; /* at the last pass: the rates' base */
	uint64_t status_class[6];
	uint64_t heap_arena, heap_mmap, heap_in_use, heap_free;
	uint64_t py_arena, py_blocks; /* pymalloc (Python workers), scoreboard */
	uint64_t accept_errors[SB_AE_KINDS]; /* by enum sb_accept_err, scoreboard */
	/* the memory verdict (recycle.c), set by the arbiter's tick */
	struct {
		int verdict; /* enum recycle_verdict */
		uint64_t base_rss; /* 0: no baseline yet */
		int64_t rss_growth, in_use_growth, free_growth, trim_returned;
	} mem;
	struct stats_hist hist;
	/* histogram snapshots of the last STATS_WINDOW reads, for percentiles */
	struct stats_hist ring[STATS_WINDOW];
	unsigned ring_pos, ring_n;
	bool has_figures;
	struct worker_figures fig;
	struct stats_hist window; /* histogram delta over the window */
	struct stall_view stall; /* from the worker's watchdog */
};

struct host_view {
	unsigned online_cpus;
	bool has_load;
	struct loadavg load;
	struct psi psi[3], psi_prev[3]; /* cpu, io, memory */
	double psi_some_pct[3], psi_full_pct[3]; /* stalled share of the last interval */
	int cg_version; /* 1, 2, or 0: none found */
	char cg_dir[CG_PATH_MAX + 32];
	bool has_cg_max, has_cg_stat;
	struct cg_cpu_max cg_max;
	struct cg_cpu_stat cg_stat, cg_stat_prev;
	struct cg_rates cg_rates;
	double effective_cpus; /* usable: the quota's CPUs, or the affinity's if fewer (cpus.h) */
	unsigned affinity_cpus; /* in the workers' affinity masks; 0 unknown */
	bool has_swap, has_swap_prev; /* /proc/vmstat pswpin/pswpout read */
	struct vmstat_swap swap, swap_prev;
	double swap_pages_s; /* pages swapped in + out per second, last interval; NaN unknown */
};

/* Why the recycler replaced a worker (issue 12): its memory verdict or
 * max_rss, ctl recycle (all) or the recycle-all signal, max_requests, max_age. */
enum recycle_why {
	RECYCLE_WHY_MEMORY,
	RECYCLE_WHY_REQUESTED,
	RECYCLE_WHY_MAX_REQUESTS,
	RECYCLE_WHY_MAX_AGE,
	RECYCLE_WHY_N
};
#define RECYCLE_WHY_NAMES {"memory", "requested", "max_requests", "max_age"}

struct listener_view {
	char name[128];
	bool tcp, ok;
	unsigned queued, limit;
};

/* The master's own facts, copied from the arbiter and the pool so that
 * rendering needs nothing but the sampler. */
struct master_view {
	pid_t pid;
	const char *state;
	uint32_t generation;
	unsigned target, live, booted;
	uint64_t started_ns, now_ns;
	double interval_s, smaps_interval_s;
	uint64_t recycled[RECYCLE_WHY_N]; /* graceful replaces the recycler began, by reason */
	/* accept() failures of the control socket [0] and metrics listener [1] */
	uint64_t accept_errors[2][SB_AE_KINDS];
};

struct doctor_state; /* supervisor/doctor.h */
struct autoscaler; /* autoscale_run.h: the renderers show its history */

struct sampler {
	const struct doctor_state *doctor; /* the arbiter's findings, for renderers; may be NULL */
	uint64_t next_pass_ns, next_smaps_ns; /* when the next /proc pass is due */
	long clk_tck, page_size;
	uint64_t passes, last_host_ns;
	uint64_t last_pass_ns, last_pass_cpu_ns; /* wall and CPU time of the last pass */
	uint64_t max_pass_ns; /* the slowest pass since start, wall */
	uint64_t pass_hist[SAMPLE_PASS_BUCKETS + 1]; /* passes by wall time (sample_pass_le_s), +Inf last */
	uint64_t pass_sum_ns;
	struct taskstats_sock ts; /* fd -1: per-thread /proc files for every thread */
	int ts_error; /* why taskstats is not used (-errno), 0 if it is */
	bool ts_used; /* the last pass took thread totals from taskstats */
	unsigned detail_next; /* slot where the next pass's per-thread reads start */
	uint64_t cpu_ns_total; /* CPU spent sampling since start */
	double cost_us_per_worker; /* CPU per worker per pass, last pass */
	uint64_t retired_requests; /* requests of workers gone since start */
	struct stats_hist retired_hist;
	struct stall_view stall_retired; /* stalls of workers gone since start */
	struct stall_view stall; /* the pool's: retired and live workers merged */
	struct master_view master;
	struct proc_view self;
	struct proc_rates self_rates;
	struct pool_figures pool;
	struct host_view host;
	struct listener_view l[SAMPLE_MAX_LISTENERS];
	size_t nl;
	struct worker_view w[SB_MAX_SLOTS]; /* parallel to pool.w[] */
	const struct autoscaler *autoscale; /* NULL: none (unit tests) */
};

static inline bool sample_live(const struct worker_view *v)
{
	return v->p.pid != 0;
}

/* Seconds from since_ns to the sampler's now; 0 if unknown. */
static inline double sample_age_s(const struct sampler *s, uint64_t since_ns)
{
	return since_ns && s->master.now_ns > since_ns
		? (double)(s->master.now_ns - since_ns) / 1e9 : 0;
}

static inline const char *sample_sb_state_name(uint32_t st)
{
	static const char *const names[] = {"free", "booting", "idle", "busy", "draining", "exited"};
	return st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}
#endif
