/* The master's loop.  Signal watchers only record what was asked (libev runs
 * them from the loop, never inside the signal handler); the tick and every
 * event end in pool_manage(), which compares the pool with what is wanted
 * (target, generation, state) and acts: spawn, drain, kill. */
#include "arbiter.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "supervisor/control.h"
#include "supervisor/handoff.h"
#include "supervisor/log.h"
#include "supervisor/metrics.h"
#include "supervisor/notify.h"
#include "supervisor/sample.h"

#define TICK_S 0.2
#define KILL_GRACE_NS 1000000000ull /* SIGABRT, then SIGKILL this much later */
#define FAST_STOP_NS 1000000000ull

static void pool_manage(struct arbiter *ar);

static double since_s(uint64_t now, uint64_t then)
{
	return then && now > then ? (double)(now - then) / 1e9 : 0.0;
}

static void signal_all(struct arbiter *ar, int sig)
{
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		if (ar->w[i].pid && kill(ar->w[i].pid, sig) < 0 && errno != ESRCH)
			log_error("kill(%d, %d): %s", (int)ar->w[i].pid, sig, strerror(errno));
}

static void stop_all(struct arbiter *ar, bool graceful)
{
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		if (ar->w[i].pid)
			spawn_stop(ar, &ar->w[i], graceful);
}

static void begin_stop(struct arbiter *ar, bool graceful, int status)
{
	if (ar->state == MASTER_FAST_STOP || (ar->state == MASTER_GRACEFUL_STOP && graceful))
		return;
	ar->state = graceful ? MASTER_GRACEFUL_STOP : MASTER_FAST_STOP;
	notify_stopping(ar);
	if (status > ar->exit_status)
		ar->exit_status = status;
	uint64_t now = sb_now_ns();
	ar->stop_deadline_ns = now + (graceful ? (uint64_t)(ar->conf.graceful_timeout * 1e9)
					       : FAST_STOP_NS);
	log_info("%s stop: %u workers to stop", graceful ? "graceful" : "fast",
		 pool_count(ar, false));
	if (graceful)
		handoff_stop_listening(ar); /* queued connections are in flight too */
	stop_all(ar, graceful);
}

/* Reload: a new configuration from the file and the saved flags.  Nothing
 * changes unless it is valid and its sockets could be opened. */
static void reload(struct arbiter *ar)
{
	struct drover_conf nc;
	char err[1024];
	if (cli_build_conf(ar->cli, &nc, err, sizeof(err)) < 0) {
		log_error("reload failed, keeping the running configuration: %s", err);
		return;
	}
	if (!worker_model_available(nc.worker_class)) {
		log_error("reload failed, keeping the running configuration: worker class %s is "
			  "not available yet", conf_enum_name("worker_class", nc.worker_class));
		conf_free(&nc);
		return;
	}
	struct listeners nls;
	if (listen_open(&nc.bind, (int)nc.backlog, &ar->ls, &nls, err, sizeof(err)) < 0) {
		log_error("reload failed, keeping the running configuration: %s", err);
		conf_free(&nc);
		return;
	}
	listen_close(&ar->ls); /* what the new config no longer binds */
	ar->ls = nls;
	if (strcmp(nc.error_log, ar->conf.error_log) != 0)
		log_reopen(nc.error_log);
	log_level = (int)nc.log_level;
	if (nc.chdir[0] && chdir(nc.chdir) < 0)
		log_error("chdir %s: %s", nc.chdir, strerror(errno));
	conf_free(&ar->conf);
	ar->conf = nc;
	arbiter_reopen_access_log(ar); /* the path or format may have changed */
	ar->generation++;
	ar->target = (unsigned)nc.workers;
	ar->boot_failures = 0;
	ar->gen_booted = false;
	ar->spawn_blocked = false;
	log_info("reloading: generation %u, %u workers", ar->generation, ar->target);
}

void arbiter_reopen_access_log(struct arbiter *ar)
{
	const char *path = ar->conf.access_log;
	int fd = -1;
	if (path[0] && strcmp(path, "-") == 0)
		fd = dup(1);
	else if (path[0])
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (path[0] && fd < 0)
		log_error("cannot open access log %s: %s", path, strerror(errno));
	if (ar->access_fd >= 0)
		close(ar->access_fd);
	ar->access_fd = fd;
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct arbiter *ar = ev_userdata(loop);
	(void)revents;
	if (ar->state != MASTER_RUNNING && w->signum != SIGINT && w->signum != SIGQUIT &&
	    w->signum != SIGTERM)
		return; /* stopping: only a harder stop still means something */
	switch (w->signum) {
	case SIGTTIN:
		if (ar->target < SB_MAX_SLOTS / 2)
			ar->target++;
		log_info("TTIN: %u workers wanted", ar->target);
		break;
	case SIGTTOU:
		if (ar->target > 1)
			ar->target--;
		log_info("TTOU: %u workers wanted", ar->target);
		break;
	case SIGHUP:
		log_info("HUP: reloading the configuration");
		notify_reloading(ar);
		reload(ar);
		break;
	case SIGTERM: begin_stop(ar, true, MASTER_EXIT_OK); break;
	case SIGINT:
	case SIGQUIT: begin_stop(ar, false, MASTER_EXIT_OK); break;
	case SIGUSR1:
		log_info("USR1: reopening log files");
		log_reopen(ar->conf.error_log);
		arbiter_reopen_access_log(ar);
		signal_all(ar, SIGUSR1);
		break;
	case SIGWINCH:
		ar->target = 0;
		log_info("WINCH: stopping all workers; the master stays (TTIN or HUP to resume)");
		break;
	case SIGUSR2: log_warn("USR2 (binary upgrade) is not supported yet; ignored"); break;
	}
	pool_manage(ar);
}

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

