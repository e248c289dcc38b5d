/* gunicorn.conf.py, read the way gunicorn reads it (issue 14): the file is
 * executed by the embedded interpreter and its module-level names are the
 * settings.  It runs in a throwaway exec'd helper (`drover __python config
 * FILE`, answering on fd 3), so that the master stays free of
 * Python state (a config file may import anything, start threads, ...);
 * the child sends back one "name<TAB>value" line per setting. */
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app_loader.h"
#include "wsgi.h"

/* Values as drover's option syntax: bools true/false, numbers as written,
 * None empty, lists of strings comma-joined.  Callables are reported as
 * "!hook" (the caller keeps the server hooks it knows), other objects as
 * "!bad" with their type, modules and classes skipped. */
static const char reader_py[] =
	"import os, runpy, traceback, types\n"
	"def conv(v):\n"
	"    if v is None: return ''\n"
	"    if isinstance(v, bool): return 'true' if v else 'false'\n"
	"    if isinstance(v, (int, float, str)): return str(v)\n"
	"    if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):\n"
	"        return ','.join(v)\n"
	"    return None\n"
	"def read(path, fd):\n"
	"    try:\n"
	"        ns = runpy.run_path(path, run_name='__config__')\n"
	"    except BaseException as e:\n"
	"        line = traceback.format_exception_only(type(e), e)[-1].strip()\n"
	"        os.write(fd, ('!error\\t' + line.replace('\\n', ' ') + '\\n').encode())\n"
	"        return\n"
	"    out = []\n"
	"    for k, v in ns.items():\n"
	"        if k.startswith('_') or isinstance(v, (types.ModuleType, type)):\n"
	"            continue\n"
	"        if callable(v):\n"
	"            out.append('!hook\\t' + k)\n"
	"            continue\n"
	"        t = conv(v)\n"
	"        if t is None: out.append('!bad\\t%s\\t%s' % (k, type(v).__name__))\n"
	"        else: out.append(k + '\\t' + t.replace('\\n', ' '))\n"
	"    os.write(fd, ('\\n'.join(out) + '\\n').encode())\n";

void app_python_config_child(const char *path, int fd)
{
	char err[512];
	if (wsgi_start_interpreter(err, sizeof(err)) < 0) {
		dprintf(fd, "!error\t%s\n", err);
		_exit(1);
	}
	PyGILState_STATE g = PyGILState_Ensure();
	PyObject *ns = PyDict_New();
	PyObject *r = ns ? PyRun_String(reader_py, Py_file_input, ns, ns) : NULL;
	PyObject *fn = r ? PyDict_GetItemString(ns, "read") : NULL;
	PyObject *res = fn ? PyObject_CallFunction(fn, "si", path, fd) : NULL;
	if (!res) {
		PyErr_Clear();
		dprintf(fd, "!error\tthe embedded interpreter could not read the file\n");
	}
	PyGILState_Release(g);
	_exit(res ? 0 : 1);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Read the child's answer until EOF, for at most 'limit' seconds. */
static int collect(int fd, char *out, size_t outlen, double limit)
{
	size_t len = 0;
	double end = now_s() + limit;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int left = (int)((end - now_s()) * 1000);
		if (left <= 0 || poll(&p, 1, left) == 0)
			return -ETIMEDOUT;
		ssize_t n = read(fd, out + len, outlen - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (len += (size_t)n) == outlen - 1)
			break;
	}
	out[len] = '\0';
	return 0;
}

int app_python_config(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "%s: pipe: %s", path, strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "%s: fork: %s", path, strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		/* exec'd, not just forked: no interpreter state of the master (a
		 * preloaded app) is carried into the one that runs the file */
		if (dup2(p[1], 3) < 0)
			_exit(127);
		char *argv[] = { "drover", "__python", "config", (char *)path, NULL };
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(p[1]);
	int rc = collect(p[0], out, outlen, 30.0);
	if (rc == 0 && !out[0])
		snprintf(out, outlen, "!error\tthe helper process gave no answer\n");
	close(p[0]);
	if (rc < 0)
		kill(pid, SIGKILL); /* a config file that never finishes */
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (rc < 0) {
		snprintf(err, errlen, "%s: still running after 30 s; killed", path);
		return -1;
	}
	if (!strncmp(out, "!error\t", 7)) {
		snprintf(err, errlen, "%s: %.*s", path, (int)strcspn(out + 7, "\n"), out + 7);
		return -1;
	}
	return 0;
}
