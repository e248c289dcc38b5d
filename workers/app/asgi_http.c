/* One HTTP/1.1 connection of the ASGI worker: an asyncio Protocol written in
 * C (connection_made, data_received, ...), so the loop hands it bytes and
 * drover's llhttp parser, limits and response framing do the rest; Python
 * runs once per request (the app's coroutine), never per byte.  Each request
 * is an ASGI 3.0 cycle (asgi.readthedocs.io, "HTTP & WebSocket" spec 2.3):
 * the "http" scope, receive() giving http.request events that stream the body
 * (with back-pressure: reading pauses while the app has not taken it), send()
 * framing http.response.start/body as they come (never held back), and
 * http.disconnect when the client leaves.  Requests of a keep-alive or
 * pipelining client are answered in order, one cycle at a time. */
#include "workers/app/asgi.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "workers/http/access_log.h"
#include "workers/http/forwarded.h"
#include "workers/watchdog.h"
#include "workers/wlog.h"

#define BODY_HIGH (64 * 1024) /* body bytes the app has not taken: pause reading */
#define IN_HIGH (1024 * 1024) /* pipelined bytes buffered behind a cycle */
#define DISCARD_MAX (256 * 1024) /* unread body read away to keep the connection */
#define ASGI_LINGER_NS 2000000000ull /* lingering close: as http_conn_close */

struct asgi_cycle {
	PyObject_HEAD
	struct asgi_conn *conn; /* strong; NULL once the response is complete or the client left */
	struct http_buf body; /* decoded body bytes not yet given to receive() */
	PyObject *rwaiter; /* receive() waiting for body or disconnect */
	uint64_t t_start;
	int status;
	bool body_done, body_last_given, started, head_written, complete, disconnected;
	bool continue_sent, counted;
	char what[160]; /* "GET /x from 1.2.3.4:5", for the stall log */
};

/* An awaitable that is already done: await returns its result without
 * yielding to the loop (cheaper than a Future for the common case). */
struct asgi_ready {
	PyObject_HEAD
	PyObject *result;
};

static PyTypeObject conn_type, cycle_type, ready_type;
static PyObject *s_type, *s_http, *s_asgi, *s_http_version, *s_method, *s_scheme, *s_path,
	*s_raw_path, *s_query_string, *s_root_path, *s_headers, *s_client, *s_server, *s_state,
	*s_body, *s_more_body, *s_status, *s_empty, *s_v11, *s_v10, *s_http_request,
	*s_http_disconnect, *s_start, *s_resp_body, *s_done, *s_set_result, *s_close, *s_write_eof,
	*s_pause_reading, *s_resume_reading, *s_write, *s_receive, *s_send, *s_add_done_callback,
	*s_exception, *s_cancelled, *s_https, *s_abort;
static PyObject *ready_none; /* the stateless "done, None" awaitable */

/* ---- the done awaitable ---- */

PyObject *asgi_ready_new(PyObject *result)
{
	struct asgi_ready *r = PyObject_New(struct asgi_ready, &ready_type);
	if (r)
		r->result = result; /* steals */
	else
		Py_DECREF(result);
	return (PyObject *)r;
}

static void ready_dealloc(struct asgi_ready *r)
{
	Py_XDECREF(r->result);
	PyObject_Free(r);
}

static PyObject *ready_await(PyObject *self)
{
	return Py_NewRef(self);
}

/* The first next() ends the await with the result (StopIteration). */
static PyObject *ready_next(struct asgi_ready *r)
{
	PyObject *v = r->result;
	if (!v)
		return NULL; /* StopIteration(None) */
	r->result = NULL;
	PyObject *e = PyObject_CallOneArg(PyExc_StopIteration, v);
	Py_DECREF(v);
	if (e) {
		PyErr_SetObject(PyExc_StopIteration, e);
		Py_DECREF(e);
	}
	return NULL;
}

static PyAsyncMethods ready_async = {.am_await = ready_await};
static PyTypeObject ready_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "drover.asgi.Ready",
	.tp_basicsize = sizeof(struct asgi_ready),
	.tp_dealloc = (destructor)ready_dealloc,
	.tp_as_async = &ready_async,
	.tp_iter = PyObject_SelfIter,
	.tp_iternext = (iternextfunc)ready_next,
	.tp_flags = Py_TPFLAGS_DEFAULT,
};

/* ---- small helpers ---- */

void asgi_conn_write(struct asgi_conn *c, const char *p, size_t n)
{
	if (c->closed || !c->write || n == 0)
		return;
	PyObject *b = PyBytes_FromStringAndSize(p, (Py_ssize_t)n);
	PyObject *r = b ? PyObject_CallOneArg(c->write, b) : NULL;
	Py_XDECREF(b);
	if (!r) {
		wsgi_log_exception("asgi: transport.write failed");
		return;
	}
	Py_DECREF(r);
}

static void call0(PyObject *obj, PyObject *name)
{
	if (!obj)
		return;
	PyObject *r = PyObject_CallMethodNoArgs(obj, name);
	if (!r)
		PyErr_Clear(); /* a closed transport: nothing to do */
	Py_XDECREF(r);
}

/* Close after what was written is flushed (transport.close).  With request
 * bytes unread or still to come, a lingering close instead (RFC 9112
 * section 9.6, as the other models: http_conn_unread_input): write_eof sends
 * our FIN once the response is flushed, reading goes on and drops what
 * comes, and the client's FIN (eof_received) or ASGI_LINGER_NS closes it.
 * transport.close() there sent a RST that lost the response: a 413 before a
 * 4 MiB upload reached the client 1 time in 30. */
void asgi_conn_close(struct asgi_conn *c)
{
	if (c->closing || c->closed)
		return;
	c->closing = true;
	if (!c->peer_eof && c->transport && http_conn_unread_input(&c->hc, c->sock_fd)) {
		c->lingering = true;
		c->since_ns = sb_now_ns();
		PyObject *r = PyObject_CallMethodNoArgs(c->transport, s_write_eof);
		if (r) {
			Py_DECREF(r);
			asgi_pause_reading(c, false);
			return;
		}
		PyErr_Clear(); /* no half-close here: a plain close */
		c->lingering = false;
	}
	call0(c->transport, s_close);
}

