/* wsgi.input and wsgi.errors.  The input streams the request body through
 * req->ops->read_body with the GIL released (the read may block on the
 * client) and keeps at most one small buffer for readline(); large read(n)
 * calls go straight into the bytes object they return. */
#include "workers/app/wsgi.h"

#include <string.h>

#define INPUT_BUF 16384

struct wsgi_input {
	PyObject_HEAD
	struct drover_request *req; /* NULL once the request is over */
	char *buf; /* readline() look-ahead: buf[off..len) unread */
	size_t off, len;
	long long consumed; /* body bytes read from the server so far */
	bool eof;
};

/* A bytes object being filled; grown geometrically. */
struct gbuf {
	PyObject *b;
	Py_ssize_t len;
};

static int gbuf_reserve(struct gbuf *g, Py_ssize_t extra)
{
	Py_ssize_t need = g->len + extra;
	if (g->b && PyBytes_GET_SIZE(g->b) >= need)
		return 0;
	if (!g->b) {
		g->b = PyBytes_FromStringAndSize(NULL, need);
		return g->b ? 0 : -1;
	}
	Py_ssize_t cap = PyBytes_GET_SIZE(g->b);
	cap = cap > PY_SSIZE_T_MAX / 2 ? need : cap * 2;
	return _PyBytes_Resize(&g->b, cap < need ? need : cap);
}

static int gbuf_append(struct gbuf *g, const char *p, size_t n)
{
	if (gbuf_reserve(g, (Py_ssize_t)n) < 0)
		return -1;
	memcpy(PyBytes_AS_STRING(g->b) + g->len, p, n);
	g->len += (Py_ssize_t)n;
	return 0;
}

static PyObject *gbuf_finish(struct gbuf *g)
{
	if (!g->b)
		return PyBytes_FromStringAndSize("", 0);
	if (PyBytes_GET_SIZE(g->b) != g->len && _PyBytes_Resize(&g->b, g->len) < 0)
		return NULL;
	return g->b;
}

static struct drover_request *input_req(struct wsgi_input *in)
{
	if (!in->req)
		PyErr_SetString(PyExc_ValueError, "wsgi.input used after its request ended");
	return in->req;
}

/* Read up to n body bytes into dst with the GIL released.  Returns the count
 * (0 at the end of the body) or -1 with OSError set. */
static Py_ssize_t input_pull(struct wsgi_input *in, char *dst, size_t n)
{
	struct drover_request *req = input_req(in);
	if (!req)
		return -1;
	if (in->eof)
		return 0;
	ssize_t r;
	Py_BEGIN_ALLOW_THREADS
	r = req->ops->read_body(req, dst, n);
	Py_END_ALLOW_THREADS
	if (r < 0) {
		PyErr_SetString(PyExc_OSError, "client disconnected while sending the request body");
		return -1;
	}
	in->consumed += r;
	/* With a known length, stop at it: saves a read_body() call per body. */
	if (r == 0 || (req->content_length >= 0 && in->consumed >= req->content_length))
		in->eof = true;
	return r;
}

static int input_fill(struct wsgi_input *in)
{
	if (!in->buf && !(in->buf = PyMem_Malloc(INPUT_BUF))) {
		PyErr_NoMemory();
		return -1;
	}
	Py_ssize_t r = input_pull(in, in->buf, INPUT_BUF);
	if (r < 0)
		return -1;
	in->off = 0;
	in->len = (size_t)r;
	return 0;
}

/* Append buffered bytes to g: up to max, and through the first newline when
 * line is set.  Returns true when a newline ended the take. */
