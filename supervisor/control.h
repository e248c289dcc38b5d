/* The control socket (a unix stream socket, mode 0600, peers checked with
 * SO_PEERCRED): line commands with one-line JSON answers, served from the
 * master's loop.  Also the bounded non-blocking client machinery that the
 * HTTP metrics listener shares, and `drover ctl`, its command-line client. */
#ifndef DROVER_CONTROL_H
#define DROVER_CONTROL_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "supervisor/metrics.h"

struct arbiter;

#define CTL_MAX_CLIENTS 16 /* more are refused at once */
#define CTL_IN_CAP 4096 /* longest command line / HTTP request head */
#define CTL_OUT_MAX (16u << 20) /* largest answer */
#define CTL_IDLE_S 10.0 /* a silent client is closed after this */

struct ctl_client;
struct ctl_server;
/* Called when input arrived (or the output was flushed): consume lines from
 * c->in, answer with ctl_client_send().  Only called while no answer is
 * pending, so each client holds at most one answer in memory. */
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

struct ctl_server {
	struct arbiter *ar;
	const char *what; /* for logs: "control", "metrics" */
	int fd;
	ev_io io;
	bool check_peer; /* SO_PEERCRED: same uid or root */
	ctl_input_fn on_input;
	struct ctl_client *c[CTL_MAX_CLIENTS];
};

/* Start watching a listening (non-blocking) socket fd. */
void ctl_server_start(struct ctl_server *srv, struct arbiter *ar, int fd, const char *what,
		      bool check_peer, ctl_input_fn on_input);
/* Close every client and the listening socket. */
void ctl_server_stop(struct ctl_server *srv);
/* Queue an answer and write what the socket takes now. */
void ctl_client_send(struct ctl_client *c, const char *p, size_t n);
/* Drop the first n bytes of c->in. */
void ctl_client_consume(struct ctl_client *c, size_t n);

/* fds a forked worker must close (kept in arbiter.close_fds). */
void obs_track_fd(struct arbiter *ar, int fd, bool add);

/* The control socket's path: the control option, else beside the pidfile
 * (X.pid -> X.ctl, other names get ".ctl" appended), else "" (none). */
void control_path(const char *control, const char *pidfile, char *buf, size_t cap);

int control_start(struct arbiter *ar);
void control_stop(struct arbiter *ar);

/* `drover ctl ...` (argv[0] is "ctl"); returns the exit status. */
int ctl_main(int argc, char **argv);
#endif
