/* The asgi worker model (issue 17): the worker's asyncio loop (uvloop when
 * asgi_loop allows and it imports), created after the fork as PITFALLS.md
 * asks.  Connections are accepted in C from loop.add_reader on the shared
 * listen sockets, with the event model's rules (fair accept through the
 * scoreboard, a max_requests slot per connection), and handed to the loop as
 * transports with drover's C protocol (asgi_http.c).  A periodic callback is
 * the worker's tick: heartbeat and master's commands, the stall watchdog's
 * loop beat, idle and header timeouts, and the graceful drain (stop
 * accepting, finish the requests in flight, close idle keep-alive
 * connections).  Lifespan (ASGI lifespan spec) runs around the serving. */
#include "workers/app/asgi.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "workers/watchdog.h"
#include "workers/wlog.h"

const int asgi_model_ready = 1;

#define ACCEPT_BATCH 4 /* connections taken per wakeup and listener */
#define FAIR_RECHECK_S 0.001 /* paused for fairness: look again this soon */

struct asgi_server asgi_srv;

static struct {
	PyObject *self; /* the Server object */
	PyObject *accept, *tick; /* its bound methods */
	PyObject *add_reader, *remove_reader, *call_later, *connect, *socket_cls, *done;
	PyObject *recheck;
	bool listening, readers, recheck_pending, finished;
	double period_s;
} S;

void asgi_stall_what(const char *what)
{
	watchdog_loop_what(what);
}

/* ---- accepting ---- */

static void readers_set(bool on)
{
	const struct worker_args *a = asgi_srv.rt->args;
	if (S.readers == on)
		return;
	S.readers = on;
	for (size_t i = 0; i < a->nlisteners; i++) {
		PyObject *r = on ? PyObject_CallFunction(S.add_reader, "iOn", a->listeners[i].fd,
							 S.accept, (Py_ssize_t)i)
				 : PyObject_CallFunction(S.remove_reader, "i", a->listeners[i].fd);
		if (!r)
			wsgi_log_exception("asgi: cannot %s %s", on ? "watch" : "unwatch",
					   a->listeners[i].name);
		Py_XDECREF(r);
	}
}

/* Taking part in accepting (the slot's "listening", which the other
 * workers' fairness reads) and watching the sockets. */
static void listen_set(bool on)
{
	S.listening = on;
	atomic_store_explicit(&asgi_srv.rt->args->slot->listening, on, memory_order_relaxed);
	readers_set(on);
}

static bool may_accept(void)
{
	const struct worker_args *a = asgi_srv.rt->args;
	return asgi_srv.nconns < (unsigned)a->conf->worker_connections &&
	       sb_fair_to_accept(a->sb, a->slot) && req_budget_left(asgi_srv.rt->env.budget);
}

/* Another worker has fewer connections: leave the queued ones to it for a
 * moment (the listen sockets are level-triggered: watching them now would
 * spin), still counted as listening so that it compares with us too. */
static PyObject *srv_recheck(PyObject *self, PyObject *noargs)
{
	(void)self;
	(void)noargs;
	S.recheck_pending = false;
	if (!S.listening || asgi_srv.draining || S.readers)
		Py_RETURN_NONE;
	if (may_accept()) {
		readers_set(true);
		Py_RETURN_NONE;
	}
	PyObject *h = PyObject_CallFunction(S.call_later, "dO", FAIR_RECHECK_S, S.recheck);
	S.recheck_pending = h != NULL;
	Py_XDECREF(h);
	return h ? Py_NewRef(Py_None) : NULL;
}

static void fair_pause(void)
{
	readers_set(false);
	if (!S.recheck_pending) {
		PyObject *r = srv_recheck(NULL, NULL);
		if (!r)
			PyErr_Clear();
		Py_XDECREF(r);
	}
}

