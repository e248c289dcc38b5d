/* drover's entry point: parse flags, build and validate the configuration,
 * bind the sockets, optionally preload the app, start the services (control
 * socket, metrics listener) around the arbiter's loop.  Every failure before
 * the loop runs exits with a status that says which kind it was (see enum
 * master_exit). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover_config.h"
#include "supervisor/arbiter.h"
#include "supervisor/cli.h"
#include "supervisor/control.h"
#include "supervisor/ctl.h"
#include "supervisor/doctor_attach.h"
#include "supervisor/fdlimit.h"
#include "supervisor/log.h"
#include "supervisor/metrics_http.h"
#include "supervisor/privileges.h"
#include "supervisor/proctitle.h"
#include "supervisor/upgrade.h"

/* gunicorn's master hooks run before and after the loop, never in it; one
 * that hangs is killed after this long (seconds). */
#define HOOK_LIMIT_S 30.0

static struct arbiter ar; /* large (one record per slot): not on the stack */
static bool pidfile_written;

static int write_pidfile(const char *path)
{
	if (!path[0])
		return 0;
	FILE *f = fopen(path, "we");
	if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0) {
		log_error("cannot write pidfile %s: %s", path, strerror(errno));
		return -1;
	}
	pidfile_written = true;
	return 0;
}

/* Raise the soft RLIMIT_NOFILE as far as a worker or the master needs
 * (the workers inherit it); say so when the hard limit is too low. */
static void raise_fd_limit(const struct drover_conf *c, size_t nlisteners)
{
	struct fdlimit_need n = fdlimit_need(c, nlisteners);
	struct fdlimit_result r;
	int e = fdlimit_raise(n.want, &r);
	if (e == -ERANGE)
		log_warn("open files: need %llu (worker: %llu with worker_connections %lld; master: "
			 "%llu), but the hard RLIMIT_NOFILE is %llu: raised the soft limit to %llu; "
			 "raise the hard limit (LimitNOFILE= in the unit, ulimit -Hn) or lower "
			 "worker_connections or backlog",
			 n.want, n.worker, c->worker_connections, n.master, r.hard, r.soft);
	else if (e < 0)
		log_warn("open files: RLIMIT_NOFILE: %s", strerror(-e));
	else if (r.soft != r.soft_before)
		log_info("open files: soft RLIMIT_NOFILE raised from %llu to %llu (hard %llu)",
			 r.soft_before, r.soft, r.hard);
}

static int setup(struct arbiter *a)
{
	char err[4096];
	const struct drover_conf *c = &a->conf;
	if (log_open(c->error_log, err, sizeof(err)) < 0) {
		fprintf(stderr, "drover: %s\n", err);
		return MASTER_EXIT_ERROR;
	}
	log_level = (int)c->log_level;
	for (size_t i = 0; i < c->env.n; i++) {
		char *kv = c->env.items[i], *eq = strchr(kv, '=');
		if (!eq || eq == kv) {
			log_error("env %s: expected KEY=VALUE", kv);
			return MASTER_EXIT_ERROR;
		}
		*eq = '\0'; /* gunicorn's -e: the app and its workers inherit it */
		int r = setenv(kv, eq + 1, 1);
		*eq = '=';
		if (r < 0) {
			log_error("env %s: %s", kv, strerror(errno));
			return MASTER_EXIT_ERROR;
		}
	}
	if (priv_umask(c) < 0) { /* before any socket or file is made */
		log_error("umask %s: not an octal mask", c->umask);
		return MASTER_EXIT_ERROR;
	}
	if (c->chdir[0] && chdir(c->chdir) < 0) {
		log_error("chdir %s: %s", c->chdir, strerror(errno));
		return MASTER_EXIT_ERROR;
	}
	if (listen_open(&c->bind, (int)c->backlog, NULL, &a->ls, err, sizeof(err)) < 0 ||
	    listen_inherit_check(err, sizeof(err)) < 0) {
		log_error("%s", err);
		return MASTER_EXIT_ERROR;
	}
	raise_fd_limit(c, a->ls.n);
	a->ls.sharer = a->upgrade.parent; /* the old master serves on them until we are ready */
	struct scoreboard *sb = sb_map(SB_MAX_SLOTS);
	if (!sb) {
		log_crit("cannot map the scoreboard: %s", strerror(errno));
		return MASTER_EXIT_ERROR;
	}
	pool_init(&a->pool, sb, NULL);
	if (a->upgrade.notify_fd >= 0)
		master_fds_add(&a->pool.env.master_fds, a->upgrade.notify_fd); /* not the workers' */
	arbiter_reopen_access_log(a);
	int r = arbiter_init(a);
	if (r < 0) {
		log_crit("cannot set up the master: %s", strerror(-r));
		return MASTER_EXIT_ERROR;
	}
	return write_pidfile(c->pidfile) < 0 ? MASTER_EXIT_ERROR : 0;
}

