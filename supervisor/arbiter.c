/* The master's loop.  Signal watchers only turn a signal into an event of
 * the state table (libev runs them from the loop, never inside the handler);
 * child exits go to the pool; one periodic tick runs
 *   measure (sampler.c) -> decide (stall.c: pure functions) -> act (pool.c).
 * Forks happen in the pool's ev_prepare, after whatever asked for them. */
#include "supervisor/arbiter.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/doctor.h"
#include "supervisor/doctor_out.h"
#include "supervisor/autoscale_run.h"
#include "supervisor/log.h"
#include "supervisor/notify.h"
#include "supervisor/recycle.h"
#include "supervisor/recycler.h"
#include "supervisor/sampler.h"
#include "supervisor/stall.h"

#define TICK_S 0.2
#define FAST_STOP_GRACE_S 1.0 /* a worker told to quit now gets this long */

static const char *const state_names[MASTER_NSTATES] = {
	[MASTER_RUNNING] = "running",
	[MASTER_RELOADING] = "reloading",
	[MASTER_UPGRADING] = "upgrading",
	[MASTER_GRACEFUL_STOP] = "stopping",
	[MASTER_FAST_STOP] = "stopping (fast)",
};

static bool stopping(const struct arbiter *ar)
{
	return ar->state == MASTER_GRACEFUL_STOP || ar->state == MASTER_FAST_STOP;
}

/* Once stopping, the loop ends with the last worker. */
static void check_done(struct arbiter *ar)
{
	if (stopping(ar) && pool_live(&ar->pool) == 0)
		ev_break(ar->loop, EVBREAK_ALL);
}

static void begin_stop(struct arbiter *ar, bool graceful, int status)
{
	if (ar->state == MASTER_FAST_STOP || (ar->state == MASTER_GRACEFUL_STOP && graceful))
		return;
	ar->state = graceful ? MASTER_GRACEFUL_STOP : MASTER_FAST_STOP;
	notify_stopping(ar->notify);
	if (status > ar->exit_status)
		ar->exit_status = status;
	log_info("%s stop: %u workers to stop", graceful ? "graceful" : "fast",
		 pool_live(&ar->pool));
	pool_begin_stop(&ar->pool, graceful, sb_now_ns());
	check_done(ar);
}

static void set_tick_interval(struct arbiter *ar)
{
	/* The tick is the sampler's clock too: never slower than a pass. */
	double every = ar->conf.sample_interval < TICK_S ? ar->conf.sample_interval : TICK_S;
	if (ar->tick.repeat != every || !ev_is_active(&ar->tick)) {
		ar->tick.repeat = every;
		ev_timer_again(ar->loop, &ar->tick);
	}
}

/* Reload: a new configuration from the file and the saved flags.  Nothing
 * changes unless it is valid and its sockets could be opened. */
