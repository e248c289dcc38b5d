/* --reload (issue 14), for development: a worker watches, with inotify, the
 * Python source files it imported (and --reload-extra-file ones); when one
 * changes it stops gracefully, and the master's pool replaces it with a
 * worker that imports the new code (hence refused with --preload, where the
 * code lives in the master).  gunicorn's reloader does the same per worker.
 * Directories are watched, not files: editors save by renaming a new file
 * over the old one, which a watch on the old inode would miss. */
#include <Python.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "workers/wlog.h"
#include "wsgi.h"

static bool enabled;
static char **extra; /* --reload-extra-file, copied at load */
static size_t nextra;

struct watched {
	char **files; /* absolute paths */
	size_t n;
	int fd;
	int *wd; /* per file: the watch of its directory */
};

void wsgi_reload_configure(bool on, char *const *extra_files, size_t n)
{
	enabled = on;
	extra = calloc(n ? n : 1, sizeof(*extra));
	for (size_t i = 0; extra && i < n; i++)
		extra[nextra++] = strdup(extra_files[i]);
}

static const char files_py[] =
	"import sys, os\n"
	"def files():\n"
	"    out = set()\n"
	"    for m in list(sys.modules.values()):\n"
	"        f = getattr(m, '__file__', None)\n"
	"        if isinstance(f, str) and f.endswith('.py'):\n"
	"            out.add(os.path.abspath(f))\n"
	"    return sorted(out)\n";

/* The imported .py files (GIL held), plus the extra files. */
static int collect(struct watched *w)
{
	PyObject *ns = PyDict_New();
	PyObject *r = ns ? PyRun_String(files_py, Py_file_input, ns, ns) : NULL;
	PyObject *fn = r ? PyDict_GetItemString(ns, "files") : NULL;
	PyObject *list = fn ? PyObject_CallNoArgs(fn) : NULL;
	Py_ssize_t n = list ? PyList_Size(list) : -1;
	if (n >= 0)
		w->files = calloc((size_t)n + nextra + 1, sizeof(char *));
	for (Py_ssize_t i = 0; w->files && i < n; i++) {
		const char *s = PyUnicode_AsUTF8(PyList_GetItem(list, i));
		if (s)
			w->files[w->n++] = strdup(s);
	}
	for (size_t i = 0; w->files && i < nextra; i++) {
		char abs[PATH_MAX];
		w->files[w->n++] = strdup(realpath(extra[i], abs) ? abs : extra[i]);
	}
	if (!list)
		PyErr_Clear();
	Py_XDECREF(list);
	Py_XDECREF(r);
	Py_XDECREF(ns);
	return w->files ? 0 : -1;
}

static int watch_dirs(struct watched *w)
{
	w->fd = inotify_init1(IN_CLOEXEC);
	w->wd = calloc(w->n + 1, sizeof(int));
	if (w->fd < 0 || !w->wd)
		return -1;
	for (size_t i = 0; i < w->n; i++) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s", w->files[i]);
		char *slash = strrchr(dir, '/');
		if (!slash)
			continue;
		*slash = slash == dir ? '/' : '\0';
		if (slash == dir)
			slash[1] = '\0';
		w->wd[i] = inotify_add_watch(w->fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE |
								 IN_DELETE | IN_ATTRIB);
	}
	return 0;
}

static const char *changed(const struct watched *w, const struct inotify_event *ev)
{
	for (size_t i = 0; ev->len && i < w->n; i++) {
		const char *base = strrchr(w->files[i], '/');
		if (w->wd[i] == ev->wd && base && !strcmp(base + 1, ev->name))
			return w->files[i];
	}
	return NULL;
}

static void *watch_thread(void *arg)
{
	struct watched *w = arg;
	char buf[16 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NULL;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
			const char *f = changed(w, ev);
			if (f) {
				wlog_info("reload: %s changed; this worker stops and is replaced", f);
				kill(getpid(), SIGTERM); /* the worker's own graceful stop */
				return NULL;
			}
			p += sizeof(*ev) + ev->len;
		}
	}
}

void wsgi_reload_start(void)
{
	if (!enabled)
		return;
	struct watched *w = calloc(1, sizeof(*w));
	if (!w || collect(w) < 0 || watch_dirs(w) < 0) {
		wlog_error("reload: cannot watch the source files: %s", strerror(errno));
		return;
	}
	/* The watcher takes no signals: SIGTERM must reach a thread that acts on it. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_t t;
	if (pthread_create(&t, NULL, watch_thread, w) == 0)
		pthread_detach(t);
	else
		wlog_error("reload: cannot start the watcher thread");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	wlog_debug("reload: watching %zu files", w->n);
}