/* Hand an accepted socket to the loop: a transport with our protocol. */
static void adopt(int fd, const struct worker_listener *l, const struct sockaddr *peer)
{
	PyObject *conn = asgi_conn_new(fd, l, peer);
	if (!conn) {
		wsgi_log_exception("asgi: cannot take a connection from %s", l->name);
		req_budget_unclaim(asgi_srv.rt->env.budget);
		close(fd);
		return;
	}
	PyObject *sock = PyObject_CallFunction(S.socket_cls, "iiii", l->family, SOCK_STREAM, 0, fd);
	PyObject *coro = sock ? PyObject_CallFunctionObjArgs(S.connect, conn, sock, NULL) : NULL;
	PyObject *task = coro ? PyObject_CallOneArg(asgi_srv.create_task, coro) : NULL;
	PyObject *cb = task ? PyObject_GetAttrString(conn, "_accept_done") : NULL;
	PyObject *r = cb ? PyObject_CallMethod(task, "add_done_callback", "O", cb) : NULL;
	if (!r) {
		wsgi_log_exception("asgi: cannot set up a connection from %s", l->name);
		if (!sock)
			close(fd);
		asgi_conn_abandon(conn);
	}
	Py_XDECREF(r);
	Py_XDECREF(cb);
	Py_XDECREF(task);
	Py_XDECREF(coro);
	Py_XDECREF(sock);
	Py_DECREF(conn);
}

/* loop.add_reader callback of listener i: take a batch, unless another
 * worker has fewer connections (fair accept) or max_requests is spent. */
static PyObject *srv_accept(PyObject *self, PyObject *arg)
{
	(void)self;
	const struct worker_args *a = asgi_srv.rt->args;
	Py_ssize_t i = PyLong_AsSsize_t(arg);
	if (i < 0 || (size_t)i >= a->nlisteners || asgi_srv.draining)
		Py_RETURN_NONE;
	const struct worker_listener *l = &a->listeners[i];
	unsigned cap = (unsigned)a->conf->worker_connections;
	for (int n = 0; n < ACCEPT_BATCH; n++) {
		if (asgi_srv.nconns >= cap || !sb_fair_to_accept(a->sb, a->slot)) {
			fair_pause();
			break;
		}
		if (!req_budget_claim(asgi_srv.rt->env.budget)) {
			listen_set(false); /* max_requests: the tick decides */
			break;
		}
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			req_budget_unclaim(asgi_srv.rt->env.budget);
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EINVAL) /* the master shut the listener: a stop */
				atomic_store(&worker_draining, 1);
			else if (errno != EAGAIN && errno != EWOULDBLOCK) {
				wlog_error("accept4(%s): %s", l->name, strerror(errno));
				listen_set(false);
			}
			break;
		}
		sb_add(&a->slot->accepted, 1);
		adopt(fd, l, (struct sockaddr *)&ss);
	}
	Py_RETURN_NONE;
}

/* ---- the tick ---- */

static void begin_drain(uint64_t now)
{
	const struct drover_conf *conf = asgi_srv.rt->args->conf;
	asgi_srv.draining = true;
	listen_set(false);
	sb_set_state(asgi_srv.rt->args->slot, SB_DRAINING);
	uint64_t grace = (uint64_t)(conf->graceful_timeout * 1e9);
	uint64_t margin = grace / 10 < 500000000ull ? grace / 10 : 500000000ull;
	asgi_srv.drain_deadline_ns = now + grace - margin;
	asgi_conns_ws_drain(); /* RFC 6455 7.4.1: 1001, the server is going away */
	wlog_debug("worker %u draining: %u connections, %u requests in flight",
		   asgi_srv.rt->args->worker_no, asgi_srv.nconns, asgi_srv.inflight);
}

static void finish(void)
{
	if (S.finished)
		return;
	S.finished = true;
	watchdog_request_end(); /* no more beats: the loop is not stalled, it ends */
	if (asgi_srv.nconns)
		wlog_warn("worker %u: %u connections still open at the end of graceful_timeout",
			  asgi_srv.rt->args->worker_no, asgi_srv.nconns);
	PyObject *d = PyObject_CallMethod(S.done, "done", NULL);
	PyObject *r = d == Py_False ? PyObject_CallMethod(S.done, "set_result", "O", Py_None) : NULL;
	if (PyErr_Occurred())
		PyErr_Clear();
	Py_XDECREF(d);
	Py_XDECREF(r);
}

