/* The pool (see pool.h).  Everything done to a worker process goes through
 * here, and every fork happens in pool_manage(), run from an ev_prepare
 * watcher: a fork inside a signal, child or control callback would leave the
 * child unwinding the master's stack.  The child leaves the master's code at
 * once: worker_run() and _exit(), never a return into the loop. */
#include "supervisor/pool.h"

#include <errno.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "supervisor/handoff.h"
#include "supervisor/log.h"
#include "supervisor/proctitle.h"

static pid_t real_fork(void)
{
	return fork();
}

static int real_kill(pid_t pid, int sig)
{
	return kill(pid, sig);
}

static void send_signal(struct pool *p, const struct worker_rec *w, int sig)
{
	if (p->ops.kill(w->pid, sig) < 0 && errno != ESRCH)
		log_error("kill(%d, %d): %s", (int)w->pid, sig, strerror(errno));
}

void pool_init(struct pool *p, struct scoreboard *sb, const struct pool_ops *ops)
{
	p->sb = sb;
	p->ops = ops ? *ops : (struct pool_ops){.fork = real_fork, .kill = real_kill};
	p->env.access_fd = -1;
	p->autoscale_min = 1;
	p->autoscale_max = POOL_MAX_TARGET;
}

/* ---- counts ---- */

struct worker_rec *pool_find(struct pool *p, pid_t pid)
{
	for (size_t i = 0; pid > 0 && i < SB_MAX_SLOTS; i++)
		if (p->w[i].pid == pid)
			return &p->w[i];
	return NULL;
}

static bool is_current(const struct pool *p, const struct worker_rec *w)
{
	return w->pid && !w->stop_ns && !w->replace_ns && w->generation == p->generation;
}

unsigned pool_live(const struct pool *p)
{
	unsigned n = 0;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		n += p->w[i].pid != 0;
	return n;
}

unsigned pool_current(const struct pool *p)
{
	unsigned n = 0;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		n += is_current(p, &p->w[i]);
	return n;
}

unsigned pool_ready(const struct pool *p)
{
	unsigned n = 0;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		n += p->w[i].pid && p->w[i].booted && !p->w[i].stop_ns;
	return n;
}

unsigned pool_ready_current(const struct pool *p)
{
	unsigned n = 0;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_rec *w = &p->w[i];
		n += w->pid && !w->stop_ns && w->booted && w->generation == p->generation;
	}
	return n;
}

/* Being replaced, current generation, not stopping yet. */
static unsigned replacing(const struct pool *p)
{
	unsigned n = 0;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_rec *w = &p->w[i];
		n += w->pid && w->replace_ns && !w->stop_ns && w->generation == p->generation;
	}
	return n;
}

/* ---- the target ---- */

unsigned pool_set_target(struct pool *p, unsigned n, enum pool_source by)
{
	if (p->stopping)
		return p->target;
	if (by == POOL_BY_AUTOSCALER)
		n = n < p->autoscale_min ? p->autoscale_min : n > p->autoscale_max ? p->autoscale_max : n;
	p->target = n < POOL_MAX_TARGET ? n : POOL_MAX_TARGET;
	pool_request_manage(p);
	return p->target;
}

void pool_new_generation(struct pool *p, unsigned target)
{
	p->generation++;
	p->boot_failures = 0;
	p->gen_booted = false;
	p->spawn_blocked = false;
	pool_set_target(p, target, POOL_BY_CONFIG);
}

/* ---- acting on one worker ---- */

void pool_stop_worker(struct pool *p, struct worker_rec *w, bool graceful, uint64_t now)
{
	if (!w->stop_ns)
		w->stop_ns = now;
	send_signal(p, w, graceful ? SIGTERM : SIGQUIT);
}

void pool_kill(struct pool *p, struct worker_rec *w, int sig, uint64_t now)
{
	if (!w->kill_ns)
		w->kill_ns = now;
	send_signal(p, w, sig);
}

void pool_signal_all(struct pool *p, int sig)
{
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		if (p->w[i].pid)
			send_signal(p, &p->w[i], sig);
}

void pool_command(struct pool *p, struct worker_rec *w, uint32_t cmd)
{
	(void)p;
	/* Read and cleared by the worker at its next idle point. */
	atomic_fetch_or_explicit(&w->slot->cmd, cmd, memory_order_release);
}

