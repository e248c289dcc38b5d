/* The worker runtime common to every model: undo what the master left in the
 * forked process (signal handlers, fds, environment), tie the worker's life
 * to the master's, load and start the app, then run the chosen model and
 * stop the app.  Signal handlers only set flags, except fast stop (_exit) and
 * the stack dump (backtrace_symbols_fd, primed at boot so it is signal-safe). */
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "workers/app/app_loader.h"
#include "workers/http/access_log.h"
#include "workers/watchdog.h"
#include "workers/wlog.h"
#include "workers/worker_priv.h"

atomic_int worker_draining;
static volatile sig_atomic_t reopen_logs;

static void on_term(int sig)
{
	(void)sig;
	atomic_store(&worker_draining, 1);
}

static void on_quit(int sig)
{
	(void)sig;
	_exit(WORKER_EXIT_OK);
}

static void on_usr1(int sig)
{
	(void)sig;
	reopen_logs = 1;
}

static void on_usr2(int sig)
{
	/* C stack of the thread that took the signal; backtrace() was primed
	 * at boot so that this call does not load libgcc_s here. */
	void *frames[64];
	int n = backtrace(frames, 64);
	static const char hdr[] = "drover: worker stack (SIGUSR2):\n";
	ssize_t w = write(2, hdr, sizeof(hdr) - 1);
	(void)w;
	backtrace_symbols_fd(frames, n, 2);
	(void)sig;
}

static void on_wake(int sig)
{
	(void)sig; /* only interrupts a blocking call; the slot says why */
}

static void set_handler(int sig, void (*fn)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a blocking accept/poll must return to see the flag. */
	sigaction(sig, &sa, NULL);
}

/* The master's libev handlers are still installed in the fork: reset every
 * disposition and the mask before anything else. */
