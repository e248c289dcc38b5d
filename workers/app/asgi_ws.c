/* WebSockets (RFC 6455) for the asgi worker, through the ASGI "websocket"
 * scope (HTTP & WebSocket spec 2.3): the opening handshake checked (§4.2.1)
 * and answered on websocket.accept with Sec-WebSocket-Accept (§4.2.2: SHA-1
 * and base64 from Python's hashlib and base64), frames parsed and unmasked
 * in C (§5.2, §5.3), fragmented messages joined (§5.4), ping answered with
 * pong (§5.5.2), the closing handshake (§5.5.1, §7) with its codes, and a
 * message size limit (websocket_max_message: close 1009).  A connection
 * carries one WebSocket after its upgrade; it counts as a request in flight
 * until it closes, and a draining worker closes it with 1001. */
#include "workers/app/asgi.h"

#include <string.h>
#include <strings.h>

#include "workers/wlog.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 §1.3 */
#define WS_QUEUE_HIGH 16 /* messages the app has not received: stop reading */

enum ws_state { WS_CONNECTING, WS_OPEN, WS_CLOSED };

struct asgi_ws {
	PyObject_HEAD
	struct asgi_conn *conn; /* strong, until the connection is lost */
	PyObject *queue; /* list of events not yet received */
	PyObject *rwaiter; /* receive() waiting */
	struct http_buf msg; /* a fragmented message being joined */
	int msg_opcode; /* 1 text, 2 binary; 0: none in progress */
	int close_code; /* for websocket.disconnect */
	enum ws_state state;
	bool connect_given, disconnect_queued, close_sent, counted;
	uint64_t t_start;
	char what[160];
};

static PyTypeObject ws_type;
static PyObject *sha1_fn, *b64_fn; /* hashlib.sha1, base64.b64encode */

/* ---- events to the app ---- */

static void ws_push(struct asgi_ws *ws, PyObject *ev) /* steals ev */
{
	if (!ev) {
		PyErr_Clear();
		return;
	}
	if (ws->rwaiter) {
		PyObject *fut = ws->rwaiter;
		ws->rwaiter = NULL;
		asgi_future_set(fut, ev);
		Py_DECREF(fut);
		return;
	}
	if (PyList_Append(ws->queue, ev) < 0)
		PyErr_Clear();
	Py_DECREF(ev);
	if (ws->conn && PyList_GET_SIZE(ws->queue) >= WS_QUEUE_HIGH)
		asgi_pause_reading(ws->conn, true); /* back-pressure */
}

static void ws_disconnect(struct asgi_ws *ws, int code)
{
	if (ws->disconnect_queued)
		return;
	ws->disconnect_queued = true;
	ws->close_code = code;
	ws_push(ws, Py_BuildValue("{s:s,s:i}", "type", "websocket.disconnect", "code", code));
	if (ws->counted) {
		ws->counted = false;
		asgi_srv_inflight(-1);
		sb_request_done(asgi_srv.rt->args->slot, 101, sb_now_ns() - ws->t_start, 0);
	}
}

/* ---- frames out (servers do not mask, §5.1) ---- */

static void ws_frame(struct asgi_conn *c, int opcode, const char *p, size_t n)
{
	unsigned char h[10];
	size_t hl = 2;
	h[0] = (unsigned char)(0x80 | opcode);
	if (n < 126) {
		h[1] = (unsigned char)n;
	} else if (n <= 0xffff) {
		h[1] = 126;
		h[2] = (unsigned char)(n >> 8);
		h[3] = (unsigned char)n;
		hl = 4;
	} else {
		h[1] = 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (unsigned char)((unsigned long long)n >> (56 - 8 * i));
		hl = 10;
	}
	c->out.len = 0;
	if (http_buf_append(&c->out, h, hl) == 0 && http_buf_append(&c->out, p, n) == 0)
		asgi_conn_write(c, c->out.data, c->out.len);
	c->out.len = 0;
}

