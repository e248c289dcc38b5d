/* Bounded non-blocking servers on the master's loop: the control socket and
 * the metrics listener share this client machinery; each brings its own
 * protocol as an input callback. */
#ifndef DROVER_CTLSRV_H
#define DROVER_CTLSRV_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "supervisor/listen.h"
#include "supervisor/mbuf.h"
#include "workers/scoreboard.h"

#define CTL_MAX_CLIENTS 16 /* more wait in the kernel's backlog */
#define CTL_IN_CAP 4096 /* longest command line / HTTP request head */
#define CTL_OUT_MAX (16u << 20) /* largest answer */
#define CTL_IDLE_S 10.0 /* a silent client is closed after this */

struct ctl_client;
struct ctl_server;
/* Called when input arrived (or the output was flushed): consume lines from
 * c->in, answer with ctl_client_send() or into c->out.  Only called while no
 * answer is pending, so each client holds at most one answer in memory. */
typedef void (*ctl_input_fn)(struct ctl_server *srv, struct ctl_client *c);

struct ctl_client {
	struct ctl_server *srv;
	int fd;
	ev_io io;
	ev_timer idle;
	char in[CTL_IN_CAP];
	size_t inlen;
	struct mbuf out;
	size_t outoff;
	bool eof; /* the peer shut its side: close once the answer is out */
	bool close_after; /* close once the answer is out */
};

struct ctl_server_conf {
	struct ev_loop *loop;
	struct master_fds *fds; /* the server's fds are added here while open */
	void *ctx; /* for on_input: srv->ctx */
	const char *what; /* for logs: "control", "metrics" */
	bool check_peer; /* SO_PEERCRED: same uid or root */
	ctl_input_fn on_input;
};

/* accept() failures of the master's servers since start, by server
 * ([0] control socket, [1] metrics listener) and enum sb_accept_err; read by
 * the sampler for /metrics. */
#define CTLSRV_KINDS 2
extern uint64_t ctlsrv_accept_errors[CTLSRV_KINDS][SB_AE_KINDS];
#define CTLSRV_PAUSE_S 0.1 /* accepting stops this long after EMFILE and friends */

struct ctl_server {
	struct ev_loop *loop; /* NULL: not started */
	struct master_fds *fds;
	void *ctx;
	const char *what;
	int fd;
	ev_io io;
	ev_timer pause; /* out of fds: accepting resumes when it fires */
	unsigned kind; /* index into ctlsrv_accept_errors */
	uint64_t last_log_ns, unlogged; /* accept failures: one line a second */
	bool check_peer;
	ctl_input_fn on_input;
	struct ctl_client *c[CTL_MAX_CLIENTS];
};

/* Start serving on a listening non-blocking socket fd (now the server's). */
void ctl_server_start(struct ctl_server *srv, const struct ctl_server_conf *conf, int fd);
/* Close every client and the listening socket. */
void ctl_server_stop(struct ctl_server *srv);
/* Queue an answer; it is written once on_input returns. */
void ctl_client_send(struct ctl_client *c, const char *p, size_t n);
/* Drop the first n bytes of c->in. */
void ctl_client_consume(struct ctl_client *c, size_t n);
#endif
