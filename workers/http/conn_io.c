/* Blocking-socket I/O for the sync and thread models.  Every call first tries
 * the socket without waiting (MSG_DONTWAIT): on the common path a request is
 * one recv and a response one sendmsg, and poll() runs only when the peer is
 * slow, bounding each wait by a timeout. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_conn.h"

#define READ_CHUNK 16384

/* Progress stamps (thread model): a request thread's heartbeat moves with
 * every partial read or write, so a transfer that keeps moving is not taken
 * for a stuck worker however long it lasts.  While it waits for its client
 * the thread is not stuck either: the wait is bounded by the connection's own
 * timeout (read_timeout, send_timeout), which closes that connection only.
 * So such a wait is cut into slices, stamping between them, each well under
 * the worker timeout.  The sync model does not stamp: as in gunicorn, its
 * timeout bounds the whole request. */
#define BEAT_SLICE_MAX_MS 250

static void beat(struct http_conn *c, bool on)
{
	if (on)
		atomic_store_explicit(c->heartbeat, sb_now_ns(), memory_order_relaxed);
}

static int beat_slice_ms(const struct http_conn *c)
{
	double t = c->env->conf->timeout; /* seconds, 0: no worker timeout */
	int ms = t > 0 ? (int)(t * 1000.0 / 4) : BEAT_SLICE_MAX_MS;
	return ms < 10 ? 10 : ms > BEAT_SLICE_MAX_MS ? BEAT_SLICE_MAX_MS : ms;
}

/* Wait until fd is ready for events, at most timeout seconds.  0: ready;
 * -1: timed out (or poll failed).  on: stamp c's heartbeat meanwhile. */
static int wait_fd(struct http_conn *c, short events, double timeout, bool on)
{
	int ms = timeout <= 0 ? 0 : timeout > 2e6 ? 2000000000 : (int)(timeout * 1000.0 + 0.5);
	struct pollfd p = {.fd = c->fd, .events = events};
	uint64_t deadline = sb_now_ns() + (uint64_t)ms * 1000000ull;
	int slice = on ? beat_slice_ms(c) : ms;
	for (;;) {
		int r = poll(&p, 1, ms < slice ? ms : slice);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		/* A signal (e.g. the drain request) does not cut an in-flight
		 * request short: wait out the rest of the timeout. */
		uint64_t now = sb_now_ns();
		if (now >= deadline || (r == 0 && ms <= slice))
			return -1;
		beat(c, on);
		ms = (int)((deadline - now + 999999) / 1000000ull);
	}
}

static ssize_t fill_io(struct http_conn *c, double timeout, bool on)
{
	if (http_buf_reserve(&c->in, READ_CHUNK) < 0)
		return -1;
	c->io_timed_out = false;
	for (;;) {
		ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, MSG_DONTWAIT);
		if (n >= 0) {
			c->in.len += (size_t)n;
			beat(c, on && n > 0);
			return n;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (wait_fd(c, POLLIN, timeout, on) < 0) {
			c->io_timed_out = true;
			return -1;
		}
	}
}

/* Each wait for the client to take more is bounded by send_timeout (nginx's
 * send_timeout): a client that stops reading loses its connection. */
static int send_io(struct http_conn *c, const struct iovec *iov_in, int iovcnt, bool on)
{
	struct iovec iov[4];
	if (iovcnt > 4)
		return -1;
	memcpy(iov, iov_in, sizeof(*iov) * (size_t)iovcnt);
	struct iovec *v = iov;
	while (iovcnt > 0) {
		struct msghdr m = {.msg_iov = v, .msg_iovlen = (size_t)iovcnt};
		ssize_t n = sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -1;
			if (wait_fd(c, POLLOUT, c->env->conf->send_timeout, on) < 0)
				return -1;
			continue;
		}
		beat(c, on);
		/* Skip what went out, possibly in the middle of an iovec. */
		size_t left = (size_t)n;
		while (iovcnt > 0 && left >= v->iov_len) {
			left -= v->iov_len;
			v++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			v->iov_base = (char *)v->iov_base + left;
			v->iov_len -= left;
		}
	}
	return 0;
}

/* sendfile(2) has no MSG_DONTWAIT: the socket is made non-blocking for the
 * call, so that a stalled client is bounded by send_timeout like any send. */
static int sendfile_io(struct http_conn *c, int fd, off_t off, size_t len, bool on)
{
	int fl = fcntl(c->fd, F_GETFL);
	if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	int rc = 0;
	while (len > 0 && rc == 0) {
		ssize_t n = sendfile(c->fd, fd, &off, len);
		if (n > 0) {
			len -= (size_t)n;
			beat(c, on);
		} else if (n == 0) {
			rc = -1; /* the file is shorter than announced */
		} else if (errno != EINTR &&
			   (errno != EAGAIN ||
			    wait_fd(c, POLLOUT, c->env->conf->send_timeout, on) < 0)) {
			rc = -1;
		}
	}
	if (fcntl(c->fd, F_SETFL, fl) < 0)
		rc = -1;
	return rc;
}

static ssize_t blocking_fill(struct http_conn *c, double timeout)
{
	return fill_io(c, timeout, false);
}

static int blocking_send(struct http_conn *c, const struct iovec *iov, int iovcnt)
{
	return send_io(c, iov, iovcnt, false);
}

int conn_blocking_sendfile(struct http_conn *c, int fd, off_t off, size_t len)
{
	return sendfile_io(c, fd, off, len, false);
}

static ssize_t progress_fill(struct http_conn *c, double timeout)
{
	return fill_io(c, timeout, true);
}

static int progress_send(struct http_conn *c, const struct iovec *iov, int iovcnt)
{
	return send_io(c, iov, iovcnt, true);
}

static int progress_sendfile(struct http_conn *c, int fd, off_t off, size_t len)
{
	return sendfile_io(c, fd, off, len, true);
}

const struct conn_io conn_io_blocking = {blocking_fill, blocking_send, conn_blocking_sendfile};
const struct conn_io conn_io_progress = {progress_fill, progress_send, progress_sendfile};

void http_conn_close(struct http_conn *c)
{
	if (c->fd < 0)
		return;
	/* Unread input makes close() send a RST that can destroy the response
	 * still in the client's receive path.  If the client may still send,
	 * shut our side and read its leftovers away for a short while. */
	char sink[16384];
	if (http_conn_unread_input(c, c->fd) && shutdown(c->fd, SHUT_WR) == 0) {
		uint64_t deadline = sb_now_ns() + 2000000000ull; /* lingering time */
		while (sb_now_ns() < deadline) {
			if (wait_fd(c, POLLIN, 0.5, false) < 0)
				break;
			if (recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
				break;
		}
	}
	close(c->fd);
	c->fd = -1;
}