/* Our close frame (§5.5.1), then the TCP close once it is flushed. */
static void ws_close(struct asgi_ws *ws, int code, const char *reason, size_t rlen)
{
	struct asgi_conn *c = ws->conn;
	if (c && !ws->close_sent && ws->state == WS_OPEN) {
		char p[125];
		rlen = rlen > 123 ? 123 : rlen;
		p[0] = (char)(code >> 8);
		p[1] = (char)code;
		memcpy(p + 2, reason, rlen);
		ws_frame(c, 0x8, p, 2 + rlen);
	}
	ws->close_sent = true;
	ws->state = WS_CLOSED;
	if (c)
		asgi_conn_close(c);
}

/* A protocol error of the client (§7.4.1 codes): close, and tell the app. */
static void ws_fail(struct asgi_ws *ws, int code, const char *why)
{
	wlog_debug("websocket %s: closing with %d: %s", ws->what, code, why);
	ws_close(ws, code, "", 0);
	ws_disconnect(ws, code);
}

/* ---- frames in ---- */

static void ws_message(struct asgi_ws *ws, int opcode, const char *p, size_t n)
{
	PyObject *data;
	if (opcode == 1) {
		data = PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "strict");
		if (!data) { /* §8.1: invalid UTF-8 in a text message fails the connection */
			PyErr_Clear();
			ws_fail(ws, 1007, "invalid UTF-8 in a text message");
			return;
		}
	} else {
		data = PyBytes_FromStringAndSize(p, (Py_ssize_t)n);
	}
	if (!data) {
		PyErr_Clear();
		return;
	}
	ws_push(ws, Py_BuildValue("{s:s,s:N}", "type", "websocket.receive",
				  opcode == 1 ? "text" : "bytes", data));
}

static void ws_control(struct asgi_ws *ws, int opcode, const unsigned char *p, size_t n)
{
	struct asgi_conn *c = ws->conn;
	if (opcode == 0x9) { /* ping: a pong with the same data (§5.5.2) */
		ws_frame(c, 0xA, (const char *)p, n);
	} else if (opcode == 0x8) { /* close (§5.5.1): echo the code, then close */
		int code = n >= 2 ? p[0] << 8 | p[1] : 1005;
		if (n == 1 || (n >= 2 && (code < 1000 || code == 1005 || code == 1006 ||
					  (code > 1011 && code < 3000) || code > 4999))) {
			ws_fail(ws, 1002, "bad close code");
			return;
		}
		ws_close(ws, n >= 2 ? code : 1000, "", 0);
		ws_disconnect(ws, code);
	} /* pong: nothing to do */
}

/* One frame at the start of buf[0..len): bytes used, 0 if incomplete, -1 if
 * the connection failed. */
static ssize_t ws_frame_in(struct asgi_ws *ws, unsigned char *b, size_t len)
{
	unsigned long long max = asgi_srv.rt->args->conf->websocket_max_message;
	if (len < 2)
		return 0;
	bool fin = b[0] & 0x80, masked = b[1] & 0x80;
	int opcode = b[0] & 0x0f;
	unsigned long long n = b[1] & 0x7f;
	size_t hl = 2;
	if (b[0] & 0x70 || !masked) { /* no extension negotiated; clients mask (§5.1) */
		ws_fail(ws, 1002, b[0] & 0x70 ? "reserved bits set" : "unmasked client frame");
		return -1;
	}
	if (n == 126) {
		if (len < 4)
			return 0;
		n = (unsigned long long)b[2] << 8 | b[3];
		hl = 4;
	} else if (n == 127) {
		if (len < 10)
			return 0;
		n = 0;
		for (int i = 0; i < 8; i++)
			n = n << 8 | b[2 + i];
		hl = 10;
	}
	bool control = opcode & 0x8;
	if (control && (!fin || n > 125)) {
		ws_fail(ws, 1002, "fragmented or long control frame");
		return -1;
	}
	if (!control && max && ws->msg.len + n > max) {
		ws_fail(ws, 1009, "message larger than websocket_max_message");
		return -1;
	}
	if (len < hl + 4 + n)
		return 0;
	unsigned char *mask = b + hl, *p = b + hl + 4;
	for (unsigned long long i = 0; i < n; i++)
		p[i] ^= mask[i & 3];
	if (control) {
		ws_control(ws, opcode, p, (size_t)n);
	} else if ((opcode == 0) != (ws->msg_opcode != 0) || (opcode != 0 && opcode > 2)) {
		ws_fail(ws, 1002, "unexpected continuation or opcode");
		return -1;
	} else if (fin && opcode) { /* a whole message in one frame */
		ws_message(ws, opcode, (const char *)p, (size_t)n);
	} else {
		if (opcode)
			ws->msg_opcode = opcode;
		if (http_buf_append(&ws->msg, p, (size_t)n) < 0) {
			ws_fail(ws, 1011, "out of memory");
			return -1;
		}
		if (fin) {
			ws_message(ws, ws->msg_opcode, ws->msg.data, ws->msg.len);
			ws->msg.len = 0;
			ws->msg_opcode = 0;
			if (ws->msg.cap > 1 << 20)
				http_buf_free(&ws->msg);
		}
	}
	return (ssize_t)(hl + 4 + n);
}