void asgi_pause_reading(struct asgi_conn *c, bool pause)
{
	if (c->read_paused == pause || c->closed || !c->transport)
		return;
	c->read_paused = pause;
	call0(c->transport, pause ? s_pause_reading : s_resume_reading);
}

void asgi_srv_inflight(int delta)
{
	struct sb_slot *s = asgi_srv.rt->args->slot;
	asgi_srv.inflight = (unsigned)((int)asgi_srv.inflight + delta);
	atomic_store_explicit(&s->inflight, asgi_srv.inflight, memory_order_relaxed);
	sb_set_state(s, asgi_srv.draining ? SB_DRAINING : asgi_srv.inflight ? SB_BUSY : SB_IDLE);
}

/* Resolve a future unless it is done already (its awaiting task was
 * cancelled).  Steals value. */
void asgi_future_set(PyObject *fut, PyObject *value)
{
	if (!value) {
		PyErr_Clear();
		return;
	}
	PyObject *d = PyObject_CallMethodNoArgs(fut, s_done);
	if (d == Py_False) {
		PyObject *r = PyObject_CallMethodOneArg(fut, s_set_result, value);
		if (!r)
			PyErr_Clear();
		Py_XDECREF(r);
	}
	if (!d)
		PyErr_Clear();
	Py_XDECREF(d);
	Py_DECREF(value);
}


/* ---- receive() ---- */

PyObject *asgi_msg_disconnect(void)
{
	PyObject *m = PyDict_New();
	if (m && PyDict_SetItem(m, s_type, s_http_disconnect) < 0)
		Py_CLEAR(m);
	return m;
}

/* The next http.request event, or NULL (no exception) when there is none
 * to give yet. */
static PyObject *msg_request(struct asgi_cycle *cy)
{
	if (cy->body.len == 0 && (!cy->body_done || cy->body_last_given))
		return NULL;
	PyObject *m = PyDict_New();
	PyObject *b = PyBytes_FromStringAndSize(cy->body.data, (Py_ssize_t)cy->body.len);
	if (!m || !b || PyDict_SetItem(m, s_type, s_http_request) < 0 ||
	    PyDict_SetItem(m, s_body, b) < 0 ||
	    PyDict_SetItem(m, s_more_body, cy->body_done ? Py_False : Py_True) < 0) {
		Py_XDECREF(m);
		Py_XDECREF(b);
		PyErr_Clear();
		return NULL;
	}
	Py_DECREF(b);
	cy->body.len = 0;
	if (cy->body_done)
		cy->body_last_given = true;
	if (cy->body.cap > BODY_HIGH * 2)
		http_buf_free(&cy->body);
	/* the app took the body: the client may send more (back-pressure) */
	if (cy->conn && !cy->body_done)
		asgi_pause_reading(cy->conn, false);
	return m;
}

/* Hand a waiting receive() what it waits for, if there is something. */
static void cycle_wake(struct asgi_cycle *cy)
{
	if (!cy->rwaiter)
		return;
	PyObject *m = cy->disconnected || cy->complete ? asgi_msg_disconnect() : msg_request(cy);
	if (!m)
		return;
	PyObject *fut = cy->rwaiter;
	cy->rwaiter = NULL;
	asgi_future_set(fut, m);
	Py_DECREF(fut);
}

/* RFC 9110 §10.1.1: a client that sent "Expect: 100-continue" waits for
 * our word before the body; the first receive() asks for it. */
static void maybe_continue(struct asgi_cycle *cy)
{
	struct asgi_conn *c = cy->conn;
	if (cy->continue_sent || cy->body_done || cy->head_written || !c->hc.hp.expect_continue ||
	    c->hc.hp.http_minor < 1)
		return;
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	cy->continue_sent = c->hc.continue_sent = true;
	asgi_conn_write(c, cont, sizeof(cont) - 1);
}

static PyObject *cycle_receive(struct asgi_cycle *cy, PyObject *noargs)
{
	(void)noargs;
	if (cy->conn)
		asgi_stall_what(cy->what);
	if (cy->disconnected || cy->complete || !cy->conn)
		return asgi_ready_new(asgi_msg_disconnect());
	maybe_continue(cy);
	struct asgi_conn *c = cy->conn;
	if (cy->body.len == 0 && c->hc.in_off < c->hc.in.len) {
		/* body bytes held back while the app had not taken the last ones */
		Py_INCREF(c);
		asgi_conn_process(c);
		Py_DECREF(c);
		if (!cy->conn || cy->disconnected)
			return asgi_ready_new(asgi_msg_disconnect());
	}
	PyObject *m = msg_request(cy);
	if (m)
		return asgi_ready_new(m);
	if (cy->rwaiter) {
		PyErr_SetString(PyExc_RuntimeError, "receive() awaited twice at once");
		return NULL;
	}
	cy->rwaiter = PyObject_CallNoArgs(asgi_srv.create_future);
	if (!cy->rwaiter)
		return NULL;
	asgi_pause_reading(cy->conn, false);
	return Py_NewRef(cy->rwaiter);
}

/* ---- the end of a cycle ---- */

static void account(struct asgi_cycle *cy, struct asgi_conn *c)
{
	uint64_t dur = sb_now_ns() - cy->t_start;
	sb_request_done(c->hc.env->slot, cy->status, dur, c->hc.bytes_out);
	if (c->hc.env->alog)
		access_log_write(c->hc.env->alog, &c->hc.req, cy->status,
				 (uint64_t)c->hc.resp.body_sent, dur);
}

/* The cycle leaves its connection: the response is complete, or the client
 * left.  A connection still open goes on with the next request. */
