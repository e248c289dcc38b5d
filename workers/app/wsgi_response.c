/* One request through the WSGI app: start_response() and write() (PEP 3333
 * rules and type checks), iteration of the returned body with writes done
 * with the GIL released, close() in every case, and the error paths: a 500
 * while nothing was sent, else the connection is dropped. */
#include "workers/app/wsgi.h"

#include <strings.h>

/* The start_response callable of one request, and its response state. */
struct wsgi_sr {
	PyObject_HEAD
	vectorcallfunc vectorcall;
	struct drover_request *req; /* NULL once the request is over */
	struct drover_response *resp;
	PyObject *status; /* validated str "NNN reason", NULL before start_response */
	PyObject *headers; /* list or tuple of (str, str) */
	long long remaining; /* of the app's Content-Length; -1: none */
	bool headers_sent; /* status and headers handed to drover */
	bool client_gone; /* a write failed: stop, drop the connection */
};

static PyTypeObject sr_type;

enum { SENT_OK = 0, SENT_ERR = -1, SENT_GONE = -2 };

static const char *const hop_by_hop[] = { "connection", "keep-alive", "proxy-authenticate",
					  "proxy-authorization", "te", "trailers",
					  "transfer-encoding", "upgrade" };

static bool is_hop_by_hop(const char *name)
{
	for (size_t i = 0; i < sizeof hop_by_hop / sizeof hop_by_hop[0]; i++)
		if (strcasecmp(name, hop_by_hop[i]) == 0)
			return true;
	return false;
}

static bool is_tchar(Py_UCS1 c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A header name (token) or value (latin-1 without control characters). */
static int check_text(PyObject *s, bool name, Py_ssize_t idx)
{
	const char *what = name ? "name" : "value";
	if (!PyUnicode_Check(s)) {
		PyErr_Format(PyExc_TypeError, "start_response: header %zd %s must be str, not %.80s",
			     idx, what, Py_TYPE(s)->tp_name);
		return -1;
	}
	if (PyUnicode_READY(s) < 0)
		return -1;
	Py_ssize_t n = PyUnicode_GET_LENGTH(s);
	if (PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND || (name && n == 0))
		goto bad;
	const Py_UCS1 *d = PyUnicode_1BYTE_DATA(s);
	for (Py_ssize_t i = 0; i < n; i++) {
		if (name ? !is_tchar(d[i]) : ((d[i] < 0x20 && d[i] != '\t') || d[i] == 0x7f))
			goto bad;
	}
	return 0;
bad:
	PyErr_Format(PyExc_ValueError,
		     "start_response: header %zd %s %R is not %s", idx, what, s,
		     name ? "a valid field name" : "latin-1 text without control characters");
	return -1;
}

static int check_headers(PyObject *headers)
{
	if (!PyList_Check(headers) && !PyTuple_Check(headers)) {
		PyErr_Format(PyExc_TypeError, "start_response: headers must be a list, not %.80s",
			     Py_TYPE(headers)->tp_name);
		return -1;
	}
	Py_ssize_t n = PySequence_Fast_GET_SIZE(headers);
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *h = PySequence_Fast_GET_ITEM(headers, i);
		if (!PyTuple_Check(h) || PyTuple_GET_SIZE(h) != 2) {
			PyErr_Format(PyExc_TypeError,
				     "start_response: header %zd must be a (name, value) tuple, not %.80s",
				     i, Py_TYPE(h)->tp_name);
			return -1;
		}
		if (check_text(PyTuple_GET_ITEM(h, 0), true, i) < 0 ||
		    check_text(PyTuple_GET_ITEM(h, 1), false, i) < 0)
			return -1;
	}
	return 0;
}

