/* sd_notify for the master (workers unset NOTIFY_SOCKET): READY=1 once the
 * first worker accepts, a one-line STATUS= as figures change, RELOADING=1
 * then READY=1 around a reload, STOPPING=1, and WATCHDOG=1 every
 * WATCHDOG_USEC/2 while the loop is healthy. */
#ifndef DROVER_NOTIFY_H
#define DROVER_NOTIFY_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

struct arbiter;

struct notify {
	bool enabled; /* NOTIFY_SOCKET was set */
	bool ready_sent, reloading, stopping;
	uint32_t reload_from_gen; /* generation before the reload */
	uint64_t last_tick_ns; /* the loop's heartbeat, checked by the watchdog */
	uint64_t watchdog_usec; /* 0: off */
	ev_timer watchdog;
	char last_status[256];
};

/* Allocate ar->notify and start the watchdog timer if asked for. */
int notify_start(struct arbiter *ar);
void notify_stop(struct arbiter *ar);
/* From the master's tick: READY=1 when due, STATUS= when it changed. */
void notify_tick(struct arbiter *ar, uint64_t now);
/* Before a reload (HUP or `ctl reload`). */
void notify_reloading(struct arbiter *ar);
/* When a stop begins. */
void notify_stopping(struct arbiter *ar);
/* The STATUS= text for the current figures (pure over the arbiter). */
void notify_status_line(const struct arbiter *ar, char *buf, size_t cap);
#endif
