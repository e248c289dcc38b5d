/* accept() failures in a worker.  Out of fds (EMFILE, ENFILE) the listen
 * socket stays readable, so a level-triggered loop that retries at once
 * spins a core and floods the log.  Two cures are known: stop watching the
 * listen socket for a while, or keep a spare fd, close it, accept and close
 * the connection, reopen the spare (libev's and nginx's docs describe it).
 * drover pauses: the listen queue is shared by the whole pool, so a
 * connection this worker cannot take now stays queued for a worker that can
 * (or for this one, 100 ms later), where the spare-fd trick would reset a
 * client whose request another worker could have served.  Meanwhile the
 * worker goes on serving the connections it holds. */
#include "workers/accept_err.h"

#include <stdatomic.h>
#include <string.h>

#include "workers/wlog.h"

#define LOG_EVERY_NS 1000000000ull /* at most one line a second per worker */

/* Per process, i.e. per worker; the thread model's poller is the only
 * thread that accepts, but stay correct if that changes. */
static _Atomic uint64_t last_log_ns;
static _Atomic uint64_t unlogged;

uint64_t worker_accept_failed(struct sb_slot *slot, const char *listener, int err,
			      uint64_t now_ns)
{
	enum sb_accept_err kind = sb_accept_err_kind(err);
	sb_add(&slot->accept_errors[kind], 1);
	/* Anything else is the pending connection's own network error (accept(2):
	 * "treat them like EAGAIN by retrying"): no reason to pause. */
	uint64_t pause = kind == SB_AE_OTHER ? 0 : ACCEPT_PAUSE_NS;
	uint64_t last = atomic_load_explicit(&last_log_ns, memory_order_relaxed);
	if ((last && now_ns - last < LOG_EVERY_NS) ||
	    !atomic_compare_exchange_strong(&last_log_ns, &last, now_ns)) {
		atomic_fetch_add_explicit(&unlogged, 1, memory_order_relaxed);
		return pause;
	}
	uint64_t more = atomic_exchange_explicit(&unlogged, 0, memory_order_relaxed);
	if (pause)
		wlog_error("accept(%s): %s: not accepting for %llu ms, serving the connections "
			   "held (%llu more failures since the last line)",
			   listener, strerror(err), (unsigned long long)(pause / 1000000),
			   (unsigned long long)more);
	else
		wlog_warn("accept(%s): %s (%llu more failures since the last line)", listener,
			  strerror(err), (unsigned long long)more);
	return pause;
}
