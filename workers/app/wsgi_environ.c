/* The WSGI environ of a request (PEP 3333), built straight from struct
 * drover_request with interned keys, cached constant values and a cache of
 * HTTP_* key strings, so a typical request allocates only the dict and the
 * per-request value strings. */
#include "workers/app/wsgi.h"

#include <string.h>

#include "drover_config.h"
#include "workers/wlog.h"

enum env_key {
	K_REQUEST_METHOD, K_SCRIPT_NAME, K_PATH_INFO, K_QUERY_STRING, K_CONTENT_TYPE,
	K_CONTENT_LENGTH, K_SERVER_NAME, K_SERVER_PORT, K_SERVER_PROTOCOL, K_SERVER_SOFTWARE,
	K_REMOTE_ADDR, K_REMOTE_PORT, K_RAW_URI, K_WSGI_VERSION, K_WSGI_URL_SCHEME,
	K_WSGI_INPUT, K_WSGI_ERRORS, K_WSGI_MULTITHREAD, K_WSGI_MULTIPROCESS,
	K_WSGI_RUN_ONCE, K_WSGI_FILE_WRAPPER, K_WSGI_INPUT_TERMINATED, K_MAX
};

static const char *const key_names[K_MAX] = {
	"REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE",
	"CONTENT_LENGTH", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "SERVER_SOFTWARE",
	"REMOTE_ADDR", "REMOTE_PORT", "RAW_URI", "wsgi.version", "wsgi.url_scheme",
	"wsgi.input", "wsgi.errors", "wsgi.multithread", "wsgi.multiprocess",
	"wsgi.run_once", "wsgi.file_wrapper", "wsgi.input_terminated",
};

/* Methods and protocols nearly every request uses: shared, never rebuilt. */
static const char *const common_methods[] = { "GET", "POST", "HEAD", "PUT", "DELETE",
					      "OPTIONS", "PATCH" };
#define NMETHODS (sizeof common_methods / sizeof common_methods[0])

static struct {
	PyObject *keys[K_MAX];
	PyObject *methods[NMETHODS];
	PyObject *empty, *http11, *http10, *scheme_http, *scheme_https, *https_on, *version,
		*software;
	/* The listener of the last request: workers usually have one or two. */
	char server_addr[64];
	int server_port;
	PyObject *server_name, *server_port_str;
} env;

/* HTTP_* keys by header name.  Client-chosen names could otherwise make us
 * build the same key string for every request; the table only ever fills up
 * (bounded), after which unknown names are built per request. */
#define HKEY_SLOTS 256
#define HKEY_NAME_MAX 40
struct hkey {
	unsigned char len;
	char lname[HKEY_NAME_MAX]; /* lower-cased header name */
	PyObject *key; /* "HTTP_USER_AGENT", or CONTENT_TYPE / CONTENT_LENGTH */
};
static struct hkey hkeys[HKEY_SLOTS];

int wsgi_environ_setup(void)
{
	for (size_t i = 0; i < K_MAX; i++)
		if (!(env.keys[i] = PyUnicode_InternFromString(key_names[i])))
			return -1;
	for (size_t i = 0; i < NMETHODS; i++)
		if (!(env.methods[i] = PyUnicode_InternFromString(common_methods[i])))
			return -1;
	env.empty = PyUnicode_FromStringAndSize("", 0);
	env.http11 = PyUnicode_InternFromString("HTTP/1.1");
	env.http10 = PyUnicode_InternFromString("HTTP/1.0");
	env.scheme_http = PyUnicode_InternFromString("http");
	env.scheme_https = PyUnicode_InternFromString("https");
	env.https_on = PyUnicode_InternFromString("on");
	env.version = Py_BuildValue("(ii)", 1, 0);
	env.software = PyUnicode_FromString("drover/" DROVER_VERSION);
	if (!env.empty || !env.http11 || !env.http10 || !env.scheme_http ||
	    !env.scheme_https || !env.https_on || !env.version || !env.software)
		return -1;
	return 0;
}