static bool input_take(struct wsgi_input *in, struct gbuf *g, size_t max, bool line,
		       int *err)
{
	size_t avail = in->len - in->off;
	size_t n = avail < max ? avail : max;
	const char *p = in->buf + in->off;
	const char *nl = line ? memchr(p, '\n', n) : NULL;
	if (nl)
		n = (size_t)(nl - p) + 1;
	if (!g->b && (nl || n == max)) {
		/* The common readline(): the whole line is in the buffer. */
		g->b = PyBytes_FromStringAndSize(p, (Py_ssize_t)n);
		g->len = (Py_ssize_t)n;
		*err = g->b ? 0 : -1;
	} else {
		*err = gbuf_append(g, p, n);
	}
	in->off += n;
	return nl != NULL;
}

/* A guess at the size of the rest of the body, to allocate once. */
static size_t input_hint(struct wsgi_input *in, size_t max)
{
	long long cl = in->req ? in->req->content_length : -1;
	size_t want = cl > in->consumed ? (size_t)(cl - in->consumed) : INPUT_BUF;
	return want < max ? want : max;
}

/* read(max) or readline(max): max is SIZE_MAX for "no limit". */
static PyObject *input_read_impl(struct wsgi_input *in, size_t max, bool line)
{
	struct gbuf g = { NULL, 0 };
	int err = 0;
	if (!input_req(in))
		return NULL;
	while ((size_t)g.len < max) {
		size_t want = max - (size_t)g.len;
		if (in->off < in->len) {
			if (input_take(in, &g, want, line, &err) || err)
				break;
		} else if (in->eof) {
			break;
		} else if (!line && want >= INPUT_BUF) {
			/* Big reads bypass the buffer: one copy, by the server. */
			size_t chunk = input_hint(in, want);
			if ((err = gbuf_reserve(&g, (Py_ssize_t)chunk)) < 0)
				break;
			Py_ssize_t r = input_pull(in, PyBytes_AS_STRING(g.b) + g.len,
						  (size_t)(PyBytes_GET_SIZE(g.b) - g.len));
			if (r < 0)
				err = -1;
			else
				g.len += r;
			if (err)
				break;
		} else if ((err = input_fill(in)) < 0) {
			break;
		}
	}
	if (err) {
		Py_XDECREF(g.b);
		return NULL;
	}
	return gbuf_finish(&g);
}

static int size_arg(PyObject *const *args, Py_ssize_t nargs, size_t *max)
{
	*max = SIZE_MAX;
	if (nargs > 1) {
		PyErr_SetString(PyExc_TypeError, "expected at most one argument");
		return -1;
	}
	if (nargs == 0 || args[0] == Py_None)
		return 0;
	Py_ssize_t n = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
	if (n == -1 && PyErr_Occurred())
		return -1;
	if (n >= 0)
		*max = (size_t)n;
	return 0;
}

static PyObject *input_read(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	size_t max;
	if (size_arg(args, nargs, &max) < 0)
		return NULL;
	return input_read_impl((struct wsgi_input *)self, max, false);
}

static PyObject *input_readline(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	size_t max;
	if (size_arg(args, nargs, &max) < 0)
		return NULL;
	return input_read_impl((struct wsgi_input *)self, max, true);
}

static PyObject *input_readlines(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	size_t hint;
	if (size_arg(args, nargs, &hint) < 0)
		return NULL;
	PyObject *lines = PyList_New(0);
	size_t total = 0;
	while (lines) {
		PyObject *l = input_read_impl((struct wsgi_input *)self, SIZE_MAX, true);
		if (!l || PyBytes_GET_SIZE(l) == 0 || PyList_Append(lines, l) < 0) {
			if (!l || PyBytes_GET_SIZE(l) != 0)
				Py_CLEAR(lines);
			Py_XDECREF(l);
			break;
		}
		total += (size_t)PyBytes_GET_SIZE(l);
		Py_DECREF(l);
		if (hint != SIZE_MAX && hint > 0 && total >= hint)
			break;
	}
	return lines;
}

static PyObject *input_next(PyObject *self)
{
	PyObject *l = input_read_impl((struct wsgi_input *)self, SIZE_MAX, true);
	if (l && PyBytes_GET_SIZE(l) == 0)
		Py_CLEAR(l); /* NULL without an exception: StopIteration */
	return l;
}