/* A worker that died before it was ready: back off, and past the limit give
 * up, since a broken app would otherwise be forked in a tight loop.  An app
 * that cannot be loaded will not load on a retry either: give up at once,
 * unless workers of the previous configuration still serve (a reload), which
 * then keep serving until the next HUP. */
static void boot_failed(struct arbiter *ar, int status)
{
	ar->boot_failures++;
	bool app_load = WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_APP_LOAD;
	unsigned old = pool_count(ar, false) - pool_count(ar, true);
	if (app_load && old > 0) {
		log_error("new workers cannot load the app; %u workers of the previous "
			  "configuration keep serving (fix it and send HUP)", old);
		ar->spawn_blocked = true;
		return;
	}
	if (app_load || ar->boot_failures >= (unsigned)ar->conf.max_boot_failures) {
		if (app_load)
			log_crit("the app %s cannot be loaded (the error is above); exiting", ar->conf.app);
		else
			log_crit("%u workers in a row failed to boot; giving up", ar->boot_failures);
		begin_stop(ar, false, app_load ? MASTER_EXIT_APP_LOAD : MASTER_EXIT_BOOT);
		return;
	}
	unsigned shift = ar->boot_failures - 1 < 7 ? ar->boot_failures - 1 : 7;
	double backoff = 0.1 * (double)(1u << shift);
	ar->next_spawn_ns = sb_now_ns() + (uint64_t)(backoff * 1e9);
	log_warn("worker failed to boot (%u in a row); next try in %.1f s", ar->boot_failures,
		 backoff);
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

static void on_child(struct ev_loop *loop, ev_child *cw, int revents)
{
	struct arbiter *ar = ev_userdata(loop);
	(void)revents;
	struct worker_rec *w = NULL;
	for (size_t i = 0; i < SB_MAX_SLOTS && !w; i++)
		if (ar->w[i].pid == cw->rpid)
			w = &ar->w[i];
	if (!w)
		return; /* not ours (e.g. a child of a preloaded app) */
	bool booted = w->booted || sb_load(&w->slot->booted_ns) != 0;
	bool asked = w->stop_ns || w->kill_ns;
	log_exit(w, cw->rstatus);
	sampler_worker_exited(ar, w);
	sb_release(w->slot);
	handoff_close(w);
	memset(w, 0, sizeof(*w));
	if (!booted && !asked && ar->state == MASTER_RUNNING && failed_itself(cw->rstatus))
		boot_failed(ar, cw->rstatus);
	pool_manage(ar);
}

/* Heartbeat older than timeout: log, SIGABRT, then SIGKILL a second later. */
static void check_timeouts(struct arbiter *ar, uint64_t now)
{
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		struct worker_rec *w = &ar->w[i];
		if (!w->pid)
			continue;
		if (w->kill_ns) {
			if (now - w->kill_ns > KILL_GRACE_NS)
				kill(w->pid, SIGKILL);
			continue;
		}
		if (w->stop_ns) {
			double limit = ar->state == MASTER_FAST_STOP ? 1.0 : ar->conf.graceful_timeout;
			if (since_s(now, w->stop_ns) > limit) {
				log_warn("worker %u (pid %d) did not stop within %.0f s: killing", w->no,
					 (int)w->pid, limit);
				w->kill_ns = now;
				kill(w->pid, SIGKILL);
			}
			continue;
		}
		double idle = since_s(now, sb_load(&w->slot->heartbeat_ns));
		if (ar->conf.timeout > 0 && idle > ar->conf.timeout) {
			log_error("worker %u (pid %d) timed out after %.1f s", w->no, (int)w->pid, idle);
			w->kill_ns = now;
			kill(w->pid, SIGABRT);
		}
	}
}

static void on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct arbiter *ar = ev_userdata(loop);
	(void)t;
	(void)revents;
	check_timeouts(ar, sb_now_ns());
	pool_manage(ar);
	notify_tick(ar, sb_now_ns());
}

