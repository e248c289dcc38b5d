/* Internals of the ASGI worker model (issue 17): asgi_server.c (the worker's
 * asyncio loop: accept, tick, drain, lifespan) and asgi_http.c (one HTTP/1.1
 * connection as an asyncio Protocol implemented in C, and the ASGI 3.0
 * request cycle: scope, receive, send).  The bytes are parsed and framed by
 * drover's HTTP layer (workers/http/), so no Python runs per byte.
 * Everything here is called on the loop thread with the GIL held. */
#ifndef DROVER_ASGI_H
#define DROVER_ASGI_H

#include "workers/app/wsgi.h"

#include <stdbool.h>
#include <stdint.h>

#include "workers/http/http_conn.h"
#include "workers/worker_priv.h"

struct asgi_cycle;
struct asgi_ws;

/* One connection: an asyncio Protocol (asgi_http.c). */
struct asgi_conn {
	PyObject_HEAD
	struct http_conn hc; /* parser, limits, peer, max_requests slot */
	struct asgi_conn *prev, *next; /* in asgi_srv.conns while open */
	PyObject *transport, *write; /* write: the bound transport.write */
	PyObject *client, *server; /* scope["client"], scope["server"] */
	struct asgi_cycle *cycle; /* the request being answered */
	struct asgi_ws *ws; /* after a WebSocket upgrade (asgi_ws.c) */
	PyObject *drain_waiter; /* a send() waiting for resume_writing */
	struct http_buf out; /* framing scratch */
	uint64_t since_ns; /* start of the idle or head wait */
	uint64_t rx_ns, wpause_ns; /* last bytes in; when writing paused */
	unsigned long long discarded; /* unread body read away */
	bool listed, made, closed, closing, peer_eof;
	bool lingering; /* closing: our FIN sent, the client's rest read away */
	int sock_fd; /* the transport's socket, for MSG_PEEK only */
	bool read_paused, write_paused, discarding;
};


/* The worker's server state: one per process. */
struct asgi_server {
	struct worker_rt *rt;
	PyObject *app; /* the ASGI application (the loader's callable) */
	PyObject *loop; /* the running loop */
	PyObject *create_future, *create_task; /* bound methods of the loop */
	PyObject *state; /* lifespan "state" dict, copied into each scope when non-empty */
	PyObject *asgi_dict; /* scope["asgi"]: {"version": "3.0", "spec_version": "2.3"} */
	PyObject *server_tuple; /* scope["server"] per listener */
	struct asgi_conn *conns; /* every open connection (idle sweep, drain) */
	unsigned nconns, inflight;
	bool draining;
	uint64_t drain_deadline_ns;
};
extern struct asgi_server asgi_srv;

/* asgi_http.c */
int asgi_http_setup(void); /* types and interned strings; -1 with an exception */
/* A connection accepted in C (fd non-blocking, a max_requests slot held):
 * the protocol object to hand to loop.connect_accepted_socket, or NULL with
 * an exception (fd untouched). */
PyObject *asgi_conn_new(int fd, const struct worker_listener *l, const struct sockaddr *peer);
/* The connection never got its transport (the accept task failed). */
void asgi_conn_abandon(PyObject *conn);
/* Tick: close connections idle past keepalive or with a head older than
 * header_timeout (draining too: see asgi_server.c).  now in ns. */
void asgi_conns_sweep(uint64_t now);
/* Draining: every WebSocket gets a close frame 1001 (going away). */
void asgi_conns_ws_drain(void);
/* Helpers of asgi_http.c shared with asgi_ws.c. */
void asgi_conn_write(struct asgi_conn *c, const char *p, size_t n); /* transport.write */
void asgi_conn_close(struct asgi_conn *c); /* transport.close: after the flush */
void asgi_pause_reading(struct asgi_conn *c, bool pause);
void asgi_future_set(PyObject *fut, PyObject *value); /* steals value; skips a done future */
PyObject *asgi_ready_new(PyObject *result); /* a done awaitable; steals result */
void asgi_srv_inflight(int delta);
PyObject *asgi_msg_disconnect(void); /* {"type": "http.disconnect"} */
/* The scope fields HTTP and WebSocket share (no method, no type), or NULL. */
PyObject *asgi_scope_base(struct asgi_conn *c, const struct drover_request *q);
void asgi_setup_request(struct asgi_conn *c); /* c->hc.req and c->hc.resp from the head */
void asgi_conn_process(struct asgi_conn *c); /* parse and start what is buffered */

/* asgi_ws.c: RFC 6455 over the same connection. */
int asgi_ws_setup(void);
/* The head asks for a WebSocket (Upgrade: websocket on a GET). */
bool asgi_ws_wanted(const struct http_parse *hp);
/* Start the websocket cycle for the parsed head: 0, or an HTTP status to
 * answer (400 bad handshake, 426 unknown version, 500). */
int asgi_ws_start(struct asgi_conn *c);
/* Frames in c->hc.in (the connection belongs to its ws). */
void asgi_ws_feed(struct asgi_conn *c);
/* The transport is gone (connection_lost) / the worker drains (close 1001). */
void asgi_ws_lost(struct asgi_conn *c);
void asgi_ws_drain(struct asgi_conn *c);
void asgi_ws_free(struct asgi_conn *c);

/* Text for the stall log: "GET /x from 1.2.3.4:5" of the request the loop
 * last entered. */
void asgi_stall_what(const char *what);
#endif
