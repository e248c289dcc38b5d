/* One client connection: read a request, call the app through the
 * drover_request / drover_response ABI, write the response.  The I/O itself
 * is pluggable (struct conn_io) so the sync and thread models use blocking
 * sockets with poll() timeouts while the event model feeds buffered bytes. */
#ifndef DROVER_HTTP_CONN_H
#define DROVER_HTTP_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "conf/conf.h"
#include "workers/app/app_loader.h"
#include "workers/http/http_parse.h"
#include "workers/http/http_response.h"
#include "workers/scoreboard.h"
#include "workers/worker.h"

struct access_log;

/* max_requests as a budget of request slots, shared by the worker's threads.
 * A slot is claimed before a connection is accepted and again for the next
 * request a keep-alive response promises, and spent when a request starts
 * (the count that ends the worker); a slot unspent when its connection
 * closes comes back.  So a worker admits no more requests than its limit:
 * none is served past it, and none is refused or reset for it. */
struct req_budget {
	uint64_t max; /* the worker's limit (jitter added), 0: none */
	uint64_t warn_at; /* ask the master for a replacement here; 0: at max */
	_Atomic uint64_t spent_ns; /* when the last slot was spent, 0: not yet */
	_Atomic uint64_t claimed; /* requests started + slots held by connections */
	_Atomic uint64_t started;
};
/* Claim a slot: true if one was free (always, without a limit). */
bool req_budget_claim(struct req_budget *b);
/* Give back a slot claimed and not spent. */
void req_budget_unclaim(struct req_budget *b);
/* Whether a claim would succeed now (a model stops accepting when not). */
bool req_budget_left(struct req_budget *b);

/* Per worker: what every connection of the worker shares. */
struct conn_env {
	const struct drover_conf *conf;
	struct http_limits limits;
	struct app *app;
	struct sb_slot *slot;
	atomic_int *draining; /* set when the worker stops accepting */
	struct access_log *alog; /* NULL: access log off */
	struct req_budget *budget; /* max_requests */
	pid_t master_pid; /* told when the budget runs low (SB_WAKE_MASTER_SIGNAL) */
	bool keepalive_ok; /* the model keeps connections open between requests */
};

struct http_conn;
struct conn_io {
	/* Read more bytes into c->in, waiting at most timeout seconds.  >0: bytes
	 * read; 0: peer closed; -1: error or timeout (c->io_timed_out tells). */
	ssize_t (*fill)(struct http_conn *c, double timeout);
	/* Send all of iov (or queue it, for the event model; with c->send_now
	 * it must also try to write the queue at once, without waiting).  0,
	 * or -1 if the client went away or stalled past the timeout. */
	int (*send)(struct http_conn *c, const struct iovec *iov, int iovcnt);
	/* Optional: send len bytes of file fd from off straight from the page
	 * cache (sendfile(2)).  0, or -1 as send.  NULL: the file is copied
	 * through the body buffer instead. */
	int (*sendfile)(struct http_conn *c, int fd, off_t off, size_t len);
};

struct http_conn {
	const struct conn_env *env;
	const struct conn_io *io;
	int fd;
	struct http_buf in; /* bytes read and not yet parsed */
	size_t in_off; /* start of the unparsed bytes in in.data */
	struct http_parse hp;
	struct http_response resp;
	struct http_buf head, body; /* response bytes not yet handed to io->send */
	struct drover_request req;
	struct drover_response dresp;
	_Atomic uint64_t *heartbeat; /* the slot's or this thread's */
	char peer_addr[64], server_addr[64];
	int peer_port, server_port;
	bool proxy_seen; /* the PROXY header was read (or none is expected) */
	bool client_gone; /* a send failed: stop writing */
	/* The last request's body was not read to its end (refused, or the app
	 * left it): the client may still be sending it (http_conn_unread_input). */
	bool body_cut;
	bool io_timed_out;
	bool continue_sent;
	bool head_on_wire; /* the response head went to io->send */
	bool body_broken; /* reading the request body failed (timeout, EOF) */
	/* What io->send gets is a block the app handed over while it may still
	 * run (and sleep): a queueing io must not keep it (PEP 3333). */
	bool send_now;
	/* Event model: the whole body decoded before dispatch; read_body then
	 * serves it from here instead of reading the socket. */
	struct http_buf prebody;
	size_t prebody_off;
	bool body_buffered;
	unsigned requests; /* served on this connection */
	bool slot_held; /* a slot of env->budget is claimed for the next request */
	bool close_next; /* the model asks: Connection: close on the next response */
	uint64_t t_start; /* current request start (ns) */
	uint64_t bytes_out; /* of the current response */
	void *model_data; /* the model's own per-connection state */
};