static void cycle_detach(struct asgi_cycle *cy)
{
	struct asgi_conn *c = cy->conn;
	if (!c)
		return;
	if (cy->counted) {
		cy->counted = false;
		asgi_srv_inflight(-1);
		account(cy, c);
	}
	cy->conn = NULL;
	c->cycle = NULL;
	/* One more served: from now the connection idles under keepalive, not
	 * header_timeout (asgi_conns_sweep), as in the other models.  Without
	 * it an idle keep-alive connection stayed header_timeout, and a
	 * draining worker kept it until graceful_timeout. */
	c->hc.requests++;
	cycle_wake(cy);
	bool keep = c->hc.resp.keep_alive && cy->complete && !c->closed && !c->closing;
	http_response_free(&c->hc.resp);
	if (keep && c->hc.hp.state == HTTP_PARSE_BODY) {
		/* The app left body unread: read it away (bounded), then go on. */
		c->discarding = true;
		c->discarded = 0;
	} else if (keep) {
		http_parse_next(&c->hc.hp);
	} else {
		asgi_conn_close(c);
	}
	c->since_ns = sb_now_ns();
	Py_DECREF(cy); /* c->cycle's reference */
	if (keep) {
		asgi_pause_reading(c, false);
		asgi_conn_process(c);
	}
	Py_DECREF(c); /* cy->conn's reference */
}

/* Output for the connection: the head (with the first body bytes) and
 * framed body.  RFC 9112 §9.6: a connection that will close says so. */
static int frame_head(struct asgi_cycle *cy, long long known)
{
	struct asgi_conn *c = cy->conn;
	struct http_response *r = &c->hc.resp;
	bool body_ends = c->hc.hp.state != HTTP_PARSE_BODY ||
			 (!(c->hc.hp.expect_continue && !cy->continue_sent) &&
			  c->hc.hp.content_length >= 0 &&
			  (unsigned long long)c->hc.hp.content_length - c->hc.hp.body_read <=
				  DISCARD_MAX);
	if (r->keep_alive && (!body_ends || http_conn_last_response(&c->hc)))
		r->keep_alive = false;
	if (http_response_head(r, &c->out, c->hc.hp.http_minor, known) < 0)
		return -1;
	cy->head_written = true;
	return 0;
}

/* An answer the app could not give (exception, no response): a short
 * error response, and the connection closes. */
static void cycle_fail(struct asgi_cycle *cy, int status)
{
	struct asgi_conn *c = cy->conn;
	if (!c)
		return;
	if (!cy->head_written && !c->closed) {
		c->out.len = 0;
		if (http_error_response_for(&c->out, status, c->hc.hp.http_minor ? 1 : 0,
					    c->hc.resp.head_request) == 0) {
			c->hc.bytes_out += c->out.len;
			asgi_conn_write(c, c->out.data, c->out.len);
		}
		c->out.len = 0;
		cy->status = status;
	}
	c->hc.resp.keep_alive = false;
	cy->complete = true;
	cycle_detach(cy);
}

/* ---- send() ---- */

static int get_int(PyObject *m, PyObject *key, int dflt, int *out)
{
	PyObject *v = PyDict_GetItemWithError(m, key);
	if (!v)
		return PyErr_Occurred() ? -1 : (*out = dflt, 0);
	long n = PyLong_AsLong(v);
	if (n == -1 && PyErr_Occurred())
		return -1;
	*out = (int)n;
	return 0;
}

/* A header value as a NUL-terminated copy; bytes (or str, leniently). */
static int header_text(PyObject *o, char *buf, size_t cap, const char *what)
{
	char *p;
	Py_ssize_t n;
	if (PyBytes_Check(o)) {
		p = PyBytes_AS_STRING(o);
		n = PyBytes_GET_SIZE(o);
	} else if (PyUnicode_Check(o)) {
		p = (char *)PyUnicode_AsUTF8AndSize(o, &n);
		if (!p)
			return -1;
	} else {
		PyErr_Format(PyExc_TypeError, "ASGI header %s must be bytes, not %.80s", what,
			     Py_TYPE(o)->tp_name);
		return -1;
	}
	if ((size_t)n >= cap || memchr(p, 0, (size_t)n)) {
		PyErr_Format(PyExc_ValueError, "ASGI header %s too long or with a NUL", what);
		return -1;
	}
	memcpy(buf, p, (size_t)n);
	buf[n] = 0;
	return 0;
}

static int add_headers(struct http_response *r, PyObject *headers)
{
	PyObject *it = PyObject_GetIter(headers);
	if (!it)
		return -1;
	static char name[1024], value[HTTP_RESP_MAX_HEADERS_BYTES];
	PyObject *h;
	while ((h = PyIter_Next(it))) {
		PyObject *seq = PySequence_Fast(h, "ASGI header must be a [name, value] pair");
		Py_DECREF(h);
		if (!seq)
			break;
		int rc = PySequence_Fast_GET_SIZE(seq) == 2 ? 0 : -1;
		if (rc < 0)
			PyErr_SetString(PyExc_ValueError, "ASGI header must be a [name, value] pair");
		if (rc == 0)
			rc = header_text(PySequence_Fast_GET_ITEM(seq, 0), name, sizeof(name), "name");
		if (rc == 0)
			rc = header_text(PySequence_Fast_GET_ITEM(seq, 1), value, sizeof(value),
					 "value");
		Py_DECREF(seq);
		if (rc == 0 && http_response_add_header(r, name, value) < 0) {
			PyErr_Format(PyExc_ValueError, "invalid response header %.200s", name);
			rc = -1;
		}
		if (rc < 0)
			break;
	}
	Py_DECREF(it);
	return PyErr_Occurred() ? -1 : 0;
}

static PyObject *send_start(struct asgi_cycle *cy, PyObject *m)
{
	if (cy->started) {
		PyErr_SetString(PyExc_RuntimeError, "http.response.start sent twice");
		return NULL;
	}
	struct asgi_conn *c = cy->conn;
	int status;
	if (get_int(m, s_status, -1, &status) < 0)
		return NULL;
	if (!http_final_status_ok(status) || http_response_set_status(&c->hc.resp, status, NULL) < 0) {
		PyErr_Format(PyExc_ValueError, "invalid HTTP status %d (a final response: 200..599)",
			     status);
		return NULL;
	}
	PyObject *headers = PyDict_GetItemWithError(m, s_headers);
	if (!headers && PyErr_Occurred())
		return NULL;
	if (headers && add_headers(&c->hc.resp, headers) < 0)
		return NULL;
	cy->status = status;
	cy->started = true;
	return Py_NewRef(ready_none);
}

