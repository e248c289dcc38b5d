/* The bounded client machinery shared by the control socket and the metrics
 * listener.  Nothing a client sends can stall the master: sockets are
 * non-blocking, input is capped per client, at most CTL_MAX_CLIENTS are
 * served, each holds one answer at a time, and silent ones are closed. */
#include "supervisor/ctlsrv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "supervisor/log.h"

/* ---- clients ---- */

static void client_close(struct ctl_client *c)
{
	struct ctl_server *srv = c->srv;
	ev_io_stop(srv->loop, &c->io);
	ev_timer_stop(srv->loop, &c->idle);
	master_fds_del(srv->fds, c->fd);
	/* Unread input makes close() reset the connection, and the peer may
	 * lose the answer it has not read yet: discard what is there (bounded,
	 * never waiting) after shutting our side. */
	char sink[4096];
	shutdown(c->fd, SHUT_WR);
	for (int k = 0; k < 16 && recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; k++)
		;
	close(c->fd);
	mbuf_free(&c->out);
	for (size_t i = 0; i < CTL_MAX_CLIENTS; i++)
		if (srv->c[i] == c)
			srv->c[i] = NULL;
	free(c);
	/* A slot is free again: let the clients waiting in the backlog in. */
	if (!ev_is_active(&srv->io) && !ev_is_active(&srv->pause) && srv->fd >= 0)
		ev_io_start(srv->loop, &srv->io);
}

static bool server_full(const struct ctl_server *srv)
{
	for (size_t i = 0; i < CTL_MAX_CLIENTS; i++)
		if (!srv->c[i])
			return false;
	return true;
}

static bool pending(const struct ctl_client *c)
{
	return c->outoff < c->out.len;
}

/* Watch for reading while no answer is pending, for writing while one is. */
static void client_rearm(struct ctl_client *c)
{
	int want = pending(c) ? EV_WRITE : EV_READ;
	if ((c->io.events & (EV_READ | EV_WRITE)) == want)
		return;
	ev_io_stop(c->srv->loop, &c->io);
	ev_io_set(&c->io, c->fd, want);
	ev_io_start(c->srv->loop, &c->io);
}

/* Write what the socket takes.  false if the client was closed. */
static bool client_flush(struct ctl_client *c)
{
	while (pending(c)) {
		ssize_t n = send(c->fd, c->out.p + c->outoff, c->out.len - c->outoff, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			client_close(c);
			return false;
		}
		c->outoff += (size_t)n;
		ev_timer_again(c->srv->loop, &c->idle); /* a slow reader is not idle */
	}
	if (!pending(c)) {
		c->out.len = c->outoff = 0;
		c->out.failed = false;
		if (c->close_after || c->eof) {
			client_close(c);
			return false;
		}
	}
	client_rearm(c);
	return true;
}

void ctl_client_send(struct ctl_client *c, const char *p, size_t n)
{
	mbuf_put(&c->out, p, n);
}

void ctl_client_consume(struct ctl_client *c, size_t n)
{
	n = n < c->inlen ? n : c->inlen;
	memmove(c->in, c->in + n, c->inlen - n);
	c->inlen -= n;
}

/* Let the protocol answer, then write; the protocol is called again after a
 * flush so pipelined commands are served one answer at a time. */
static void client_serve(struct ctl_client *c)
{
	while (!pending(c) && !c->close_after) {
		size_t before = c->inlen;
		c->srv->on_input(c->srv, c);
		if (!pending(c) && (c->inlen == before || c->close_after))
			break;
		if (!client_flush(c))
			return;
	}
	if (!pending(c) && (c->eof || c->close_after)) {
		client_close(c);
		return;
	}
	client_rearm(c);
}

static void client_read(struct ctl_client *c)
{
	ssize_t n = recv(c->fd, c->in + c->inlen, CTL_IN_CAP - c->inlen, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n < 0) {
		client_close(c);
		return;
	}
	if (n == 0)
		c->eof = true;
	c->inlen += (size_t)n;
	ev_timer_again(c->srv->loop, &c->idle);
	client_serve(c);
}

static void on_client_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_client *c = w->data;
	(void)loop;
	if (revents & EV_WRITE) {
		if (client_flush(c) && !pending(c))
			client_serve(c);
	} else if (revents & EV_READ) {
		client_read(c);
	}
}

static void on_client_idle(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	client_close(t->data);
}

static bool peer_allowed(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return false;
	return cr.uid == 0 || cr.uid == geteuid();
}

