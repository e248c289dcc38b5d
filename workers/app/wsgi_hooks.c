/* gunicorn's server hooks, for Python apps (issue 14).  The hooks are the
 * functions of the gunicorn.conf.py given with -c; drover calls
 *   on_starting(server), when_ready(server), on_exit(server)   in a helper
 *       process of the master (`drover __python hook ...`), so the master
 *       itself never runs Python: the master must never block or die;
 *   post_fork(server, worker), post_worker_init(worker)         in the worker,
 *       once its app is loaded (both, in that order);
 *   pre_request(worker, req), post_request(worker, req, environ, resp)
 *       around each request, on the thread serving it;
 *   worker_exit(server, worker)                                 as the worker
 *       stops, before the interpreter is finalised.
 * The objects are plain namespaces: server (pid, log, cfg: the file's
 * settings), worker (pid, ppid, age, log), req (method, uri, path, query,
 * remote_addr, headers), resp (status, status_code).  A hook that raises is
 * logged with its traceback and otherwise ignored. */
#include <Python.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app_loader.h"
#include "wsgi.h"

static const char hooks_py[] =
	"import os, sys, runpy, time, traceback, types\n"
	"class Log:\n"
	"    def _w(self, lvl, msg, *a):\n"
	"        try: msg = msg % a if a else msg\n"
	"        except Exception: pass\n"
	"        t = time.strftime('%Y-%m-%d %H:%M:%S +0000', time.gmtime())\n"
	"        sys.stderr.write('[%s] [%d] [%s] %s\\n' % (t, os.getpid(), lvl, msg))\n"
	"        sys.stderr.flush()\n"
	"    def debug(self, m, *a): pass\n"
	"    def info(self, m, *a): self._w('INFO', m, *a)\n"
	"    def warning(self, m, *a): self._w('WARNING', m, *a)\n"
	"    warn = warning\n"
	"    def error(self, m, *a): self._w('ERROR', m, *a)\n"
	"    critical = error\n"
	"    def exception(self, m, *a): self._w('ERROR', m + '\\n' + traceback.format_exc(), *a)\n"
	"NAMES = ('on_starting', 'when_ready', 'post_fork', 'post_worker_init',\n"
	"         'worker_exit', 'on_exit', 'pre_request', 'post_request')\n"
	"class Hooks:\n"
	"    def __init__(self, path, master_pid):\n"
	"        ns = runpy.run_path(path, run_name='__config__')\n"
	"        self.hooks = {k: v for k, v in ns.items() if k in NAMES and callable(v)}\n"
	"        self.log = Log()\n"
	"        cfg = {k: v for k, v in ns.items() if not k.startswith('_') and not callable(v)\n"
	"               and not isinstance(v, types.ModuleType)}\n"
	"        self.server = types.SimpleNamespace(pid=master_pid, log=self.log,\n"
	"                                            cfg=types.SimpleNamespace(**cfg))\n"
	"        self.worker = None\n"
	"    def call(self, name, *args):\n"
	"        f = self.hooks.get(name)\n"
	"        if f is None: return\n"
	"        try: f(*args)\n"
	"        except BaseException:\n"
	"            self.log.error('hook %s raised (ignored):\\n%s', name,\n"
	"                           traceback.format_exc().rstrip())\n"
	"    def worker_start(self, age):\n"
	"        self.worker = types.SimpleNamespace(pid=os.getpid(), ppid=os.getppid(),\n"
	"                                            age=age, log=self.log, alive=True)\n"
	"        self.call('post_fork', self.server, self.worker)\n"
	"        self.call('post_worker_init', self.worker)\n"
	"    def pre(self, env):\n"
	"        if 'pre_request' not in self.hooks and 'post_request' not in self.hooks: return\n"
	"        q = env.get('QUERY_STRING', '')\n"
	"        req = types.SimpleNamespace(method=env.get('REQUEST_METHOD'),\n"
	"            uri=env.get('RAW_URI'), path=env.get('PATH_INFO'), query=q,\n"
	"            remote_addr=env.get('REMOTE_ADDR'),\n"
	"            headers=[(k[5:].replace('_', '-'), v) for k, v in env.items()\n"
	"                     if k.startswith('HTTP_')])\n"
	"        env['drover.hook_request'] = req\n"
	"        self.call('pre_request', self.worker, req)\n"
	"    def post(self, env, status):\n"
	"        req = env.get('drover.hook_request')\n"
	"        if req is None: return\n"
	"        code = int(status.split(' ', 1)[0]) if isinstance(status, str) else None\n"
	"        resp = types.SimpleNamespace(status=status, status_code=code)\n"
	"        self.call('post_request', self.worker, req, env, resp)\n"
	"    def worker_exit(self):\n"
	"        if self.worker is not None: self.call('worker_exit', self.server, self.worker)\n";