void asgi_ws_feed(struct asgi_conn *c)
{
	struct asgi_ws *ws = c->ws;
	struct http_conn *hc = &c->hc;
	while (ws->state == WS_OPEN && hc->in_off < hc->in.len &&
	       PyList_GET_SIZE(ws->queue) < WS_QUEUE_HIGH) {
		ssize_t n = ws_frame_in(ws, (unsigned char *)hc->in.data + hc->in_off,
					hc->in.len - hc->in_off);
		if (n <= 0)
			break;
		hc->in_off += (size_t)n;
	}
	if (hc->in_off == hc->in.len) {
		hc->in.len = hc->in_off = 0;
	} else if (hc->in_off > hc->in.len / 2) {
		http_buf_consume(&hc->in, hc->in_off);
		hc->in_off = 0;
	}
	if (ws->state != WS_CONNECTING)
		asgi_pause_reading(c, PyList_GET_SIZE(ws->queue) >= WS_QUEUE_HIGH);
}

/* ---- the handshake ---- */

static bool token_in(const struct drover_header *h, const char *tok)
{
	if (!h)
		return false;
	size_t tl = strlen(tok);
	const char *p = h->value.ptr, *end = p + h->value.len;
	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
			p++;
		const char *s = p;
		while (p < end && *p != ',')
			p++;
		const char *e = p;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((size_t)(e - s) == tl && strncasecmp(s, tok, tl) == 0)
			return true;
	}
	return false;
}

bool asgi_ws_wanted(const struct http_parse *hp)
{
	const struct drover_header *u = http_find_header(hp->headers, hp->nheaders, "upgrade");
	return hp->upgrade && token_in(u, "websocket");
}

/* Sec-WebSocket-Accept: base64(SHA-1(key + GUID)) (§4.2.2 item 5.4). */
static PyObject *accept_value(const struct drover_header *key)
{
	PyObject *src = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(key->value.len + 36));
	if (!src)
		return NULL;
	memcpy(PyBytes_AS_STRING(src), key->value.ptr, key->value.len);
	memcpy(PyBytes_AS_STRING(src) + key->value.len, WS_GUID, 36);
	PyObject *h = PyObject_CallOneArg(sha1_fn, src);
	PyObject *d = h ? PyObject_CallMethod(h, "digest", NULL) : NULL;
	PyObject *b = d ? PyObject_CallOneArg(b64_fn, d) : NULL;
	Py_DECREF(src);
	Py_XDECREF(h);
	Py_XDECREF(d);
	return b;
}

