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

static int wait_fd(int fd, short events, double timeout)
{
	int ms = timeout <= 0 ? 0 : timeout > 2e6 ? 2000000000 : (int)(timeout * 1000.0 + 0.5);
	struct pollfd p = {.fd = fd, .events = events};
	uint64_t deadline = sb_now_ns() + (uint64_t)ms * 1000000ull;
	for (;;) {
		int r = poll(&p, 1, ms);
		if (r > 0)
			return 0;
		if (r == 0)
			return -1;
		if (errno != EINTR)
			return -1;
		/* A signal (e.g. the drain request) does not cut an in-flight
		 * request short: wait out the rest of the timeout. */
		uint64_t now = sb_now_ns();
		if (now >= deadline)
			return -1;
		ms = (int)((deadline - now) / 1000000ull);
	}
}

static ssize_t blocking_fill(struct http_conn *c, double timeout)
{
	if (http_buf_reserve(&c->in, READ_CHUNK) < 0)
		return -1;
	c->io_timed_out = false;
	for (;;) {
		ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, MSG_DONTWAIT);
		if (n >= 0) {
			c->in.len += (size_t)n;
			return n;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (wait_fd(c->fd, POLLIN, timeout) < 0) {
			c->io_timed_out = true;
			return -1;
		}
	}
}

static int blocking_send(struct http_conn *c, const struct iovec *iov_in, int iovcnt)
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
			if (wait_fd(c->fd, POLLOUT, c->env->conf->read_timeout) < 0)
				return -1;
			continue;
		}
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
 * call, so that a stalled client is bounded by read_timeout like any send. */
int conn_blocking_sendfile(struct http_conn *c, int fd, off_t off, size_t len)
{
	int fl = fcntl(c->fd, F_GETFL);
	if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	int rc = 0;
	while (len > 0 && rc == 0) {
		ssize_t n = sendfile(c->fd, fd, &off, len);
		if (n > 0)
			len -= (size_t)n;
		else if (n == 0)
			rc = -1; /* the file is shorter than announced */
		else if (errno != EINTR && (errno != EAGAIN ||
					    wait_fd(c->fd, POLLOUT, c->env->conf->read_timeout) < 0))
			rc = -1;
	}
	if (fcntl(c->fd, F_SETFL, fl) < 0)
		rc = -1;
	return rc;
}

const struct conn_io conn_io_blocking = {blocking_fill, blocking_send, conn_blocking_sendfile};

void http_conn_close(struct http_conn *c)
{
	if (c->fd < 0)
		return;
	/* Unread input makes close() send a RST that can destroy the response
	 * still in the client's receive path.  If the client may still send,
	 * shut our side and read its leftovers away for a short while. */
	char sink[4096];
	bool unread = c->in_off < c->in.len ||
		      recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT | MSG_PEEK) > 0;
	if (unread && shutdown(c->fd, SHUT_WR) == 0) {
		uint64_t deadline = sb_now_ns() + 2000000000ull; /* lingering time */
		while (sb_now_ns() < deadline) {
			if (wait_fd(c->fd, POLLIN, 0.5) < 0)
				break;
			if (recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
				break;
		}
	}
	close(c->fd);
	c->fd = -1;
}