static void reset_signals(void)
{
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &dfl, NULL);
	set_handler(SIGTERM, on_term);
	set_handler(SIGQUIT, on_quit);
	set_handler(SIGINT, on_quit);
	set_handler(SIGUSR1, on_usr1);
	set_handler(SIGUSR2, on_usr2);
	set_handler(SIGURG, on_wake);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN); /* the master reloads; workers are replaced */
	signal(SIGWINCH, SIG_IGN);
	signal(SIGTTIN, SIG_IGN);
	signal(SIGTTOU, SIG_IGN);
	/* The master forked us with every signal blocked: what arrived since
	 * is delivered now, to these handlers. */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static void detach_from_master(const struct worker_args *a)
{
	for (size_t i = 0; i < a->nclose_fds; i++)
		close(a->close_fds[i]);
	/* sd_notify and socket activation belong to the master alone. */
	unsetenv("NOTIFY_SOCKET");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	/* Die (gracefully) with the master; the call races with a master that
	 * already died, hence the getppid() check after it. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != a->master_pid)
		_exit(WORKER_EXIT_OK);
}

int worker_tick_ms(const struct drover_conf *conf)
{
	double t = conf->timeout > 0 && conf->timeout < 4 ? conf->timeout / 4 : 1.0;
	return t < 0.01 ? 10 : (int)(t * 1000);
}

static void sample_heap(struct sb_slot *s, uint64_t now)
{
	struct mallinfo2 mi = mallinfo2();
	sb_store(&s->heap_arena, mi.arena);
	sb_store(&s->heap_hblkhd, mi.hblkhd);
	sb_store(&s->heap_uordblks, mi.uordblks);
	sb_store(&s->heap_fordblks, mi.fordblks);
	sb_store(&s->heap_keepcost, mi.keepcost);
	if (app_heap_extra) {
		uint64_t arena = 0, blocks = 0;
		app_heap_extra(&arena, &blocks);
		sb_store(&s->py_arena_bytes, arena);
		sb_store(&s->py_blocks, blocks);
	}
	sb_store(&s->heap_sampled_ns, now);
}

/* USR1 (logrotate): the files were moved away; open them anew by name. */
static void reopen_log_files(struct worker_rt *rt)
{
	const struct drover_conf *conf = rt->args->conf;
	wlog_reopen(conf->error_log);
	if (!rt->env.alog || !conf->access_log[0] || strcmp(conf->access_log, "-") == 0)
		return;
	int fd = open(conf->access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		wlog_error("cannot reopen access log %s: %s", conf->access_log, strerror(errno));
		return;
	}
	int old = access_log_fd(rt->env.alog);
	access_log_set_fd(rt->env.alog, fd);
	if (old != rt->args->access_fd)
		close(old); /* the inherited fd stays: the master owns it */
}

static void run_commands(struct worker_rt *rt, uint32_t cmd)
{
	struct sb_slot *s = rt->args->slot;
	if (cmd & SB_CMD_DRAIN)
		atomic_store(&worker_draining, 1);
	if (cmd & SB_CMD_TRIM) {
		malloc_trim(0);
		sb_add(&s->trims, 1);
		rt->next_heap_sample_ns = 0; /* show the effect at once */
	}
	if (cmd & SB_CMD_STACK)
		raise(SIGUSR2);
}

/* max_requests reached and no drain from the master (it replaces the
 * worker once the successor accepts): after WORKER_REPLACE_WAIT_NS the
 * worker drains itself, as before the replace path, so a master that cannot
 * replace it now (a reload, its recycle slots taken) does not keep it idle. */
static void budget_fallback(struct worker_rt *rt, uint64_t now)
{
	uint64_t spent = atomic_load_explicit(&rt->budget.spent_ns, memory_order_relaxed);
	if (!spent || now - spent < WORKER_REPLACE_WAIT_NS || atomic_load(&worker_draining))
		return;
	wlog_info("worker %u: no replacement within %llu s of max_requests: restarting",
		  rt->args->worker_no, (unsigned long long)(WORKER_REPLACE_WAIT_NS / 1000000000ull));
	atomic_store(&worker_draining, 1);
}

#define HEAP_SAMPLE_PATIENCE 5

void worker_idle_point(struct worker_rt *rt)
{
	struct sb_slot *s = rt->args->slot;
	uint64_t now = sb_now_ns();
	sb_store(&s->heartbeat_ns, now);
	uint32_t cmd = atomic_exchange_explicit(&s->cmd, 0, memory_order_acq_rel);
	if (cmd)
		run_commands(rt, cmd);
	/* A heap sample taken while a request runs counts the request's
	 * temporary objects as in use: a thread worker's poller samples beside
	 * its request threads, and one burst read as "in use +82 MB" turned a
	 * fragmented heap into a leak verdict.  So wait for a moment with no
	 * request in flight, at most HEAP_SAMPLE_PATIENCE intervals (a worker
	 * never idle is still sampled). */
	uint64_t every = (uint64_t)(rt->args->conf->heap_sample_interval * 1e9);
	if (now >= rt->next_heap_sample_ns &&
	    (atomic_load_explicit(&s->inflight, memory_order_relaxed) == 0 ||
	     now >= rt->next_heap_sample_ns + HEAP_SAMPLE_PATIENCE * every)) {
		sample_heap(s, now);
		rt->next_heap_sample_ns = now + every;
	}
	if (reopen_logs) {
		reopen_logs = 0;
		reopen_log_files(rt);
	}
	budget_fallback(rt, now);
	/* PDEATHSIG covers the master dying; this catches the rare case of a
	 * signal lost to the race at boot.  A syscall, so once a second. */
	if (now >= rt->next_ppid_check_ns) {
		rt->next_ppid_check_ns = now + 1000000000ull;
		if (getppid() != rt->args->master_pid)
			atomic_store(&worker_draining, 1);
	}
}

static uint64_t pick_max_requests(const struct drover_conf *conf, unsigned worker_no)
{
	if (conf->max_requests <= 0)
		return 0;
	uint64_t jitter = 0;
	if (conf->max_requests_jitter > 0) {
		srandom((unsigned)getpid() ^ (unsigned)time(NULL) ^ worker_no);
		jitter = (uint64_t)random() % ((uint64_t)conf->max_requests_jitter + 1);
	}
	return (uint64_t)conf->max_requests + jitter;
}

static int boot_app(struct worker_rt *rt, struct app **out)
{
	const struct worker_args *a = rt->args;
	char err[4096];
	struct app *app = a->preloaded;
	if (!app) {
		app = app_load(a->conf, err, sizeof(err));
		if (!app) {
			wlog_error("worker %u: %s", a->worker_no, err);
			return WORKER_EXIT_APP_LOAD;
		}
	}
	if (app_worker_start(app, err, sizeof(err)) < 0) {
		wlog_error("worker %u: %s", a->worker_no, err);
		return WORKER_EXIT_BOOT;
	}
	*out = app;
	return 0;
}

static struct access_log *open_access_log(const struct worker_args *a)
{
	if (a->access_fd < 0)
		return NULL;
	char err[256];
	struct access_log *l = access_log_new(a->conf->access_log_format, a->access_fd, err,
					      sizeof(err));
	if (!l)
		wlog_error("%s", err); /* validated by the master already */
	return l;
}

int worker_run(const struct worker_args *a)
{
	reset_signals();
	detach_from_master(a);
	wlog_level = (int)a->conf->log_level;
	struct worker_rt rt = {.args = a};
	const struct drover_conf *conf = a->conf;
	static const char *const models[] = {"sync", "thread", "event", "asgi"};
	rt.model = models[conf->worker_class];
	char title[128];
	snprintf(title, sizeof(title), "%s: worker %u [%s]", conf->proc_name, a->worker_no, rt.model);
	if (a->set_title)
		a->set_title(title);
	atomic_store(&a->slot->pid, (int32_t)getpid());
	void *prime[2];
	backtrace(prime, 2);

	int wrc = watchdog_init(a);
	if (wrc < 0)
		wlog_error("worker %u: no stall watchdog: %s", a->worker_no, strerror(-wrc));
	struct app *app = NULL;
	int rc = boot_app(&rt, &app);
	if (rc)
		return rc;
	bool python = strcmp(app->kind, "python") == 0;
	/* A C app's frames are those of the object holding its handler table
	 * (the symbol dlsym found in it). */
	wrc = watchdog_start(a, python ? NULL : (const void *)app->handler, python);
	if (wrc < 0)
		wlog_error("worker %u: no stall watchdog: %s", a->worker_no, strerror(-wrc));
	rt.env = (struct conn_env){
		.conf = conf,
		.limits = {conf->max_request_line, conf->max_header_size,
			   (unsigned)conf->max_header_count, conf->max_body},
		.app = app,
		.slot = a->slot,
		.draining = &worker_draining,
		.alog = open_access_log(a),
		.master_pid = a->master_pid,
	};
	rt.budget.max = pick_max_requests(conf, a->worker_no);
	/* From 100 up, ask for the replacement at 90%: the successor then
	 * accepts before this worker stops.  Below, at the limit (exact). */
	if (rt.budget.max >= 100)
		rt.budget.warn_at = rt.budget.max - rt.budget.max / 10;
	rt.env.budget = &rt.budget;
	switch (conf->worker_class) {
	case WORKER_THREAD: rc = thread_run(&rt); break;
	case WORKER_EVENT: rc = event_run(&rt); break;
	case WORKER_ASGI: rc = asgi_run(&rt); break;
	default: rc = sync_run(&rt); break;
	}
	sb_set_state(a->slot, SB_EXITED);
	app_worker_stop(app);
	access_log_free(rt.env.alog);
	return rc;
}

int worker_model_available(int worker_class)
{
	return worker_class == WORKER_SYNC ||
	       (worker_class == WORKER_THREAD && thread_model_ready) ||
	       (worker_class == WORKER_EVENT && event_model_ready) ||
	       (worker_class == WORKER_ASGI && asgi_model_ready);
}

int worker_master_hook(const struct drover_conf *conf, const char *name, double limit_s)
{
	if (!conf->gunicorn_config[0] || !app_is_python(conf->app))
		return 0;
	return app_python_master_hook(conf->gunicorn_config, name, limit_s);
}

int worker_python_helper(int argc, char **argv)
{
	return app_python_helper(argc, argv);
}

int worker_python_config(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
	return app_python_config(path, out, outlen, err, errlen);
}

struct app *worker_preload_app(const struct drover_conf *conf, char *err, size_t errlen)
{
	return app_load(conf, err, errlen);
}

int worker_python_warm(const struct drover_conf *conf, char *err, size_t errlen)
{
	if (conf->preload || !app_is_python(conf->app))
		return 0;
	return app_python_warm(err, errlen);
}

void worker_app_before_fork(struct app *preloaded)
{
	if (!preloaded)
		app_python_warm_before_fork();
	else if (preloaded->before_fork)
		preloaded->before_fork(preloaded);
}

void worker_app_after_fork_parent(struct app *preloaded)
{
	if (!preloaded)
		app_python_warm_after_fork_parent();
	else if (preloaded->after_fork_parent)
		preloaded->after_fork_parent(preloaded);
}