static int build_new_conf(struct arbiter *ar)
{
	struct drover_conf nc;
	char err[1024];
	if (cli_build_conf(ar->cli, &nc, err, sizeof(err)) < 0) {
		log_error("reload failed, keeping the running configuration: %s", err);
		return -1;
	}
	if (!worker_model_available(nc.worker_class)) {
		log_error("reload failed, keeping the running configuration: worker class %s is "
			  "not available yet", conf_enum_name("worker_class", nc.worker_class));
		conf_free(&nc);
		return -1;
	}
	struct listeners nls;
	if (listen_open(&nc.bind, (int)nc.backlog, &ar->ls, &nls, err, sizeof(err)) < 0) {
		log_error("reload failed, keeping the running configuration: %s", err);
		conf_free(&nc);
		return -1;
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
	return 0;
}

static int reload(struct arbiter *ar)
{
	notify_reloading(ar->notify, ar->pool.generation);
	ar->state = MASTER_RELOADING;
	int r = build_new_conf(ar);
	ar->state = MASTER_RUNNING;
	if (r < 0)
		return r;
	arbiter_reopen_access_log(ar); /* the path or format may have changed */
	pool_new_generation(&ar->pool, (unsigned)ar->conf.workers);
	autoscale_run_configure(ar, sb_now_ns());
	set_tick_interval(ar);
	log_info("reloading: generation %u, %u workers", ar->pool.generation, ar->pool.target);
	return 0;
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
	if (ar->pool.env.access_fd >= 0)
		close(ar->pool.env.access_fd);
	ar->pool.env.access_fd = fd;
}

/* ---- events: what each does, and the state x event table ---- */

typedef void (*event_fn)(struct arbiter *ar, const char *by);

static void ev_grow(struct arbiter *ar, const char *by)
{
	if (autoscale_run_operator(ar, AS_OP_GROW, 0, sb_now_ns()))
		return;
	pool_set_target(&ar->pool, ar->pool.target + 1, POOL_BY_OPERATOR);
	log_info("%s: %u workers wanted", by, ar->pool.target);
}

static void ev_shrink(struct arbiter *ar, const char *by)
{
	if (autoscale_run_operator(ar, AS_OP_SHRINK, 0, sb_now_ns()))
		return;
	if (ar->pool.target > 1) /* TTOU keeps one; WINCH is for none */
		pool_set_target(&ar->pool, ar->pool.target - 1, POOL_BY_OPERATOR);
	log_info("%s: %u workers wanted", by, ar->pool.target);
}

static void ev_reload(struct arbiter *ar, const char *by)
{
	log_info("%s: reloading the configuration", by);
	reload(ar);
}

static void ev_graceful_stop(struct arbiter *ar, const char *by)
{
	(void)by;
	begin_stop(ar, true, MASTER_EXIT_OK);
}

static void ev_fast_stop(struct arbiter *ar, const char *by)
{
	(void)by;
	begin_stop(ar, false, MASTER_EXIT_OK);
}

/* QUIT/INT while a new master serves beside this one (upgrade_handover =
 * manual): operators retire the old master with WINCH then QUIT, often in
 * one line of shell, and unicorn's and nginx's QUIT is graceful.  A fast stop
 * would cut what this master's workers still hold while a whole new pool
 * serves: nothing to gain, so it stops gracefully (graceful_timeout bounds
 * it); a second QUIT is a fast stop (the stopping row).  Before the
 * hand-over it is the fast stop it always is. */
static void ev_fast_stop_upgrading(struct arbiter *ar, const char *by)
{
	if (ar->upgrade.phase != UPG_HANDED_OVER) {
		begin_stop(ar, false, MASTER_EXIT_OK);
		return;
	}
	log_info("%s: the new master (pid %d) serves: this master stops gracefully (%s again "
		 "for a fast stop)", by, (int)ar->upgrade.child, by);
	begin_stop(ar, true, MASTER_EXIT_OK);
}

static void ev_reopen_logs(struct arbiter *ar, const char *by)
{
	log_info("%s: reopening log files", by);
	log_reopen(ar->conf.error_log);
	arbiter_reopen_access_log(ar);
	pool_signal_all(&ar->pool, SIGUSR1);
}

static void ev_pause(struct arbiter *ar, const char *by)
{
	if (autoscale_run_operator(ar, AS_OP_PAUSE, 0, sb_now_ns()))
		return;
	pool_set_target(&ar->pool, 0, POOL_BY_OPERATOR);
	log_info("%s: stopping all workers; the master stays (TTIN or HUP to resume)", by);
}

static void ev_upgrade(struct arbiter *ar, const char *by)
{
	(void)by;
	upgrade_begin(ar); /* refuses (logged) while a hand-over is under way */
}

static void ev_refuse_upgrading(struct arbiter *ar, const char *by)
{
	log_warn("%s refused: a binary upgrade is under way (new master pid %d)", by,
		 (int)ar->upgrade.child);
}

/* The config and the app stay: each worker is replaced by a fresh one,
 * accepting before the old one drains, recycle_concurrency at a time. */
static void ev_recycle_all(struct arbiter *ar, const char *by)
{
	unsigned n = ar->recycler ? recycler_recycle_all(ar->recycler, &ar->pool) : 0;
	log_info("%s: recycling all %u workers, %d at a time", by, n,
		 (int)ar->conf.recycle_concurrency);
}

/* NULL: the event means nothing in that state.  Stopping, only a harder
 * stop still means something. */
static const event_fn on_event[MASTER_NSTATES][MEV_N] = {
	[MASTER_RUNNING] = {
		[MEV_GROW] = ev_grow, [MEV_SHRINK] = ev_shrink, [MEV_RELOAD] = ev_reload,
		[MEV_GRACEFUL_STOP] = ev_graceful_stop, [MEV_FAST_STOP] = ev_fast_stop,
		[MEV_REOPEN_LOGS] = ev_reopen_logs, [MEV_PAUSE] = ev_pause,
		[MEV_UPGRADE] = ev_upgrade, [MEV_RECYCLE_ALL] = ev_recycle_all,
	},
	[MASTER_RELOADING] = {
		[MEV_GRACEFUL_STOP] = ev_graceful_stop, [MEV_FAST_STOP] = ev_fast_stop,
	},
	/* USR2 under way: both masters share the sockets.  WINCH then QUIT
	 * retire this one (upgrade_handover = manual); a reload would change
	 * sockets the other master holds too, and a second upgrade is one too
	 * many: both refused with a log line. */
	[MASTER_UPGRADING] = {
		[MEV_GROW] = ev_grow, [MEV_SHRINK] = ev_shrink, [MEV_RELOAD] = ev_refuse_upgrading,
		[MEV_GRACEFUL_STOP] = ev_graceful_stop, [MEV_FAST_STOP] = ev_fast_stop_upgrading,
		[MEV_REOPEN_LOGS] = ev_reopen_logs, [MEV_PAUSE] = ev_pause,
		[MEV_UPGRADE] = ev_upgrade,
	},
	[MASTER_GRACEFUL_STOP] = {[MEV_FAST_STOP] = ev_fast_stop, [MEV_UPGRADE] = ev_upgrade},
	[MASTER_FAST_STOP] = {0},
};

static void dispatch(struct arbiter *ar, enum master_event ev, const char *by)
{
	event_fn fn = on_event[ar->state][ev];
	if (fn)
		fn(ar, by);
}

/* The signals the master handles, and the event each one is. */
static const struct {
	int signo;
	const char *name;
	enum master_event ev;
} signal_table[] = {
	{SIGTTIN, "TTIN", MEV_GROW},
	{SIGTTOU, "TTOU", MEV_SHRINK},
	{SIGHUP, "HUP", MEV_RELOAD},
	{SIGTERM, "TERM", MEV_GRACEFUL_STOP},
	{SIGINT, "INT", MEV_FAST_STOP},
	{SIGQUIT, "QUIT", MEV_FAST_STOP},
	{SIGUSR1, "USR1", MEV_REOPEN_LOGS},
	{SIGUSR2, "USR2", MEV_UPGRADE},
	{SIGWINCH, "WINCH", MEV_PAUSE},
	/* gunicorn takes every classic signal; URG is ignored by default, so
	 * a drover (or anything) without this handler is left unharmed, and
	 * the kernel raises it only for sockets given an owner (F_SETOWN),
	 * which the master never does.  README "Signals to the master". */
	{SIGURG, "URG", MEV_RECYCLE_ALL},
};
#define NSIGNALS (sizeof(signal_table) / sizeof(signal_table[0]))

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct arbiter *ar = ev_userdata(loop);
	(void)revents;
	size_t i = (size_t)(w - ar->sig);
	dispatch(ar, signal_table[i].ev, signal_table[i].name);
}