/* Workers that can take handed-over connections, idle ones first: a busy
 * sync worker serves them only after its current request. */
static size_t handoff_candidates(struct pool *p, struct worker_rec **out)
{
	size_t n = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
			struct worker_rec *w = &p->w[i];
			if (!w->pid || w->stop_ns || w->chan <= 0)
				continue;
			uint32_t st = atomic_load(&w->slot->state);
			if (st == SB_DRAINING || st == SB_EXITED)
				continue; /* stopping on its own: its channel is shut or soon */
			if ((st == SB_IDLE) == (pass == 0))
				out[n++] = w;
		}
	}
	return n;
}

/* The graceful stop's first step (see handoff.h for why the master does it):
 * take the queued connections, stop listening, and give each connection to a
 * worker, round-robin; one whose channel fails is dropped from the round.
 * With no worker left, the client gets a 503. */
static void handoff_queued(struct pool *p)
{
	struct handoff_conn *t = NULL;
	int backlog = p->env.conf ? (int)p->env.conf->backlog : 0;
	size_t nt = handoff_take_queues(p->env.ls, backlog, &t);
	struct worker_rec *cand[SB_MAX_SLOTS];
	size_t nc = handoff_candidates(p, cand), next = 0, refused = 0;
	for (size_t i = 0; i < nt; i++) {
		int rc = -EPIPE;
		while (nc > 0) {
			size_t k = next++ % nc;
			rc = handoff_send(cand[k]->chan, &t[i]);
			if (rc == 0)
				break;
			if (rc != -EAGAIN && rc != -EPIPE && rc != -ECONNREFUSED)
				log_error("hand-off to worker %u (pid %d): %s", cand[k]->no,
					  (int)cand[k]->pid, strerror(-rc));
			cand[k] = cand[--nc];
		}
		if (rc == 0) {
			close(t[i].fd); /* the worker has its own reference now */
		} else {
			handoff_refuse(t[i].fd);
			refused++;
		}
	}
	if (nt)
		log_info("graceful stop: %zu queued connections handed to workers, %zu answered 503",
			 nt - refused, refused);
	free(t);
}

void pool_begin_stop(struct pool *p, bool graceful, uint64_t now)
{
	p->stopping = true;
	if (graceful)
		handoff_queued(p); /* before the workers drain: they must still read it */
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		if (p->w[i].pid)
			pool_stop_worker(p, &p->w[i], graceful, now);
}

void pool_resume(struct pool *p, unsigned target)
{
	p->stopping = false;
	pool_set_target(p, target, POOL_BY_CONFIG);
}

int pool_replace(struct pool *p, pid_t pid, uint64_t now)
{
	struct worker_rec *w = pool_find(p, pid);
	if (!w || w->stop_ns || w->replace_ns || p->stopping)
		return -ESRCH;
	if (w->generation != p->generation) {
		/* A reload already replaces it; draining it now loses nothing. */
		pool_stop_worker(p, w, true, now);
		return 0;
	}
	w->replace_ns = now;
	pool_request_manage(p);
	return 0;
}

/* ---- fork ---- */

static unsigned free_worker_no(const struct pool *p)
{
	/* The smallest number no live worker keeps, so titles stay 1..N: one
	 * stopping or being replaced hands its number on. */
	for (unsigned no = 1;; no++) {
		bool used = false;
		for (size_t i = 0; i < SB_MAX_SLOTS && !used; i++)
			used = p->w[i].pid && p->w[i].no == no && !p->w[i].stop_ns &&
			       !p->w[i].replace_ns;
		if (!used)
			return no;
	}
}

static struct worker_rec *free_rec(struct pool *p)
{
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		if (!p->w[i].pid)
			return &p->w[i];
	return NULL;
}