/* What root made for the master, given to the user it becomes: the pidfile
 * (removed at exit), the control socket (mode 0600: `drover ctl` as that
 * user), the log files (reopened on USR1). */
static void chown_own_files(const struct drover_conf *c, const struct priv_target *t)
{
	char ctl[108];
	control_path(c->control, c->pidfile, ctl, sizeof(ctl));
	const char *paths[] = { c->pidfile, ctl, strcmp(c->error_log, "-") ? c->error_log : "",
				strcmp(c->access_log, "-") ? c->access_log : "" };
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		int r = priv_chown(t, paths[i]);
		if (r < 0 && r != -ENOENT) /* ENOENT: not made (its failure was logged) */
			log_warn("chown %s to uid %u: %s", paths[i], (unsigned)t->uid, strerror(-r));
	}
}

/* Issue 13: sockets are bound and files made (as root if started so); now
 * become `user`/`group`, then load the app, so neither the preloaded app
 * nor any worker forked later runs as root. */
static int setup_user(struct arbiter *a)
{
	char err[512];
	const struct drover_conf *c = &a->conf;
	struct priv_target t;
	if (priv_resolve(c, &t, err, sizeof(err)) < 0) {
		log_crit("%s", err);
		return MASTER_EXIT_ERROR;
	}
	chown_own_files(c, &t);
	if (priv_drop(&t, err, sizeof(err)) < 0) {
		log_crit("cannot run as %s%s%s: %s", c->user, c->group[0] ? ":" : "", c->group, err);
		return MASTER_EXIT_ERROR;
	}
	if (t.set_uid || t.set_gid)
		log_info("running as uid %u gid %u", (unsigned)getuid(), (unsigned)getgid());
	if (c->preload) {
		char perr[4096];
		a->pool.env.preloaded = worker_preload_app(c, perr, sizeof(perr));
		if (!a->pool.env.preloaded) {
			log_crit("%s", perr);
			return MASTER_EXIT_APP_LOAD;
		}
	} else if (worker_python_warm(c, err, sizeof(err)) < 0) {
		log_warn("Python not started in the master (%s): each worker starts its own", err);
	}
	return 0;
}