static PyObject *subprotocols(const struct drover_request *q)
{
	PyObject *l = PyList_New(0);
	for (size_t i = 0; l && i < q->nheaders; i++) {
		const struct drover_header *h = &q->headers[i];
		if (h->name.len != 22 || strncasecmp(h->name.ptr, "sec-websocket-protocol", 22))
			continue;
		const char *p = h->value.ptr, *end = p + h->value.len;
		while (p < end) {
			while (p < end && (*p == ' ' || *p == ','))
				p++;
			const char *s = p;
			while (p < end && *p != ',' && *p != ' ')
				p++;
			if (p > s) {
				PyObject *t = PyUnicode_DecodeLatin1(s, p - s, NULL);
				if (!t || PyList_Append(l, t) < 0)
					Py_CLEAR(l);
				Py_XDECREF(t);
				if (!l)
					break;
			}
		}
	}
	return l;
}

static PyObject *ws_scope(struct asgi_conn *c, const struct drover_request *q)
{
	PyObject *s = asgi_scope_base(c, q);
	PyObject *sp = s ? subprotocols(q) : NULL;
	bool secure = strcmp(q->url_scheme, "https") == 0;
	if (!sp || PyDict_SetItemString(s, "type", PyUnicode_FromString("websocket")) < 0 ||
	    PyDict_SetItemString(s, "scheme", PyUnicode_FromString(secure ? "wss" : "ws")) < 0 ||
	    PyDict_SetItemString(s, "subprotocols", sp) < 0)
		Py_CLEAR(s);
	Py_XDECREF(sp);
	return s;
}

static PyObject *ws_task_done(struct asgi_ws *ws, PyObject *task);

int asgi_ws_start(struct asgi_conn *c)
{
	struct http_parse *hp = &c->hc.hp;
	const struct drover_header *key = http_find_header(hp->headers, hp->nheaders,
							   "sec-websocket-key");
	const struct drover_header *ver = http_find_header(hp->headers, hp->nheaders,
							   "sec-websocket-version");
	const struct drover_header *conn = http_find_header(hp->headers, hp->nheaders, "connection");
	asgi_setup_request(c);
	const struct drover_request *q = &c->hc.req;
	/* §4.2.1: a GET of HTTP/1.1 or later, Connection: upgrade, a 16-byte
	 * nonce in base64 (24 characters), version 13. */
	if (q->method.len != 3 || memcmp(q->method.ptr, "GET", 3) || hp->http_minor < 1 ||
	    !token_in(conn, "upgrade") || !key || key->value.len != 24)
		return 400;
	if (!ver || ver->value.len != 2 || memcmp(ver->value.ptr, "13", 2))
		return 426;
	http_conn_budget_spend(&c->hc);
	struct asgi_ws *ws = PyObject_New(struct asgi_ws, &ws_type);
	if (!ws)
		return 500;
	memset((char *)ws + sizeof(PyObject), 0, sizeof(*ws) - sizeof(PyObject));
	ws->conn = (struct asgi_conn *)Py_NewRef((PyObject *)c);
	ws->queue = PyList_New(0);
	ws->t_start = sb_now_ns();
	ws->close_code = 1006;
	snprintf(ws->what, sizeof(ws->what), "WEBSOCKET %.*s from %s:%d",
		 (int)(q->target.len > 100 ? 100 : q->target.len), q->target.ptr,
		 c->hc.peer_addr[0] ? c->hc.peer_addr : "unix", c->hc.peer_port);
	c->ws = ws; /* the new reference */
	ws->counted = true;
	asgi_srv_inflight(+1);
	asgi_stall_what(ws->what);
	PyObject *scope = ws->queue ? ws_scope(c, q) : NULL;
	PyObject *recv = scope ? PyObject_GetAttrString((PyObject *)ws, "receive") : NULL;
	PyObject *send = recv ? PyObject_GetAttrString((PyObject *)ws, "send") : NULL;
	PyObject *coro = send ? PyObject_CallFunctionObjArgs(asgi_srv.app, scope, recv, send, NULL)
			      : NULL;
	PyObject *task = coro ? PyObject_CallOneArg(asgi_srv.create_task, coro) : NULL;
	PyObject *cb = task ? PyObject_GetAttrString((PyObject *)ws, "_task_done") : NULL;
	PyObject *r = cb ? PyObject_CallMethod(task, "add_done_callback", "O", cb) : NULL;
	Py_XDECREF(scope);
	Py_XDECREF(recv);
	Py_XDECREF(send);
	Py_XDECREF(coro);
	Py_XDECREF(task);
	Py_XDECREF(cb);
	if (!r) {
		wsgi_log_exception("cannot start the ASGI app for %s", ws->what);
		ws_disconnect(ws, 1011);
		c->ws = NULL;
		Py_DECREF(ws);
		return 500;
	}
	Py_DECREF(r);
	return 0;
}