/* "200 OK": returns the code, or -1 with an exception. */
static int check_status(PyObject *st)
{
	if (!PyUnicode_Check(st)) {
		PyErr_Format(PyExc_TypeError, "start_response: status must be str like '200 OK', not %.80s",
			     Py_TYPE(st)->tp_name);
		return -1;
	}
	if (PyUnicode_READY(st) < 0)
		return -1;
	Py_ssize_t n = PyUnicode_GET_LENGTH(st);
	const Py_UCS1 *d = PyUnicode_1BYTE_DATA(st);
	/* 200..599: a 1xx is interim, never the final answer (RFC 9110
	 * section 15.2); PEP 3333 leaves 100 Continue to the server. */
	if (PyUnicode_KIND(st) != PyUnicode_1BYTE_KIND || n < 3 || d[0] < '2' || d[0] > '5' ||
	    d[1] < '0' || d[1] > '9' || d[2] < '0' || d[2] > '9' || (n > 3 && d[3] != ' '))
		goto bad;
	for (Py_ssize_t i = 3; i < n; i++)
		if ((d[i] < 0x20 && d[i] != '\t') || d[i] == 0x7f)
			goto bad;
	return (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
bad:
	PyErr_Format(PyExc_ValueError, "start_response: status must look like '200 OK' (200..599: a 1xx is interim), got %R", st);
	return -1;
}

static PyObject *sr_write_method(PyObject *self, PyObject *data);
static PyMethodDef write_def = { "write", sr_write_method, METH_O,
				 "write(bytes): send body bytes now (PEP 3333 legacy API)" };

static PyObject *sr_start(struct wsgi_sr *sr, PyObject *status, PyObject *headers,
			  PyObject *exc_info)
{
	if (exc_info && exc_info != Py_None) {
		if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
			PyErr_SetString(PyExc_TypeError, "start_response: exc_info must be a 3-tuple");
			return NULL;
		}
		if (sr->headers_sent) { /* too late to change: re-raise, as PEP 3333 says */
			PyObject *t = PyTuple_GET_ITEM(exc_info, 0);
			PyObject *v = PyTuple_GET_ITEM(exc_info, 1);
			PyObject *tb = PyTuple_GET_ITEM(exc_info, 2);
			PyErr_Restore(Py_NewRef(t), Py_NewRef(v), tb == Py_None ? NULL : Py_NewRef(tb));
			return NULL;
		}
	} else if (sr->status) {
		PyErr_SetString(PyExc_RuntimeError,
				"start_response() called a second time without exc_info");
		return NULL;
	}
	if (check_status(status) < 0 || check_headers(headers) < 0)
		return NULL;
	Py_XSETREF(sr->status, Py_NewRef(status));
	Py_XSETREF(sr->headers, Py_NewRef(headers));
	/* Not kept in sr: the bound method refers to sr, that would be a cycle. */
	return PyCFunction_New(&write_def, (PyObject *)sr);
}

static PyObject *sr_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
	struct wsgi_sr *sr = (struct wsgi_sr *)self;
	Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
	PyObject *exc_info = nargs > 2 ? args[2] : NULL;
	Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
	if (nkw == 1 && nargs == 2 &&
	    PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "exc_info") == 0) {
		exc_info = args[2];
		nkw = 0;
	}
	if (nargs < 2 || nargs > 3 || nkw) {
		PyErr_SetString(PyExc_TypeError,
				"start_response(status, headers, exc_info=None) takes 2 or 3 arguments");
		return NULL;
	}
	if (!sr->req) {
		PyErr_SetString(PyExc_RuntimeError, "start_response() called after its request ended");
		return NULL;
	}
	return sr_start(sr, args[0], args[1], exc_info);
}

/* Content-Length given by the app: bytes beyond it are dropped, not sent. */
static int note_length(struct wsgi_sr *sr, PyObject *value)
{
	const char *v = (const char *)PyUnicode_1BYTE_DATA(value);
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || *end || errno) {
		PyErr_Format(PyExc_ValueError, "Content-Length %R is not a number", value);
		return -1;
	}
	sr->remaining = n;
	return 0;
}

