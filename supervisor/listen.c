/* Listening sockets, bound by the master before forking.  They are
 * non-blocking because event workers poll them and a blocking accept() after
 * another worker won the race would hang; sync workers try accept first. */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int listen_parse(const char *bind, struct worker_listener *l, char *err, size_t errlen)
{
	memset(l, 0, sizeof(*l));
	l->fd = -1;
	snprintf(l->name, sizeof(l->name), "%s", bind);
	if (strncmp(bind, "unix:", 5) == 0) {
		if (strlen(bind + 5) == 0 || strlen(bind + 5) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			snprintf(err, errlen, "%s: bad unix socket path", bind);
			return -1;
		}
		l->family = AF_UNIX;
		return 0;
	}
	const char *colon = strrchr(bind, ':');
	const char *host = bind;
	size_t hlen = colon ? (size_t)(colon - bind) : 0;
	if (bind[0] == '[') {
		const char *close = strchr(bind, ']');
		if (!close || close[1] != ':') {
			snprintf(err, errlen, "%s: expected [IPv6]:PORT", bind);
			return -1;
		}
		host = bind + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	}
	char *end;
	long port = colon ? strtol(colon + 1, &end, 10) : -1;
	if (!colon || colon[1] == 0 || *end || port < 0 || port > 65535 || hlen >= sizeof(l->host)) {
		snprintf(err, errlen, "%s: expected HOST:PORT, [IPv6]:PORT or unix:PATH", bind);
		return -1;
	}
	memcpy(l->host, host, hlen);
	l->host[hlen] = 0;
	l->port = (int)port;
	l->family = strchr(l->host, ':') ? AF_INET6 : AF_INET;
	return 0;
}

static int resolve(struct worker_listener *l, struct sockaddr_storage *ss, socklen_t *sl,
		   char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res;
	char port[8];
	snprintf(port, sizeof(port), "%d", l->port);
	int rc = getaddrinfo(l->host[0] ? l->host : NULL, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "%s: cannot resolve: %s", l->name, gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sl = res->ai_addrlen;
	l->family = res->ai_family;
	freeaddrinfo(res);
	return 0;
}

/* bind + listen on a fresh socket; on failure close it and say why. */
static int bind_listen(struct worker_listener *l, int fd, const struct sockaddr *sa,
		       socklen_t sl, int backlog, char *err, size_t errlen)
{
	if (fd >= 0 && bind(fd, sa, sl) == 0 && listen(fd, backlog) == 0) {
		l->fd = fd;
		return 0;
	}
	snprintf(err, errlen, "cannot listen on %s: %s", l->name, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static int open_unix(struct worker_listener *l, int backlog, char *err, size_t errlen)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", l->name + 5);
	/* A stale socket file from a crashed run would make bind fail. */
	struct stat st;
	if (lstat(un.sun_path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(un.sun_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	return bind_listen(l, fd, (struct sockaddr *)&un, sizeof(un), backlog, err, errlen);
}

static int open_tcp(struct worker_listener *l, int backlog, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	if (resolve(l, &ss, &sl, err, errlen) < 0)
		return -1;
	int fd = socket(l->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;
	if (fd >= 0) {
		/* Failing options cost performance or a restart delay, not service. */
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (l->family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	if (bind_listen(l, fd, (struct sockaddr *)&ss, sl, backlog, err, errlen) < 0)
		return -1;
	/* HTTP clients speak first: have accept() return a connection only once
	 * its request bytes arrived, which saves every model a wakeup and the
	 * sync model a failed read plus a poll per request (nginx's deferred). */
	int defer = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof(defer));
	if (l->port == 0) { /* port 0: the kernel picked one; tell the logs */
		struct sockaddr_storage got;
		socklen_t gl = sizeof(got);
		if (getsockname(fd, (struct sockaddr *)&got, &gl) == 0)
			l->port = ntohs(got.ss_family == AF_INET6
						? ((struct sockaddr_in6 *)&got)->sin6_port
						: ((struct sockaddr_in *)&got)->sin_port);
	}
	return 0;
}

static int take_from(struct listeners *prev, struct worker_listener *l)
{
	for (size_t i = 0; prev && i < prev->n; i++) {
		if (prev->l[i].fd >= 0 && strcmp(prev->l[i].name, l->name) == 0) {
			*l = prev->l[i];
			prev->l[i].fd = -1;
			return 1;
		}
	}
	return 0;
}

int listen_open(const struct conf_list *binds, int backlog, struct listeners *prev,
		struct listeners *out, char *err, size_t errlen)
{
	out->n = 0;
	out->l = calloc(binds->n ? binds->n : 1, sizeof(*out->l));
	if (!out->l) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < binds->n; i++) {
		struct worker_listener *l = &out->l[out->n];
		if (listen_parse(binds->items[i], l, err, errlen) < 0)
			goto fail;
		if (!take_from(prev, l)) {
			int rc = l->family == AF_UNIX ? open_unix(l, backlog, err, errlen)
						      : open_tcp(l, backlog, err, errlen);
			if (rc < 0)
				goto fail;
		}
		out->n++;
	}
	return 0;
fail:
	/* Give reused sockets back to prev so a failed reload loses nothing. */
	for (size_t i = 0; i < out->n; i++) {
		if (prev && (out->l[i].fd >= 0)) {
			bool given = false;
			for (size_t j = 0; j < prev->n && !given; j++)
				if (prev->l[j].fd < 0 && strcmp(prev->l[j].name, out->l[i].name) == 0) {
					prev->l[j] = out->l[i];
					given = true;
				}
			if (given)
				out->l[i].fd = -1;
		}
	}
	listen_close(out);
	return -1;
}

void listen_close(struct listeners *ls)
{
	for (size_t i = 0; i < ls->n; i++) {
		if (ls->l[i].fd < 0)
			continue;
		close(ls->l[i].fd);
		if (ls->l[i].family == AF_UNIX)
			unlink(ls->l[i].name + 5);
	}
	free(ls->l);
	ls->l = NULL;
	ls->n = 0;
}

int listen_queue(int fd, unsigned *queued, unsigned *limit)
{
	/* On a listening socket, Linux reports the accept queue length in
	 * tcpi_unacked and its limit in tcpi_sacked. */
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return -errno;
	*queued = ti.tcpi_unacked;
	*limit = ti.tcpi_sacked;
	return 0;
}