enum conn_result { CONN_KEEP = 0, CONN_CLOSE = 1 };

/* peer: the client's address as accept() gave it, or NULL to ask the kernel. */
void http_conn_init(struct http_conn *c, const struct conn_env *env, const struct conn_io *io,
		    int fd, const struct worker_listener *l, const struct sockaddr *peer);
void http_conn_free(struct http_conn *c);
/* Drop the buffers of an idle keep-alive connection (kept open), so that many
 * idle connections cost little memory. */
void http_conn_shrink(struct http_conn *c);

/* Serve one request: read (io->fill) until a head is parsed, call the app,
 * finish the response.  CONN_KEEP: another request may follow (bytes of it may
 * already be in c->in: see http_conn_pending()). */
enum conn_result http_conn_serve(struct http_conn *c);
/* The same in two steps, for models that must not block (event):
 * http_conn_parse_head parses only what is buffered in c->in: 0 when a head
 * is complete, -EAGAIN when more bytes are needed, or an HTTP error status
 * (>0).  http_conn_dispatch then answers: the error status, or the app's
 * response (st == 0).  A body is read through c->io->fill unless the model
 * decoded it into c->prebody and set c->body_buffered. */
int http_conn_parse_head(struct http_conn *c);
enum conn_result http_conn_dispatch(struct http_conn *c, int st);

/* For a model that runs the exchange itself (asgi): a request starts and
 * spends its max_requests slot (the one reaching the limit starts the drain);
 * and whether the response must be the connection's last (draining, or no
 * slot left for a next request: a slot is claimed for it otherwise). */
void http_conn_budget_spend(struct http_conn *c);
bool http_conn_last_response(struct http_conn *c);

/* Bytes of a next (pipelined) request are already buffered. */
bool http_conn_pending(const struct http_conn *c);
/* Whether closing now could meet request bytes not read: input buffered,
 * a request body not read to its end or refused mid-way (parser in BODY or
 * ERROR: the client may still be sending it), or bytes waiting in socket fd
 * (MSG_PEEK; fd < 0: not looked at).  Such a close must linger (shut our
 * side, read the rest away): a close() with unread input sends a RST, and
 * the client's stack may then drop the response it has not read yet (RFC
 * 9112 section 9.6).  An empty socket is not enough: the rest of a body may
 * be on its way (a 413 before a 4 MiB upload was lost 20 times in 30). */
bool http_conn_unread_input(const struct http_conn *c, int fd);

/* Close politely: shut down writing, discard what the client still sends for
 * a short while, then close, so that unread input never turns into a RST
 * that destroys the response in flight (nginx's lingering close). */
void http_conn_close(struct http_conn *c);

/* The blocking I/O of the sync and thread models: recv/send with MSG_DONTWAIT
 * and poll() only when the socket is not ready. */
extern const struct conn_io conn_io_blocking;
int conn_blocking_sendfile(struct http_conn *c, int fd, off_t off, size_t len);
/* The same, stamping c->heartbeat with every partial read or write and
 * while waiting for the client (thread model; see conn_io.c). */
extern const struct conn_io conn_io_progress;
#endif
