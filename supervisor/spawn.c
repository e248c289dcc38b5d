/* Acting on the pool: fork a worker into a scoreboard slot, and ask one to
 * stop.  The child leaves the master's code at once: it calls worker_run()
 * and _exit()s, never returning into the master's stack or loop. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/arbiter.h"
#include "supervisor/handoff.h"
#include "supervisor/log.h"
#include "supervisor/proctitle.h"
#include "workers/app/app_loader.h"

static unsigned free_worker_no(const struct arbiter *ar)
{
	/* The smallest number no live worker has, so titles stay 1..N. */
	for (unsigned no = 1;; no++) {
		bool used = false;
		for (size_t i = 0; i < SB_MAX_SLOTS && !used; i++)
			used = ar->w[i].pid && ar->w[i].no == no && !ar->w[i].stop_ns;
		if (!used)
			return no;
	}
}

static struct worker_rec *free_rec(struct arbiter *ar)
{
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		if (!ar->w[i].pid)
			return &ar->w[i];
	return NULL;
}

static void child_main(struct arbiter *ar, struct sb_slot *slot, unsigned no, int chan)
{
	/* libev's epoll fd and signal pipe are the master's: drop them. */
	ev_loop_destroy(ar->loop);
	handoff_child_close(ar);
	struct worker_args args = {
		.conf = &ar->conf,
		.listeners = ar->ls.l,
		.nlisteners = ar->ls.n,
		.slot = slot,
		.sb = ar->sb,
		.worker_no = no,
		.master_pid = getppid(),
		.preloaded = ar->preloaded,
		.log_fd = 2,
		.access_fd = ar->access_fd,
		.set_title = proctitle_set,
		.close_fds = ar->close_fds,
		.nclose_fds = ar->nclose_fds,
		.handoff_fd = chan,
	};
	_exit(worker_run(&args));
}

int spawn_worker(struct arbiter *ar)
{
	struct worker_rec *w = free_rec(ar);
	struct sb_slot *slot = w ? sb_claim(ar->sb) : NULL;
	if (!slot) {
		log_error("cannot spawn a worker: all %d scoreboard slots in use", SB_MAX_SLOTS);
		return -1;
	}
	unsigned no = free_worker_no(ar);
	uint64_t now = sb_now_ns();
	atomic_store(&slot->worker_no, no);
	atomic_store(&slot->generation, ar->generation);
	sb_store(&slot->spawned_ns, now);
	sb_store(&slot->heartbeat_ns, now);
	struct app *pre = ar->preloaded;
	if (pre && pre->before_fork)
		pre->before_fork(pre);
	/* A signal (TERM of a quick stop or reload) landing between fork and the
	 * worker's own handlers would hit the master's libev handler copy and be
	 * lost: keep everything blocked until worker_run has set its handlers. */
	int chan[2] = {0, -1};
	int rc = handoff_pair(chan);
	if (rc < 0)
		log_error("hand-off channel for worker %u: %s", no, strerror(-rc));
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t pid = fork();
	if (pid == 0)
		child_main(ar, slot, no, chan[1]);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (chan[1] >= 0)
		close(chan[1]);
	if (pre && pre->after_fork_parent)
		pre->after_fork_parent(pre);
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		if (chan[0] > 0)
			close(chan[0]);
		sb_release(slot);
		return -1;
	}
	atomic_store(&slot->pid, pid);
	*w = (struct worker_rec){.pid = pid, .no = no, .generation = ar->generation,
				 .slot = slot, .spawned_ns = now, .chan = chan[0]};
	log_info("booting worker %u (pid %d)", no, (int)pid);
	return 0;
}

void spawn_stop(struct arbiter *ar, struct worker_rec *w, bool graceful)
{
	(void)ar;
	if (!w->stop_ns)
		w->stop_ns = sb_now_ns();
	if (kill(w->pid, graceful ? SIGTERM : SIGQUIT) < 0 && errno != ESRCH)
		log_error("kill(%d): %s", (int)w->pid, strerror(errno));
}

unsigned pool_count(const struct arbiter *ar, bool current_only)
{
	unsigned n = 0;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_rec *w = &ar->w[i];
		if (!w->pid)
			continue;
		if (current_only && (w->stop_ns || w->generation != ar->generation))
			continue;
		n++;
	}
	return n;
}
