/* The Python WSGI backend: an embedded CPython interpreter (one per process)
 * loading MODULE:CALLABLE, wrapped as a struct drover_app so every worker
 * model drives it like a C app.  This file holds the interpreter's life:
 * start, sys.path, import, fork protocol, GIL per thread, stop. */
#include "workers/app/wsgi.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "workers/app/app_loader.h"
#include "workers/watchdog.h"

struct wsgi_globals wsgi_g;

/* Where the interpreter's state is valid: the pid that started it, or that
 * ran PyOS_AfterFork_Child.  A different getpid() means "forked since". */
static pid_t py_pid;
static bool py_ready; /* our types and objects are set up */
static bool py_finalized;
static bool in_fork; /* between before_fork and the after_fork hooks */
static PyGILState_STATE fork_gil;
static bool warm; /* the master started Python without an app (app_python_warm) */
static pthread_t worker_thread; /* the thread that ran after_fork */

/* ---- logging to fd 2 (the worker's error log), one write(2) a message ---- */

void wsgi_write_fd(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

static int log_prefix(char *buf, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;
	char when[40];
	strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S %z", localtime_r(&now, &tm));
	return snprintf(buf, len, "[%s] [%d] [ERROR] ", when, (int)getpid());
}

static void log_vtext(const char *tail, size_t taillen, const char *fmt, va_list ap)
{
	char line[1024];
	int n = log_prefix(line, sizeof line);
	n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	if ((size_t)n >= sizeof line - 1)
		n = sizeof line - 2;
	line[n++] = '\n';
	char *all = malloc((size_t)n + taillen);
	if (!all) {
		wsgi_write_fd(2, line, (size_t)n);
		return;
	}
	memcpy(all, line, (size_t)n);
	memcpy(all + n, tail, taillen);
	wsgi_write_fd(2, all, (size_t)n + taillen);
	free(all);
}

void wsgi_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vtext("", 0, fmt, ap);
	va_end(ap);
}

/* The pending exception as text (clearing it): the full traceback, and its
 * last line ("ValueError: boom").  Both new references, or NULL. */
static void exc_text(PyObject **tb_text, PyObject **last)
{
	PyObject *t, *v, *tb, *lines = NULL;
	*tb_text = *last = NULL;
	PyErr_Fetch(&t, &v, &tb);
	if (!t)
		return;
	PyErr_NormalizeException(&t, &v, &tb);
	if (wsgi_g.format_exception)
		lines = PyObject_CallFunctionObjArgs(wsgi_g.format_exception, t, v ? v : Py_None,
						     tb ? tb : Py_None, NULL);
	if (lines && PyList_Check(lines) && PyList_GET_SIZE(lines) > 0) {
		PyObject *sep = PyUnicode_FromString("");
		*tb_text = sep ? PyUnicode_Join(sep, lines) : NULL;
		Py_XDECREF(sep);
		*last = Py_NewRef(PyList_GET_ITEM(lines, PyList_GET_SIZE(lines) - 1));
	} else { /* no traceback module: at least the message */
		PyErr_Clear();
		*last = v ? PyObject_Str(v) : PyObject_Str(t);
	}
	PyErr_Clear();
	Py_XDECREF(lines);
	Py_XDECREF(t);
	Py_XDECREF(v);
	Py_XDECREF(tb);
}

void wsgi_log_exception(const char *fmt, ...)
{
	PyObject *tb, *last;
	exc_text(&tb, &last);
	Py_ssize_t n = 0;
	const char *s = tb ? PyUnicode_AsUTF8AndSize(tb, &n) : NULL;
	if (!s && last)
		s = PyUnicode_AsUTF8AndSize(last, &n);
	PyErr_Clear();
	va_list ap;
	va_start(ap, fmt);
	log_vtext(s ? s : "", s ? (size_t)n : 0, fmt, ap);
	va_end(ap);
	Py_XDECREF(tb);
	Py_XDECREF(last);
}

/* err = "<what>: <last line>\n<traceback>", keeping the end of a traceback
 * too long for err (its end names the failing line). */