/* ---- receive() and send() ---- */

static PyObject *ws_receive(struct asgi_ws *ws, PyObject *noargs)
{
	(void)noargs;
	asgi_stall_what(ws->what);
	if (!ws->connect_given) {
		ws->connect_given = true;
		return asgi_ready_new(Py_BuildValue("{s:s}", "type", "websocket.connect"));
	}
	if (PyList_GET_SIZE(ws->queue) > 0) {
		PyObject *ev = Py_NewRef(PyList_GET_ITEM(ws->queue, 0));
		if (PySequence_DelItem(ws->queue, 0) < 0) {
			Py_DECREF(ev);
			return NULL;
		}
		if (ws->conn && PyList_GET_SIZE(ws->queue) < WS_QUEUE_HIGH / 2) {
			asgi_pause_reading(ws->conn, false);
			asgi_ws_feed(ws->conn); /* frames held back behind the queue */
		}
		return asgi_ready_new(ev);
	}
	if (ws->disconnect_queued) /* received already: say it again */
		return asgi_ready_new(Py_BuildValue("{s:s,s:i}", "type", "websocket.disconnect",
						    "code", ws->close_code));
	if (ws->rwaiter) {
		PyErr_SetString(PyExc_RuntimeError, "receive() awaited twice at once");
		return NULL;
	}
	ws->rwaiter = PyObject_CallNoArgs(asgi_srv.create_future);
	return Py_XNewRef(ws->rwaiter);
}

/* websocket.accept: the 101 answer of §4.2.2, with the app's subprotocol
 * (one the client offered) and headers. */