static void client_add(struct ctl_server *srv, int fd)
{
	size_t i = 0;
	while (i < CTL_MAX_CLIENTS && srv->c[i])
		i++;
	struct ctl_client *c = i < CTL_MAX_CLIENTS ? calloc(1, sizeof(*c)) : NULL;
	if (!c) {
		static uint64_t last_warn_ns; /* a flood must not flood the log too */
		uint64_t now = (uint64_t)(ev_now(srv->loop) * 1e9);
		if (now - last_warn_ns > 10000000000ull) {
			last_warn_ns = now;
			log_warn("%s: refusing clients (%s)", srv->what,
				 i < CTL_MAX_CLIENTS ? strerror(errno) : "too many clients");
		}
		close(fd);
		return;
	}
	*c = (struct ctl_client){.srv = srv, .fd = fd};
	mbuf_init(&c->out, CTL_OUT_MAX);
	srv->c[i] = c;
	master_fds_add(srv->fds, fd);
	ev_io_init(&c->io, on_client_io, fd, EV_READ);
	c->io.data = c;
	ev_io_start(srv->loop, &c->io);
	ev_timer_init(&c->idle, on_client_idle, 0, CTL_IDLE_S);
	c->idle.data = c;
	ev_timer_again(srv->loop, &c->idle);
}

uint64_t ctlsrv_accept_errors[CTLSRV_KINDS][SB_AE_KINDS];

static void on_pause_end(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct ctl_server *srv = t->data;
	(void)revents;
	if (!server_full(srv))
		ev_io_start(loop, &srv->io);
}

/* Out of fds (EMFILE, ENFILE) or kernel memory, the listening socket stays
 * readable: retrying at once would spin the master's loop.  Stop watching it
 * for CTLSRV_PAUSE_S (clients wait in the backlog meanwhile), count the
 * failure, and log at most one line a second. */
static void accept_failed(struct ctl_server *srv, int err)
{
	ctlsrv_accept_errors[srv->kind][sb_accept_err_kind(err)]++;
	ev_io_stop(srv->loop, &srv->io);
	ev_timer_stop(srv->loop, &srv->pause);
	ev_timer_set(&srv->pause, CTLSRV_PAUSE_S, 0);
	ev_timer_start(srv->loop, &srv->pause);
	uint64_t now = (uint64_t)(ev_now(srv->loop) * 1e9);
	if (srv->last_log_ns && now - srv->last_log_ns < 1000000000ull) {
		srv->unlogged++;
		return;
	}
	log_warn("%s: accept: %s: not accepting for %.0f ms (%llu more failures since the last "
		 "line)", srv->what, strerror(err), CTLSRV_PAUSE_S * 1000,
		 (unsigned long long)srv->unlogged);
	srv->last_log_ns = now;
	srv->unlogged = 0;
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_server *srv = w->data;
	(void)loop;
	(void)revents;
	for (int k = 0; k < 64; k++) { /* bounded: other watchers get their turn */
		if (server_full(srv)) {
			/* Leave the rest in the kernel's backlog (bounded by listen())
			 * rather than accept and reset them; resumed by client_close. */
			ev_io_stop(srv->loop, &srv->io);
			return;
		}
		int fd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				accept_failed(srv, errno);
			return;
		}
		if (srv->check_peer && !peer_allowed(fd)) {
			static const char msg[] = "{\"ok\":false,\"error\":\"permission denied\"}\n";
			(void)!send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			log_warn("%s: refused a client of another user", srv->what);
			close(fd);
			continue;
		}
		client_add(srv, fd);
	}
}

void ctl_server_start(struct ctl_server *srv, const struct ctl_server_conf *conf, int fd)
{
	*srv = (struct ctl_server){.loop = conf->loop, .fds = conf->fds, .ctx = conf->ctx,
				   .what = conf->what, .fd = fd, .check_peer = conf->check_peer,
				   .on_input = conf->on_input};
	master_fds_add(srv->fds, fd);
	srv->kind = strcmp(srv->what, "control") == 0 ? 0 : 1;
	ev_io_init(&srv->io, on_accept, fd, EV_READ);
	srv->io.data = srv;
	ev_io_start(srv->loop, &srv->io);
	ev_timer_init(&srv->pause, on_pause_end, CTLSRV_PAUSE_S, 0);
	srv->pause.data = srv;
}

void ctl_server_stop(struct ctl_server *srv)
{
	if (!srv->loop)
		return;
	for (size_t i = 0; i < CTL_MAX_CLIENTS; i++)
		if (srv->c[i])
			client_close(srv->c[i]);
	ev_io_stop(srv->loop, &srv->io);
	ev_timer_stop(srv->loop, &srv->pause);
	master_fds_del(srv->fds, srv->fd);
	close(srv->fd);
	srv->loop = NULL;
}