static void input_dealloc(PyObject *self)
{
	PyMem_Free(((struct wsgi_input *)self)->buf);
	Py_TYPE(self)->tp_free(self);
}

static PyMethodDef input_methods[] = {
	{ "read", (PyCFunction)(void (*)(void))input_read, METH_FASTCALL,
	  "read(size=-1): up to size bytes of the body (all of it by default)" },
	{ "readline", (PyCFunction)(void (*)(void))input_readline, METH_FASTCALL,
	  "readline(size=-1): one line of the body" },
	{ "readlines", (PyCFunction)(void (*)(void))input_readlines, METH_FASTCALL,
	  "readlines(hint=-1): the remaining lines" },
	{ NULL, NULL, 0, NULL },
};

static PyTypeObject input_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "drover.Input",
	.tp_basicsize = sizeof(struct wsgi_input),
	.tp_dealloc = input_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "wsgi.input: the request body, streamed",
	.tp_iter = PyObject_SelfIter,
	.tp_iternext = input_next,
	.tp_methods = input_methods,
};

PyObject *wsgi_input_new(struct drover_request *req)
{
	struct wsgi_input *in = PyObject_New(struct wsgi_input, &input_type);
	if (!in)
		return NULL;
	in->req = req;
	in->buf = NULL;
	in->off = in->len = 0;
	in->consumed = 0;
	in->eof = req->content_length == 0;
	return (PyObject *)in;
}

void wsgi_input_detach(PyObject *input)
{
	struct wsgi_input *in = (struct wsgi_input *)input;
	in->req = NULL;
	PyMem_Free(in->buf); /* the app may keep the object; not the buffer */
	in->buf = NULL;
	in->off = in->len = 0;
}

/* ---- wsgi.errors: text written to fd 2, the worker's error log. ---- */

static PyObject *errors_write(PyObject *self, PyObject *arg)
{
	Py_ssize_t n;
	const char *s;
	if (PyBytes_Check(arg)) { /* lenient: some apps pass bytes */
		s = PyBytes_AS_STRING(arg);
		n = PyBytes_GET_SIZE(arg);
	} else if (!(s = PyUnicode_AsUTF8AndSize(arg, &n))) {
		return NULL;
	}
	wsgi_write_fd(2, s, (size_t)n);
	return PyLong_FromSsize_t(n);
}

static PyObject *errors_writelines(PyObject *self, PyObject *seq)
{
	PyObject *it = PyObject_GetIter(seq), *item;
	if (!it)
		return NULL;
	while ((item = PyIter_Next(it))) {
		PyObject *r = errors_write(self, item);
		Py_DECREF(item);
		if (!r)
			break;
		Py_DECREF(r);
	}
	Py_DECREF(it);
	if (PyErr_Occurred())
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *errors_flush(PyObject *self, PyObject *unused)
{
	Py_RETURN_NONE; /* unbuffered: every write() is a write(2) */
}

static PyMethodDef errors_methods[] = {
	{ "write", errors_write, METH_O, "write(str) to the error log" },
	{ "writelines", errors_writelines, METH_O, "write each str of a sequence" },
	{ "flush", errors_flush, METH_NOARGS, "no-op: writes are unbuffered" },
	{ NULL, NULL, 0, NULL },
};

static PyTypeObject errors_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "drover.Errors",
	.tp_basicsize = sizeof(PyObject),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "wsgi.errors: the worker's error log",
	.tp_methods = errors_methods,
};

PyObject *wsgi_errors_new(void)
{
	return PyObject_New(PyObject, &errors_type);
}

int wsgi_input_setup(void)
{
	if (PyType_Ready(&input_type) < 0 || PyType_Ready(&errors_type) < 0)
		return -1;
	return 0;
}