static void exc_to_err(char *err, size_t errlen, const char *what)
{
	PyObject *tb, *last;
	exc_text(&tb, &last);
	const char *l = last ? PyUnicode_AsUTF8(last) : NULL;
	const char *t = tb ? PyUnicode_AsUTF8(tb) : NULL;
	PyErr_Clear();
	size_t ll = l ? strcspn(l, "\n") : 0;
	int n = snprintf(err, errlen, "%s: %.*s", what, (int)ll, l ? l : "unknown error");
	if (t && n > 0 && (size_t)n + 8 < errlen) {
		size_t room = errlen - (size_t)n - 1, tl = strlen(t);
		if (tl + 1 <= room)
			snprintf(err + n, errlen - (size_t)n, "\n%s", t);
		else
			snprintf(err + n, errlen - (size_t)n, "\n...%s", t + tl - (room - 5));
	}
	size_t e = strlen(err);
	while (e > 0 && err[e - 1] == '\n')
		err[--e] = '\0';
	Py_XDECREF(tb);
	Py_XDECREF(last);
}

/* ---- pymalloc's arenas, for the recycle verdict ---- */

/* pymalloc takes its arenas (1 MiB on 64-bit since 3.10) straight from mmap,
 * so mallinfo2 never sees them: a Python heap fragmented across arenas looks
 * like RSS nobody allocated.  A wrapper around the arena allocator (public
 * API, PEP 445) counts the bytes mapped; it runs once per arena, not per
 * object, under the GIL like all of pymalloc. */
static PyGILState_STATE gil_ensure(void);
static PyObjectArenaAllocator arena_base;
static _Atomic uint64_t arena_bytes;

static void *arena_alloc(void *ctx, size_t size)
{
	void *p = arena_base.alloc(ctx, size);
	if (p)
		atomic_fetch_add_explicit(&arena_bytes, size, memory_order_relaxed);
	return p;
}

static void arena_free(void *ctx, void *ptr, size_t size)
{
	arena_base.free(ctx, ptr, size);
	atomic_fetch_sub_explicit(&arena_bytes, size, memory_order_relaxed);
}

static void arena_count_install(void)
{
	PyObject_GetArenaAllocator(&arena_base);
	PyObjectArenaAllocator a = {arena_base.ctx, arena_alloc, arena_free};
	PyObject_SetArenaAllocator(&a);
}

/* app_heap_extra: arena bytes from the wrapper; blocks in use from
 * sys.getallocatedblocks() (a walk over the pools' counters, no per-object
 * work: microseconds even for a large heap), hence only at idle points. */
static void py_heap_extra(uint64_t *bytes, uint64_t *blocks)
{
	*bytes = atomic_load_explicit(&arena_bytes, memory_order_relaxed);
	if (py_finalized || py_pid != getpid() || in_fork)
		return;
	PyGILState_STATE g = gil_ensure();
	PyObject *f = PySys_GetObject("getallocatedblocks"); /* borrowed */
	PyObject *n = f ? PyObject_CallNoArgs(f) : NULL;
	Py_ssize_t v = n ? PyLong_AsSsize_t(n) : -1;
	Py_XDECREF(n);
	if (PyErr_Occurred())
		PyErr_Clear();
	PyGILState_Release(g);
	*blocks = v > 0 ? (uint64_t)v : 0;
}

/* ---- interpreter start ---- */

static bool env_set(const char *name)
{
	const char *v = getenv(name);
	return v && *v;
}

static int py_start(char *err, size_t errlen)
{
	PyConfig c;
	PyConfig_InitPythonConfig(&c);
	/* Ignore PYTHONHOME/PYTHONPATH & co: an environment set up for another
	 * interpreter (pyenv, a venv's python) must not redirect this one to a
	 * stdlib of another version.  [python] pythonpath/virtualenv exist for
	 * that; two harmless variables are honoured by hand. */
	c.use_environment = 0;
	c.install_signal_handlers = 0; /* the worker owns SIGINT, SIGPIPE, ... */
	c.parse_argv = 0;
	c.buffered_stdio = !env_set("PYTHONUNBUFFERED");
	c.write_bytecode = !env_set("PYTHONDONTWRITEBYTECODE");
	/* The prefix is found from the program's path: ours, not a "python3"
	 * looked up in $PATH (a pyenv shim); it falls back to libpython's own. */
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[n > 0 ? n : 0] = '\0';
	char *argv[] = { "drover", NULL };
	arena_count_install(); /* before the first arena (PEP 445 allows it) */
	PyStatus st = PyConfig_SetBytesArgv(&c, 1, argv);
	if (!PyStatus_Exception(st) && n > 0)
		st = PyConfig_SetBytesString(&c, &c.program_name, exe);
	if (!PyStatus_Exception(st))
		st = Py_InitializeFromConfig(&c);
	PyConfig_Clear(&c);
	if (PyStatus_Exception(st)) {
		snprintf(err, errlen, "cannot start Python: %s",
			 st.err_msg ? st.err_msg : "Py_InitializeFromConfig failed");
		return -1;
	}
	py_pid = getpid();
	PyEval_SaveThread(); /* from here on, every user takes the GIL */
	return 0;
}

