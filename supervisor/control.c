/* The control socket and the bounded client machinery it shares with the
 * metrics listener.  Nothing a client sends can stall the master: sockets
 * are non-blocking, input is capped per client, at most CTL_MAX_CLIENTS are
 * served, each holds one answer at a time, and silent ones are closed. */
#include "supervisor/control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "supervisor/arbiter.h"
#include "supervisor/log.h"
#include "supervisor/sample.h"

struct control {
	struct ctl_server srv;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

void obs_track_fd(struct arbiter *ar, int fd, bool add)
{
	for (size_t i = 0; i < ar->nclose_fds; i++) {
		if (ar->close_fds[i] == fd) {
			if (!add)
				ar->close_fds[i] = ar->close_fds[--ar->nclose_fds];
			return;
		}
	}
	if (add && ar->nclose_fds < ARBITER_MAX_CLOSE_FDS)
		ar->close_fds[ar->nclose_fds++] = fd;
}

/* ---- clients ---- */

static void client_close(struct ctl_client *c)
{
	struct ctl_server *srv = c->srv;
	ev_io_stop(srv->ar->loop, &c->io);
	ev_timer_stop(srv->ar->loop, &c->idle);
	obs_track_fd(srv->ar, c->fd, false);
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
	if (!ev_is_active(&srv->io) && srv->fd >= 0)
		ev_io_start(srv->ar->loop, &srv->io);
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
	ev_io_stop(c->srv->ar->loop, &c->io);
	ev_io_set(&c->io, c->fd, want);
	ev_io_start(c->srv->ar->loop, &c->io);
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
		ev_timer_again(c->srv->ar->loop, &c->idle); /* a slow reader is not idle */
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
	ev_timer_again(c->srv->ar->loop, &c->idle);
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
		uint64_t now = sb_now_ns();
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
	obs_track_fd(srv->ar, fd, true);
	ev_io_init(&c->io, on_client_io, fd, EV_READ);
	c->io.data = c;
	ev_io_start(srv->ar->loop, &c->io);
	ev_timer_init(&c->idle, on_client_idle, 0, CTL_IDLE_S);
	c->idle.data = c;
	ev_timer_again(srv->ar->loop, &c->idle);
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
			ev_io_stop(srv->ar->loop, &srv->io);
			return;
		}
		int fd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("%s: accept: %s", srv->what, strerror(errno));
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

void ctl_server_start(struct ctl_server *srv, struct arbiter *ar, int fd, const char *what,
		      bool check_peer, ctl_input_fn on_input)
{
	*srv = (struct ctl_server){.ar = ar, .what = what, .fd = fd, .check_peer = check_peer,
				   .on_input = on_input};
	obs_track_fd(ar, fd, true);
	ev_io_init(&srv->io, on_accept, fd, EV_READ);
	srv->io.data = srv;
	ev_io_start(ar->loop, &srv->io);
}

void ctl_server_stop(struct ctl_server *srv)
{
	if (!srv->ar)
		return;
	for (size_t i = 0; i < CTL_MAX_CLIENTS; i++)
		if (srv->c[i])
			client_close(srv->c[i]);
	ev_io_stop(srv->ar->loop, &srv->io);
	obs_track_fd(srv->ar, srv->fd, false);
	close(srv->fd);
	srv->ar = NULL;
}

/* ---- the control protocol ---- */

static void answer_error(struct ctl_client *c, const char *fmt, const char *arg)
{
	char msg[256];
	snprintf(msg, sizeof(msg), fmt, arg);
	mbuf_put(&c->out, "{\"ok\":false,\"error\":", 20);
	mbuf_json_str(&c->out, msg);
	mbuf_put(&c->out, "}\n", 2);
}

/* {"ok":true,"text":"..."}: for answers that are text (metrics, the table). */
static void answer_text(struct ctl_client *c, struct arbiter *ar,
			void (*render)(const struct sampler *, struct mbuf *))
{
	struct mbuf t;
	mbuf_init(&t, CTL_OUT_MAX / 2);
	render(ar->sampler, &t);
	if (t.failed) {
		answer_error(c, "%s", "answer too large");
	} else {
		mbuf_put(&c->out, "{\"ok\":true,\"text\":", 18);
		mbuf_json_str(&c->out, t.p ? t.p : "");
		mbuf_put(&c->out, "}\n", 2);
	}
	mbuf_free(&t);
}

static void answer_ok(struct ctl_client *c, const char *what, long value)
{
	mbuf_printf(&c->out, "{\"ok\":true,\"%s\":%ld}\n", what, value);
}

static bool parse_num(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = s ? strtol(s, &end, 10) : 0;
	if (!s || !*s || *end || errno || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static void cmd_status(struct ctl_client *c, struct arbiter *ar, const char *arg)
{
	sampler_note_master(ar, sb_now_ns());
	if (arg && strcmp(arg, "table") == 0) {
		answer_text(c, ar, metrics_status_table);
		return;
	}
	if (arg) {
		answer_error(c, "status takes no argument but 'table', got '%.64s'", arg);
		return;
	}
	metrics_status_json(ar->sampler, &c->out);
	mbuf_put(&c->out, "\n", 1);
	if (c->out.failed) {
		c->out.len = 0;
		c->out.failed = false;
		answer_error(c, "%s", "answer too large");
	}
}

static void cmd_pool(struct ctl_client *c, struct arbiter *ar, const char *cmd, const char *arg)
{
	long n;
	if (ar->state != MASTER_RUNNING) {
		answer_error(c, "%s: the master is stopping", cmd);
		return;
	}
	if (strcmp(cmd, "workers") == 0) {
		if (!parse_num(arg, 0, SB_MAX_SLOTS / 2, &n)) {
			answer_error(c, "usage: workers N (0..%s)", "512");
			return;
		}
		arbiter_set_target(ar, (unsigned)n);
	} else if (strcmp(cmd, "incr") == 0) {
		arbiter_set_target(ar, ar->target + 1);
	} else if (ar->target > 1) { /* decr keeps one, as TTOU does */
		arbiter_set_target(ar, ar->target - 1);
	}
	answer_ok(c, "target", (long)ar->target);
}

static void cmd_recycle(struct ctl_client *c, struct arbiter *ar, const char *arg)
{
	long pid;
	if (!parse_num(arg, 1, 0x7fffffff, &pid)) {
		answer_error(c, "%s", "usage: recycle PID");
		return;
	}
	if (arbiter_recycle(ar, (pid_t)pid) < 0) {
		answer_error(c, "no live worker has pid %s", arg);
		return;
	}
	answer_ok(c, "recycled", pid);
}

static void dispatch(struct ctl_client *c, struct arbiter *ar, char *line)
{
	char *save = NULL, *cmd = strtok_r(line, " \t", &save);
	char *arg = strtok_r(NULL, " \t", &save), *extra = strtok_r(NULL, " \t", &save);
	if (!cmd)
		return; /* empty line: no answer */
	if (extra) {
		answer_error(c, "too many arguments to '%.64s'", cmd);
	} else if (strcmp(cmd, "status") == 0) {
		cmd_status(c, ar, arg);
	} else if (strcmp(cmd, "metrics") == 0) {
		sampler_note_master(ar, sb_now_ns());
		answer_text(c, ar, metrics_prometheus);
	} else if (!strcmp(cmd, "workers") || !strcmp(cmd, "incr") || !strcmp(cmd, "decr")) {
		cmd_pool(c, ar, cmd, arg);
	} else if (strcmp(cmd, "recycle") == 0) {
		cmd_recycle(c, ar, arg);
	} else if (strcmp(cmd, "reload") == 0 && !arg) {
		unsigned gen = ar->generation;
		arbiter_reload(ar);
		if (ar->generation == gen)
			answer_error(c, "%s", "reload failed: the running configuration is kept (see the log)");
		else
			answer_ok(c, "generation", (long)ar->generation);
	} else if (strcmp(cmd, "stop") == 0 && (!arg || !strcmp(arg, "fast"))) {
		answer_ok(c, "stopping", 1);
		c->close_after = true;
		arbiter_stop(ar, !arg);
	} else if (strcmp(cmd, "ping") == 0 && !arg) {
		answer_ok(c, "pid", (long)getpid());
	} else {
		answer_error(c, "unknown command '%.64s' (status [table], metrics, workers N, incr, "
				"decr, recycle PID, reload, stop [fast], ping)", cmd);
	}
}

static void control_input(struct ctl_server *srv, struct ctl_client *c)
{
	char *nl = memchr(c->in, '\n', c->inlen);
	size_t len;
	if (nl) {
		len = (size_t)(nl - c->in);
	} else if (c->inlen == CTL_IN_CAP || (c->eof && c->inlen)) {
		if (!c->eof) {
			answer_error(c, "line longer than %s bytes", "4095");
			c->close_after = true;
			return;
		}
		len = c->inlen; /* the last line, without its newline */
	} else {
		return;
	}
	char line[CTL_IN_CAP + 1];
	memcpy(line, c->in, len);
	line[len] = '\0';
	if (len && line[len - 1] == '\r')
		line[len - 1] = '\0';
	ctl_client_consume(c, nl ? len + 1 : len);
	dispatch(c, srv->ar, line);
}

/* ---- the socket ---- */

void control_path(const char *control, const char *pidfile, char *buf, size_t cap)
{
	size_t n = pidfile ? strlen(pidfile) : 0;
	if (control && control[0])
		snprintf(buf, cap, "%s", control);
	else if (n > 4 && strcmp(pidfile + n - 4, ".pid") == 0)
		snprintf(buf, cap, "%.*s.ctl", (int)(n - 4), pidfile);
	else if (n)
		snprintf(buf, cap, "%s.ctl", pidfile);
	else if (cap)
		buf[0] = '\0';
}

/* A socket file left by a master that died is replaced; one that answers
 * belongs to a live master and is left alone. */
static int claim_path(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	int err = errno;
	close(fd);
	if (r == 0 || err == EAGAIN || err == EINPROGRESS)
		return -EADDRINUSE;
	if (err == ECONNREFUSED && unlink(sa->sun_path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static int control_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int r = claim_path(&sa);
	if (r < 0)
		return r;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	mode_t old = umask(0177); /* the file is born 0600: no window with wider rights */
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || chmod(path, 0600) < 0 || listen(fd, 16) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int control_start(struct arbiter *ar)
{
	char path[sizeof(((struct control *)0)->path)];
	control_path(ar->conf.control, ar->conf.pidfile, path, sizeof(path));
	if (!path[0] || !ar->sampler)
		return 0;
	int fd = control_listen(path);
	if (fd < 0) {
		log_error("control socket %s: %s; running without it", path, strerror(-fd));
		return -1;
	}
	struct control *ctl = calloc(1, sizeof(*ctl));
	if (!ctl) {
		close(fd);
		unlink(path);
		return -1;
	}
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	ar->control = ctl;
	ctl_server_start(&ctl->srv, ar, fd, "control", true, control_input);
	log_info("control socket at %s", path);
	return 0;
}

void control_stop(struct arbiter *ar)
{
	struct control *ctl = ar->control;
	if (!ctl)
		return;
	ctl_server_stop(&ctl->srv);
	unlink(ctl->path);
	free(ctl);
	ar->control = NULL;
}
