/* Stall detection inside the worker: a watchdog thread that notices a
 * request held in the app past the threshold (stall_threshold for the event
 * model, whose loop the app blocks; slow_request for sync and thread),
 * captures the stalled thread's stack while it is still stalled, names the
 * blocking site, logs it (rate-limited per site) and counts it in the
 * worker's scoreboard slot. */
#ifndef DROVER_WATCHDOG_H
#define DROVER_WATCHDOG_H

#include "workers/app/app.h"
#include "workers/worker.h"

/* Signal that asks a thread for its stack (the C handler, and faulthandler
 * for Python apps, which chains to it). */
#define WATCHDOG_SIGNAL (SIGRTMIN + 3)

/* Before the app boots: the stack handler and the dump file.  0 or -errno. */
int watchdog_init(const struct worker_args *a);
/* The file a Python adapter points faulthandler at for WATCHDOG_SIGNAL, -1
 * when the watchdog is off. */
int watchdog_dump_fd(void);
/* After the app booted: start the thread (nothing when the threshold is 0).
 * app_obj is any object of the app (its handler table), to tell its frames.
 * 0 or -errno. */
int watchdog_start(const struct worker_args *a, const void *app_obj, bool python);

/* Around the app's handling of one request, on the thread that runs it.
 * A few relaxed stores; no syscall after the thread's first request. */
void watchdog_request_begin(const struct drover_request *q);
void watchdog_request_end(void);

/* The asgi model's loop thread: a beat from its periodic callback (a loop
 * not beating for the threshold is stalled), and the request it last
 * entered, named in the stall log ("GET /x from 1.2.3.4:5"). */
void watchdog_loop_beat(void);
void watchdog_loop_what(const char *what);
#endif
