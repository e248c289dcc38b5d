/* The graceful stop's hand-off (handoff.h): the socket side.  Why the master does it: the
 * listen sockets are shared, and a connection the kernel has accepted into a
 * listen queue was sent by a client that now waits for an answer.  Closing or
 * shutting the last listening socket resets every such connection, and a sync
 * worker busy in the app cannot empty the queue in time.  So the master,
 * which never blocks, takes the queue (accept4 until EAGAIN), then shuts the
 * sockets (new connections are refused cleanly: a client or load balancer
 * can retry a refused connect, not a reset after a sent request), then gives
 * each connection to a worker, which serves it with Connection: close. */
#include "supervisor/handoff.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "supervisor/log.h"

/* Connections past the backlog that completed while we were accepting: the
 * kernel's queue holds at most backlog + 1. */
#define HANDOFF_SLACK 64

/* Keep the master's end off fds 0-2 (which may be closed at start): a zeroed
 * worker record then means "no channel". */
static int above_stdio(int fd)
{
	if (fd >= 3)
		return fd;
	int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return d;
}

int handoff_pair(int fds[2])
{
	/* SEQPACKET: one message per connection, and a worker that shuts its
	 * end (SHUT_RD, end of its drain) makes our sends fail with EPIPE
	 * instead of leaving fds in a queue nobody reads. */
	int p[2];
	fds[0] = 0;
	fds[1] = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p) < 0)
		return -errno;
	p[0] = above_stdio(p[0]);
	if (p[0] < 0) {
		int e = errno;
		close(p[1]);
		return -e;
	}
	fds[0] = p[0];
	fds[1] = p[1];
	return 0;
}

/* Send fd to a worker without waiting.  0, or -errno (EAGAIN: its channel is
 * full; EPIPE: it shut its channel or exited). */
int handoff_send(int chan, const struct handoff_conn *t)
{
	struct worker_handoff_msg m = {.listen_fd = t->listen_fd};
	struct iovec iov = {&m, sizeof(m)};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &t->fd, sizeof(int));
	while (sendmsg(chan, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

/* No worker can take it: answer 503 (RFC 9110 §15.6.4) with Connection:
 * close.  Input read first and after our FIN, so that the close does not
 * turn unread bytes into a RST that destroys the answer. */
void handoff_refuse(int fd)
{
	static const char resp[] = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
				   "Content-Length: 0\r\n\r\n";
	char sink[4096];
	while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
	ssize_t n = send(fd, resp, sizeof(resp) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)n;
	shutdown(fd, SHUT_WR);
	while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
	close(fd);
}

/* Accept what listen queue lfd holds, up to room entries of out. */
static size_t take_queue(int lfd, struct handoff_conn *out, size_t room)
{
	size_t n = 0;
	while (n < room) {
		/* Blocking mode for the worker's models that want it; the event
		 * worker sets O_NONBLOCK itself. */
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			out[n++] = (struct handoff_conn){fd, lfd};
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			log_error("accept4 (graceful stop): %s", strerror(errno));
		break;
	}
	return n;
}

size_t handoff_take_queues(const struct listeners *ls, int backlog, struct handoff_conn **out)
{
	size_t room = (size_t)(backlog > 0 ? backlog : 0) + HANDOFF_SLACK;
	struct handoff_conn *t = ls && ls->n ? calloc(ls->n * room, sizeof(*t)) : NULL;
	size_t nt = 0;
	if (ls && ls->n && !t)
		log_error("graceful stop: out of memory; queued connections are reset");
	for (size_t i = 0; ls && i < ls->n; i++) {
		int lfd = ls->l[i].fd;
		/* A socket systemd or the other master of a USR2 hand-over also
		 * holds is never shut down: on Linux shutdown() on a listening
		 * socket stops it in every process sharing it, so the new master's
		 * workers (or systemd's queue for our next start) would lose it.
		 * Its queue is left to them too: they keep accepting. */
		if (listen_shared(ls, i))
			continue;
		if (t)
			nt += take_queue(lfd, t + nt, room);
		/* From here the kernel refuses new connections.  A connection
		 * completing between the last accept and this call is reset: a
		 * window of microseconds, which only a listener per worker
		 * generation could close. */
		if (shutdown(lfd, SHUT_RD) < 0)
			log_error("shutdown(listener %s): %s", ls->l[i].name, strerror(errno));
	}
	if (nt == 0) {
		free(t);
		t = NULL;
	}
	*out = t;
	return nt;
}