int wsgi_start_interpreter(char *err, size_t errlen)
{
	return py_start(err, errlen);
}

/* sys.path as gunicorn has it: [pythonpath..., cwd, stdlib, venv, system
 * site-packages]; sys.executable a real python (multiprocessing, subprocess). */
static const char setup_py[] =
	"import os, sys, site\n"
	"def setup(cwd, pythonpath, venv):\n"
	"    ver = 'python%d.%d' % sys.version_info[:2]\n"
	"    py = os.path.join(sys.base_exec_prefix, 'bin', ver)\n"
	"    if venv:\n"
	"        sp = os.path.join(venv, 'lib', ver, 'site-packages')\n"
	"        if not os.path.isdir(sp):\n"
	"            raise FileNotFoundError('virtualenv %s has no %s' % (venv, sp))\n"
	"        before = list(sys.path)\n"
	"        site.addsitedir(sp)\n"
	"        new = [p for p in sys.path if p not in before]\n"
	"        sys.path[:] = [p for p in sys.path if p not in new]\n"
	"        at = next((i for i, p in enumerate(sys.path)\n"
	"                   if p.endswith(('site-packages', 'dist-packages'))), len(sys.path))\n"
	"        sys.path[at:at] = new\n"
	"        py = os.path.join(venv, 'bin', 'python')\n"
	"    if os.access(py, os.X_OK):\n"
	"        sys.executable = py\n"
	"    sys.path[0:0] = [p for p in pythonpath.split(':') if p] + [cwd]\n";

static int py_setup_path(const struct drover_conf *conf, char *err, size_t errlen)
{
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd))
		snprintf(cwd, sizeof cwd, ".");
	PyObject *g = PyDict_New(), *r = NULL;
	if (g && PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) == 0 &&
	    (r = PyRun_String(setup_py, Py_file_input, g, g))) {
		Py_DECREF(r);
		PyObject *fn = PyDict_GetItemString(g, "setup"); /* borrowed */
		r = fn ? PyObject_CallFunction(fn, "sss", cwd,
					       conf->pythonpath ? conf->pythonpath : "",
					       conf->virtualenv ? conf->virtualenv : "")
		       : NULL;
	}
	Py_XDECREF(g);
	if (!r) {
		exc_to_err(err, errlen, "cannot set up sys.path");
		return -1;
	}
	Py_DECREF(r);
	return 0;
}

/* Our types and shared objects, once per interpreter. */
static int py_setup_objects(char *err, size_t errlen)
{
	if (py_ready)
		return 0;
	PyObject *tb = PyImport_ImportModule("traceback");
	if (tb) {
		wsgi_g.format_exception = PyObject_GetAttrString(tb, "format_exception");
		Py_DECREF(tb);
	}
	if (!wsgi_g.format_exception || wsgi_environ_setup() < 0 || wsgi_input_setup() < 0 ||
	    wsgi_response_setup() < 0 || wsgi_file_setup() < 0 ||
	    !(wsgi_g.errors = wsgi_errors_new())) {
		exc_to_err(err, errlen, "cannot set up the WSGI adapter");
		return -1;
	}
	py_ready = true;
	return 0;
}

/* ---- the app: spec, import, callable ---- */

/* "python:MODULE:CALLABLE", "MODULE:CALLABLE" or "MODULE" (:application). */
static int parse_spec(const char *spec, char *mod, size_t modlen, char *attr, size_t attrlen)
{
	if (strncmp(spec, "python:", 7) == 0)
		spec += 7;
	const char *colon = strchr(spec, ':');
	size_t ml = colon ? (size_t)(colon - spec) : strlen(spec);
	const char *a = colon ? colon + 1 : "application";
	if (ml == 0 || ml >= modlen || !*a || strlen(a) >= attrlen || strchr(a, ':'))
		return -1;
	memcpy(mod, spec, ml);
	mod[ml] = '\0';
	snprintf(attr, attrlen, "%s", a);
	return 0;
}

/* Follow "a.b.c" from the module; a trailing "()" calls the result (an app
 * factory, as in gunicorn's "module:create_app()"). */