static int send_header_list(struct wsgi_sr *sr)
{
	Py_ssize_t n = PySequence_Fast_GET_SIZE(sr->headers);
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *h = PySequence_Fast_GET_ITEM(sr->headers, i);
		PyObject *name = PyTuple_GET_ITEM(h, 0), *value = PyTuple_GET_ITEM(h, 1);
		const char *nm = (const char *)PyUnicode_1BYTE_DATA(name);
		if (is_hop_by_hop(nm)) /* the server owns the connection's framing */
			continue;
		if (strcasecmp(nm, "content-length") == 0 && note_length(sr, value) < 0)
			return -1;
		if (sr->resp->ops->header(sr->resp, nm, (const char *)PyUnicode_1BYTE_DATA(value)) < 0) {
			PyErr_Format(PyExc_ValueError, "drover refused the header %R", name);
			return -1;
		}
	}
	return 0;
}

int wsgi_sr_send_headers(struct wsgi_sr *sr, long long length)
{
	if (sr->headers_sent)
		return 0;
	if (!sr->status) {
		PyErr_SetString(PyExc_RuntimeError,
				"the app sent body bytes (or returned) without calling start_response()");
		return -1;
	}
	/* Checked again: the app may have changed the list since start_response. */
	int code = check_status(sr->status);
	if (code < 0 || check_headers(sr->headers) < 0)
		return -1;
	const char *reason = (const char *)PyUnicode_1BYTE_DATA(sr->status) + 4;
	if (PyUnicode_GET_LENGTH(sr->status) <= 4)
		reason = NULL;
	sr->remaining = -1;
	if (sr->resp->ops->status(sr->resp, code, reason) < 0 || send_header_list(sr) < 0) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_RuntimeError, "drover refused the response status");
		return -1;
	}
	/* The length of the body we are about to send, unless the status sends
	 * none (1xx, 204, 304: a 304's length would have to be the 200's, RFC
	 * 9110 §8.6, which only the app knows). */
	if (code < 200 || code == 204 || code == 304)
		length = -1;
	if (length >= 0 && sr->remaining < 0) {
		char b[24];
		snprintf(b, sizeof b, "%lld", length);
		if (sr->resp->ops->header(sr->resp, "Content-Length", b) == 0)
			sr->remaining = length;
	}
	sr->headers_sent = true;
	return 0;
}

long long wsgi_sr_remaining(const struct wsgi_sr *sr)
{
	return sr->remaining;
}

struct drover_response *wsgi_sr_resp(struct wsgi_sr *sr)
{
	return sr->resp;
}

void wsgi_sr_sent(struct wsgi_sr *sr, size_t n)
{
	if (sr->remaining >= 0)
		sr->remaining -= (long long)n < sr->remaining ? (long long)n : sr->remaining;
}

/* Send one body item: SENT_OK, SENT_ERR (exception set) or SENT_GONE. */
static int sr_write(struct wsgi_sr *sr, PyObject *item)
{
	if (!PyBytes_Check(item)) {
		PyErr_Format(PyExc_TypeError, "response body items must be bytes, not %.80s",
			     Py_TYPE(item)->tp_name);
		return SENT_ERR;
	}
	size_t n = (size_t)PyBytes_GET_SIZE(item);
	if (n == 0) /* PEP 3333: empty items do not cause the headers to be sent */
		return SENT_OK;
	if (wsgi_sr_send_headers(sr, -1) < 0)
		return SENT_ERR;
	if (sr->remaining >= 0 && (long long)n > sr->remaining)
		n = (size_t)sr->remaining;
	if (n == 0)
		return SENT_OK;
	struct drover_response *resp = sr->resp;
	const char *p = PyBytes_AS_STRING(item);
	int rc;
	Py_BEGIN_ALLOW_THREADS /* item is ours (referenced) and immutable meanwhile */
	rc = resp->ops->write(resp, p, n);
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		sr->client_gone = true;
		return SENT_GONE;
	}
	wsgi_sr_sent(sr, n);
	return SENT_OK;
}

