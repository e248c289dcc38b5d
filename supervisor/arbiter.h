/* The master: one libev default loop.  Signals become events of the master's
 * state table; child exits are reaped into the pool; one periodic tick runs
 * measure (sampler) -> decide (stall ...) -> act (pool).  The control socket
 * and the metrics listener (started by main) ask for the same events. */
#ifndef DROVER_ARBITER_H
#define DROVER_ARBITER_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf/conf.h"
#include "supervisor/autoscale_run.h"
#include "supervisor/cli.h"
#include "supervisor/listen.h"
#include "supervisor/pool.h"
#include "supervisor/upgrade.h"

enum master_state {
	MASTER_RUNNING,
	MASTER_RELOADING, /* building the new configuration (HUP, ctl reload) */
	MASTER_UPGRADING, /* a new binary is taking over (USR2, upgrade.c) */
	MASTER_GRACEFUL_STOP, /* TERM: workers drain, then the master exits */
	MASTER_FAST_STOP, /* INT/QUIT: workers are told to quit now */
	MASTER_NSTATES,
};

/* What the master is asked to do, by a signal or the control socket. */
enum master_event {
	MEV_GROW, /* TTIN, ctl incr */
	MEV_SHRINK, /* TTOU, ctl decr */
	MEV_RELOAD, /* HUP, ctl reload */
	MEV_GRACEFUL_STOP, /* TERM, ctl stop */
	MEV_FAST_STOP, /* INT, QUIT, ctl stop fast */
	MEV_REOPEN_LOGS, /* USR1 */
	MEV_PAUSE, /* WINCH: no workers, the master stays */
	MEV_UPGRADE, /* USR2 */
	MEV_RECYCLE_ALL, /* URG, ctl recycle all: replace every worker gracefully */
	MEV_N,
};

enum master_exit {
	MASTER_EXIT_OK = 0,
	MASTER_EXIT_ERROR = 1, /* bind failure, fatal runtime error */
	MASTER_EXIT_USAGE = 2, /* bad flags or config */
	MASTER_EXIT_BOOT = 3, /* workers kept failing to boot */
	MASTER_EXIT_APP_LOAD = 4, /* the app cannot be loaded */
};

struct sampler;
struct notify;
struct recycler;
struct control;
struct metrics_http;

struct arbiter {
	struct ev_loop *loop;
	enum master_state state;
	int exit_status;
	struct drover_conf conf;
	const struct cli *cli;
	struct listeners ls;
	struct pool pool; /* the workers, the target, the generation */
	struct sampler *sampler; /* measurements, refreshed by the tick */
	struct notify *notify; /* sd_notify, NULL without memory */
	struct doctor_state *doctor; /* `drover doctor`'s findings, NULL without memory */
	struct recycler *recycler; /* memory verdicts and recycling (issue 12) */
	ev_signal sig[16];
	ev_child child;
	ev_timer tick;
	ev_signal wake; /* SB_WAKE_MASTER_SIGNAL: a worker asks for its replacement */
	struct autoscaler autoscale; /* autoscale_run.c */
	struct upgrade upgrade; /* USR2, either side (upgrade.c) */
	struct control *control; /* the control socket, NULL: none (main, upgrade.c) */
	struct metrics_http *metrics; /* the metrics listener, NULL: none (main) */
};

/* (Re)open the access log of ar->conf for the workers forked from now on. */
void arbiter_reopen_access_log(struct arbiter *ar);

/* Set up the loop, the watchers and the sampler (before the "never exit"
 * line in main).  0, or -errno. */
int arbiter_init(struct arbiter *ar);
/* Run the master until it stops; returns the exit status. */
int arbiter_run(struct arbiter *ar);
void arbiter_fini(struct arbiter *ar);
/* The one tick: measure -> decide -> act, at now (monotonic ns).  Run by the
 * tick timer; exposed for tests, which drive it with a pool of fake
 * processes and no loop. */
void arbiter_tick(struct arbiter *ar, uint64_t now);

/* Operator actions of the control socket, through the same paths as the
 * signals.  set_target returns the target in force. */
unsigned arbiter_set_target(struct arbiter *ar, unsigned n);
/* 0, or -1 if the new configuration was refused (logged). */
int arbiter_reload(struct arbiter *ar);
void arbiter_stop(struct arbiter *ar, bool graceful);
/* Graceful replacement of one worker: -ESRCH if pid is not a live worker. */
int arbiter_recycle(struct arbiter *ar, pid_t pid);
/* Bring ar->sampler's master and scoreboard figures up to now (renderers). */
/* Recycle the whole pool gracefully, recycle_concurrency workers at a time
 * (recycler.h).  The number queued, or -EAGAIN when not running. */
int arbiter_recycle_all(struct arbiter *ar);
void arbiter_refresh_sample(struct arbiter *ar);
#endif