static PyObject *resolve_attr(PyObject *module, char *attr)
{
	size_t al = strlen(attr);
	bool call = al > 2 && strcmp(attr + al - 2, "()") == 0;
	if (call)
		attr[al - 2] = '\0';
	PyObject *obj = Py_NewRef(module);
	for (char *save = NULL, *p = strtok_r(attr, ".", &save); p && obj;
	     p = strtok_r(NULL, ".", &save)) {
		PyObject *next = PyObject_GetAttrString(obj, p);
		Py_SETREF(obj, next);
	}
	if (obj && call)
		Py_SETREF(obj, PyObject_CallNoArgs(obj));
	return obj;
}

static PyObject *load_callable(const char *spec, char *err, size_t errlen)
{
	char mod[256], attr[256], what[600];
	if (parse_spec(spec, mod, sizeof mod, attr, sizeof attr) < 0) {
		snprintf(err, errlen, "bad Python app '%s': expected MODULE:CALLABLE", spec);
		return NULL;
	}
	PyObject *module = PyImport_ImportModule(mod);
	if (!module) {
		snprintf(what, sizeof what, "cannot import %s", mod);
		exc_to_err(err, errlen, what);
		return NULL;
	}
	char shown[256];
	snprintf(shown, sizeof shown, "%s", attr);
	PyObject *app = resolve_attr(module, attr);
	Py_DECREF(module);
	if (!app) {
		snprintf(what, sizeof what, "cannot find %s in module %s", shown, mod);
		exc_to_err(err, errlen, what);
		return NULL;
	}
	if (!PyCallable_Check(app)) {
		snprintf(err, errlen, "%s:%s is not callable (it is a %.80s)", mod, shown,
			 Py_TYPE(app)->tp_name);
		Py_DECREF(app);
		return NULL;
	}
	return app;
}

/* ---- the GIL per thread ---- */

/* A request thread of the thread model gets one Python thread state for its
 * whole life (threading.local survives between requests, and no state is
 * built and torn down per request): the first request "pins" it with an
 * outer PyGILState_Ensure, undone by a thread-exit destructor. */
static pthread_key_t pin_key;
static pthread_once_t pin_once = PTHREAD_ONCE_INIT;

static void pin_release(void *tstate)
{
	if (py_finalized || !Py_IsInitialized())
		return;
	/* glibc has already cleared every key of this thread, CPython's
	 * PyGILState key too: the state comes from our key's value. */
	PyEval_RestoreThread(tstate);
	PyThreadState_Clear(tstate);
	PyThreadState_DeleteCurrent(); /* and releases the GIL */
}

static void pin_key_create(void)
{
	pthread_key_create(&pin_key, pin_release);
}

static PyGILState_STATE gil_ensure(void)
{
	if (!PyGILState_GetThisThreadState()) {
		PyGILState_Ensure();
		PyThreadState *ts = PyEval_SaveThread();
		pthread_once(&pin_once, pin_key_create);
		pthread_setspecific(pin_key, ts);
	}
	return PyGILState_Ensure();
}

/* ---- fork protocol and worker start ---- */

/* gc.freeze() right before fork, as the gc module's documentation advises
 * for fork without exec: the master's objects move to the permanent
 * generation, so a worker's collections never write their gc headers and
 * the pages holding them stay shared instead of being copied into every
 * worker.  The master's own objects are long-lived anyway. */
static void gc_freeze(void)
{
	PyObject *gc = PyImport_ImportModule("gc");
	PyObject *r = gc ? PyObject_CallMethod(gc, "freeze", NULL) : NULL;
	if (!r)
		PyErr_Clear();
	Py_XDECREF(r);
	Py_XDECREF(gc);
}

static void wsgi_before_fork(struct app *a)
{
	fork_gil = PyGILState_Ensure();
	gc_freeze();
	PyOS_BeforeFork();
	in_fork = true;
}

static void wsgi_after_fork_parent(struct app *a)
{
	in_fork = false;
	PyOS_AfterFork_Parent();
	PyGILState_Release(fork_gil); /* the master never holds the GIL in its loop */
}

/* faulthandler.register(sig, file=fd, all_threads=True, chain=...): the
 * signal dumps every thread's Python stack to fd from the handler itself
 * (faulthandler is async-signal-safe, and works while another thread holds
 * the GIL).  A C handler already installed by the worker still runs after
 * it (chain): for the watchdog's signal it marks the dump complete. */