static PyObject *send_body(struct asgi_cycle *cy, PyObject *m)
{
	struct asgi_conn *c = cy->conn;
	if (!cy->started) {
		PyErr_SetString(PyExc_RuntimeError, "http.response.body before http.response.start");
		return NULL;
	}
	PyObject *body = PyDict_GetItemWithError(m, s_body);
	PyObject *more = PyDict_GetItemWithError(m, s_more_body);
	if (PyErr_Occurred())
		return NULL;
	Py_buffer b = {.buf = "", .len = 0};
	if (body && PyObject_GetBuffer(body, &b, PyBUF_SIMPLE) < 0)
		return NULL;
	int more_body = more ? PyObject_IsTrue(more) : 0;
	int rc = more_body < 0 ? -1 : 0;
	c->out.len = 0;
	if (rc == 0 && !cy->head_written)
		rc = frame_head(cy, more_body ? -1 : (long long)b.len);
	if (rc == 0)
		rc = http_response_body(&c->hc.resp, &c->out, b.buf, (size_t)b.len);
	bool short_body = false;
	if (rc == 0 && !more_body)
		short_body = http_response_end(&c->hc.resp, &c->out) < 0;
	if (body)
		PyBuffer_Release(&b);
	if (rc < 0) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_RuntimeError,
					"response body longer than its Content-Length");
		return NULL;
	}
	c->hc.bytes_out += c->out.len;
	asgi_conn_write(c, c->out.data, c->out.len);
	c->out.len = 0;
	if (c->out.cap > 256 * 1024)
		http_buf_free(&c->out);
	if (!more_body) {
		if (short_body) /* fewer bytes than announced: only a close ends it */
			c->hc.resp.keep_alive = false;
		cy->complete = true;
		cycle_detach(cy);
		return Py_NewRef(ready_none);
	}
	/* Flow control: the transport's buffer is above its high-water mark. */
	if (c->write_paused && !c->closed) {
		if (!c->drain_waiter && !(c->drain_waiter = PyObject_CallNoArgs(asgi_srv.create_future)))
			return NULL;
		return Py_NewRef(c->drain_waiter);
	}
	return Py_NewRef(ready_none);
}

static PyObject *cycle_send(struct asgi_cycle *cy, PyObject *m)
{
	if (!PyDict_Check(m)) {
		PyErr_SetString(PyExc_TypeError, "ASGI message must be a dict");
		return NULL;
	}
	PyObject *t = PyDict_GetItemWithError(m, s_type);
	if (!t) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_ValueError, "ASGI message without a type");
		return NULL;
	}
	bool start = PyUnicode_Compare(t, s_start) == 0;
	bool body = !start && PyUnicode_Compare(t, s_resp_body) == 0;
	if (PyErr_Occurred())
		return NULL;
	if (!start && !body) {
		PyErr_Format(PyExc_RuntimeError, "unexpected ASGI message type %R", t);
		return NULL;
	}
	if (cy->complete) {
		PyErr_SetString(PyExc_RuntimeError, "ASGI message after the response was complete");
		return NULL;
	}
	/* The client left (http.disconnect): what is sent goes nowhere. */
	if (cy->disconnected || !cy->conn)
		return Py_NewRef(ready_none);
	asgi_stall_what(cy->what);
	return start ? send_start(cy, m) : send_body(cy, m);
}

/* The app's task ended: an exception before the response started is a 500,
 * after it the connection is closed (the client sees a cut response); both
 * are logged with the traceback.  A task that returned without a complete
 * response is treated the same way. */
static PyObject *cycle_task_done(struct asgi_cycle *cy, PyObject *task)
{
	PyObject *cancelled = PyObject_CallMethodNoArgs(task, s_cancelled);
	PyObject *exc = cancelled == Py_False ? PyObject_CallMethodNoArgs(task, s_exception) : NULL;
	Py_XDECREF(cancelled);
	PyErr_Clear();
	const char *what = cy->what[0] ? cy->what : "a request";
	if (exc && exc != Py_None) {
		PyObject *tb = PyException_GetTraceback(exc);
		PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), Py_NewRef(exc), tb);
		wsgi_log_exception("Exception in ASGI application during %s", what);
	} else if (cy->conn && !cy->complete) {
		wlog_error("ASGI app %s for %s without completing the response",
			   exc ? "returned" : "was cancelled", what);
	}
	Py_XDECREF(exc);
	if (cy->conn && !cy->complete)
		cycle_fail(cy, 500);
	Py_RETURN_NONE;
}

static void cycle_dealloc(struct asgi_cycle *cy)
{
	Py_XDECREF(cy->rwaiter);
	Py_XDECREF(cy->conn);
	http_buf_free(&cy->body);
	PyObject_Free(cy);
}

static PyMethodDef cycle_methods[] = {
	{"receive", (PyCFunction)cycle_receive, METH_NOARGS, "ASGI receive()"},
	{"send", (PyCFunction)cycle_send, METH_O, "ASGI send(message)"},
	{"_task_done", (PyCFunction)cycle_task_done, METH_O, NULL},
	{NULL, NULL, 0, NULL},
};

static PyTypeObject cycle_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "drover.asgi.Cycle",
	.tp_basicsize = sizeof(struct asgi_cycle),
	.tp_dealloc = (destructor)cycle_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_methods = cycle_methods,
};

/* ---- the scope ---- */

static int hexval(int ch)
{
	return ch >= '0' && ch <= '9'	? ch - '0'
	       : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
	       : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
					: -1;
}

/* ASGI: "path" is the target's path with percent-escapes and UTF-8
 * decoded (invalid UTF-8 replaced, as uvicorn's unquote does). */