static _Noreturn void child_main(struct pool *p, struct sb_slot *slot, unsigned no, pid_t master,
				 int chan)
{
	/* libev's epoll fd and signal pipe are the master's: drop them. */
	if (p->env.loop)
		ev_loop_destroy(p->env.loop);
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		if (p->w[i].chan > 0)
			close(p->w[i].chan); /* other workers' channels are the master's */
	const struct pool_env *e = &p->env;
	struct worker_args args = {
		.conf = e->conf,
		.listeners = e->ls->l,
		.nlisteners = e->ls->n,
		.slot = slot,
		.sb = p->sb,
		.worker_no = no,
		.master_pid = master,
		.preloaded = e->preloaded,
		.log_fd = 2,
		.access_fd = e->access_fd,
		.set_title = proctitle_set,
		.close_fds = e->master_fds.fd,
		.nclose_fds = e->master_fds.n,
		.handoff_fd = chan,
	};
	_exit(worker_run(&args));
}

/* Fork one worker into a free slot: its record, or NULL (logged). */
static struct worker_rec *spawn(struct pool *p, uint64_t now)
{
	struct worker_rec *w = free_rec(p);
	struct sb_slot *slot = w ? sb_claim(p->sb) : NULL;
	if (!slot) {
		log_error("cannot spawn a worker: all %d scoreboard slots in use", SB_MAX_SLOTS);
		return NULL;
	}
	unsigned no = free_worker_no(p);
	atomic_store(&slot->worker_no, no);
	atomic_store(&slot->generation, p->generation);
	sb_store(&slot->spawned_ns, now);
	sb_store(&slot->heartbeat_ns, now);
	int chan[2];
	int rc = handoff_pair(chan);
	if (rc < 0)
		log_error("hand-off channel for worker %u: %s", no, strerror(-rc));
	worker_app_before_fork(p->env.preloaded);
	/* A signal (TERM of a quick stop or reload) landing between fork and the
	 * worker's own handlers would hit the master's libev handler copy and be
	 * lost: keep everything blocked until worker_run has set its handlers. */
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	/* Taken before the fork: a child asking getppid() after a master that
	 * died meanwhile would get 1 and never notice it is orphaned. */
	pid_t master = getpid();
	pid_t pid = p->ops.fork();
	if (pid == 0) {
		if (chan[0] > 0)
			close(chan[0]); /* the master's end of our own channel */
		child_main(p, slot, no, master, chan[1]);
	}
	int err = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (chan[1] >= 0)
		close(chan[1]);
	worker_app_after_fork_parent(p->env.preloaded);
	if (pid < 0) {
		log_error("fork: %s", strerror(err));
		if (chan[0] > 0)
			close(chan[0]);
		sb_release(slot);
		return NULL;
	}
	atomic_store(&slot->pid, pid);
	*w = (struct worker_rec){.pid = pid, .no = no, .generation = p->generation,
				 .slot = slot, .spawned_ns = now, .chan = chan[0]};
	log_info("booting worker %u (pid %d)", no, (int)pid);
	return w;
}

/* ---- reaping ---- */

static void log_exit(const struct worker_rec *w, int status)
{
	if (WIFSIGNALED(status)) {
		const char *abbrev = sigabbrev_np(WTERMSIG(status));
		if (w->stop_ns || w->kill_ns)
			log_info("worker %u (pid %d) stopped by SIG%s", w->no, (int)w->pid,
				 abbrev ? abbrev : "?");
		else
			log_error("worker %u (pid %d) was killed by signal %d (SIG%s)", w->no,
				  (int)w->pid, WTERMSIG(status), abbrev ? abbrev : "?");
	} else if (WEXITSTATUS(status) == 0) {
		log_info("worker %u (pid %d) exited", w->no, (int)w->pid);
	} else {
		log_error("worker %u (pid %d) exited with status %d", w->no, (int)w->pid,
			  WEXITSTATUS(status));
	}
}

/* A worker that stopped on its own (an exit status, a crash) failed to boot;
 * one killed from outside (an operator, the OOM killer) says nothing about
 * the app. */
static bool failed_itself(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status) != 0;
	int sig = WTERMSIG(status);
	return sig != SIGKILL && sig != SIGTERM && sig != SIGINT && sig != SIGQUIT;
}

/* Workers of a previous configuration that still accept (a reload under
 * way).  Not the current one's being replaced (max_requests, recycle): they
 * leave once a successor accepts, or on their own after a while (worker.c). */
static unsigned previous_serving(const struct pool *p)
{
	unsigned n = 0;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_rec *w = &p->w[i];
		n += w->pid && !w->stop_ns && w->generation != p->generation;
	}
	return n;
}

