/* A loaded application, whatever its kind: a C shared object (app_so.c) or a
 * Python WSGI callable (app_wsgi.c).  Both are driven through the same
 * struct drover_app handler table, so the worker models know only that. */
#ifndef DROVER_APP_LOADER_H
#define DROVER_APP_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "workers/app/app.h"

struct app {
	const char *kind; /* "so" or "python" */
	char spec[512]; /* as given, for logs */
	const struct drover_app *handler; /* init/handle/shutdown */
	void *app_data; /* what handler->init stored */
	void *impl; /* dlopen handle, or the Python adapter's state */
	/* Around fork() in the master, for an app loaded there (preload): e.g.
	 * take the GIL and PyOS_BeforeFork / PyOS_AfterFork_Parent, release it.
	 * May be NULL. */
	void (*before_fork)(struct app *a);
	void (*after_fork_parent)(struct app *a);
	/* Called in the worker right after fork, before handler->init: e.g.
	 * PyOS_AfterFork_Child, faulthandler, releasing the GIL for request
	 * threads.  May be NULL. */
	int (*after_fork)(struct app *a, char *err, size_t errlen);
	/* Called when the worker stops, after handler->shutdown.  May be NULL. */
	void (*unload)(struct app *a);
};

/* Heap figures outside malloc's counters, for the scoreboard: the Python
 * adapter sets this to read pymalloc's arena bytes and allocated blocks
 * (it takes the GIL; call it only at an idle point).  NULL for a C app. */
extern void (*app_heap_extra)(uint64_t *arena_bytes, uint64_t *blocks);

/* True if spec names a Python app (MODULE:CALLABLE or python:MODULE:CALLABLE). */
bool app_is_python(const char *spec);

/* Load the app of conf->app (chdir already done by the caller).  NULL with a
 * message in err: the file and dlerror() for a .so; the exception and its
 * traceback for Python. */
struct app *app_load(const struct drover_conf *conf, char *err, size_t errlen);
struct app *app_so_load(const struct drover_conf *conf, const char *spec, char *err,
			size_t errlen);
struct app *app_wsgi_load(const struct drover_conf *conf, const char *spec, char *err,
			  size_t errlen);

/* In the worker: after_fork, then handler->init.  0, or -1 with err. */
int app_worker_start(struct app *a, char *err, size_t errlen);
/* In the worker, at its end: handler->shutdown, then unload; frees a. */
void app_worker_stop(struct app *a);
/* Execute a gunicorn.conf.py in a throwaway child's embedded interpreter;
 * out gets one "name<TAB>value" line per module-level setting ("!hook<TAB>name"
 * for a callable, "!bad<TAB>name<TAB>type" for a value with no text form).
 * 0, or -1 with "FILE: why" in err (the exception's last line). */
int app_python_config(const char *path, char *out, size_t outlen, char *err, size_t errlen);

/* The master's server hooks (on_starting, when_ready, on_exit) of a
 * gunicorn.conf.py, run in an exec'd helper process; waits at most limit_s.
 * 0, or -1 if the hook raised, the helper failed or was killed. */
int app_python_master_hook(const char *path, const char *name, double limit_s);
/* Without preload the master may still start the Python interpreter (not
 * the app) before it forks: the interpreter's start-up heap (some 3 MiB of
 * module objects) is then shared copy-on-write by the workers instead of
 * built privately in each, as gunicorn's and uWSGI's workers share their
 * master's.  0, or -1 with err (the workers then start their own). */
int app_python_warm(char *err, size_t errlen);
/* Around each fork of a master that warmed Python: the interpreter must be
 * quiescent while the process is copied.  No-ops otherwise. */
void app_python_warm_before_fork(void);
void app_python_warm_after_fork_parent(void);
/* main() of `drover __python ...` (that helper).  Does not return on success. */
int app_python_helper(int argc, char **argv);

#endif