static PyObject *decode_path(const char *p, size_t n)
{
	if (!memchr(p, '%', n))
		return PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "replace");
	char *buf = PyMem_Malloc(n);
	if (!buf)
		return PyErr_NoMemory();
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (p[i] == '%' && i + 2 < n &&
		    (hi = hexval((unsigned char)p[i + 1])) >= 0 &&
		    (lo = hexval((unsigned char)p[i + 2])) >= 0) {
			buf[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			buf[o++] = p[i];
		}
	}
	PyObject *s = PyUnicode_DecodeUTF8(buf, (Py_ssize_t)o, "replace");
	PyMem_Free(buf);
	return s;
}

static PyObject *header_list(const struct drover_request *q)
{
	PyObject *l = PyList_New((Py_ssize_t)q->nheaders);
	for (size_t i = 0; l && i < q->nheaders; i++) {
		const struct drover_header *h = &q->headers[i];
		char lower[256];
		PyObject *name;
		if (h->name.len <= sizeof(lower)) {
			for (size_t k = 0; k < h->name.len; k++) {
				char ch = h->name.ptr[k];
				lower[k] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
			}
			name = PyBytes_FromStringAndSize(lower, (Py_ssize_t)h->name.len);
		} else {
			PyObject *raw = PyBytes_FromStringAndSize(h->name.ptr, (Py_ssize_t)h->name.len);
			name = raw ? PyObject_CallMethod(raw, "lower", NULL) : NULL;
			Py_XDECREF(raw);
		}
		PyObject *value = PyBytes_FromStringAndSize(h->value.ptr, (Py_ssize_t)h->value.len);
		PyObject *t = name && value ? PyTuple_Pack(2, name, value) : NULL;
		Py_XDECREF(name);
		Py_XDECREF(value);
		if (!t) {
			Py_CLEAR(l);
			break;
		}
		PyList_SET_ITEM(l, (Py_ssize_t)i, t);
	}
	return l;
}

/* Set scope[key] = v (stolen); false on error. */
static bool put(PyObject *d, PyObject *key, PyObject *v)
{
	if (!v)
		return false;
	int rc = PyDict_SetItem(d, key, v);
	Py_DECREF(v);
	return rc == 0;
}

static PyObject *client_tuple(struct asgi_conn *c)
{
	if (!c->hc.peer_addr[0])
		return Py_NewRef(Py_None);
	return Py_BuildValue("(si)", c->hc.peer_addr, c->hc.peer_port);
}

PyObject *asgi_scope_base(struct asgi_conn *c, const struct drover_request *q)
{
	PyObject *s = PyDict_New();
	if (!s)
		return NULL;
	if (c->hc.env->conf->proxy_protocol || !c->client) /* the PROXY header names it */
		Py_XSETREF(c->client, client_tuple(c));
	bool ok = c->client && PyDict_SetItem(s, s_asgi, asgi_srv.asgi_dict) == 0 &&
		  PyDict_SetItem(s, s_http_version, q->http_minor ? s_v11 : s_v10) == 0 &&
		  put(s, s_path, decode_path(q->path.ptr, q->path.len)) &&
		  put(s, s_raw_path, PyBytes_FromStringAndSize(q->path.ptr, (Py_ssize_t)q->path.len)) &&
		  put(s, s_query_string,
		      PyBytes_FromStringAndSize(q->query.ptr, (Py_ssize_t)q->query.len)) &&
		  PyDict_SetItem(s, s_root_path, s_empty) == 0 &&
		  put(s, s_headers, header_list(q)) && PyDict_SetItem(s, s_client, c->client) == 0 &&
		  PyDict_SetItem(s, s_server, c->server) == 0;
	/* Lifespan state (ASGI lifespan spec 2.3): a shallow copy per request. */
	if (ok && asgi_srv.state && PyDict_GET_SIZE(asgi_srv.state))
		ok = put(s, s_state, PyDict_Copy(asgi_srv.state));
	if (!ok)
		Py_CLEAR(s);
	return s;
}

static PyObject *build_scope(struct asgi_conn *c, const struct drover_request *q)
{
	PyObject *s = asgi_scope_base(c, q);
	if (s && (PyDict_SetItem(s, s_type, s_http) < 0 ||
		  !put(s, s_method,
		       PyUnicode_DecodeLatin1(q->method.ptr, (Py_ssize_t)q->method.len, NULL)) ||
		  PyDict_SetItem(s, s_scheme, strcmp(q->url_scheme, "https") ? s_http : s_https) < 0))
		Py_CLEAR(s);
	return s;
}

/* ---- a request starts ---- */

void asgi_setup_request(struct asgi_conn *c)
{
	struct http_conn *hc = &c->hc;
	struct drover_request *q = &hc->req;
	memset(q, 0, sizeof(*q));
	http_parse_request(&hc->hp, q);
	q->peer_addr = hc->peer_addr;
	q->peer_port = hc->peer_port;
	q->server_addr = hc->server_addr;
	q->server_port = hc->server_port;
	q->url_scheme = forwarded_scheme(&hc->env->conf->forwarded_allow_ips, hc->peer_addr,
					 q->headers, q->nheaders);
	q->server = hc;
	bool head = q->method.len == 4 && memcmp(q->method.ptr, "HEAD", 4) == 0;
	bool ka = hc->hp.keep_alive && hc->env->conf->keepalive > 0;
	http_response_init(&hc->resp, head, ka);
	hc->bytes_out = 0;
	hc->continue_sent = false;
}

/* Run the app on a new cycle for the parsed head.  -1: the cycle could not
 * be made (exception logged; the caller answers 500). */
