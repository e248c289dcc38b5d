/* The graceful stop's hand-off (handoff.h).  Why the master does it: the
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

#include "supervisor/arbiter.h"
#include "supervisor/log.h"

/* Connections past the backlog that completed while we were accepting: the
 * kernel's queue holds at most backlog + 1. */
#define HANDOFF_SLACK 64

struct taken {
	int fd;
	int listen_fd; /* which listener: the worker finds its record by fd */
};

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

void handoff_child_close(struct arbiter *ar)
{
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		if (ar->w[i].chan > 0)
			close(ar->w[i].chan);
}

void handoff_close(struct worker_rec *w)
{
	if (w->chan > 0)
		close(w->chan);
	w->chan = 0;
}

/* Send fd to a worker without waiting.  0, or -errno (EAGAIN: its channel is
 * full; EPIPE: it shut its channel or exited). */
static int send_conn(int chan, const struct taken *t)
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
static void refuse(int fd)
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
static size_t take_queue(int lfd, struct taken *out, size_t room)
{
	size_t n = 0;
	while (n < room) {
		/* Blocking mode for the worker's models that want it; the event
		 * worker sets O_NONBLOCK itself. */
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			out[n++] = (struct taken){fd, lfd};
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

/* Workers that can take connections, idle ones first: a busy sync worker
 * serves them only after its current request. */
static size_t candidates(struct arbiter *ar, struct worker_rec **out)
{
	size_t n = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
			struct worker_rec *w = &ar->w[i];
			if (!w->pid || w->stop_ns || w->chan <= 0)
				continue;
			uint32_t st = atomic_load(&w->slot->state);
			if (st == SB_DRAINING || st == SB_EXITED)
				continue; /* stopping on its own: its channel is shut or soon */
			if ((st == SB_IDLE) == (pass == 0))
				out[n++] = w;
		}
	}
	return n;
}

/* Round-robin over the candidates; one whose channel fails is dropped. */
static void distribute(struct arbiter *ar, struct taken *t, size_t nt)
{
	struct worker_rec *cand[SB_MAX_SLOTS];
	size_t nc = candidates(ar, cand), next = 0, refused = 0;
	for (size_t i = 0; i < nt; i++) {
		int rc = -EPIPE;
		while (nc > 0) {
			size_t k = next++ % nc;
			rc = send_conn(cand[k]->chan, &t[i]);
			if (rc == 0)
				break;
			if (rc != -EAGAIN && rc != -EPIPE && rc != -ECONNREFUSED)
				log_error("hand-off to worker %u (pid %d): %s", cand[k]->no,
					  (int)cand[k]->pid, strerror(-rc));
			cand[k] = cand[--nc];
		}
		if (rc == 0) {
			close(t[i].fd); /* the worker has its own reference now */
		} else {
			refuse(t[i].fd);
			refused++;
		}
	}
	if (nt)
		log_info("graceful stop: %zu queued connections handed to workers, %zu answered 503",
			 nt - refused, refused);
}

void handoff_stop_listening(struct arbiter *ar)
{
	size_t room = (size_t)ar->conf.backlog + HANDOFF_SLACK;
	struct taken *t = calloc(ar->ls.n * room, sizeof(*t));
	size_t nt = 0;
	for (size_t i = 0; i < ar->ls.n; i++) {
		int lfd = ar->ls.l[i].fd;
		if (t)
			nt += take_queue(lfd, t + nt, room);
		/* From here the kernel refuses new connections.  A connection
		 * completing between the last accept and this call is reset: a
		 * window of microseconds, which only a listener per worker
		 * generation could close. */
		if (shutdown(lfd, SHUT_RD) < 0)
			log_error("shutdown(listener %s): %s", ar->ls.l[i].name, strerror(errno));
	}
	if (!t)
		log_error("graceful stop: out of memory; queued connections are reset");
	distribute(ar, t, nt);
	free(t);
}