/* A worker spent (or nearly spent) its max_requests: replace it now rather
 * than at the next tick; the one at its limit no longer accepts. */
static void on_worker_wake(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct arbiter *ar = ev_userdata(loop);
	(void)w;
	(void)revents;
	if (!ar->recycler || ar->state != MASTER_RUNNING)
		return;
	uint64_t now = sb_now_ns();
	arbiter_refresh_sample(ar);
	recycler_tick(ar->recycler, &ar->pool, ar->sampler, &ar->conf, true, now);
	pool_request_manage(&ar->pool);
}

/* ---- child exits ---- */

static void on_child(struct ev_loop *loop, ev_child *cw, int revents)
{
	struct arbiter *ar = ev_userdata(loop);
	(void)revents;
	if (upgrade_reaped(ar, cw->rpid, cw->rstatus)) {
		check_done(ar);
		return;
	}
	struct worker_rec *w = pool_find(&ar->pool, cw->rpid);
	if (!w)
		return; /* not ours (e.g. a child of a preloaded app) */
	sampler_worker_exited(ar->sampler, &ar->pool, w);
	switch (pool_reaped(&ar->pool, w, cw->rstatus, sb_now_ns())) {
	case POOL_REAP_GIVE_UP_BOOT: begin_stop(ar, false, MASTER_EXIT_BOOT); break;
	case POOL_REAP_GIVE_UP_APP_LOAD: begin_stop(ar, false, MASTER_EXIT_APP_LOAD); break;
	case POOL_REAP_OK: break;
	}
	check_done(ar);
}