static int start_cycle(struct asgi_conn *c)
{
	struct asgi_cycle *cy = PyObject_New(struct asgi_cycle, &cycle_type);
	if (!cy) {
		wsgi_log_exception("cannot start a request");
		return -1;
	}
	memset((char *)cy + sizeof(PyObject), 0, sizeof(*cy) - sizeof(PyObject));
	cy->t_start = sb_now_ns();
	cy->status = 500;
	cy->conn = (struct asgi_conn *)Py_NewRef((PyObject *)c);
	c->cycle = cy; /* the reference from PyObject_New */
	http_conn_budget_spend(&c->hc);
	asgi_setup_request(c);
	const struct drover_request *q = &c->hc.req;
	snprintf(cy->what, sizeof(cy->what), "%.*s %.*s from %s:%d", (int)q->method.len,
		 q->method.ptr, (int)(q->target.len > 100 ? 100 : q->target.len), q->target.ptr,
		 c->hc.peer_addr[0] ? c->hc.peer_addr : "unix", c->hc.peer_port);
	asgi_stall_what(cy->what);
	cy->counted = true;
	asgi_srv_inflight(+1);
	cy->body_done = c->hc.hp.state != HTTP_PARSE_BODY;
	PyObject *scope = build_scope(c, q);
	PyObject *recv = scope ? PyObject_GetAttr((PyObject *)cy, s_receive) : NULL;
	PyObject *send = recv ? PyObject_GetAttr((PyObject *)cy, s_send) : NULL;
	PyObject *coro = send ? PyObject_CallFunctionObjArgs(asgi_srv.app, scope, recv, send, NULL)
			      : NULL;
	PyObject *task = coro ? PyObject_CallOneArg(asgi_srv.create_task, coro) : NULL;
	PyObject *cb = task ? PyObject_GetAttrString((PyObject *)cy, "_task_done") : NULL;
	PyObject *r = cb ? PyObject_CallMethodOneArg(task, s_add_done_callback, cb) : NULL;
	Py_XDECREF(scope);
	Py_XDECREF(recv);
	Py_XDECREF(send);
	Py_XDECREF(coro);
	Py_XDECREF(task);
	Py_XDECREF(cb);
	if (!r) {
		wsgi_log_exception("cannot start the ASGI app for %s", cy->what);
		return -1;
	}
	Py_DECREF(r);
	return 0;
}

/* ---- bytes in ---- */

/* Decode buffered body bytes for the cycle (or read them away after its
 * response).  false: the body is broken (bad chunk, too large). */
static bool feed_body(struct asgi_conn *c)
{
	struct http_conn *hc = &c->hc;
	struct asgi_cycle *cy = c->discarding ? NULL : c->cycle;
	for (;;) {
		while (hc->in_off < hc->in.len && hc->hp.state == HTTP_PARSE_BODY) {
			char sink[16384];
			char *dst = sink;
			size_t cap = sizeof(sink);
			if (cy) {
				if (cy->body.len >= BODY_HIGH)
					break;
				if (http_buf_reserve(&cy->body, BODY_HIGH) < 0)
					return false;
				dst = cy->body.data + cy->body.len;
				cap = cy->body.cap - cy->body.len;
			}
			size_t out = 0;
			size_t used = http_parse_body(&hc->hp, hc->in.data + hc->in_off,
						      hc->in.len - hc->in_off, dst, cap, &out);
			hc->in_off += used;
			if (cy)
				cy->body.len += out;
			else
				c->discarded += out;
			if (used == 0 && out == 0)
				break;
		}
		if (hc->in_off == hc->in.len)
			hc->in.len = hc->in_off = 0;
		if (hc->hp.state == HTTP_PARSE_ERROR)
			return false;
		if (!cy)
			return true;
		cy->body_done = hc->hp.state != HTTP_PARSE_BODY;
		cycle_wake(cy);
		/* a waiting receive() took it all: decode more of what is buffered */
		if (cy->body.len || cy->body_done || hc->in_off == hc->in.len || c->cycle != cy)
			break;
	}
	/* the app has not taken what we hold: stop reading (back-pressure) */
	asgi_pause_reading(c, cy->body.len >= BODY_HIGH);
	return true;
}

static void answer_error(struct asgi_conn *c, int status)
{
	wlog_debug("bad request from %s: %d %s", c->hc.peer_addr, status,
		   c->hc.hp.error_reason ? c->hc.hp.error_reason : "");
	c->out.len = 0;
	if (http_error_response_for(&c->out, status, c->hc.hp.http_minor ? 1 : 0, false) == 0)
		asgi_conn_write(c, c->out.data, c->out.len);
	sb_request_done(c->hc.env->slot, status, 0, c->out.len);
	c->out.len = 0;
	asgi_conn_close(c);
}

/* Parse and start what is buffered: the body of the current cycle, else
 * the next request head (one cycle at a time: pipelined requests wait in
 * c->hc.in, in order). */
void asgi_conn_process(struct asgi_conn *c)
{
	struct http_conn *hc = &c->hc;
	while (!c->closing && !c->closed) {
		if (c->ws) {
			asgi_ws_feed(c);
			return;
		}
		if (c->discarding) {
			if (!feed_body(c) || c->discarded > DISCARD_MAX) {
				asgi_conn_close(c);
				return;
			}
			if (hc->hp.state == HTTP_PARSE_BODY)
				return;
			c->discarding = false;
			http_parse_next(&hc->hp);
		}
		if (c->cycle) {
			if (hc->hp.state == HTTP_PARSE_BODY && !feed_body(c)) {
				int st = hc->hp.error_status ? hc->hp.error_status : 400;
				struct asgi_cycle *cy = c->cycle;
				cy->disconnected = true; /* the app's body ends here */
				cycle_fail(cy, st);
				return;
			}
			/* Pipelined bytes behind the cycle: bounded. */
			if (hc->in.len - hc->in_off > IN_HIGH)
				asgi_pause_reading(c, true);
			return;
		}
		int st = http_conn_parse_head(hc);
		if (st == -EAGAIN) {
			if (c->peer_eof)
				asgi_conn_close(c);
			return;
		}
		if (st > 0) {
			answer_error(c, st);
			return;
		}
		if (asgi_ws_wanted(&hc->hp)) {
			st = asgi_ws_start(c);
			if (st > 0)
				answer_error(c, st);
			continue; /* frames may follow the head */
		}
		if (start_cycle(c) < 0) {
			if (c->cycle)
				cycle_fail(c->cycle, 500);
			else
				answer_error(c, 500);
			return;
		}
	}
}

