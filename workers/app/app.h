/* drover/app.h: the ABI between drover and a C application (a shared object).
 *
 * An app exports one `const struct drover_app` (default symbol name
 * `drover_app`; another with so:PATH:SYMBOL).  drover dlopen()s the object in
 * each worker after fork (or once in the master with preload = true), checks
 * abi_version, calls init() once per worker, handle() once per request (from
 * several threads at once in the thread model), and shutdown() when the
 * worker stops.  The app links against nothing of drover: every call back into
 * the server goes through the function tables below.
 *
 * Versioning: DROVER_APP_ABI_VERSION changes when a struct below changes
 * incompatibly; fields are only ever appended.
 *
 * Signals and EINTR.  drover signals the threads that run the app:
 *  - the stall watchdog sends SIGRTMIN+3 to a thread whose request has run
 *    past stall_threshold (event model) or slow_request (sync, thread) to
 *    capture its stack.  Its handler has SA_RESTART: read(), write(),
 *    accept() and the like are restarted, but the calls the kernel never
 *    restarts (signal(7): nanosleep, clock_nanosleep, poll, select,
 *    epoll_wait, sem_timedwait, socket calls with SO_RCVTIMEO/SO_SNDTIMEO,
 *    ...) return -1 with errno EINTR;
 *  - in the sync and event models the app runs on the thread that also
 *    takes the master's SIGURG (commands), SIGTERM and SIGUSR1, whose
 *    handlers have no SA_RESTART (the worker's own waits must return): there
 *    any blocking call of the app may return EINTR.  (Request threads of the
 *    thread model block those.)
 * A C app must retry on EINTR, as under any signal-based profiler (perf's or
 * gperftools' SIGPROF), e.g. `while (nanosleep(&t, &t) != 0 && errno ==
 * EINTR);`.  Do not block or take over these signals in the app's threads:
 * a stalled thread that does not take SIGRTMIN+3 is described from /proc
 * only, without its stack.
 */
#ifndef DROVER_APP_H
#define DROVER_APP_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DROVER_APP_ABI_VERSION 1

/* Strings are NOT NUL-terminated unless said; use the lengths. */
struct drover_str {
	const char *ptr;
	size_t len;
};

struct drover_header {
	struct drover_str name; /* as sent by the client */
	struct drover_str value; /* leading/trailing whitespace removed */
};

struct drover_request;
struct drover_request_ops {
	/* Read up to len bytes of the (de-chunked) body.  Returns the number of
	 * bytes read, 0 at the end of the body, -1 if the client went away or
	 * sent a broken body (the request is then abandoned by the server).
	 * Bodies are streamed: nothing is buffered beyond what was read. */
	ssize_t (*read_body)(struct drover_request *req, void *buf, size_t len);
	/* Find a header by name (case-insensitive); NULL if absent.  With several
	 * fields of that name, the first. */
	const struct drover_header *(*header)(const struct drover_request *req, const char *name);
};

struct drover_request {
	const struct drover_request_ops *ops;
	struct drover_str method; /* "GET" */
	struct drover_str target; /* request target as sent: "/a/b?x=1" */
	struct drover_str path; /* "/a/b" (not percent-decoded) */
	struct drover_str query; /* "x=1" (empty if none) */
	int http_major, http_minor;
	const struct drover_header *headers;
	size_t nheaders;
	long long content_length; /* -1: chunked (unknown); 0: no body */
	const char *peer_addr; /* NUL-terminated, "127.0.0.1", "::1" or "" (unix) */
	int peer_port;
	const char *server_addr; /* NUL-terminated local address */
	int server_port;
	const char *url_scheme; /* "http" */
	void *app_data; /* the value init() stored, for the app's own use */
	void *server; /* private to drover */
};

struct drover_response;
struct drover_response_ops {
	/* Set the status (default 200) and reason (NULL: the standard phrase).
	 * Only before the first write.  Returns 0, or -1 if headers were sent,
	 * status is outside 200..599 (a 1xx is interim, never the final answer:
	 * RFC 9110 section 15.2) or the reason holds a control character. */
	int (*status)(struct drover_response *resp, int status, const char *reason);
	/* Add a header (NUL-terminated strings; CR/LF are refused with -1).  Give
	 * Content-Length to announce the length: the body is then framed by it.
	 * Without it, a response with no write at all gets Content-Length: 0,
	 * and any other is sent chunked (HTTP/1.1) or ended by the close of the
	 * connection (HTTP/1.0).  Only before the first write. */
	int (*header)(struct drover_response *resp, const char *name, const char *value);
	/* Hand body bytes over.  Each write is a block sent at once (PEP 3333's
	 * rule for WSGI, kept for C apps too): the status line and headers go
	 * with the first write, and drover never holds a block back waiting for
	 * the next one, so an app that writes a piece and then sleeps has that
	 * piece on its way to the client when write returns.  A write of 0
	 * bytes sends the head now (e.g. a server-sent event stream).  In the
	 * sync and thread models write returns once the bytes are in the
	 * socket (it blocks while the client is slow); in the event model it
	 * writes what the socket takes without waiting and queues the rest,
	 * except that a write completing the announced Content-Length may wait
	 * for handle() to return (it is then sent with the other responses of
	 * a pipelined batch).  Write the body in few large pieces: each write
	 * is a system call (and a chunk without Content-Length).
	 * A response to HEAD, a 1xx, 204 or 304 ends at its header section
	 * (RFC 9112 §6.3): the bytes of write and sendfile are accepted (0) and
	 * dropped.  Returns 0, or -1 if the client went away or the bytes pass
	 * the announced Content-Length: the app should stop and return (once
	 * the client is gone, every later write fails too). */
	int (*write)(struct drover_response *resp, const void *buf, size_t len);
	/* Send len bytes of file fd from offset off (sendfile(2) where the model
	 * allows, else read+write); a block handed over like write.  Returns 0,
	 * or -1 if the client went away or the file could not be read. */
	int (*sendfile)(struct drover_response *resp, int fd, off_t off, size_t len);
};

struct drover_response {
	const struct drover_response_ops *ops;
	void *server; /* private to drover */
};

struct drover_app {
	unsigned abi_version; /* DROVER_APP_ABI_VERSION */
	const char *name; /* for the logs */
	/* Optional: once per worker, before the first request.  *app_data is
	 * handed to every request.  Non-zero: the worker fails to boot. */
	int (*init)(void **app_data);
	/* Required: serve one request.  Return 0; a non-zero return with nothing
	 * sent yet becomes a 500. */
	int (*handle)(struct drover_request *req, struct drover_response *resp);
	/* Optional: once when the worker stops. */
	void (*shutdown)(void *app_data);
};

/* Convenience wrappers. */
static inline int drover_status(struct drover_response *r, int status)
{
	return r->ops->status(r, status, NULL);
}
static inline int drover_header(struct drover_response *r, const char *n, const char *v)
{
	return r->ops->header(r, n, v);
}
static inline int drover_write(struct drover_response *r, const void *buf, size_t len)
{
	return r->ops->write(r, buf, len);
}
static inline ssize_t drover_read_body(struct drover_request *q, void *buf, size_t len)
{
	return q->ops->read_body(q, buf, len);
}

#ifdef __cplusplus
}
#endif
#endif
