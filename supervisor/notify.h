/* sd_notify for the master (workers unset NOTIFY_SOCKET): READY=1 once the
 * first worker accepts, a one-line STATUS= as figures change, RELOADING=1
 * then READY=1 around a reload, STOPPING=1, and WATCHDOG=1 every
 * WATCHDOG_USEC/2 while the loop is healthy. */
#ifndef DROVER_NOTIFY_H
#define DROVER_NOTIFY_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct pool;
struct sampler;

struct notify {
	struct ev_loop *loop;
	bool enabled; /* NOTIFY_SOCKET was set */
	bool ready_sent, reloading, stopping;
	uint32_t reload_from_gen; /* generation before the reload */
	uint64_t last_tick_ns; /* the loop's heartbeat, checked by the watchdog */
	uint64_t watchdog_usec; /* 0: off */
	ev_timer watchdog;
	char last_status[256];
};

/* NULL (logged) if out of memory: the master runs without it.  Starts the
 * watchdog timer on loop if systemd asks for one. */
struct notify *notify_start(struct ev_loop *loop);
void notify_stop(struct notify *n);
/* From the master's tick: READY=1 when due, STATUS= when it changed. */
void notify_tick(struct notify *n, const struct pool *p, const struct sampler *s, uint64_t now);
/* Before a reload (HUP or `ctl reload`), from the running generation. */
void notify_reloading(struct notify *n, uint32_t generation);
/* USR2, the new master once its workers accept: MAINPID= of itself (taken
 * by systemd with NotifyAccess=all, or once the old master said it). */
void notify_mainpid(struct notify *n);
/* USR2, the old master handing over: MAINPID= of the new one (the main pid
 * may say it under NotifyAccess=main), then silence: its STOPPING=1 must not
 * stop the service the new master runs. */
void notify_handover(struct notify *n, pid_t new_master);
/* The new master died after the hand-over: this one is the service again. */
void notify_handback(struct notify *n);
/* When a stop begins. */
void notify_stopping(struct notify *n);
/* The STATUS= text for the current figures (pure over the pool and the
 * sampler's last pass; s may be NULL). */
void notify_status_line(const struct pool *p, const struct sampler *s, char *buf, size_t cap);
#endif