static PyObject *latin1(const char *p, size_t n)
{
	return PyUnicode_DecodeLatin1(p, (Py_ssize_t)n, NULL);
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* PATH_INFO: the path percent-decoded, each byte one code point (PEP 3333's
 * "bytes as latin-1 str"); a '%' not followed by two hex digits stays as is. */
static PyObject *path_info(const struct drover_str *path)
{
	if (!memchr(path->ptr, '%', path->len))
		return latin1(path->ptr, path->len);
	char stackbuf[1024];
	stackbuf[0] = 0; /* quiets a false -Wmaybe-uninitialized */
	char *out = path->len <= sizeof stackbuf ? stackbuf : PyMem_Malloc(path->len);
	if (!out)
		return PyErr_NoMemory();
	size_t o = 0;
	for (size_t i = 0; i < path->len; i++) {
		unsigned char c = (unsigned char)path->ptr[i];
		int hi, lo;
		if (c == '%' && i + 2 < path->len &&
		    (hi = hexval((unsigned char)path->ptr[i + 1])) >= 0 &&
		    (lo = hexval((unsigned char)path->ptr[i + 2])) >= 0) {
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = (char)c;
		}
	}
	PyObject *s = latin1(out, o);
	if (out != stackbuf)
		PyMem_Free(out);
	return s;
}

static PyObject *method_str(const struct drover_str *m)
{
	for (size_t i = 0; i < NMETHODS; i++)
		if (strlen(common_methods[i]) == m->len &&
		    memcmp(common_methods[i], m->ptr, m->len) == 0)
			return Py_NewRef(env.methods[i]);
	return latin1(m->ptr, m->len);
}

static PyObject *protocol_str(const struct drover_request *req)
{
	if (req->http_major == 1 && req->http_minor == 1)
		return Py_NewRef(env.http11);
	if (req->http_major == 1 && req->http_minor == 0)
		return Py_NewRef(env.http10);
	return PyUnicode_FromFormat("HTTP/%d.%d", req->http_major, req->http_minor);
}

static PyObject *int_str(int v)
{
	char b[16];
	int n = snprintf(b, sizeof b, "%d", v);
	return PyUnicode_FromStringAndSize(b, n);
}

/* SERVER_NAME and SERVER_PORT come from the listener the request arrived on
 * (not the Host header, which the client chooses). */
static int server_strs(const struct drover_request *req, PyObject **name, PyObject **port)
{
	const char *addr = req->server_addr ? req->server_addr : "";
	if (!env.server_name || env.server_port != req->server_port ||
	    strcmp(env.server_addr, addr) != 0) {
		PyObject *n = PyUnicode_DecodeLatin1(addr, (Py_ssize_t)strlen(addr), NULL);
		PyObject *p = n ? int_str(req->server_port) : NULL;
		if (!p) {
			Py_XDECREF(n);
			return -1;
		}
		Py_XSETREF(env.server_name, n);
		Py_XSETREF(env.server_port_str, p);
		env.server_port = req->server_port;
		snprintf(env.server_addr, sizeof env.server_addr, "%s", addr);
	}
	*name = Py_NewRef(env.server_name);
	*port = Py_NewRef(env.server_port_str);
	return 0;
}

/* Build "HTTP_X_Y" (or CONTENT_TYPE / CONTENT_LENGTH) from a header name. */
static PyObject *hkey_build(const char *name, size_t len)
{
	if ((len == 12 && strncasecmp(name, "content-type", 12) == 0))
		return Py_NewRef(env.keys[K_CONTENT_TYPE]);
	if ((len == 14 && strncasecmp(name, "content-length", 14) == 0))
		return Py_NewRef(env.keys[K_CONTENT_LENGTH]);
	PyObject *k = PyUnicode_New((Py_ssize_t)len + 5, 127);
	if (!k)
		return NULL;
	Py_UCS1 *d = PyUnicode_1BYTE_DATA(k);
	memcpy(d, "HTTP_", 5);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		d[5 + i] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (Py_UCS1)(c - 32) : c;
	}
	return k;
}

static unsigned hkey_hash(const char *lname, size_t len)
{
	unsigned h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)lname[i]) * 16777619u;
	return h;
}

/* The environ key of a header name (a new reference); NULL without an
 * exception for names that must be dropped (containing '_', so that
 * "X_Forwarded_For" cannot pose as "X-Forwarded-For", or not 7-bit). */
static PyObject *hkey_get(const struct drover_str *name)
{
	char lname[HKEY_NAME_MAX];
	bool cacheable = name->len < HKEY_NAME_MAX;
	for (size_t i = 0; i < name->len; i++) {
		unsigned char c = (unsigned char)name->ptr[i];
		if (c == '_' || c >= 0x80 || c <= ' ')
			return NULL;
		if (cacheable)
			lname[i] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
	}
	if (!cacheable)
		return hkey_build(name->ptr, name->len);
	unsigned h = hkey_hash(lname, name->len);
	for (unsigned probe = 0; probe < 8; probe++) {
		struct hkey *e = &hkeys[(h + probe) % HKEY_SLOTS];
		if (!e->key) {
			if (!(e->key = hkey_build(name->ptr, name->len)))
				return NULL;
			PyUnicode_InternInPlace(&e->key);
			e->len = (unsigned char)name->len;
			memcpy(e->lname, lname, name->len);
			return Py_NewRef(e->key);
		}
		if (e->len == name->len && memcmp(e->lname, lname, name->len) == 0)
			return Py_NewRef(e->key);
	}
	return hkey_build(name->ptr, name->len);
}

