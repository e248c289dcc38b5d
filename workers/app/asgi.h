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

#include "workers/worker_priv.h"

struct asgi_conn;

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
	uint64_t drain_deadline_ns, idle_close_ns;
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
 * header_timeout; draining, close idle ones now.  now in ns. */
void asgi_conns_sweep(uint64_t now, bool close_idle);
/* Text for the stall log: "GET /x from 1.2.3.4:5" of the request the loop
 * last entered. */
void asgi_stall_what(const char *what);
#endif
