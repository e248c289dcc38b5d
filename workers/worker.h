/* The one entry into the worker runtime, and all the supervisor knows of it.
 * The master forks, then the child calls worker_run() and _exit()s with its
 * result; worker_run never returns to the master's code paths. */
#ifndef DROVER_WORKER_H
#define DROVER_WORKER_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf/conf.h"
#include "scoreboard.h"

/* Exit statuses of a worker, read by the master. */
enum worker_exit {
	WORKER_EXIT_OK = 0, /* graceful stop or max_requests reached */
	WORKER_EXIT_ERROR = 1, /* unexpected failure after boot */
	WORKER_EXIT_BOOT = 3, /* could not boot (socket, memory, app init) */
	WORKER_EXIT_APP_LOAD = 4, /* the app could not be loaded: retrying will not help */
};

struct worker_listener {
	int fd;
	int family; /* AF_INET, AF_INET6, AF_UNIX */
	char name[128]; /* the bind string, for logs and SERVER_NAME */
	char host[64]; /* numeric local address ("" for unix) */
	int port;
};

struct app; /* a loaded application (C .so or Python), see app/app_loader.h */

struct worker_args {
	const struct drover_conf *conf;
	const struct worker_listener *listeners;
	size_t nlisteners;
	struct sb_slot *slot;
	const struct scoreboard *sb; /* every worker's slot, read-only (fair accept) */
	unsigned worker_no;
	pid_t master_pid;
	struct app *preloaded; /* non-NULL with preload = true */
	int log_fd; /* error log */
	int access_fd; /* access log, -1 if off */
	/* Sets the process title (argv memory belongs to the master's main). */
	void (*set_title)(const char *title);
	/* fds the worker must close first thing (control socket, libev's fds). */
	const int *close_fds;
	size_t nclose_fds;
	/* The worker's end of its hand-off channel (-1: none): at a graceful
	 * stop the master passes connections it took from the listen queues. */
	int handoff_fd;
};

/* One message on the hand-off channel (SOCK_SEQPACKET): one connection fd in
 * SCM_RIGHTS, taken by the master from the listen socket listen_fd (the fd
 * number the worker inherited too). */
struct worker_handoff_msg {
	int32_t listen_fd;
};

/* Run a worker to its end; returns an enum worker_exit.  Called in the child
 * right after fork. */
int worker_run(const struct worker_args *a);

/* Write one error-log line "[time] [pid] [LEVEL] text" to fd 2: the format
 * the master's log shares with the workers'. */
void worker_log_write(int level, const char *fmt, va_list ap);

/* Whether this build has the worker model (enum WORKER_SYNC ...). */
int worker_model_available(int worker_class);

/* Load the app named by conf->app in the master (preload).  NULL with a
 * message in err (naming the file and dlerror(), or the Python traceback). */
struct app *worker_preload_app(const struct drover_conf *conf, char *err, size_t errlen);
/* Without preload, for a Python app: start the interpreter (not the app) in
 * the master, so that its start-up heap is shared by the workers rather
 * than private to each (see app_python_warm).  0 (also when there is
 * nothing to do), or -1 with err: the workers then start their own. */
int worker_python_warm(const struct drover_conf *conf, char *err, size_t errlen);
/* The preloaded app's hooks around each fork of the master (an embedded
 * interpreter must be quiescent while the process is copied).  No-ops for
 * NULL or an app without them. */
void worker_app_before_fork(struct app *preloaded);
void worker_app_after_fork_parent(struct app *preloaded);

/* Run a gunicorn.conf.py in a child's embedded interpreter (see
 * app_python_config): its settings as "name<TAB>value" lines in out.  Blocks
 * until the child is done (at most 30 s).  0, or -1 with "FILE: why". */
int worker_python_config(const char *path, char *out, size_t outlen, char *err, size_t errlen);

/* A master server hook (on_starting, when_ready, on_exit) of the
 * gunicorn.conf.py conf->gunicorn_config, run in a helper process, waiting
 * at most limit_s.  No-op without that file or for a C app.  0, or -1 if
 * the hook raised or did not finish (already logged by the helper). */
int worker_master_hook(const struct drover_conf *conf, const char *name, double limit_s);
/* main() of `drover __python ...`, the helper above. */
int worker_python_helper(int argc, char **argv);

#endif