static PyObject *hooks; /* the Hooks object of this process, or NULL */
static char hooks_path[4096];

static PyObject *hooks_new(const char *path, long master_pid)
{
	PyObject *ns = PyDict_New();
	PyObject *r = ns ? PyRun_String(hooks_py, Py_file_input, ns, ns) : NULL;
	PyObject *cls = r ? PyDict_GetItemString(ns, "Hooks") : NULL;
	PyObject *h = cls ? PyObject_CallFunction(cls, "sl", path, master_pid) : NULL;
	Py_XDECREF(r);
	Py_XDECREF(ns);
	return h;
}

void wsgi_hooks_set_file(const char *path)
{
	snprintf(hooks_path, sizeof(hooks_path), "%s", path ? path : "");
}

void wsgi_hooks_worker_start(int age)
{
	if (!hooks_path[0])
		return;
	if (!hooks)
		hooks = hooks_new(hooks_path, (long)getppid());
	if (!hooks) {
		wsgi_log_exception("%s: cannot load the server hooks", hooks_path);
		return;
	}
	PyObject *r = PyObject_CallMethod(hooks, "worker_start", "i", age);
	if (!r)
		wsgi_log_exception("server hooks");
	Py_XDECREF(r);
}

static void call0(const char *method, PyObject *a, PyObject *b)
{
	if (!hooks)
		return;
	PyObject *r = b ? PyObject_CallMethod(hooks, method, "OO", a, b)
			: a ? PyObject_CallMethod(hooks, method, "O", a)
			    : PyObject_CallMethod(hooks, method, NULL);
	if (!r)
		wsgi_log_exception("server hook %s", method);
	Py_XDECREF(r);
}

void wsgi_hooks_pre_request(PyObject *environ)
{
	call0("pre", environ, NULL);
}

void wsgi_hooks_post_request(PyObject *environ, PyObject *status)
{
	call0("post", environ, status ? status : Py_None);
}

void wsgi_hooks_worker_exit(void)
{
	call0("worker_exit", NULL, NULL);
}

/* ---- the master's hooks, in a helper process ---- */

/* `drover __python hook FILE NAME MASTERPID`: a fresh process (exec'd, so no
 * interpreter state is inherited) runs one master hook and exits. */
int app_python_helper(int argc, char **argv)
{
	char err[512];
	if (argc == 3 && !strcmp(argv[1], "config"))
		app_python_config_child(argv[2], 3);
	if (argc != 5 || strcmp(argv[1], "hook")) {
		fprintf(stderr, "drover __python: internal helper, not for direct use\n");
		return 2;
	}
	if (wsgi_start_interpreter(err, sizeof(err)) < 0) {
		fprintf(stderr, "drover: %s\n", err);
		return 1;
	}
	PyGILState_STATE g = PyGILState_Ensure();
	PyObject *h = hooks_new(argv[2], strtol(argv[4], NULL, 10));
	PyObject *server = h ? PyObject_GetAttrString(h, "server") : NULL;
	PyObject *r = server ? PyObject_CallMethod(h, "call", "sO", argv[3], server) : NULL;
	if (!r)
		wsgi_log_exception("%s: server hook %s", argv[2], argv[3]);
	Py_XDECREF(r);
	Py_XDECREF(server);
	Py_XDECREF(h);
	PyGILState_Release(g);
	fflush(stderr);
	_exit(r ? 0 : 1);
}

int app_python_master_hook(const char *path, const char *name, double limit_s)
{
	char pid[24];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	pid_t child = fork();
	if (child < 0)
		return -1;
	if (child == 0) {
		char *argv[] = { "drover", "__python", "hook", (char *)path, (char *)name, pid, NULL };
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	/* Bounded wait: a hook that hangs is killed, the master goes on. */
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int st;
		pid_t r = waitpid(child, &st, WNOHANG);
		if (r == child)
			return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 > limit_s) {
			kill(child, SIGKILL);
			waitpid(child, NULL, 0);
			return -1;
		}
		struct timespec nap = { 0, 5 * 1000 * 1000 };
		nanosleep(&nap, NULL);
	}
}