static void announce(const struct arbiter *a, const struct cli *cli)
{
	for (size_t i = 0; i < cli->nignored; i++)
		log_info("--%s: accepted for gunicorn compatibility, no effect: %s",
			 cli->ignored[i]->flag, cli->ignored[i]->note);
	log_info("drover %s starting: master pid %d, app %s", DROVER_VERSION, (int)getpid(),
		 a->conf.app);
	for (size_t i = 0; i < a->ls.n; i++)
		log_info("listening at %s (fd %d)", a->ls.l[i].name, a->ls.l[i].fd);
	log_info("%lld %s workers", a->conf.workers,
		 conf_enum_name("worker_class", a->conf.worker_class));
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "ctl") == 0)
		return ctl_main(argc - 1, argv + 1); /* the control client, no master */
	if (argc > 1 && strcmp(argv[1], "doctor") == 0)
		return doctor_main(argc - 1, argv + 1); /* ctl doctor, or --attach PID */
	if (argc > 1 && strcmp(argv[1], "__python") == 0)
		return worker_python_helper(argc - 1, argv + 1); /* a master hook's process */
	upgrade_save_argv(argc, argv); /* before anything moves argv or the directory */
	proctitle_init(argc, argv);
	/* A master started by USR2 comes with every signal blocked (the old
	 * master's fork); libev sets up its own once the loop starts. */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	struct cli cli;
	char err[4096];
	if (cli_parse(argc, argv, &cli, err, sizeof(err)) < 0) {
		fprintf(stderr, "drover: %s\n", err);
		return MASTER_EXIT_USAGE;
	}
	if (cli.help || cli.version) {
		if (cli.help)
			cli_usage(stdout, "drover");
		else
			printf("drover %s%s\n", DROVER_VERSION,
			       DROVER_HAVE_PYTHON ? "" : " (without Python)");
		return 0;
	}
	if (cli_build_conf(&cli, &ar.conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "drover: %s\n", err);
		return MASTER_EXIT_USAGE;
	}
	if (ar.conf.reload && ar.conf.preload) {
		/* with preload the code lives in the master: a replaced worker would
		 * fork the same old modules again (gunicorn has the same limit) */
		fprintf(stderr, "drover: --reload cannot be used with --preload (the master "
				"holds the imported code)\n");
		return MASTER_EXIT_USAGE;
	}
	if (!worker_model_available(ar.conf.worker_class)) {
		fprintf(stderr, "drover: --worker-class %s: not available yet (this build has sync)\n",
			conf_enum_name("worker_class", ar.conf.worker_class));
		return MASTER_EXIT_USAGE;
	}
	if (cli.check_config) {
		for (size_t i = 0; i < cli.nignored; i++)
			fprintf(stderr, "drover: --%s: accepted for gunicorn compatibility, no effect: %s\n",
				cli.ignored[i]->flag, cli.ignored[i]->note);
		if (cli.print_ini && ar.conf.gunicorn_config[0]) {
			/* the INI cannot carry the hooks: they stay in the .py file */
			printf("# converted from %s by drover --print-ini; its server hooks are not\n"
			       "# carried over (set gunicorn_config to that file to keep them)\n",
			       ar.conf.gunicorn_config);
			conf_set(&ar.conf, "python", "gunicorn_config", "", true, NULL);
		}
		conf_print(&ar.conf, stdout);
		return 0;
	}
	if (!ar.conf.app[0]) {
		fprintf(stderr, "drover: no APP given (e.g. so:./hello.so or module:app); see --help\n");
		return MASTER_EXIT_USAGE;
	}
	ar.cli = &cli;
	upgrade_child_init(&ar.upgrade);
	int ninh = listen_inherit(ar.upgrade.parent ? LISTEN_UPGRADE : LISTEN_SYSTEMD,
				  ar.upgrade.systemd_mask);
	if (ninh < 0) {
		fprintf(stderr, "drover: sockets passed by LISTEN_FDS: %s\n", strerror(-ninh));
		return MASTER_EXIT_ERROR;
	}
	worker_master_hook(&ar.conf, "on_starting", HOOK_LIMIT_S);
	int rc = setup(&ar);
	if (rc == 0) {
		/* bound before the privilege drop: a root-owned run directory or a
		 * privileged metrics port work; the workers are forked later.
		 * Started by USR2: the control socket stays the old master's
		 * until our workers accept (upgrade_tick takes it over). */
		if (!ar.upgrade.parent)
			ar.control = control_start(&ar);
		ar.metrics = metrics_http_start(&ar);
		rc = setup_user(&ar);
	}
	if (rc == 0)
		worker_master_hook(&ar.conf, "when_ready", HOOK_LIMIT_S);
	if (rc == 0) {
		char title[64];
		snprintf(title, sizeof(title), "%s: master", ar.conf.proc_name);
		proctitle_set(title);
		announce(&ar, &cli);
		/* From here on the master never exits on an error: it logs and goes on. */
		listen_inherit_close_unused(); /* a passed metrics socket no longer wanted */
		rc = arbiter_run(&ar);
		metrics_http_stop(ar.metrics);
		control_stop(ar.control);
		arbiter_fini(&ar);
		log_info("master exiting (status %d)", rc);
		worker_master_hook(&ar.conf, "on_exit", HOOK_LIMIT_S);
	} else {
		metrics_http_stop(ar.metrics); /* started before the privilege drop failed */
		control_stop(ar.control);
	}
	char oldbin[PATH_MAX];
	if (ar.conf.pidfile[0] && pidfile_written)
		unlink(upgrade_pidfile(&ar.upgrade, ar.conf.pidfile, oldbin, sizeof(oldbin)));
	listen_close(&ar.ls);
	conf_free(&ar.conf);
	cli_free(&cli);
	return rc;
}