static PyObject *srv_tick(PyObject *self, PyObject *noargs)
{
	(void)self;
	(void)noargs;
	struct worker_rt *rt = asgi_srv.rt;
	uint64_t now = sb_now_ns();
	watchdog_loop_beat();
	asgi_stall_what("the event loop");
	worker_idle_point(rt);
	if (!asgi_srv.draining && atomic_load(&worker_draining))
		begin_drain(now);
	/* Draining, idle keep-alive connections are not closed early: see
	 * workers/event.c's evw_begin_drain (RFC 9112 section 9.6). */
	asgi_conns_sweep(now);
	bool budget = req_budget_left(rt->env.budget);
	if (S.listening && !budget)
		listen_set(false);
	if (!S.listening && !asgi_srv.draining && budget)
		listen_set(true);
	if (S.listening && !S.readers && !S.recheck_pending && may_accept())
		readers_set(true);
	if (asgi_srv.draining && (asgi_srv.nconns == 0 || now >= asgi_srv.drain_deadline_ns)) {
		finish();
		Py_RETURN_NONE;
	}
	PyObject *h = PyObject_CallFunction(S.call_later, "dO", S.period_s, S.tick);
	if (!h)
		return NULL;
	Py_DECREF(h);
	Py_RETURN_NONE;
}

/* start(loop, done, state): serving begins (after lifespan startup). */
static PyObject *srv_start(PyObject *self, PyObject *args)
{
	PyObject *loop, *done, *state;
	if (!PyArg_ParseTuple(args, "OOO", &loop, &done, &state))
		return NULL;
	asgi_srv.loop = Py_NewRef(loop);
	asgi_srv.state = Py_NewRef(state);
	S.done = Py_NewRef(done);
	if (!(asgi_srv.create_future = PyObject_GetAttrString(loop, "create_future")) ||
	    !(asgi_srv.create_task = PyObject_GetAttrString(loop, "create_task")) ||
	    !(S.add_reader = PyObject_GetAttrString(loop, "add_reader")) ||
	    !(S.remove_reader = PyObject_GetAttrString(loop, "remove_reader")) ||
	    !(S.call_later = PyObject_GetAttrString(loop, "call_later")) ||
	    !(S.connect = PyObject_GetAttrString(loop, "connect_accepted_socket")) ||
	    !(S.accept = PyObject_GetAttrString(self, "_accept")) ||
	    !(S.recheck = PyObject_GetAttrString(self, "_recheck")) ||
	    !(S.tick = PyObject_GetAttrString(self, "_tick")))
		return NULL;
	struct sb_slot *s = asgi_srv.rt->args->slot;
	sb_store(&s->booted_ns, sb_now_ns());
	sb_set_state(s, SB_IDLE);
	listen_set(true);
	if (!may_accept())
		fair_pause();
	return srv_tick(self, NULL);
}

/* log(level, text): the glue's messages, in the worker's log format. */
static PyObject *srv_log(PyObject *self, PyObject *args)
{
	(void)self;
	int level;
	const char *text;
	if (!PyArg_ParseTuple(args, "is", &level, &text))
		return NULL;
	wlog(level, "%s", text);
	Py_RETURN_NONE;
}

static PyMethodDef srv_methods[] = {
	{"start", srv_start, METH_VARARGS, NULL},
	{"_accept", srv_accept, METH_O, NULL},
	{"_tick", srv_tick, METH_NOARGS, NULL},
	{"_recheck", srv_recheck, METH_NOARGS, NULL},
	{"log", srv_log, METH_VARARGS, NULL},
	{NULL, NULL, 0, NULL},
};

static PyTypeObject srv_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "drover.asgi.Server",
	.tp_basicsize = sizeof(PyObject),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_methods = srv_methods,
};

/* ---- the loop and lifespan, in Python (runs once per worker) ---- */