/* Store one header; a repeated header is joined to the earlier value(s) with
 * ", " as RFC 9110 allows for list-valued fields. */
static int add_header(PyObject *environ, const struct drover_header *h)
{
	PyObject *key = hkey_get(&h->name);
	if (!key && !PyErr_Occurred())
		wlog_debug("header '%.*s' dropped: a name with '_' (or not 7-bit) would collide "
			   "with '-' in its HTTP_* key", (int)(h->name.len > 64 ? 64 : h->name.len),
			   h->name.ptr);
	if (!key)
		return PyErr_Occurred() ? -1 : 0;
	PyObject *val = latin1(h->value.ptr, h->value.len);
	if (!val) {
		Py_DECREF(key);
		return -1;
	}
	PyObject *old = PyDict_SetDefault(environ, key, val); /* borrowed */
	int rc = old ? 0 : -1;
	if (old && old != val) {
		PyObject *joined = PyUnicode_FromFormat("%U, %U", old, val);
		rc = joined ? PyDict_SetItem(environ, key, joined) : -1;
		Py_XDECREF(joined);
	}
	Py_DECREF(key);
	Py_DECREF(val);
	return rc;
}

/* Set environ[keys[k]] = v, stealing v. */
static int put(PyObject *environ, enum env_key k, PyObject *v)
{
	if (!v)
		return -1;
	int rc = PyDict_SetItem(environ, env.keys[k], v);
	Py_DECREF(v);
	return rc;
}

static int add_request_line(PyObject *e, const struct drover_request *req)
{
	if (put(e, K_REQUEST_METHOD, method_str(&req->method)) ||
	    put(e, K_SCRIPT_NAME, Py_NewRef(env.empty)) ||
	    put(e, K_PATH_INFO, path_info(&req->path)) ||
	    put(e, K_QUERY_STRING, latin1(req->query.ptr, req->query.len)) ||
	    put(e, K_RAW_URI, latin1(req->target.ptr, req->target.len)) ||
	    put(e, K_SERVER_PROTOCOL, protocol_str(req)))
		return -1;
	return 0;
}

static int add_addresses(PyObject *e, const struct drover_request *req)
{
	PyObject *name, *port;
	if (server_strs(req, &name, &port) < 0)
		return -1;
	if (put(e, K_SERVER_NAME, name) || put(e, K_SERVER_PORT, port))
		return -1;
	const char *peer = req->peer_addr ? req->peer_addr : "";
	if (put(e, K_REMOTE_ADDR, latin1(peer, strlen(peer))) ||
	    put(e, K_REMOTE_PORT, int_str(req->peer_port)))
		return -1;
	return 0;
}

static int add_wsgi_keys(PyObject *e, const struct drover_request *req, PyObject *input)
{
	bool https = req->url_scheme && strcmp(req->url_scheme, "https") == 0;
	PyObject *scheme = https ? env.scheme_https : env.scheme_http;
	if (put(e, K_SERVER_SOFTWARE, Py_NewRef(env.software)) ||
	    put(e, K_WSGI_VERSION, Py_NewRef(env.version)) ||
	    put(e, K_WSGI_URL_SCHEME, Py_NewRef(scheme)) ||
	    put(e, K_WSGI_INPUT, Py_NewRef(input)) ||
	    put(e, K_WSGI_ERRORS, Py_NewRef(wsgi_g.errors)) ||
	    put(e, K_WSGI_MULTITHREAD, PyBool_FromLong(wsgi_g.multithread)) ||
	    put(e, K_WSGI_MULTIPROCESS, PyBool_FromLong(wsgi_g.multiprocess)) ||
	    put(e, K_WSGI_RUN_ONCE, Py_NewRef(Py_False)) ||
	    put(e, K_WSGI_FILE_WRAPPER, Py_NewRef((PyObject *)&wsgi_file_wrapper_type)) ||
	    put(e, K_WSGI_INPUT_TERMINATED, Py_NewRef(Py_True)))
		return -1;
	/* CGI's HTTPS=on, as gunicorn sets it for a secure scheme (from a
	 * trusted proxy's X-Forwarded-Proto, see forwarded.c) */
	if (https && PyDict_SetItemString(e, "HTTPS", env.https_on) < 0)
		return -1;
	return 0;
}

PyObject *wsgi_environ_build(const struct drover_request *req, PyObject *input)
{
	PyObject *e = _PyDict_NewPresized(K_MAX + (Py_ssize_t)req->nheaders);
	if (!e)
		return NULL;
	if (add_request_line(e, req) < 0 || add_addresses(e, req) < 0 ||
	    add_wsgi_keys(e, req, input) < 0)
		goto fail;
	for (size_t i = 0; i < req->nheaders; i++)
		if (add_header(e, &req->headers[i]) < 0)
			goto fail;
	return e;
fail:
	Py_DECREF(e);
	return NULL;
}