/* ---- the Protocol ---- */

static PyObject *conn_connection_made(struct asgi_conn *c, PyObject *transport)
{
	Py_XSETREF(c->transport, Py_NewRef(transport));
	Py_XSETREF(c->write, PyObject_GetAttr(transport, s_write));
	if (!c->write)
		return NULL;
	c->made = true;
	c->since_ns = sb_now_ns();
	Py_RETURN_NONE;
}

static PyObject *conn_data_received(struct asgi_conn *c, PyObject *data)
{
	if (c->lingering)
		Py_RETURN_NONE; /* read away: the answer is out */
	Py_buffer b;
	if (PyObject_GetBuffer(data, &b, PyBUF_SIMPLE) < 0)
		return NULL;
	int rc = http_buf_append(&c->hc.in, b.buf, (size_t)b.len);
	PyBuffer_Release(&b);
	if (rc < 0)
		return PyErr_NoMemory();
	c->rx_ns = sb_now_ns();
	if (!c->cycle && c->hc.in.len == (size_t)b.len)
		c->since_ns = c->rx_ns; /* a head starts: header_timeout from here */
	asgi_conn_process(c);
	Py_RETURN_NONE;
}

/* The client shut its sending side.  As uvicorn does, that ends the
 * connection: the transport closes and a cycle in progress sees
 * http.disconnect (a streaming response must not run on for a client that
 * left; a half-closing HTTP/1.1 client is rare). */
static PyObject *conn_eof_received(struct asgi_conn *c, PyObject *noargs)
{
	(void)noargs;
	c->peer_eof = true;
	c->closing = true;
	Py_RETURN_NONE; /* the transport closes itself */
}

static void conn_unlist(struct asgi_conn *c)
{
	if (!c->listed)
		return;
	c->listed = false;
	*(c->prev ? &c->prev->next : &asgi_srv.conns) = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	asgi_srv.nconns--;
	atomic_store_explicit(&asgi_srv.rt->args->slot->connections, asgi_srv.nconns,
			      memory_order_relaxed);
	Py_DECREF(c); /* the list's reference */
}

/* The connection is gone: a cycle in progress sees http.disconnect, a
 * send() waiting for the buffer to drain returns. */
static PyObject *conn_connection_lost(struct asgi_conn *c, PyObject *exc)
{
	(void)exc;
	Py_INCREF(c);
	c->closed = true;
	struct asgi_cycle *cy = c->cycle;
	if (cy) {
		cy->disconnected = true;
		cycle_detach(cy);
	}
	if (c->ws)
		asgi_ws_lost(c);
	if (c->drain_waiter) {
		PyObject *w = c->drain_waiter;
		c->drain_waiter = NULL;
		asgi_future_set(w, Py_NewRef(Py_None));
		Py_DECREF(w);
	}
	Py_CLEAR(c->write);
	Py_CLEAR(c->transport); /* the transport holds us: break the cycle */
	conn_unlist(c);
	Py_DECREF(c);
	Py_RETURN_NONE;
}

static PyObject *conn_pause_writing(struct asgi_conn *c, PyObject *noargs)
{
	(void)noargs;
	c->write_paused = true;
	c->wpause_ns = sb_now_ns();
	Py_RETURN_NONE;
}

static PyObject *conn_resume_writing(struct asgi_conn *c, PyObject *noargs)
{
	(void)noargs;
	c->write_paused = false;
	if (c->drain_waiter) {
		PyObject *w = c->drain_waiter;
		c->drain_waiter = NULL;
		asgi_future_set(w, Py_NewRef(Py_None));
		Py_DECREF(w);
	}
	Py_RETURN_NONE;
}

/* Done callback of the connect_accepted_socket task: a connection that got
 * no transport is forgotten (its socket was closed with the task). */
static PyObject *conn_accept_done(struct asgi_conn *c, PyObject *task)
{
	PyObject *exc = PyObject_CallMethodNoArgs(task, s_exception);
	if (!exc) {
		PyErr_Clear(); /* cancelled: the loop is stopping */
	} else if (exc != Py_None) {
		wlog_debug("asgi: a connection from %s could not be set up", c->hc.peer_addr);
	}
	Py_XDECREF(exc);
	if (!c->made)
		asgi_conn_abandon((PyObject *)c);
	Py_RETURN_NONE;
}

/* The protocol factory of connect_accepted_socket: the object itself. */
static PyObject *conn_call(PyObject *self, PyObject *args, PyObject *kw)
{
	(void)args;
	(void)kw;
	return Py_NewRef(self);
}

static void conn_dealloc(struct asgi_conn *c)
{
	Py_XDECREF(c->transport);
	Py_XDECREF(c->write);
	Py_XDECREF(c->client);
	Py_XDECREF(c->server);
	Py_XDECREF((PyObject *)c->cycle);
	Py_XDECREF(c->drain_waiter);
	asgi_ws_free(c);
	http_conn_free(&c->hc); /* gives back an unspent max_requests slot */
	http_buf_free(&c->out);
	PyObject_Free(c);
}

static PyMethodDef conn_methods[] = {
	{"connection_made", (PyCFunction)conn_connection_made, METH_O, NULL},
	{"data_received", (PyCFunction)conn_data_received, METH_O, NULL},
	{"eof_received", (PyCFunction)conn_eof_received, METH_NOARGS, NULL},
	{"connection_lost", (PyCFunction)conn_connection_lost, METH_O, NULL},
	{"pause_writing", (PyCFunction)conn_pause_writing, METH_NOARGS, NULL},
	{"resume_writing", (PyCFunction)conn_resume_writing, METH_NOARGS, NULL},
	{"_accept_done", (PyCFunction)conn_accept_done, METH_O, NULL},
	{NULL, NULL, 0, NULL},
};

static PyTypeObject conn_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "drover.asgi.HttpProtocol",
	.tp_basicsize = sizeof(struct asgi_conn),
	.tp_dealloc = (destructor)conn_dealloc,
	.tp_call = conn_call,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_methods = conn_methods,
};