static PyObject *sr_write_method(PyObject *self, PyObject *data)
{
	struct wsgi_sr *sr = (struct wsgi_sr *)self;
	if (!sr->req) {
		PyErr_SetString(PyExc_RuntimeError, "write() called after its request ended");
		return NULL;
	}
	int rc = sr_write(sr, data);
	if (rc == SENT_GONE)
		PyErr_SetString(PyExc_OSError, "client disconnected");
	if (rc != SENT_OK)
		return NULL;
	Py_RETURN_NONE;
}

static int send_sequence(struct wsgi_sr *sr, PyObject *seq)
{
	for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
		PyObject *item = Py_NewRef(PySequence_Fast_GET_ITEM(seq, i));
		int rc = sr_write(sr, item);
		Py_DECREF(item);
		if (rc != SENT_OK)
			return rc;
	}
	return SENT_OK;
}

static int send_iterable(struct wsgi_sr *sr, PyObject *result)
{
	PyObject *it = PyObject_GetIter(result), *item;
	if (!it)
		return SENT_ERR;
	int rc = SENT_OK;
	while (rc == SENT_OK && (item = PyIter_Next(it))) {
		rc = sr_write(sr, item);
		Py_DECREF(item);
	}
	Py_DECREF(it);
	if (rc == SENT_OK && PyErr_Occurred())
		rc = SENT_ERR;
	return rc;
}

/* A list or tuple of bytes is a body complete without waiting: its length
 * is known before the first byte goes (PEP 3333 lets the server use len()
 * of the iterable), so it gets an exact Content-Length instead of chunked
 * framing.  -1 when an item is not bytes (the iteration then reports it). */
static long long sequence_length(PyObject *seq)
{
	long long total = 0;
	for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
		PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
		if (!PyBytes_Check(item))
			return -1;
		total += PyBytes_GET_SIZE(item);
	}
	return total;
}

static int send_known(struct wsgi_sr *sr, PyObject *seq)
{
	/* An all-empty body sends its headers at the end (PEP 3333: not before
	 * the first non-empty item); drover then gives Content-Length: 0. */
	long long len = sequence_length(seq);
	if (len > 0 && wsgi_sr_send_headers(sr, len) < 0)
		return SENT_ERR;
	return send_sequence(sr, seq);
}

static int send_result(struct wsgi_sr *sr, PyObject *result)
{
	int rc = 1;
	if (Py_IS_TYPE(result, &wsgi_file_wrapper_type))
		rc = wsgi_file_send(sr, result); /* 1: no file descriptor, iterate */
	if (rc == 1) {
		/* Any other iterable is streamed: each item goes out as it comes,
		 * chunked without a Content-Length (PEP 3333 "Buffering and
		 * Streaming"). */
		if (PyList_CheckExact(result) || PyTuple_CheckExact(result))
			rc = send_known(sr, result);
		else
			rc = send_iterable(sr, result);
	}
	/* An empty body still needs its status line. */
	if (rc == SENT_OK && wsgi_sr_send_headers(sr, -1) < 0)
		rc = SENT_ERR;
	return rc;
}

/* close() is called whatever happened, as PEP 3333 requires: apps release
 * resources (and gunicorn users count on it) there. */
static void close_result(struct drover_request *req, PyObject *result)
{
	if (PyList_CheckExact(result) || PyTuple_CheckExact(result) || PyBytes_CheckExact(result))
		return;
	PyObject *exc_t, *exc_v, *exc_tb;
	PyErr_Fetch(&exc_t, &exc_v, &exc_tb); /* keep a pending error for the caller */
	PyObject *close = PyObject_GetAttrString(result, "close");
	if (!close) {
		PyErr_Clear();
	} else {
		PyObject *r = PyObject_CallNoArgs(close);
		if (!r)
			wsgi_log_exception("Error closing the response of %.*s %.*s",
					   (int)req->method.len, req->method.ptr,
					   (int)req->target.len, req->target.ptr);
		Py_XDECREF(r);
		Py_DECREF(close);
	}
	PyErr_Restore(exc_t, exc_v, exc_tb);
}