static struct worker_rec *pick_to_stop(struct arbiter *ar, bool old_generation)
{
	/* The youngest idle worker, else the youngest: draining finishes its
	 * request anyway, but an idle one goes at once. */
	struct worker_rec *best = NULL;
	bool best_idle = false;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		struct worker_rec *w = &ar->w[i];
		if (!w->pid || w->stop_ns || (w->generation != ar->generation) != old_generation)
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

static void note_booted(struct arbiter *ar, unsigned *ready_new, unsigned *booting)
{
	*ready_new = *booting = 0;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		struct worker_rec *w = &ar->w[i];
		if (!w->pid || w->stop_ns)
			continue;
		if (!w->booted && sb_load(&w->slot->booted_ns)) {
			w->booted = true;
			ar->boot_failures = 0;
			if (w->generation == ar->generation)
				ar->gen_booted = true;
		}
		if (w->generation == ar->generation)
			(*(w->booted ? ready_new : booting))++;
	}
}

static void pool_manage(struct arbiter *ar)
{
	if (ar->state != MASTER_RUNNING) {
		if (pool_count(ar, false) == 0)
			ev_break(ar->loop, EVBREAK_ALL);
		return;
	}
	unsigned ready_new, booting;
	note_booted(ar, &ready_new, &booting);
	unsigned cur = pool_count(ar, true);
	uint64_t now = sb_now_ns();
	/* A new configuration starts with one worker, and the others follow
	 * once it is ready: a broken app then fails once, not N times at once.
	 * While workers fail to boot, one at a time and after the backoff. */
	unsigned want = ar->target;
	if ((!ar->gen_booted || ar->boot_failures) && want > cur)
		want = booting ? cur : cur + 1;
	if (ar->spawn_blocked)
		want = 0;
	while (cur < want && now >= ar->next_spawn_ns && spawn_worker(ar) == 0)
		cur++;
	/* Reload: each new worker accepting lets one old worker go. */
	unsigned old = pool_count(ar, false) - pool_count(ar, true);
	for (struct worker_rec *w; old > 0 && (old + ready_new > ar->target || ar->target == 0) &&
				   (w = pick_to_stop(ar, true)); old--)
		spawn_stop(ar, w, true);
	for (struct worker_rec *w; cur > ar->target && (w = pick_to_stop(ar, false)); cur--)
		spawn_stop(ar, w, true);
}

static void watch_signals(struct arbiter *ar)
{
	static const int sigs[] = {SIGTTIN, SIGTTOU, SIGHUP, SIGTERM, SIGINT,
				   SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		ev_signal_init(&ar->sig[i], on_signal, sigs[i]);
		ev_signal_start(ar->loop, &ar->sig[i]);
	}
	signal(SIGPIPE, SIG_IGN);
}

int arbiter_run(struct arbiter *ar)
{
	ar->loop = EV_DEFAULT;
	ev_set_userdata(ar->loop, ar);
	ar->target = (unsigned)ar->conf.workers;
	watch_signals(ar);
	ev_child_init(&ar->child, on_child, 0, 0);
	ev_child_start(ar->loop, &ar->child);
	ev_timer_init(&ar->tick, on_tick, TICK_S, TICK_S);
	ev_timer_start(ar->loop, &ar->tick);
	sampler_start(ar);
	notify_start(ar);
	control_start(ar);
	metrics_http_start(ar);
	pool_manage(ar);
	ev_run(ar->loop, 0);
	metrics_http_stop(ar);
	control_stop(ar);
	notify_stop(ar);
	sampler_stop(ar);
	return ar->exit_status;
}

/* ---- actions for the control socket (same paths as the signals) ---- */

void arbiter_set_target(struct arbiter *ar, unsigned n)
{
	if (ar->state != MASTER_RUNNING)
		return;
	ar->target = n < SB_MAX_SLOTS / 2 ? n : SB_MAX_SLOTS / 2;
	log_info("control: %u workers wanted", ar->target);
	pool_manage(ar);
}

void arbiter_reload(struct arbiter *ar)
{
	if (ar->state != MASTER_RUNNING)
		return;
	log_info("control: reloading the configuration");
	notify_reloading(ar);
	reload(ar);
	pool_manage(ar);
}

void arbiter_stop(struct arbiter *ar, bool graceful)
{
	begin_stop(ar, graceful, MASTER_EXIT_OK);
	pool_manage(ar);
}

int arbiter_recycle(struct arbiter *ar, pid_t pid)
{
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		struct worker_rec *w = &ar->w[i];
		if (w->pid != pid || w->stop_ns || ar->state != MASTER_RUNNING)
			continue;
		/* It drains (finishes in-flight requests, stops accepting) while
		 * pool_manage forks its replacement at once; queued connections
		 * wait in the shared listen socket meanwhile. */
		log_info("control: recycling worker %u (pid %d)", w->no, (int)pid);
		spawn_stop(ar, w, true);
		pool_manage(ar);
		return 0;
	}
	return -ESRCH;
}
