/* The pool: the one owner of the worker records and of everything done to a
 * worker process: fork, stop, drain, kill, scoreboard commands, and replace
 * (the new worker accepting before the old one drains).  It owns the target
 * (workers wanted) and says who may move it.  Forks happen only in
 * pool_manage(), which runs from an ev_prepare watcher (or a test), never
 * inside a signal, child-exit or control callback. */
#ifndef DROVER_POOL_H
#define DROVER_POOL_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf/conf.h"
#include "supervisor/listen.h"
#include "workers/scoreboard.h"
#include "workers/worker.h"

#define POOL_REPLACE_POLL_S 0.01 /* see replace_poll */
#define POOL_MAX_TARGET (SB_MAX_SLOTS / 2) /* the other half: room for a reload's new workers */

struct worker_rec {
	pid_t pid; /* 0: record unused */
	unsigned no;
	uint32_t generation;
	struct sb_slot *slot;
	uint64_t spawned_ns;
	uint64_t stop_ns; /* when we asked it to stop (TERM/QUIT), 0 if not */
	uint64_t kill_ns; /* when SIGABRT/SIGKILL went out, 0 if not */
	uint64_t replace_ns; /* replace() asked: it drains once its successor accepts */
	pid_t successor; /* the worker forked to replace this one, 0 if none yet */
	bool booted; /* it reported ready once */
	int chan; /* master's end of the hand-off channel (handoff.h), 0: none */
};

/* Who moves the target.  The operator (signals, control socket) sets it
 * freely within 0..POOL_MAX_TARGET; a reload sets it from the new
 * configuration; an autoscaler will move it within its configured bounds
 * only.  Nobody moves it once a stop began. */
enum pool_source {
	POOL_BY_OPERATOR,
	POOL_BY_CONFIG, /* at start and at each reload */
	POOL_BY_AUTOSCALER,
};

/* Process primitives, injectable so the pool is unit-tested without forking. */
struct pool_ops {
	pid_t (*fork)(void);
	int (*kill)(pid_t pid, int sig); /* 0 or -1 with errno */
};

/* What a forked worker is given; the arbiter keeps it current (a reload
 * replaces the listeners, USR1 the access log). */
struct pool_env {
	const struct drover_conf *conf;
	const struct listeners *ls;
	struct app *preloaded; /* preload = true: forked with the app loaded */
	int access_fd; /* -1: off */
	struct master_fds master_fds; /* master-only fds a worker closes first */
	struct ev_loop *loop; /* the master's: dropped in the child */
};

/* What pool_reaped() says about an exit the arbiter must act on. */
enum pool_reap {
	POOL_REAP_OK,
	POOL_REAP_GIVE_UP_BOOT, /* max_boot_failures in a row: stop the master */
	POOL_REAP_GIVE_UP_APP_LOAD, /* the app cannot be loaded at all */
};

struct pool {
	struct worker_rec w[SB_MAX_SLOTS];
	struct scoreboard *sb;
	struct pool_env env;
	struct pool_ops ops;
	uint32_t generation; /* configuration generation, one more per reload */
	unsigned target; /* workers wanted: see enum pool_source */
	unsigned autoscale_min, autoscale_max; /* the autoscaler's bounds */
	bool stopping; /* a stop began: no fork, no target change */
	/* boot failures in a row, and when the next fork may happen */
	unsigned boot_failures;
	bool gen_booted; /* a worker of the current generation became ready */
	bool spawn_blocked; /* the new configuration's app cannot load */
	uint64_t next_spawn_ns;
	ev_prepare prepare; /* runs pool_manage() before the loop blocks */
	ev_timer replace_poll; /* while a replaced worker waits for its successor's boot */
	struct ev_loop *loop; /* NULL in unit tests: pool_manage() is called directly */
};

/* ops NULL: the real fork(2) and kill(2). */
void pool_init(struct pool *p, struct scoreboard *sb, const struct pool_ops *ops);
/* Watch for work on loop (ev_prepare); pool_stop_watching() undoes it. */
void pool_start(struct pool *p, struct ev_loop *loop);
void pool_stop_watching(struct pool *p);
/* Ask for a pool_manage() before the loop next blocks. */
void pool_request_manage(struct pool *p);
/* Compare the pool with the target and generation and act: fork, retire
 * replaced and old-generation workers, drain the surplus.  now: monotonic ns. */
void pool_manage(struct pool *p, uint64_t now);

/* Set the target (see enum pool_source); returns the target in force. */
unsigned pool_set_target(struct pool *p, unsigned n, enum pool_source by);
/* A reload took effect: a new generation of target workers replaces the old
 * one, the new ones first accepting (pool_manage). */
void pool_new_generation(struct pool *p, unsigned target);
/* Replace a worker gracefully: fork its successor, and drain it once the
 * successor accepts.  0, or -ESRCH if pid is no live worker not stopping. */
int pool_replace(struct pool *p, pid_t pid, uint64_t now);
/* Ask one worker to stop: graceful (TERM, drain) or fast (QUIT). */
void pool_stop_worker(struct pool *p, struct worker_rec *w, bool graceful, uint64_t now);
/* Begin the pool's stop: no more forks, every worker asked to stop.  A
 * graceful stop first takes what the listen queues hold, stops listening and
 * hands those connections to the workers (handoff.h): they count as in
 * flight. */
void pool_begin_stop(struct pool *p, bool graceful, uint64_t now);
/* A graceful stop called off: the workers already asked to drain finish
 * what they hold and leave; target workers are forked anew. */
void pool_resume(struct pool *p, unsigned target);
/* Signal a worker outside a stop (SIGABRT for a timeout, SIGKILL); the
 * first such signal is remembered in kill_ns. */
void pool_kill(struct pool *p, struct worker_rec *w, int sig, uint64_t now);
void pool_signal_all(struct pool *p, int sig);
/* Set scoreboard command bits (SB_CMD_*) that the worker runs at its next
 * idle point. */
void pool_command(struct pool *p, struct worker_rec *w, uint32_t cmd);

/* A child exited: account for it and free its record (log its exit). */
enum pool_reap pool_reaped(struct pool *p, struct worker_rec *w, int status, uint64_t now);

struct worker_rec *pool_find(struct pool *p, pid_t pid);
/* Counts: every live worker; of the current generation and neither stopping
 * nor being replaced; booted and not stopping. */
unsigned pool_live(const struct pool *p);
unsigned pool_current(const struct pool *p);
unsigned pool_ready(const struct pool *p);
/* Booted, not stopping, of the current generation. */
unsigned pool_ready_current(const struct pool *p);
#endif