static int register_dump(int sig, int fd, char *err, size_t errlen)
{
	struct sigaction old;
	sigaction(sig, NULL, &old);
	bool chain = (old.sa_flags & SA_SIGINFO) ? old.sa_sigaction != NULL
						 : old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN;
	PyObject *fh = PyImport_ImportModule("faulthandler"), *r = NULL;
	PyObject *fn = fh ? PyObject_GetAttrString(fh, "register") : NULL;
	PyObject *args = fn ? Py_BuildValue("(i)", sig) : NULL;
	PyObject *kw = args ? Py_BuildValue("{s:i,s:O,s:O}", "file", fd, "all_threads", Py_True,
					    "chain", chain ? Py_True : Py_False)
			    : NULL;
	if (kw)
		r = PyObject_Call(fn, args, kw);
	Py_XDECREF(fh);
	Py_XDECREF(fn);
	Py_XDECREF(args);
	Py_XDECREF(kw);
	if (!r) {
		exc_to_err(err, errlen, "cannot register a faulthandler stack dump");
		return -1;
	}
	Py_DECREF(r);
	return 0;
}

/* SIGUSR2 (the master's stack command) to the error log; the stall
 * watchdog's signal to its dump file. */
static int register_stack_dump(char *err, size_t errlen)
{
	if (register_dump(SIGUSR2, 2, err, errlen) < 0)
		return -1;
	int fd = watchdog_dump_fd();
	return fd >= 0 ? register_dump(WATCHDOG_SIGNAL, fd, err, errlen) : 0;
}

/* In the worker, before handler->init.  Two orders reach here: preload (the
 * app was loaded in the master, which called before_fork: we are a fork
 * child holding the GIL) and no preload (the worker loaded the app itself:
 * same pid, GIL released).  Either way the GIL is released on return. */
static int wsgi_after_fork(struct app *a, char *err, size_t errlen)
{
	int rc;
	worker_thread = pthread_self();
	if (py_pid != getpid()) {
		if (!in_fork) {
			snprintf(err, errlen, "Python app forked without its before_fork hook");
			return -1;
		}
		PyOS_AfterFork_Child();
		py_pid = getpid();
		in_fork = false;
		rc = register_stack_dump(err, errlen);
		wsgi_hooks_worker_start(0);
		wsgi_reload_start();
		PyGILState_Release(fork_gil);
		return rc;
	}
	PyGILState_STATE g = PyGILState_Ensure();
	rc = register_stack_dump(err, errlen);
	wsgi_hooks_worker_start(0);
	wsgi_reload_start();
	PyGILState_Release(g);
	return rc;
}

/* ---- the handler table ---- */

static int wsgi_init(void **app_data)
{
	*app_data = &wsgi_g;
	/* Python state copied by a fork that after_fork did not fix up would
	 * crash at the first request: refuse to boot instead. */
	return py_pid == getpid() && !in_fork ? 0 : -1;
}

static int wsgi_handle(struct drover_request *req, struct drover_response *resp)
{
	PyGILState_STATE g = gil_ensure();
	int rc = wsgi_serve(req, resp);
	PyGILState_Release(g);
	return rc;
}

static void wsgi_shutdown(void *app_data)
{
	if (py_finalized || py_pid != getpid())
		return;
	PyGILState_STATE g = gil_ensure();
	/* print() output must not be lost if stop is not the main thread's. */
	static const char *const streams[] = { "stdout", "stderr" };
	for (size_t i = 0; i < 2; i++) {
		PyObject *f = PySys_GetObject(streams[i]); /* borrowed */
		PyObject *r = f && f != Py_None ? PyObject_CallMethod(f, "flush", NULL) : NULL;
		Py_XDECREF(r);
	}
	PyErr_Clear();
	PyGILState_Release(g);
}

static const struct drover_app wsgi_app = {
	.abi_version = DROVER_APP_ABI_VERSION,
	.name = "wsgi",
	.init = wsgi_init,
	.handle = wsgi_handle,
	.shutdown = wsgi_shutdown,
};

/* At the worker's end: Py_FinalizeEx runs the app's atexit handlers, as a
 * gunicorn worker's exit does.  Only from the thread that started the
 * worker (the interpreter must be finalised by its main thread). */