/* ---- the tick: measure -> decide -> act ---- */

/* The recycling decision's fragmentation verdicts, as the doctor's evidence
 * (the finding's slot): "" when no worker has that verdict. */
static void fragmentation_text(const struct sampler *s, char *buf, size_t cap)
{
	size_t len = 0;
	unsigned n = 0;
	buf[0] = 0;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_view *v = &s->w[i];
		if (!sample_live(v) || v->mem.verdict != RV_FRAGMENTATION)
			continue;
		if (++n > 3)
			continue; /* counted, not listed */
		int k = snprintf(buf + len, cap - len,
				 "%sworker %u (pid %d): RSS %+.0f MB with %+.0f MB in use, free heap %+.0f MB",
				 len ? "; " : "", v->no, (int)v->p.pid, (double)v->mem.rss_growth / 1048576.0,
				 (double)v->mem.in_use_growth / 1048576.0,
				 (double)v->mem.free_growth / 1048576.0);
		if (k < 0 || (size_t)k >= cap - len)
			break;
		len += (size_t)k;
	}
	if (n > 3 && len + 32 < cap)
		snprintf(buf + len, cap - len, "; %u workers in all", n);
}

/* `drover doctor`: one step of its decisions per sampler pass; the log
 * says when a finding appears or clears. */
static void diagnose(struct arbiter *ar, uint64_t now)
{
	if (!ar->doctor)
		return;
	struct doctor_input in;
	struct doctor_changes ch;
	static char frag[480];
	doctor_input_from_sampler(ar->sampler, &ar->conf, &in);
	fragmentation_text(ar->sampler, frag, sizeof(frag));
	in.fragmentation = frag[0] ? frag : NULL;
	static char note[400];
	if (ar->conf.autoscale && ar->autoscale.last_text[0]) {
		snprintf(note, sizeof(note), "autoscaling is on, its last decision: %.320s",
			 ar->autoscale.last_text);
		in.autoscale_note = note;
	}
	doctor_step(ar->doctor, &in, now, &ch);
	doctor_log_changes(ar->doctor, &ch);
}

static void measure(struct arbiter *ar, uint64_t now)
{
	const char *state = state_names[ar->state];
	/* Due within half a tick counts as due: the tick's own jitter must not
	 * push every pass one tick late. */
	uint64_t slack = (uint64_t)(ar->tick.repeat * 0.5e9);
	if (now + slack >= ar->sampler->next_pass_ns)
	{
		sampler_pass(ar->sampler, &ar->pool, &ar->ls, state, &ar->conf, now);
		diagnose(ar, now);
	} else
		sampler_refresh(ar->sampler, &ar->pool, state, &ar->conf, now);
}