/* The next spawn after 0.1 s doubled per failure in a row, at most 12.8 s. */
static enum pool_reap boot_backoff(struct pool *p, uint64_t now, const char *what)
{
	unsigned shift = p->boot_failures - 1 < 7 ? p->boot_failures - 1 : 7;
	double backoff = 0.1 * (double)(1u << shift);
	p->next_spawn_ns = now + (uint64_t)(backoff * 1e9);
	log_warn("worker %s (%u in a row); next try in %.1f s", what, p->boot_failures, backoff);
	return POOL_REAP_OK;
}

/* A worker that died before it was ready: back off, and past the limit give
 * up, since a broken app would otherwise be forked in a tight loop.  An app
 * that cannot be loaded will not load on a retry either: give up at once,
 * unless workers of the previous configuration still serve (a reload), which
 * then keep serving until the next HUP. */
static enum pool_reap boot_failed(struct pool *p, int status, uint64_t now)
{
	p->boot_failures++;
	bool app_load = WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_APP_LOAD;
	unsigned old = previous_serving(p);
	if (app_load && old > 0) {
		log_error("new workers cannot load the app; %u workers of the previous "
			  "configuration keep serving (fix it and send HUP)", old);
		p->spawn_blocked = true;
		return POOL_REAP_OK;
	}
	/* This configuration's app loaded before: its files changed under the
	 * running service (a deploy half done, before its HUP), met by a
	 * replacement (max_requests, recycle, a crash).  Giving up would stop
	 * every worker that still serves; retrying picks the files up once
	 * they are whole again. */
	if (app_load && p->gen_booted)
		return boot_backoff(p, now, "cannot load the app, which loaded before");
	if (app_load) {
		log_crit("the app %s cannot be loaded (the error is above); exiting", p->env.conf->app);
		return POOL_REAP_GIVE_UP_APP_LOAD;
	}
	if (p->boot_failures >= (unsigned)p->env.conf->max_boot_failures) {
		log_crit("%u workers in a row failed to boot; giving up", p->boot_failures);
		return POOL_REAP_GIVE_UP_BOOT;
	}
	return boot_backoff(p, now, "failed to boot");
}

enum pool_reap pool_reaped(struct pool *p, struct worker_rec *w, int status, uint64_t now)
{
	bool booted = w->booted || sb_load(&w->slot->booted_ns) != 0;
	bool asked = w->stop_ns || w->kill_ns;
	log_exit(w, status);
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		if (p->w[i].pid && p->w[i].successor == w->pid)
			p->w[i].successor = 0; /* its replacement died: fork another */
	sb_release(w->slot);
	if (w->chan > 0)
		close(w->chan);
	memset(w, 0, sizeof(*w));
	pool_request_manage(p);
	if (!booted && !asked && !p->stopping && failed_itself(status))
		return boot_failed(p, status, now);
	return POOL_REAP_OK;
}

/* ---- managing ---- */

static struct worker_rec *pick_to_stop(struct pool *p, bool old_generation)
{
	/* The youngest idle worker, else the youngest: draining finishes its
	 * request anyway, but an idle one goes at once. */
	struct worker_rec *best = NULL;
	bool best_idle = false;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		struct worker_rec *w = &p->w[i];
		bool old = w->generation != p->generation;
		if (!w->pid || w->stop_ns || old != old_generation || (!old && w->replace_ns))
			continue;
		bool idle = atomic_load(&w->slot->state) == SB_IDLE;
		if (!best || (idle && !best_idle) ||
		    (idle == best_idle && w->spawned_ns > best->spawned_ns)) {
			best = w;
			best_idle = idle;
		}
	}
	return best;
}

/* Take the boot marks workers wrote since the last look. */
static void note_booted(struct pool *p, unsigned *ready_new, unsigned *booting)
{
	*ready_new = *booting = 0;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		struct worker_rec *w = &p->w[i];
		if (!w->pid || w->stop_ns)
			continue;
		if (!w->booted && sb_load(&w->slot->booted_ns)) {
			w->booted = true;
			p->boot_failures = 0;
			if (w->generation == p->generation)
				p->gen_booted = true;
		}
		if (w->generation == p->generation && !w->replace_ns)
			(*(w->booted ? ready_new : booting))++;
	}
}

