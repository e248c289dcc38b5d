/* The worker's end of the hand-off channel (the master's is
 * supervisor/handoff.c): at a graceful stop the master takes the connections
 * waiting in the listen queues and passes them here, one fd per message.
 * Each model serves them like accepted ones, with Connection: close. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "workers/wlog.h"
#include "workers/worker_priv.h"

static const struct worker_listener *listener_of(const struct worker_args *a, int lfd)
{
	/* The master and its workers share the listen fds by number. */
	for (size_t i = 0; i < a->nlisteners; i++)
		if (a->listeners[i].fd == lfd)
			return &a->listeners[i];
	return &a->listeners[0]; /* a listener of another generation: names only */
}

/* The fd carried by mh, or -1; extra fds (never sent) are closed. */
static int fd_of(struct msghdr *mh)
{
	int fd = -1;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int f;
			memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (fd < 0)
				fd = f;
			else
				close(f);
		}
	}
	return fd;
}

int worker_handoff_take(struct worker_rt *rt, const struct worker_listener **l)
{
	int chan = rt->args->handoff_fd;
	if (chan < 0 || rt->args->nlisteners == 0)
		return -EPIPE;
	for (;;) {
		struct worker_handoff_msg m;
		struct iovec iov = {&m, sizeof(m)};
		union {
			char buf[CMSG_SPACE(4 * sizeof(int))];
			struct cmsghdr align;
		} u;
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
				    .msg_controllen = sizeof(u.buf)};
		ssize_t n = recvmsg(chan, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return -EAGAIN;
		if (n <= 0)
			return -EPIPE; /* shut (end of our drain) or the master is gone */
		int fd = fd_of(&mh);
		if (fd < 0 || (size_t)n < sizeof(m)) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		/* The master hands off only when it stops this worker: the
		 * connection's response says Connection: close. */
		atomic_store(&worker_draining, 1);
		*l = listener_of(rt->args, m.listen_fd);
		return fd;
	}
}

void worker_handoff_shut(struct worker_rt *rt)
{
	/* SHUT_RD on a connected unix socket makes the peer's sends fail with
	 * EPIPE, so the master gives later connections to another worker,
	 * while messages already queued can still be read. */
	if (rt->args->handoff_fd >= 0 && shutdown(rt->args->handoff_fd, SHUT_RD) < 0)
		wlog_error("shutdown(hand-off channel): %s", strerror(errno));
}