static void wsgi_unload(struct app *a)
{
	if (py_finalized || py_pid != getpid() || !pthread_equal(worker_thread, pthread_self()))
		return;
	PyGILState_Ensure();
	wsgi_hooks_worker_exit(); /* gunicorn's worker_exit, before atexit handlers */
	py_finalized = true;
	if (Py_FinalizeEx() < 0)
		wsgi_log("Python finalisation failed (flushing stdout/stderr)");
}

static struct app *app_new(const char *spec)
{
	struct app *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	a->kind = "python";
	snprintf(a->spec, sizeof a->spec, "%s", spec);
	a->handler = &wsgi_app;
	a->impl = &wsgi_g;
	a->before_fork = wsgi_before_fork;
	a->after_fork_parent = wsgi_after_fork_parent;
	a->after_fork = wsgi_after_fork;
	a->unload = wsgi_unload;
	return a;
}

static PyObject *load_locked(const struct drover_conf *conf, const char *spec, char *err,
			     size_t errlen)
{
	if (py_setup_objects(err, errlen) < 0 || py_setup_path(conf, err, errlen) < 0)
		return NULL;
	return load_callable(spec, err, errlen);
}

/* Standard modules only: importing them runs no code of the app's. */
static const char *const warm_modules[] = {
	"faulthandler", "os", "io", "re", "json", "socket", "ssl", "logging", "threading",
	"datetime", "email.utils", "http.client", "http.cookies", "urllib.parse", "base64",
	"hashlib", "hmac", "uuid", "decimal", "typing", "inspect", "functools", "collections",
	"dataclasses", "contextlib", "tempfile", "mimetypes", "zlib", "weakref", "enum",
	"string", "struct", "warnings", "locale", "calendar", "secrets", "ast", "dis",
	"importlib.metadata", "argparse", "shlex", "textwrap", "pathlib", "urllib.request",
};

int app_python_warm(char *err, size_t errlen)
{
	if (Py_IsInitialized())
		return 0;
	if (py_start(err, errlen) < 0)
		return -1;
	/* The adapter's own objects and modules (traceback, faulthandler)
	 * depend on no setting: made once here, shared by every worker; and so
	 * do the standard modules most web apps import, which gunicorn's master
	 * has imported for itself before it forks (no app code runs here). */
	PyGILState_STATE g = PyGILState_Ensure();
	int r = py_setup_objects(err, errlen);
	for (size_t i = 0; r == 0 && i < sizeof(warm_modules) / sizeof(warm_modules[0]); i++) {
		PyObject *m = PyImport_ImportModule(warm_modules[i]);
		if (!m)
			PyErr_Clear(); /* a Python without it: the app will say */
		Py_XDECREF(m);
	}
	PyGILState_Release(g);
	warm = true;
	return r;
}

void app_python_warm_before_fork(void)
{
	if (warm && py_pid == getpid() && !in_fork)
		wsgi_before_fork(NULL);
}

void app_python_warm_after_fork_parent(void)
{
	if (warm && py_pid == getpid() && in_fork)
		wsgi_after_fork_parent(NULL);
}

struct app *app_wsgi_load(const struct drover_conf *conf, const char *spec, char *err,
			  size_t errlen)
{
	if (Py_IsInitialized() && py_pid != getpid() && in_fork) {
		/* A worker of a master that warmed Python (no preload): fix the
		 * interpreter up after fork before any Python code runs, then go
		 * on as a worker that starts its own (GIL released). */
		PyOS_AfterFork_Child();
		py_pid = getpid();
		in_fork = false;
		warm = false;
		PyGILState_Release(fork_gil);
	}
	if (py_finalized) {
		snprintf(err, errlen, "Python was finalised in this process; cannot load %s", spec);
		return NULL;
	}
	if (!Py_IsInitialized() && py_start(err, errlen) < 0)
		return NULL;
	wsgi_hooks_set_file(conf->gunicorn_config);
	wsgi_reload_configure(conf->reload, conf->reload_extra_file.items,
			      conf->reload_extra_file.n);
	PyGILState_STATE g = gil_ensure();
	PyObject *callable = load_locked(conf, spec, err, errlen);
	struct app *a = callable ? app_new(spec) : NULL;
	if (a) {
		Py_XSETREF(wsgi_g.callable, callable);
		wsgi_g.multithread = conf->worker_class == WORKER_THREAD;
		wsgi_g.multiprocess = conf->workers > 1;
		app_heap_extra = py_heap_extra;
	} else if (callable) {
		Py_DECREF(callable);
		snprintf(err, errlen, "out of memory loading %s", spec);
	}
	PyGILState_Release(g);
	return a;
}
