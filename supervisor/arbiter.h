/* The master: one libev default loop turning signals, child exits and a
 * periodic tick into state changes of the pool (running, reloading, stopping),
 * and the pool bookkeeping that spawn.c and the tick act on. */
#ifndef DROVER_ARBITER_H
#define DROVER_ARBITER_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf/conf.h"
#include "supervisor/cli.h"
#include "supervisor/listen.h"
#include "workers/scoreboard.h"
#include "workers/worker.h"

enum master_state {
	MASTER_RUNNING,
	MASTER_GRACEFUL_STOP, /* TERM: workers drain, then the master exits */
	MASTER_FAST_STOP, /* INT/QUIT: workers are told to quit now */
};

enum master_exit {
	MASTER_EXIT_OK = 0,
	MASTER_EXIT_ERROR = 1, /* bind failure, fatal runtime error */
	MASTER_EXIT_USAGE = 2, /* bad flags or config */
	MASTER_EXIT_BOOT = 3, /* workers kept failing to boot */
	MASTER_EXIT_APP_LOAD = 4, /* the app cannot be loaded */
};

struct worker_rec {
	pid_t pid; /* 0: record unused */
	unsigned no;
	uint32_t generation;
	struct sb_slot *slot;
	uint64_t spawned_ns;
	uint64_t stop_ns; /* when we asked it to stop (TERM), 0 if not */
	uint64_t kill_ns; /* when SIGABRT/SIGKILL went out for a timeout */
	bool booted; /* it reported ready once */
	int chan; /* master end of the hand-off channel (handoff.h), 0: none */
};

struct sampler; /* sample.h */
struct control; /* control.h */
struct metrics_http; /* metrics.h */
struct notify; /* notify.h */
#define ARBITER_MAX_CLOSE_FDS 64

struct arbiter {
	struct ev_loop *loop;
	enum master_state state;
	int exit_status;
	struct drover_conf conf;
	const struct cli *cli;
	uint32_t generation;
	unsigned target; /* workers wanted */
	struct listeners ls;
	struct scoreboard *sb;
	struct worker_rec w[SB_MAX_SLOTS];
	struct app *preloaded;
	int access_fd;
	/* boot failures in a row, and when the next spawn may happen */
	unsigned boot_failures;
	bool gen_booted; /* a worker of the current generation became ready */
	bool spawn_blocked; /* the new configuration's app cannot load */
	uint64_t next_spawn_ns;
	uint64_t stop_deadline_ns;
	ev_signal sig[10];
	ev_child child;
	ev_timer tick;
	ev_prepare manage;
	bool manage_pending;
	/* observation: sampler, control socket, metrics listener, sd_notify */
	struct sampler *sampler;
	struct control *control;
	struct metrics_http *mhttp;
	struct notify *notify;
	int close_fds[ARBITER_MAX_CLOSE_FDS]; /* master-only fds a worker closes first */
	size_t nclose_fds;
};

/* (Re)open the access log of ar->conf for the workers forked from now on. */
void arbiter_reopen_access_log(struct arbiter *ar);

/* Run the master until it stops; returns the exit status. */
int arbiter_run(struct arbiter *ar);

/* Actions for the control socket, through the same paths as the signals. */
void arbiter_set_target(struct arbiter *ar, unsigned n);
void arbiter_reload(struct arbiter *ar);
void arbiter_stop(struct arbiter *ar, bool graceful);
/* Graceful replacement of one worker: -ESRCH if pid is not a live worker. */
int arbiter_recycle(struct arbiter *ar, pid_t pid);

/* spawn.c: fork one worker into a free slot.  0, or -1 (logged). */
int spawn_worker(struct arbiter *ar);
/* Ask a worker to stop: graceful (TERM, drain) or fast (QUIT). */
void spawn_stop(struct arbiter *ar, struct worker_rec *w, bool graceful);
/* Live workers, optionally only those of the current generation not
 * stopping. */
unsigned pool_count(const struct arbiter *ar, bool current_only);
#endif