static int ws_accept(struct asgi_ws *ws, PyObject *m)
{
	struct asgi_conn *c = ws->conn;
	struct http_parse *hp = &c->hc.hp;
	PyObject *acc = accept_value(http_find_header(hp->headers, hp->nheaders,
						      "sec-websocket-key"));
	if (!acc)
		return -1;
	struct http_buf *o = &c->out;
	o->len = 0;
	static const char head[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
				   "Connection: Upgrade\r\nSec-WebSocket-Accept: ";
	int rc = http_buf_append(o, head, sizeof(head) - 1) |
		 http_buf_append(o, PyBytes_AS_STRING(acc), (size_t)PyBytes_GET_SIZE(acc)) |
		 http_buf_append(o, "\r\n", 2);
	Py_DECREF(acc);
	PyObject *sub = PyDict_GetItemString(m, "subprotocol");
	if (sub && sub != Py_None) {
		const char *s = PyUnicode_AsUTF8(sub);
		if (!s)
			return -1;
		rc |= http_buf_append(o, "Sec-WebSocket-Protocol: ", 24) |
		      http_buf_append(o, s, strlen(s)) | http_buf_append(o, "\r\n", 2);
	}
	PyObject *hdrs = PyDict_GetItemString(m, "headers");
	PyObject *it = hdrs ? PyObject_GetIter(hdrs) : NULL, *h;
	while (it && (h = PyIter_Next(it))) {
		PyObject *n = PySequence_GetItem(h, 0), *v = PySequence_GetItem(h, 1);
		Py_DECREF(h);
		if (!n || !v || !PyBytes_Check(n) || !PyBytes_Check(v) ||
		    strpbrk(PyBytes_AS_STRING(v), "\r\n") || strpbrk(PyBytes_AS_STRING(n), "\r\n: ")) {
			Py_XDECREF(n);
			Py_XDECREF(v);
			Py_DECREF(it);
			if (!PyErr_Occurred())
				PyErr_SetString(PyExc_ValueError, "bad websocket.accept header");
			return -1;
		}
		rc |= http_buf_append(o, PyBytes_AS_STRING(n), (size_t)PyBytes_GET_SIZE(n)) |
		      http_buf_append(o, ": ", 2) |
		      http_buf_append(o, PyBytes_AS_STRING(v), (size_t)PyBytes_GET_SIZE(v)) |
		      http_buf_append(o, "\r\n", 2);
		Py_DECREF(n);
		Py_DECREF(v);
	}
	Py_XDECREF(it);
	if (PyErr_Occurred())
		return -1;
	rc |= http_buf_append(o, "\r\n", 2);
	if (rc)
		return -1;
	asgi_conn_write(c, o->data, o->len);
	o->len = 0;
	ws->state = WS_OPEN;
	asgi_ws_feed(c); /* frames that came with the head */
	return 0;
}

static PyObject *ws_send(struct asgi_ws *ws, PyObject *m)
{
	PyObject *t = PyDict_Check(m) ? PyDict_GetItemString(m, "type") : NULL;
	const char *type = t ? PyUnicode_AsUTF8(t) : NULL;
	if (!type) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_ValueError, "ASGI message without a type");
		return NULL;
	}
	struct asgi_conn *c = ws->conn;
	if (c)
		asgi_stall_what(ws->what);
	if (!strcmp(type, "websocket.accept")) {
		if (ws->state != WS_CONNECTING || !c) {
			PyErr_SetString(PyExc_RuntimeError, "websocket.accept when not connecting");
			return NULL;
		}
		return ws_accept(ws, m) < 0 ? NULL : asgi_ready_new(Py_NewRef(Py_None));
	}
	if (!strcmp(type, "websocket.close")) {
		int code = 1000;
		PyObject *cv = PyDict_GetItemString(m, "code");
		if (cv && (code = (int)PyLong_AsLong(cv)) == -1 && PyErr_Occurred())
			return NULL;
		if (ws->state == WS_CONNECTING && c) { /* refused before accept: 403 */
			static const char deny[] = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n"
						   "Connection: close\r\n\r\n";
			asgi_conn_write(c, deny, sizeof(deny) - 1);
			ws->state = WS_CLOSED;
			asgi_conn_close(c);
			ws_disconnect(ws, code);
		} else {
			PyObject *rv = PyDict_GetItemString(m, "reason");
			Py_ssize_t rl = 0;
			const char *r = rv && rv != Py_None ? PyUnicode_AsUTF8AndSize(rv, &rl) : "";
			if (!r)
				return NULL;
			ws_close(ws, code, r, (size_t)rl);
		}
		return asgi_ready_new(Py_NewRef(Py_None));
	}
	if (strcmp(type, "websocket.send")) {
		PyErr_Format(PyExc_RuntimeError, "unexpected ASGI message type %s", type);
		return NULL;
	}
	if (ws->state == WS_CONNECTING) {
		PyErr_SetString(PyExc_RuntimeError, "websocket.send before websocket.accept");
		return NULL;
	}
	if (ws->state == WS_CLOSED || !c || c->closed) /* the client left */
		return asgi_ready_new(Py_NewRef(Py_None));
	PyObject *b = PyDict_GetItemString(m, "bytes"), *s = PyDict_GetItemString(m, "text");
	if (b && b != Py_None && PyBytes_Check(b)) {
		ws_frame(c, 0x2, PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b));
	} else if (s && s != Py_None) {
		Py_ssize_t n;
		const char *p = PyUnicode_AsUTF8AndSize(s, &n);
		if (!p)
			return NULL;
		ws_frame(c, 0x1, p, (size_t)n);
	} else {
		PyErr_SetString(PyExc_ValueError, "websocket.send without bytes or text");
		return NULL;
	}
	if (c->write_paused && !c->closed) {
		if (!c->drain_waiter && !(c->drain_waiter = PyObject_CallNoArgs(asgi_srv.create_future)))
			return NULL;
		return Py_NewRef(c->drain_waiter);
	}
	return asgi_ready_new(Py_NewRef(Py_None));
}