/* Apply one timeout verdict to its worker; the caller of a pure decision
 * logs, once. */
static void act_timeout(struct arbiter *ar, struct worker_rec *w, struct stall_verdict v,
			const struct stall_limits *lim, uint64_t now)
{
	switch (v.action) {
	case STALL_NONE: return;
	case STALL_TIMEOUT:
		log_error("worker %u (pid %d) timed out after %.1f s", w->no, (int)w->pid, v.seconds);
		pool_kill(&ar->pool, w, SIGABRT, now);
		return;
	case STALL_STOP_OVERDUE:
		log_warn("worker %u (pid %d) did not stop within %.0f s: killing", w->no, (int)w->pid,
			 lim->stop_grace_s);
		pool_kill(&ar->pool, w, SIGKILL, now);
		return;
	case STALL_KILL: pool_kill(&ar->pool, w, SIGKILL, now); return;
	}
}

/* Apply stall_action to a worker that keeps stalling. */
static void act_escalation(struct arbiter *ar, struct worker_rec *w, enum stall_escalation e,
			   const struct worker_view *v, uint64_t now)
{
	if (e == STALL_ESC_RECYCLE && pool_replace(&ar->pool, w->pid, now) == 0)
		log_warn("worker %u (pid %d) stalled %u times within a minute: replacing it "
			 "(stall_action = recycle)",
			 w->no, (int)w->pid, v->stall.recent);
	else if (e == STALL_ESC_KILL) {
		log_warn("worker %u (pid %d) stalled %u times within a minute: killing it "
			 "(stall_action = kill)",
			 w->no, (int)w->pid, v->stall.recent);
		pool_kill(&ar->pool, w, SIGKILL, now);
	}
}

static void decide_and_act(struct arbiter *ar, uint64_t now)
{
	struct stall_escalate_conf esc = {ar->conf.stall_action,
					  (unsigned)ar->conf.stall_recycle_after};
	struct stall_limits lim = {
		.timeout_s = ar->conf.timeout,
		.stop_grace_s = ar->state == MASTER_FAST_STOP ? FAST_STOP_GRACE_S
							      : ar->conf.graceful_timeout,
	};
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		struct worker_rec *w = &ar->pool.w[i];
		const struct worker_view *v = &ar->sampler->w[i];
		if (!w->pid || v->p.pid != w->pid)
			continue;
		act_timeout(ar, w, stall_decide_timeout(v, &lim, now), &lim, now);
		if (!w->kill_ns && !w->replace_ns)
			act_escalation(ar, w, stall_decide_escalation(v, &esc), v, now);
	}
	if (ar->recycler)
		recycler_tick(ar->recycler, &ar->pool, ar->sampler, &ar->conf,
			      ar->state == MASTER_RUNNING, now);
	pool_request_manage(&ar->pool); /* boot marks, the target: in the prepare */
}

void arbiter_tick(struct arbiter *ar, uint64_t now)
{
	measure(ar, now);
	autoscale_run_tick(ar, now); /* sets the target: the pool acts in its prepare */
	decide_and_act(ar, now);
	notify_tick(ar->notify, &ar->pool, ar->sampler, now);
	upgrade_tick(ar); /* a master started by USR2: tell the old one once ready */
}

static void on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)t;
	(void)revents;
	arbiter_tick(ev_userdata(loop), sb_now_ns());
}

/* ---- setup and the operator's actions ---- */