static const struct conn_io no_io; /* bytes come from the transport */

PyObject *asgi_conn_new(int fd, const struct worker_listener *l, const struct sockaddr *peer)
{
	struct asgi_conn *c = PyObject_New(struct asgi_conn, &conn_type);
	if (!c)
		return NULL;
	memset((char *)c + sizeof(PyObject), 0, sizeof(*c) - sizeof(PyObject));
	http_conn_init(&c->hc, &asgi_srv.rt->env, &no_io, fd, l, peer);
	c->hc.slot_held = true; /* claimed by the acceptor */
	c->hc.fd = -1; /* the transport owns the socket */
	c->sock_fd = fd;
	c->server = l->family == AF_UNIX ? Py_BuildValue("(sO)", l->name, Py_None)
					 : Py_BuildValue("(si)", l->host, l->port);
	if (!c->server) {
		Py_DECREF(c);
		return NULL;
	}
	c->since_ns = sb_now_ns();
	c->listed = true;
	c->next = asgi_srv.conns;
	if (c->next)
		c->next->prev = c;
	asgi_srv.conns = c;
	asgi_srv.nconns++;
	atomic_store_explicit(&asgi_srv.rt->args->slot->connections, asgi_srv.nconns,
			      memory_order_relaxed);
	Py_INCREF(c); /* the list's reference */
	return (PyObject *)c;
}

void asgi_conn_abandon(PyObject *conn)
{
	struct asgi_conn *c = (struct asgi_conn *)conn;
	if (!c->made) {
		c->closed = true;
		conn_unlist(c);
	}
}

/* A request in progress: a client silent for read_timeout while the app
 * waits for its body, or one that took none of the response for
 * send_timeout (the transport's buffer stays above its high-water mark), is
 * cut off; the app sees http.disconnect. */
static bool stuck(const struct asgi_conn *c, uint64_t now, const struct drover_conf *conf)
{
	if (c->write_paused && now - c->wpause_ns >= (uint64_t)(conf->send_timeout * 1e9))
		return true;
	return c->cycle && c->cycle->rwaiter && c->hc.hp.state == HTTP_PARSE_BODY &&
	       now - c->rx_ns >= (uint64_t)(conf->read_timeout * 1e9);
}

void asgi_conns_sweep(uint64_t now)
{
	const struct drover_conf *conf = asgi_srv.rt->args->conf;
	uint64_t idle = (uint64_t)(conf->keepalive * 1e9);
	uint64_t head = (uint64_t)(conf->header_timeout * 1e9);
	struct asgi_conn *c = asgi_srv.conns, *next;
	for (; c; c = next) {
		next = c->next;
		if (c->closed || !c->made)
			continue;
		if ((c->cycle || c->ws) && stuck(c, now, conf)) {
			wlog_debug("closing %s:%d: the client stalled past read_timeout/send_timeout",
				   c->hc.peer_addr, c->hc.peer_port);
			Py_INCREF(c);
			call0(c->transport, s_abort);
			Py_DECREF(c);
			continue;
		}
		if (c->lingering) {
			if (now - c->since_ns >= ASGI_LINGER_NS)
				call0(c->transport, s_close);
			continue;
		}
		if (c->cycle || c->ws || c->closing || c->discarding)
			continue;
		bool started = c->hc.in.len > c->hc.in_off;
		uint64_t limit = started || !c->hc.requests ? head : idle;
		if (now - c->since_ns >= limit) {
			Py_INCREF(c);
			asgi_conn_close(c);
			Py_DECREF(c);
		}
	}
}

void asgi_conns_ws_drain(void)
{
	struct asgi_conn *c = asgi_srv.conns, *next;
	for (; c; c = next) {
		next = c->next;
		if (c->ws && !c->closed) {
			Py_INCREF(c);
			asgi_ws_drain(c);
			Py_DECREF(c);
		}
	}
}

/* ---- setup ---- */

static int intern(PyObject **p, const char *s)
{
	*p = PyUnicode_InternFromString(s);
	return *p ? 0 : -1;
}

int asgi_http_setup(void)
{
	if (PyType_Ready(&ready_type) < 0 || PyType_Ready(&cycle_type) < 0 ||
	    PyType_Ready(&conn_type) < 0)
		return -1;
	struct {
		PyObject **p;
		const char *s;
	} names[] = {
		{&s_type, "type"}, {&s_http, "http"}, {&s_https, "https"}, {&s_asgi, "asgi"},
		{&s_http_version, "http_version"}, {&s_method, "method"}, {&s_scheme, "scheme"},
		{&s_path, "path"}, {&s_raw_path, "raw_path"}, {&s_query_string, "query_string"},
		{&s_root_path, "root_path"}, {&s_headers, "headers"}, {&s_client, "client"},
		{&s_server, "server"}, {&s_state, "state"}, {&s_body, "body"},
		{&s_more_body, "more_body"}, {&s_status, "status"}, {&s_empty, ""},
		{&s_v11, "1.1"}, {&s_v10, "1.0"}, {&s_http_request, "http.request"},
		{&s_http_disconnect, "http.disconnect"}, {&s_start, "http.response.start"},
		{&s_resp_body, "http.response.body"}, {&s_done, "done"},
		{&s_set_result, "set_result"}, {&s_close, "close"}, {&s_write_eof, "write_eof"},
		{&s_pause_reading, "pause_reading"}, {&s_resume_reading, "resume_reading"},
		{&s_write, "write"}, {&s_receive, "receive"}, {&s_send, "send"},
		{&s_add_done_callback, "add_done_callback"}, {&s_exception, "exception"},
		{&s_cancelled, "cancelled"}, {&s_abort, "abort"},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (intern(names[i].p, names[i].s) < 0)
			return -1;
	ready_none = (PyObject *)PyObject_New(struct asgi_ready, &ready_type);
	if (!ready_none)
		return -1;
	((struct asgi_ready *)ready_none)->result = NULL;
	return asgi_ws_setup();
}
