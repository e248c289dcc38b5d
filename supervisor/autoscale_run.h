/* The autoscaler in the master: feeds autoscale_decide() one sample per
 * sampler pass, decides every scale_interval, applies the decision through
 * pool_set_target(..., POOL_BY_AUTOSCALER), logs it with its inputs and keeps
 * a short history for status and metrics.  Also what TTIN, TTOU, WINCH and
 * `ctl workers N` mean while autoscaling is on (README "Autoscaling"). */
#ifndef DROVER_AUTOSCALE_RUN_H
#define DROVER_AUTOSCALE_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "supervisor/autoscale.h"

struct arbiter;

struct autoscaler {
	bool on; /* conf autoscale */
	struct autoscale_window win;
	uint64_t seen_passes; /* the sampler's pass count at the last sample */
	uint64_t last_sample_ns, next_decide_ns, last_change_ns;
	uint64_t paused_until_ns; /* ctl workers N: the operator's size holds until then */
	bool paused; /* WINCH: no autoscaling until TTIN or a reload */
	unsigned min, max; /* the bounds in force (copied from the pool for status) */
	uint64_t decisions, changes;
	struct autoscale_decision last; /* the latest decision */
	char last_text[320];
	/* decisions that changed the target or were capped, newest last */
	struct autoscale_decision hist[AUTOSCALE_HISTORY];
	char hist_text[AUTOSCALE_HISTORY][320];
	unsigned hist_pos, hist_n;
};

enum autoscale_op {
	AS_OP_GROW, /* TTIN: the floor rises to one above the target */
	AS_OP_SHRINK, /* TTOU: the ceiling falls to one below the target */
	AS_OP_SET, /* ctl workers N: N holds for scale_down_cooldown */
	AS_OP_PAUSE, /* WINCH: zero workers, autoscaling paused */
};

/* Bounds and state from ar->conf (start, reload).  now: monotonic ns. */
void autoscale_run_configure(struct arbiter *ar, uint64_t now);
/* Part of the tick, after the sampler. */
void autoscale_run_tick(struct arbiter *ar, uint64_t now);
/* An operator's action while autoscaling is on: true if handled here (the
 * caller then does nothing more), false if autoscaling is off. */
bool autoscale_run_operator(struct arbiter *ar, enum autoscale_op op, unsigned n, uint64_t now);
#endif
