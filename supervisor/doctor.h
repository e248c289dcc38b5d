/* `drover doctor`: name the problem in plain words, with its evidence and the
 * change to make in drover's config terms.  Pure decisions: a doctor_input
 * (filled from the sampler, or from /proc alone by `doctor --attach`), the
 * previous state and the time in; findings out.  Each finding must hold over
 * DOCTOR_HOLD consecutive samples to appear and be absent as many to clear,
 * so a passing spike is not a diagnosis.  Thresholds: README "drover doctor". */
#ifndef DROVER_DOCTOR_H
#define DROVER_DOCTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "conf/conf.h"
#include "supervisor/sample.h"

#define DOCTOR_HOLD 3 /* samples a condition must persist (or be gone) */
#define DOCTOR_TEXT 320

enum doctor_kind {
	DOC_CONTENTION, /* lock / GIL contention */
	DOC_OVERSUBSCRIBED, /* more runnable tasks than CPUs */
	DOC_BLOCKED_LOOP, /* event loops stalled by the app */
	DOC_IO_BLOCKED, /* workers sleeping in the kernel on I/O */
	DOC_THROTTLED, /* CPU quota throttling */
	DOC_MEMORY, /* memory pressure, swapping */
	DOC_QUEUEING, /* listen queue with every worker busy */
	DOC_FRAGMENTATION, /* heap fragmentation: the recycling decision's verdict */
	DOC_NKINDS
};

/* Thresholds (documented in the README).  Rates are per second. */
#define DOC_CONT_MIN_THREADS 8 /* threads per worker */
#define DOC_CONT_VCSW_PER_CPU 2000.0 /* voluntary switches/s per usable CPU */
#define DOC_CONT_VCSW_PER_REQ 20.0 /* ... and per request (or no requests) */
#define DOC_CONT_CPU_PER_SWITCH_US 50.0 /* ... each with less CPU than this */
#define DOC_OVER_RUNNABLE_X 2.0 /* runnable tasks / usable CPUs */
#define DOC_OVER_IVCSW_PER_CPU 100.0 /* involuntary switches/s per CPU */
#define DOC_OVER_RUNQ 0.5 /* seconds waiting for a CPU per second, per CPU */
#define DOC_LOOP_STALL_SHARE 0.01 /* stall time / (loop time): 1% */
#define DOC_IO_MIN_WORKERS 2 /* workers in D state */
#define DOC_IO_PSI_PCT 20.0 /* or I/O pressure "some", percent */
#define DOC_THROTTLE_FRAC 0.2 /* share of CFS periods throttled */
#define DOC_MEM_PSI_PCT 10.0 /* memory pressure "some", percent */
#define DOC_MEM_SWAP_PAGES 100.0 /* pages swapped in + out per second */
#define DOC_QUEUE_MIN 1 /* connections waiting in listen queues */

/* One sample's figures, pool-wide.  NaN (or -1 for counts) where unknown:
 * a check whose evidence is unknown does not fire. */
struct doctor_input {
	bool attached; /* --attach: no scoreboard (no latency, no stalls) */
	int worker_class; /* conf enum; -1 unknown */
	unsigned workers, threads_max; /* threads of the largest worker */
	double cpus; /* usable: online, or the quota */
	double rps, cpu, vcsw_s, ivcsw_s, runq_wait; /* pool sums */
	double mean_latency_s; /* NaN if unknown */
	unsigned runnable; /* host: tasks runnable now (/proc/loadavg) */
	double load1;
	unsigned busy; /* workers serving a request now; -1u unknown */
	int queued; /* listen queues summed; -1 unknown */
	unsigned dstate; /* workers in D state */
	char wchan[64]; /* the most common wait channel among them */
	unsigned wchan_n;
	double psi_cpu, psi_io, psi_mem; /* "some", percent of the last interval; NaN */
	bool has_quota;
	double quota_cpus, throttled_frac;
	double swap_pages_s; /* NaN unknown (/proc/vmstat pswpin + pswpout per second) */
	double rss_growth_mb; /* workers' Anonymous RSS growth over their baselines, MiB; NaN unknown */
	/* stalls of the event loops over the interval (scoreboard) */
	double elapsed_s;
	uint64_t stalls, stall_ns; /* cumulative, the pool's; stall_ns counts those in progress so far */
	char top_site[3][SB_SITE_LEN];
	double top_share[3]; /* share of stall time, 0..1 */
	/* hooks for the sibling decisions: NULL until they exist */
	const char *autoscale_note; /* what autoscaling does about queueing */
	const char *fragmentation; /* the recycling decision's verdict text */
};

struct doctor_finding {
	enum doctor_kind kind;
	char evidence[DOCTOR_TEXT];
	char advice[DOCTOR_TEXT];
};

/* What persists between samples. */
struct doctor_state {
	unsigned on[DOC_NKINDS], off[DOC_NKINDS]; /* consecutive samples with / without */
	bool active[DOC_NKINDS];
	uint64_t since_ns[DOC_NKINDS];
	struct doctor_finding last[DOC_NKINDS]; /* the latest evidence of each active one */
	uint64_t prev_stalls, prev_stall_ns; /* for the interval's stall figures */
	bool has_prev;
	unsigned samples;
};

/* Changes of one step, for the caller to log. */
struct doctor_changes {
	bool appeared[DOC_NKINDS], cleared[DOC_NKINDS];
};

const char *doctor_kind_name(enum doctor_kind k); /* "contention", ... */

/* One condition, without hold-off: true and the texts filled if in fires. */
bool doctor_check(enum doctor_kind k, const struct doctor_input *in, double stall_share,
		  struct doctor_finding *f);
/* One sample: update st (hold-off), report what appeared / cleared. */
void doctor_step(struct doctor_state *st, const struct doctor_input *in, uint64_t now,
		 struct doctor_changes *ch);
/* The figures of a sampler pass (pure: reads the sampler only). */
void doctor_input_from_sampler(const struct sampler *s, const struct drover_conf *conf,
			       struct doctor_input *in);
#endif