static const char glue_py[] =
	"import asyncio, traceback\n"
	"DEBUG, INFO, WARNING, ERROR = %d, %d, %d, %d\n"
	"def new_loop(kind, log):\n"
	"    if kind != 'asyncio':\n"
	"        try:\n"
	"            import uvloop\n"
	"            return uvloop.new_event_loop()\n"
	"        except ImportError as e:\n"
	"            if kind == 'uvloop':\n"
	"                log(WARNING, 'asgi_loop = uvloop, but it cannot be imported (%%s): using asyncio' %% e)\n"
	"    return asyncio.new_event_loop()\n"
	"class Lifespan:\n"
	"    # ASGI lifespan spec: startup before serving, shutdown after the drain\n"
	"    def __init__(self, app, mode, log):\n"
	"        self.app, self.mode, self.log = app, mode, log\n"
	"        self.state = {}\n"
	"        self.q = asyncio.Queue()\n"
	"        self.started = asyncio.Event()\n"
	"        self.ended = asyncio.Event()\n"
	"        self.failed = None\n"
	"        self.unsupported = False\n"
	"        self.startup_done = False\n"
	"    async def run(self):\n"
	"        scope = {'type': 'lifespan', 'asgi': {'version': '3.0', 'spec_version': '2.3'},\n"
	"                 'state': self.state}\n"
	"        try:\n"
	"            await self.app(scope, self.receive, self.send)\n"
	"        except BaseException as e:\n"
	"            if self.mode == 'auto' and not self.startup_done:\n"
	"                self.unsupported = True\n"
	"                self.log(INFO, 'ASGI lifespan unsupported by the app (%%s: %%s): serving without it'\n"
	"                         %% (type(e).__name__, e))\n"
	"            else:\n"
	"                self.failed = self.failed or 'lifespan raised'\n"
	"                self.log(ERROR, 'Exception in ASGI lifespan:\\n' + ''.join(traceback.format_exception(e)))\n"
	"        finally:\n"
	"            if not self.startup_done and not self.unsupported and not self.failed:\n"
	"                self.failed = 'the app returned from lifespan before startup.complete'\n"
	"            self.started.set()\n"
	"            self.ended.set()\n"
	"    async def receive(self):\n"
	"        return await self.q.get()\n"
	"    async def send(self, m):\n"
	"        t = m['type']\n"
	"        if t == 'lifespan.startup.complete':\n"
	"            self.startup_done = True\n"
	"            self.started.set()\n"
	"        elif t == 'lifespan.startup.failed':\n"
	"            self.failed = m.get('message') or 'lifespan.startup.failed'\n"
	"            self.started.set()\n"
	"        elif t == 'lifespan.shutdown.complete':\n"
	"            self.ended.set()\n"
	"        elif t == 'lifespan.shutdown.failed':\n"
	"            self.log(ERROR, 'ASGI lifespan shutdown failed: %%s' %% m.get('message', ''))\n"
	"            self.ended.set()\n"
	"async def serve(app, srv, mode, grace, log):\n"
	"    loop = asyncio.get_running_loop()\n"
	"    ls = Lifespan(app, mode, log)\n"
	"    task = None\n"
	"    if mode != 'off':\n"
	"        task = loop.create_task(ls.run())\n"
	"        await ls.q.put({'type': 'lifespan.startup'})\n"
	"        await ls.started.wait()\n"
	"        if ls.failed:\n"
	"            log(ERROR, 'ASGI lifespan startup failed: %%s' %% ls.failed)\n"
	"            return 3\n"
	"    done = loop.create_future()\n"
	"    srv.start(loop, done, ls.state)\n"
	"    await done\n"
	"    if task and not ls.unsupported and not task.done():\n"
	"        await ls.q.put({'type': 'lifespan.shutdown'})\n"
	"        try:\n"
	"            await asyncio.wait_for(ls.ended.wait(), grace)\n"
	"        except asyncio.TimeoutError:\n"
	"            log(WARNING, 'ASGI lifespan shutdown did not complete within %%.1f s' %% grace)\n"
	"    return 0\n"
	"def run(app, srv, kind, mode, grace):\n"
	"    log = srv.log\n"
	"    loop = new_loop(kind, log)\n"
	"    asyncio.set_event_loop(loop)\n"
	"    try:\n"
	"        return loop.run_until_complete(serve(app, srv, mode, grace, log))\n"
	"    finally:\n"
	"        for t in asyncio.all_tasks(loop):\n"
	"            t.cancel()\n"
	"        loop.run_until_complete(asyncio.sleep(0))\n"
	"        loop.close()\n";