/* A new worker goes to a worker waiting for its replacement, if any. */
static void link_successor(struct pool *p, const struct worker_rec *nw)
{
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		struct worker_rec *w = &p->w[i];
		if (w->pid && w->replace_ns && !w->stop_ns && !w->successor) {
			w->successor = nw->pid;
			return;
		}
	}
}

/* Replace: the old worker drains only once its successor accepts, so the
 * pool never has fewer accepting workers than before.  One whose successor
 * will not come (the pool is already at its target) drains at once. */
static void retire_replaced(struct pool *p, unsigned cur, uint64_t now)
{
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		struct worker_rec *w = &p->w[i];
		if (!w->pid || !w->replace_ns || w->stop_ns || w->generation != p->generation)
			continue;
		struct worker_rec *s = pool_find(p, w->successor);
		if (s && s->booted)
			log_info("worker %u (pid %d) accepting: draining worker %u (pid %d)", s->no,
				 (int)s->pid, w->no, (int)w->pid);
		else if (s || cur < p->target)
			continue;
		pool_stop_worker(p, w, true, now);
	}
}

/* A successor reports its boot in the scoreboard only: while a replaced
 * worker waits for one, look every POOL_REPLACE_POLL_S rather than at the
 * next tick, so the old worker (one that served max_requests no longer
 * accepts) is drained as soon as the new one accepts. */
static void watch_replaces(struct pool *p)
{
	if (!p->loop)
		return;
	bool waiting = replacing(p) > 0;
	if (waiting && !ev_is_active(&p->replace_poll))
		ev_timer_again(p->loop, &p->replace_poll);
	else if (!waiting && ev_is_active(&p->replace_poll))
		ev_timer_stop(p->loop, &p->replace_poll);
}

void pool_manage(struct pool *p, uint64_t now)
{
	if (p->stopping)
		return;
	unsigned ready_new, booting;
	note_booted(p, &ready_new, &booting);
	unsigned cur = pool_current(p);
	/* A new configuration starts with one worker, and the others follow
	 * once it is ready: a broken app then fails once, not N times at once.
	 * While workers fail to boot, one at a time and after the backoff. */
	unsigned want = p->target;
	if ((!p->gen_booted || p->boot_failures) && want > cur)
		want = booting ? cur : cur + 1;
	if (p->spawn_blocked)
		want = 0;
	for (struct worker_rec *nw; cur < want && now >= p->next_spawn_ns && (nw = spawn(p, now));
	     cur++)
		link_successor(p, nw);
	retire_replaced(p, cur, now);
	/* Reload: each new worker accepting lets one old worker go. */
	unsigned old = pool_live(p) - pool_current(p) - replacing(p);
	for (struct worker_rec *w; old > 0 && (old + ready_new > p->target || p->target == 0) &&
				   (w = pick_to_stop(p, true)); old--)
		pool_stop_worker(p, w, true, now);
	for (struct worker_rec *w; cur > p->target && (w = pick_to_stop(p, false)); cur--)
		pool_stop_worker(p, w, true, now);
	watch_replaces(p);
}

/* ---- the watcher ---- */

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct pool *p = w->data;
	(void)revents;
	ev_prepare_stop(loop, w); /* until the next request */
	pool_manage(p, sb_now_ns());
}

static void on_replace_poll(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	pool_request_manage(t->data);
}

void pool_start(struct pool *p, struct ev_loop *loop)
{
	p->loop = loop;
	ev_prepare_init(&p->prepare, on_prepare);
	p->prepare.data = p;
	ev_init(&p->replace_poll, on_replace_poll);
	p->replace_poll.repeat = POOL_REPLACE_POLL_S;
	p->replace_poll.data = p;
	pool_request_manage(p);
}

void pool_stop_watching(struct pool *p)
{
	if (p->loop) {
		ev_prepare_stop(p->loop, &p->prepare);
		ev_timer_stop(p->loop, &p->replace_poll);
	}
	p->loop = NULL;
}

void pool_request_manage(struct pool *p)
{
	if (p->loop && !ev_is_active(&p->prepare))
		ev_prepare_start(p->loop, &p->prepare);
}
