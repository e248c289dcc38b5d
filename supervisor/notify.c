/* sd_notify through libsystemd (see notify.h).  Every message is a datagram:
 * sd_notify never blocks the loop for long, and a failure is logged once at
 * debug level since systemd going away must not disturb the pool. */
#include "supervisor/notify.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "supervisor/log.h"
#include "supervisor/pool.h"
#include "supervisor/sample.h"

/* The watchdog is only fed if the tick ran this recently: a loop stuck in a
 * callback would not run the tick, and systemd should then restart us. */
#define LOOP_HEALTHY_NS 2000000000ull

static void notify_send(struct notify *n, const char *msg)
{
	if (!n->enabled)
		return;
	int r = sd_notify(0, msg);
	if (r < 0)
		log_debug("sd_notify(%.20s): %s", msg, strerror(-r));
}

static void on_watchdog(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct notify *n = t->data;
	(void)loop;
	(void)revents;
	if (sb_now_ns() - n->last_tick_ns < LOOP_HEALTHY_NS)
		notify_send(n, "WATCHDOG=1");
	else
		log_warn("master loop unhealthy: no tick for %.1f s; not feeding the watchdog",
			 (double)(sb_now_ns() - n->last_tick_ns) / 1e9);
}

struct notify *notify_start(struct ev_loop *loop)
{
	struct notify *n = calloc(1, sizeof(*n));
	if (!n) {
		log_error("notify: %s", strerror(errno));
		return NULL;
	}
	n->loop = loop;
	n->enabled = getenv("NOTIFY_SOCKET") != NULL;
	n->last_tick_ns = sb_now_ns();
	uint64_t usec = 0;
	if (n->enabled && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		n->watchdog_usec = usec;
		double every = (double)usec / 2e6;
		ev_timer_init(&n->watchdog, on_watchdog, every, every);
		n->watchdog.data = n;
		ev_timer_start(loop, &n->watchdog);
		log_info("systemd watchdog: feeding every %.3f s", every);
	}
	return n;
}

void notify_stop(struct notify *n)
{
	if (!n)
		return;
	if (n->watchdog_usec)
		ev_timer_stop(n->loop, &n->watchdog);
	free(n);
}

void notify_status_line(const struct pool *p, const struct sampler *s, char *buf, size_t cap)
{
	double rps = s ? s->pool.rps : 0, p99 = s ? s->pool.p99 : NAN;
	int n = snprintf(buf, cap, "%u/%u workers ready (%u live), %.1f req/s", pool_ready(p),
			 p->target, pool_live(p), rps);
	if (n > 0 && (size_t)n < cap && !isnan(p99))
		snprintf(buf + n, cap - (size_t)n, ", p99 %.1f ms", p99 * 1e3);
}

/* After a reload: ready again once the new generation has all its workers
 * booted, or at once if the reload failed (generation unchanged). */
static bool reload_done(const struct pool *p, const struct notify *n)
{
	if (p->generation == n->reload_from_gen)
		return true;
	return pool_ready_current(p) >= p->target;
}

void notify_tick(struct notify *n, const struct pool *p, const struct sampler *s, uint64_t now)
{
	if (!n)
		return;
	n->last_tick_ns = now;
	if (!n->enabled || n->stopping)
		return;
	char status[sizeof(n->last_status)], msg[sizeof(status) + 16];
	notify_status_line(p, s, status, sizeof(status));
	bool changed = strcmp(status, n->last_status) != 0;
	snprintf(n->last_status, sizeof(n->last_status), "%s", status);
	bool ready_now = false;
	if (!n->ready_sent && pool_current(p) > 0) {
		for (size_t i = 0; i < SB_MAX_SLOTS && !ready_now; i++)
			ready_now = p->w[i].pid && p->w[i].booted;
	} else if (n->reloading && reload_done(p, n)) {
		ready_now = true;
	}
	if (ready_now) {
		n->ready_sent = true;
		n->reloading = false;
		snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
		notify_send(n, msg);
	} else if (changed) {
		snprintf(msg, sizeof(msg), "STATUS=%s", status);
		notify_send(n, msg);
	}
}

void notify_reloading(struct notify *n, uint32_t generation)
{
	if (!n || !n->enabled)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	char msg[128];
	snprintf(msg, sizeof(msg), "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
	n->reloading = true;
	n->reload_from_gen = generation;
	notify_send(n, msg);
}

void notify_stopping(struct notify *n)
{
	if (!n || !n->enabled || n->stopping)
		return;
	n->stopping = true;
	notify_send(n, "STOPPING=1\nSTATUS=stopping");
}

void notify_mainpid(struct notify *n)
{
	char msg[64];
	snprintf(msg, sizeof(msg), "MAINPID=%d", (int)getpid());
	if (n)
		notify_send(n, msg);
}

void notify_handover(struct notify *n, pid_t new_master)
{
	char msg[64];
	snprintf(msg, sizeof(msg), "MAINPID=%d", (int)new_master);
	if (!n)
		return;
	notify_send(n, msg);
	n->enabled = false;
}

void notify_handback(struct notify *n)
{
	if (!n || !getenv("NOTIFY_SOCKET"))
		return;
	n->enabled = true;
	notify_mainpid(n);
}