static PyObject *glue_run(void)
{
	char code[sizeof(glue_py) + 64];
	snprintf(code, sizeof(code), glue_py, LOG_DEBUG_, LOG_INFO_, LOG_WARNING_, LOG_ERROR_);
	PyObject *g = PyDict_New();
	PyObject *r = NULL;
	/* Its frames read "(<drover-asgi-loop>:N)" in a stall's stack: the loop
	 * itself, not the app, was holding the thread. */
	PyObject *co = Py_CompileString(code, "<drover-asgi-loop>", Py_file_input);
	if (co && g && PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) == 0 &&
	    (r = PyEval_EvalCode(co, g, g))) {
		Py_DECREF(r);
		r = Py_XNewRef(PyDict_GetItemString(g, "run"));
	}
	Py_XDECREF(co);
	Py_XDECREF(g);
	return r;
}

static int loop_period(const struct drover_conf *conf, double *out)
{
	/* The stall beat: a quarter of the threshold, 2..20 ms (a stall is seen
	 * within threshold + one beat); without it, the heartbeat's tick. */
	double tick = worker_tick_ms(conf) / 1000.0;
	double thr = conf->stall_threshold;
	double beat = thr / 4 < 0.002 ? 0.002 : thr / 4 > 0.02 ? 0.02 : thr / 4;
	*out = thr > 0 && beat < tick ? beat : tick;
	return 0;
}

static int serve(struct worker_rt *rt)
{
	const struct drover_conf *conf = rt->args->conf;
	if (PyType_Ready(&srv_type) < 0 || asgi_http_setup() < 0)
		return -1;
	asgi_srv.app = wsgi_g.callable;
	asgi_srv.asgi_dict = Py_BuildValue("{s:s,s:s}", "version", "3.0", "spec_version", "2.3");
	PyObject *socket_mod = PyImport_ImportModule("socket");
	S.socket_cls = socket_mod ? PyObject_GetAttrString(socket_mod, "socket") : NULL;
	Py_XDECREF(socket_mod);
	S.self = PyObject_New(PyObject, &srv_type);
	loop_period(conf, &S.period_s);
	PyObject *run = asgi_srv.asgi_dict && S.socket_cls && S.self ? glue_run() : NULL;
	PyObject *r = run ? PyObject_CallFunction(run, "OOssd", asgi_srv.app, S.self,
						  conf_enum_name("asgi_loop", conf->asgi_loop),
						  conf_enum_name("lifespan_mode", conf->lifespan_mode),
						  conf->graceful_timeout)
			  : NULL;
	Py_XDECREF(run);
	if (!r)
		return -1;
	long rc = PyLong_AsLong(r);
	Py_DECREF(r);
	return rc == 3 ? WORKER_EXIT_BOOT : WORKER_EXIT_OK;
}

int asgi_run(struct worker_rt *rt)
{
	if (strcmp(rt->env.app->kind, "python") != 0) {
		wlog_error("worker_class = asgi needs a Python ASGI app (MODULE:CALLABLE), not %s",
			   rt->env.app->spec);
		return WORKER_EXIT_APP_LOAD;
	}
	asgi_srv.rt = rt;
	rt->env.keepalive_ok = true;
	PyGILState_STATE g = PyGILState_Ensure();
	int rc = serve(rt);
	if (rc < 0) {
		wsgi_log_exception("worker %u: the ASGI loop failed", rt->args->worker_no);
		rc = S.done ? WORKER_EXIT_ERROR : WORKER_EXIT_BOOT;
	}
	PyGILState_Release(g);
	return rc;
}