static int send_500(struct drover_response *resp)
{
	static const char body[] = "Internal Server Error\n";
	if (resp->ops->status(resp, 500, NULL) < 0 ||
	    resp->ops->header(resp, "Content-Type", "text/plain; charset=utf-8") < 0 ||
	    resp->ops->header(resp, "Content-Length", "22") < 0)
		return -1;
	return resp->ops->write(resp, body, sizeof body - 1);
}

/* The app failed (exception pending), or the client went away. */
static int serve_failed(struct wsgi_sr *sr, struct drover_request *req,
			struct drover_response *resp, int rc)
{
	if (rc == SENT_GONE || (sr && sr->client_gone)) {
		PyErr_Clear(); /* nobody to answer; not the app's fault */
		return -1;
	}
	wsgi_log_exception("Error handling request %.*s %.*s", (int)req->method.len,
			   req->method.ptr, (int)req->target.len, req->target.ptr);
	if (sr && sr->headers_sent)
		return -1; /* half a response is out: only closing tells the client */
	return send_500(resp) < 0 ? -1 : 0;
}

static struct wsgi_sr *sr_new(struct drover_request *req, struct drover_response *resp)
{
	struct wsgi_sr *sr = PyObject_New(struct wsgi_sr, &sr_type);
	if (!sr)
		return NULL;
	sr->vectorcall = sr_call;
	sr->req = req;
	sr->resp = resp;
	sr->status = sr->headers = NULL;
	sr->remaining = -1;
	sr->headers_sent = sr->client_gone = false;
	return sr;
}

int wsgi_serve(struct drover_request *req, struct drover_response *resp)
{
	PyObject *input = NULL, *environ = NULL, *result = NULL;
	struct wsgi_sr *sr = sr_new(req, resp);
	int rc = SENT_ERR;
	if (sr && (input = wsgi_input_new(req)) && (environ = wsgi_environ_build(req, input))) {
		PyObject *args[2] = { environ, (PyObject *)sr };
		wsgi_hooks_pre_request(environ);
		result = PyObject_Vectorcall(wsgi_g.callable, args, 2, NULL);
		if (result)
			rc = send_result(sr, result);
	}
	if (rc != SENT_OK)
		rc = serve_failed(sr, req, resp, rc);
	if (result)
		close_result(req, result);
	if (environ)
		wsgi_hooks_post_request(environ, sr ? sr->status : NULL);
	/* The app may keep these objects; they must not reach a dead request. */
	if (sr) {
		sr->req = NULL;
		sr->resp = NULL;
	}
	if (input)
		wsgi_input_detach(input);
	Py_XDECREF(result);
	Py_XDECREF(environ);
	Py_XDECREF(input);
	Py_XDECREF(sr);
	return rc;
}

static void sr_dealloc(PyObject *self)
{
	struct wsgi_sr *sr = (struct wsgi_sr *)self;
	Py_XDECREF(sr->status);
	Py_XDECREF(sr->headers);
	Py_TYPE(self)->tp_free(self);
}

static PyTypeObject sr_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "drover.StartResponse",
	.tp_basicsize = sizeof(struct wsgi_sr),
	.tp_dealloc = sr_dealloc,
	.tp_vectorcall_offset = offsetof(struct wsgi_sr, vectorcall),
	.tp_call = PyVectorcall_Call,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
	.tp_doc = "start_response(status, headers, exc_info=None) of one request",
};

int wsgi_response_setup(void)
{
	return PyType_Ready(&sr_type);
}