int arbiter_init(struct arbiter *ar)
{
	ar->loop = EV_DEFAULT;
	if (!ar->loop)
		return -ENOMEM;
	ev_set_userdata(ar->loop, ar);
	ar->sampler = sampler_new();
	if (!ar->sampler)
		return -ENOMEM;
	ar->doctor = calloc(1, sizeof(*ar->doctor)); /* NULL: no doctor, nothing else lost */
	ar->sampler->doctor = ar->doctor;
	ar->pool.env.conf = &ar->conf;
	ar->pool.env.ls = &ar->ls;
	ar->pool.env.loop = ar->loop;
	pool_set_target(&ar->pool, (unsigned)ar->conf.workers, POOL_BY_CONFIG);
	autoscale_run_configure(ar, sb_now_ns());
	for (size_t i = 0; i < NSIGNALS; i++) {
		ev_signal_init(&ar->sig[i], on_signal, signal_table[i].signo);
		ev_signal_start(ar->loop, &ar->sig[i]);
	}
	ev_signal_init(&ar->wake, on_worker_wake, SB_WAKE_MASTER_SIGNAL);
	ev_signal_start(ar->loop, &ar->wake);
	signal(SIGPIPE, SIG_IGN);
	ev_child_init(&ar->child, on_child, 0, 0);
	ev_child_start(ar->loop, &ar->child);
	ev_timer_init(&ar->tick, on_tick, 0, TICK_S);
	set_tick_interval(ar);
	/* A baseline, so the first pass of the tick has rates. */
	sampler_pass(ar->sampler, &ar->pool, &ar->ls, state_names[ar->state], &ar->conf,
		     sb_now_ns());
	ar->notify = notify_start(ar->loop);
	ar->recycler = recycler_new(); /* NULL: verdicts off, nothing else lost */
	pool_start(&ar->pool, ar->loop);
	return 0;
}

int arbiter_run(struct arbiter *ar)
{
	ev_run(ar->loop, 0);
	return ar->exit_status;
}

void arbiter_fini(struct arbiter *ar)
{
	pool_stop_watching(&ar->pool);
	ev_timer_stop(ar->loop, &ar->tick);
	ev_signal_stop(ar->loop, &ar->wake);
	notify_stop(ar->notify);
	ar->notify = NULL;
	sampler_free(ar->sampler);
	ar->sampler = NULL;
	free(ar->doctor);
	ar->doctor = NULL;
	recycler_free(ar->recycler);
	ar->recycler = NULL;
}

unsigned arbiter_set_target(struct arbiter *ar, unsigned n)
{
	if (ar->state != MASTER_RUNNING)
		return ar->pool.target;
	if (!autoscale_run_operator(ar, AS_OP_SET, n, sb_now_ns()))
		pool_set_target(&ar->pool, n, POOL_BY_OPERATOR);
	log_info("control: %u workers wanted", ar->pool.target);
	return ar->pool.target;
}

int arbiter_reload(struct arbiter *ar)
{
	if (ar->state != MASTER_RUNNING)
		return -1;
	log_info("control: reloading the configuration");
	return reload(ar);
}

void arbiter_stop(struct arbiter *ar, bool graceful)
{
	dispatch(ar, graceful ? MEV_GRACEFUL_STOP : MEV_FAST_STOP, "control");
}

int arbiter_recycle(struct arbiter *ar, pid_t pid)
{
	struct worker_rec *w = pool_find(&ar->pool, pid);
	if (!w || w->stop_ns || w->replace_ns || ar->state != MASTER_RUNNING)
		return -ESRCH;
	log_info("control: recycling worker %u (pid %d)", w->no, (int)pid);
	return pool_replace(&ar->pool, pid, sb_now_ns());
}

int arbiter_recycle_all(struct arbiter *ar)
{
	if (!ar->recycler || ar->state != MASTER_RUNNING)
		return -EAGAIN;
	unsigned n = recycler_recycle_all(ar->recycler, &ar->pool);
	log_info("control: recycling all %u workers, %d at a time", n,
		 (int)ar->conf.recycle_concurrency);
	return (int)n; /* the same as ev_recycle_all (URG), with the count for the reply */
}

void arbiter_refresh_sample(struct arbiter *ar)
{
	sampler_refresh(ar->sampler, &ar->pool, state_names[ar->state], &ar->conf, sb_now_ns());
}