/* The app's task ended: not accepted -> 403 (500 on an exception); open ->
 * close 1000 (1011 on an exception, §7.4.1). */
static PyObject *ws_task_done(struct asgi_ws *ws, PyObject *task)
{
	PyObject *cancelled = PyObject_CallMethod(task, "cancelled", NULL);
	PyObject *exc = cancelled == Py_False ? PyObject_CallMethod(task, "exception", NULL) : NULL;
	Py_XDECREF(cancelled);
	PyErr_Clear();
	bool failed = exc && exc != Py_None;
	if (failed) {
		PyObject *tb = PyException_GetTraceback(exc);
		PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), Py_NewRef(exc), tb);
		wsgi_log_exception("Exception in ASGI application during %s", ws->what);
	}
	Py_XDECREF(exc);
	struct asgi_conn *c = ws->conn;
	if (c && ws->state == WS_CONNECTING) {
		static const char deny[] = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n"
					   "Connection: close\r\n\r\n";
		static const char err[] = "HTTP/1.1 500 Internal Server Error\r\n"
					  "Content-Length: 0\r\nConnection: close\r\n\r\n";
		if (failed)
			asgi_conn_write(c, err, sizeof(err) - 1);
		else
			asgi_conn_write(c, deny, sizeof(deny) - 1);
		ws->state = WS_CLOSED;
		asgi_conn_close(c);
	} else if (ws->state == WS_OPEN) {
		ws_close(ws, failed ? 1011 : 1000, "", 0);
	}
	ws_disconnect(ws, failed ? 1011 : 1000);
	Py_RETURN_NONE;
}

void asgi_ws_lost(struct asgi_conn *c)
{
	struct asgi_ws *ws = c->ws;
	ws->state = WS_CLOSED;
	ws_disconnect(ws, ws->close_sent ? ws->close_code : 1006);
	if (ws->conn) {
		ws->conn = NULL;
		Py_DECREF(c);
	}
}

void asgi_ws_drain(struct asgi_conn *c)
{
	struct asgi_ws *ws = c->ws;
	if (ws->state == WS_OPEN) {
		ws_close(ws, 1001, "server going away", 17);
		ws_disconnect(ws, 1001);
	}
}

void asgi_ws_free(struct asgi_conn *c)
{
	Py_CLEAR(c->ws);
}

static void ws_dealloc(struct asgi_ws *ws)
{
	Py_XDECREF(ws->queue);
	Py_XDECREF(ws->rwaiter);
	Py_XDECREF(ws->conn);
	http_buf_free(&ws->msg);
	PyObject_Free(ws);
}

static PyMethodDef ws_methods[] = {
	{"receive", (PyCFunction)ws_receive, METH_NOARGS, "ASGI receive()"},
	{"send", (PyCFunction)ws_send, METH_O, "ASGI send(message)"},
	{"_task_done", (PyCFunction)ws_task_done, METH_O, NULL},
	{NULL, NULL, 0, NULL},
};

static PyTypeObject ws_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "drover.asgi.WebSocket",
	.tp_basicsize = sizeof(struct asgi_ws),
	.tp_dealloc = (destructor)ws_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_methods = ws_methods,
};

int asgi_ws_setup(void)
{
	if (PyType_Ready(&ws_type) < 0)
		return -1;
	PyObject *hl = PyImport_ImportModule("hashlib");
	PyObject *b64 = PyImport_ImportModule("base64");
	sha1_fn = hl ? PyObject_GetAttrString(hl, "sha1") : NULL;
	b64_fn = b64 ? PyObject_GetAttrString(b64, "b64encode") : NULL;
	Py_XDECREF(hl);
	Py_XDECREF(b64);
	return sha1_fn && b64_fn ? 0 : -1;
}
